"""The narrow interface every engine implements; the pipeline holds one and does not know which.

Both engines receive the same SQL text, rendered by :mod:`embed.sql`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Protocol

from embed.identifiers import ModelRef, TableRef

if TYPE_CHECKING:  # pyarrow is imported only by code that reads rows
    import pyarrow


@dataclass(frozen=True)
class Column:
    """One column of a table schema, in BigQuery terms (type ``FLOAT64``, mode ``REPEATED`` ...)."""

    name: str
    type: str
    mode: str = "NULLABLE"
    fields: tuple["Column", ...] = ()


@dataclass(frozen=True)
class QueryResult:
    """What a statement did: rows it changed (DML), bytes it would process (dry run), its job id."""

    affected_rows: int | None = None
    bytes_processed: int | None = None
    job_id: str | None = None


class Engine(Protocol):
    """Runs statements, reads schemas, streams rows."""

    def execute(self, sql: str, *, dry_run: bool = False) -> QueryResult:
        """Run one statement (or only check it, with ``dry_run``) and wait for it to finish."""

    def rows(self, sql: str) -> "pyarrow.Table":
        """Run a query and return its rows as an Arrow table."""

    def iter_rows(self, sql: str, batch_size: int = 10_000) -> Iterator["pyarrow.RecordBatch"]:
        """Run a query and stream its rows as Arrow record batches."""

    def schema(self, table: TableRef) -> tuple[Column, ...] | None:
        """The schema of ``table``, or None when it does not exist."""

    def model_endpoint(self, model: ModelRef) -> str | None:
        """The endpoint of remote model ``model``, or None when the model does not exist."""


class StatementError(Exception):
    """A statement failed in the engine.

    ``propagating`` is True when the failure is the connection's IAM grant not having
    propagated yet (or its service account not yet known to IAM): such a statement
    succeeds if retried a few minutes later. Any other failure is final.
    """

    def __init__(self, message: str, *, propagating: bool = False) -> None:
        super().__init__(message)
        self.propagating = propagating
