"""The narrow interface every engine implements; the pipeline holds one and does not know which.

Both engines receive the same :class:`Statement`: SQL text rendered by :mod:`embed.sql`, its
query parameters with their BigQuery types, and what the statement needs of the engine
(whether it calls the model, whether it reads through the connection).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from embed.identifiers import ModelRef, TableRef

if TYPE_CHECKING:  # pyarrow is imported only by code that reads rows
    import pyarrow

__all__ = [
    "Column",
    "Engine",
    "QueryParameter",
    "QueryResult",
    "Statement",
    "StatementError",
    "normalize_type",
    "parse_type",
]


@dataclass(frozen=True)
class Column:
    """One column of a table schema, in BigQuery terms (type ``FLOAT64``, mode ``REPEATED`` ...)."""

    name: str
    type: str
    mode: str = "NULLABLE"
    fields: tuple[Column, ...] = ()


@dataclass(frozen=True)
class QueryParameter:
    """A value bound to ``@name`` in a statement, with its BigQuery type (``STRING``, ``ARRAY<STRING>`` ...)."""

    name: str
    type: str
    value: Any


@dataclass(frozen=True)
class Statement:
    """One statement: its name, SQL text and parameters, and what it needs of an engine.

    ``calls_model`` statements send rows to the embedding model: an engine must never re-run
    one on its own (the calls of a failed job may already be billed). ``uses_connection``
    statements go through the connection (the remote model, or the object table it reads), so
    right after provisioning they can fail until the connection's IAM grants have propagated.
    ``creates`` names what a DDL statement makes (``model``, ``results_table``); ``requires``
    what must exist before the statement can run.
    """

    name: str
    sql: str
    params: tuple[QueryParameter, ...] = ()
    calls_model: bool = False
    uses_connection: bool = False
    when: str = ""
    creates: str = ""
    requires: frozenset[str] = frozenset()

    def with_params(self, **values: Any) -> Statement:
        """A copy whose parameters take ``values`` (by name); every name must be a declared parameter."""
        declared = {p.name for p in self.params}
        unknown = sorted(set(values) - declared)
        if unknown:
            raise KeyError(f"{self.name} declares no parameter {', '.join(unknown)}")
        params = tuple(QueryParameter(p.name, p.type, values.get(p.name, p.value)) for p in self.params)
        return dataclasses.replace(self, params=params)


@dataclass(frozen=True)
class QueryResult:
    """What a statement did: rows it returned (queries) or changed (DML), bytes billed, its job id.

    ``bytes_billed`` is what BigQuery on-demand billing charges for the statement: reported by
    BigQuery for a job, estimated by the embedded engine from the documented rules.
    ``model_rows`` counts the rows the statement sent to the embedding model.
    """

    rows: pyarrow.Table | None = None
    affected_rows: int | None = None
    bytes_processed: int | None = None
    bytes_billed: int | None = None
    model_rows: int = 0
    job_id: str | None = None

    @property
    def billed(self) -> int | None:
        """Bytes billed; for a BigQuery dry run, which reports no bill, the bytes it would process."""
        return self.bytes_billed if self.bytes_billed is not None else self.bytes_processed

    def records(self) -> list[dict[str, Any]]:
        """The returned rows as dictionaries (none for a statement that returns no rows)."""
        return self.rows.to_pylist() if self.rows is not None else []


class Engine(Protocol):
    """Runs statements, reads schemas and model endpoints, and knows about other runs' jobs.

    ``billing`` says where its bytes-billed figures come from; ``retry_delay`` is how long a run waits
    before its first retry round of rows the model refused for a transient reason.
    """

    billing: str
    retry_delay: float

    def execute(self, statement: Statement, *, dry_run: bool = False) -> QueryResult:
        """Run one statement (or only check it and price it, with ``dry_run``) and wait for it to finish."""

    def schema(self, table: TableRef) -> tuple[Column, ...] | None:
        """The schema of ``table``, or None when it does not exist."""

    def model_endpoint(self, model: ModelRef) -> str | None:
        """The endpoint of remote model ``model``, or None when the model does not exist."""

    def running_jobs(self, table: TableRef) -> tuple[str, ...]:
        """Ids of this kit's jobs still running against results table ``table`` (another run's)."""


class StatementError(Exception):
    """A statement failed in the engine.

    ``propagating`` is True when the failure is the connection's IAM grant not having
    propagated yet (or its service account not yet known to IAM): such a statement
    succeeds if retried a few minutes later. Any other failure is final.
    """

    def __init__(self, message: str, *, propagating: bool = False) -> None:
        super().__init__(message)
        self.propagating = propagating


# Legacy (REST / client library) type names and their GoogleSQL equivalents.
_TYPE_ALIASES = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL", "STRUCT": "RECORD"}


def normalize_type(type_name: str) -> str:
    """GoogleSQL name of a BigQuery column type (INTEGER -> INT64, STRUCT -> RECORD ...)."""
    upper = type_name.strip().upper()
    return _TYPE_ALIASES.get(upper, upper)


_SCALAR_TYPES = ("STRING", "INT64", "FLOAT64", "BOOL", "TIMESTAMP", "BYTES", "DATE", "JSON")
_FIELD = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s+(.+)\s*", re.S)


@functools.lru_cache(maxsize=64)  # statements repeat the same few types; the result is immutable
def parse_type(text: str) -> Any:
    """A BigQuery type string as nested tuples: ``'INT64'``, ``('ARRAY', t)``, ``('STRUCT', ((name, t), ...))``.

    Only the types query parameters of the kit use are known: the scalars above, ARRAY and STRUCT.
    """
    text = text.strip()
    upper = text.upper()
    if upper in _SCALAR_TYPES:
        return upper
    for kind in ("ARRAY", "STRUCT"):
        if upper.startswith(kind + "<") and upper.endswith(">"):
            inner = text[len(kind) + 1 : -1]
            if kind == "ARRAY":
                return ("ARRAY", parse_type(inner))
            fields = []
            for part in _split_top(inner):
                match = _FIELD.fullmatch(part)
                if match is None:
                    raise ValueError(f"not a STRUCT field: {part!r}")
                fields.append((match.group(1), parse_type(match.group(2))))
            return ("STRUCT", tuple(fields))
    raise ValueError(f"not a query parameter type: {text!r}")


def _split_top(text: str) -> list[str]:
    """Split on commas that are not inside <...>."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char == "<":
            depth += 1
        elif char == ">":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p for p in parts if p.strip()]
