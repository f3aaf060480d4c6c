"""A scripted Engine for tests: it answers per statement name and records every statement it receives.

A statement's text must be exactly what embed.sql renders for the settings under that name;
any other text fails the test, so SQL assembled elsewhere cannot go unnoticed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from embed import sql
from embed.engines.base import Column, QueryResult, Statement
from embed.identifiers import ModelRef, TableRef
from embed.schema import ExpectedSchema, expected_schema
from embed.settings import Settings

# How the BigQuery client reports types: legacy names, as SchemaField.field_type gives them.
_LEGACY = {"INT64": "INTEGER", "FLOAT64": "FLOAT", "BOOL": "BOOLEAN"}
OK = ""
RETRYABLE = "A retryable error occurred: RESOURCE_EXHAUSTED error from remote service/endpoint."
PERMANENT = "Invalid image: the object is not a supported image."
_REQUIRED = ("uri", "embedding_endpoint", "embedding_dimension", "embedded_at", "attempts")


def columns_of(expected: ExpectedSchema, *, ref: bool = False, legacy: bool = True) -> tuple[Column, ...]:
    """The schema BigQuery would report for a table matching ``expected`` (with ``ref`` if asked)."""
    out = []
    for c in expected.columns:
        if c.name == "metadata":
            continue
        if c.name == "ref":
            if ref:
                out.append(Column("ref", "RECORD", "NULLABLE", (Column("uri", "STRING"), Column("version", "STRING"))))
            continue
        kind = _LEGACY.get(c.type, c.type) if legacy else c.type
        mode = "REQUIRED" if c.name in _REQUIRED else c.mode
        out.append(Column(c.name, kind, mode))
    return tuple(out)


def counts(
    objects: int = 0,
    embedded: int = 0,
    retryable: int = 0,
    permanent: int = 0,
    pending: int = 0,
    deleted: int = 0,
    superseded: int = 0,
    other_space: int = 0,
) -> list[dict[str, int]]:
    """One status_counts result row."""
    return [
        {
            "objects": objects,
            "embedded": embedded,
            "failed_retryable": retryable,
            "failed_permanent": permanent,
            "pending": pending,
            "deleted": deleted,
            "superseded_rows": superseded,
            "other_space_rows": other_space,
        }
    ]


def validation_row(**values: Any) -> list[dict[str, Any]]:
    """One validate_results result row: zero problems unless given."""
    row: dict[str, Any] = {
        "result_rows": 0,
        "successful_rows": 0,
        "null_status_rows": 0,
        "null_embedding_rows": 0,
        "wrong_length_rows": 0,
        "null_value_rows": 0,
        "nan_value_rows": 0,
        "duplicate_rows": 0,
        "other_space_rows": 0,
        "examples": [],
        "duplicate_examples": [],
    }
    row.update(values)
    return [row]


def uris(*names: str) -> list[dict[str, str]]:
    """pending_objects result rows."""
    return [{"uri": f"gs://b/{n}"} for n in names]


def retryable_rows(*names: str, attempts: int = 1) -> list[dict[str, Any]]:
    """retryable_objects result rows, in the order given (oldest attempt first)."""
    return [{"uri": f"gs://b/{n}", "generation": 7, "attempts": attempts, "attempted_at": None} for n in names]


@dataclass
class Call:
    """One statement the engine received."""

    name: str
    statement: Statement
    dry_run: bool

    def param(self, name: str) -> Any:
        """The value of parameter ``name``."""
        return {p.name: p.value for p in self.statement.params}[name]


Answer = Any  # an int (rows changed), rows (list of dicts), a QueryResult, an exception, or a callable of the Statement


def _sent_all(statement: Statement) -> QueryResult:
    """embed_batch's default answer: one row written for each uri sent."""
    sent = len({p.name: p.value for p in statement.params}["uris"])
    return QueryResult(affected_rows=sent, model_rows=sent)


class ScriptedEngine:
    """An Engine whose answers are scripted per statement name; the last answer of a list repeats."""

    billing = "reported by BigQuery"
    retry_delay = 15.0

    def __init__(
        self,
        settings: Settings,
        *,
        endpoint: str | None = None,
        table: tuple[Column, ...] | None = None,
        script: dict[str, list[Answer]] | None = None,
        running: tuple[str, ...] = (),
    ) -> None:
        self.settings = settings
        self.endpoint = endpoint
        self.table = table
        self.running = running
        self.script: dict[str, list[Answer]] = {"embed_batch": [_sent_all]}
        self.script.update({name: list(answers) for name, answers in (script or {}).items()})
        self.calls: list[Call] = []
        rendered = [*sql.run_statements(settings), sql.validate_results(settings), sql.failed_objects(settings, 1)]
        self.rendered = {s.name: s.sql for s in rendered}

    def _answer(self, name: str, statement: Statement) -> QueryResult:
        answers = self.script.get(name)
        assert answers, f"no scripted answer for {name}"
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, BaseException):
            raise answer
        if callable(answer):
            answer = answer(statement)
        if isinstance(answer, QueryResult):
            return answer
        if isinstance(answer, list):
            return QueryResult(rows=pa.Table.from_pylist(answer) if answer else pa.table({}), bytes_billed=10 << 20)
        return QueryResult(affected_rows=answer, bytes_billed=10 << 20)

    def named(self, name: str) -> list[Call]:
        """Every call of statement ``name`` that ran (dry runs left out)."""
        return [c for c in self.calls if c.name == name and not c.dry_run]

    @property
    def sequence(self) -> list[str]:
        """Names of the statements that ran, in order (dry runs left out)."""
        return [c.name for c in self.calls if not c.dry_run]

    def execute(self, statement: Statement, *, dry_run: bool = False) -> QueryResult:
        assert self.rendered.get(statement.name) == statement.sql, f"not rendered by embed.sql:\n{statement.sql}"
        self.calls.append(Call(statement.name, statement, dry_run))
        if dry_run:
            if f"dry:{statement.name}" in self.script:
                return self._answer(f"dry:{statement.name}", statement)
            return QueryResult(bytes_processed=1000 + len(self.calls))
        answer = self._answer(statement.name, statement)
        if statement.name == "create_results_table":
            self.table = columns_of(expected_schema(self.settings))
        if statement.name in ("create_model", "replace_model"):
            self.endpoint = self.settings.endpoint
        return answer

    def running_jobs(self, table: TableRef) -> tuple[str, ...]:
        assert table == self.settings.results_table
        return self.running

    def schema(self, table: TableRef) -> tuple[Column, ...] | None:
        assert table == self.settings.results_table
        return self.table

    def model_endpoint(self, model: ModelRef) -> str | None:
        assert model == self.settings.model
        return self.endpoint
