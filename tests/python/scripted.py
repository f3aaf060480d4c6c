"""A scripted Engine for tests: it answers per statement name and records every statement it receives.

A statement is named by matching its text exactly against what embed.sql renders for the
settings; any other text fails the test, so SQL assembled elsewhere cannot go unnoticed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterator, Optional

import pyarrow as pa

from embed import sql
from embed.engines.base import Column, QueryResult
from embed.identifiers import ModelRef, TableRef
from embed.schema import ExpectedSchema, expected_schema
from embed.settings import Settings

# How the BigQuery client reports types: legacy names, as SchemaField.field_type gives them.
_LEGACY = {"INT64": "INTEGER", "FLOAT64": "FLOAT", "BOOL": "BOOLEAN"}
OK = ""
RETRYABLE = "A retryable error occurred: RESOURCE_EXHAUSTED error from remote service/endpoint."
PERMANENT = "Invalid image: the object is not a supported image."


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
        mode = "REQUIRED" if c.name in ("uri", "embedded_at", "attempts") else c.mode
        out.append(Column(c.name, kind, mode))
    return tuple(out)


def result_rows(
    expected: ExpectedSchema, rows: list[tuple[str, Any, str]], *, ref: bool = False, json_text: bool = False
) -> pa.Table:
    """An Arrow table shaped like a real results table: (uri, embedding, status) per row."""
    when = dt.datetime(2026, 8, 1, tzinfo=dt.timezone.utc)
    names = expected.result
    data: dict[str, pa.Array] = {
        "uri": pa.array([u for u, _, _ in rows], pa.string()),
        "generation": pa.array([1700000000000000 + i for i in range(len(rows))], pa.int64()),
        "content_type": pa.array(["image/jpeg"] * len(rows), pa.string()),
        "size": pa.array([1024] * len(rows), pa.int64()),
        "md5_hash": pa.array(["1B2M2Y8AsgTpgAmY7PhCfg=="] * len(rows), pa.string()),
        "updated": pa.array([when] * len(rows), pa.timestamp("us", tz="UTC")),
    }
    if ref:
        data["ref"] = pa.array(
            [{"uri": u, "version": "1"} for u, _, _ in rows],
            pa.struct([("uri", pa.string()), ("version", pa.string())]),
        )
    embeddings = [e for _, e, _ in rows]
    if json_text:
        data[names.embedding] = pa.array(embeddings, pa.string())
    else:
        data[names.embedding] = pa.array(embeddings, pa.list_(pa.float64()))
    data[names.status] = pa.array([s for _, _, s in rows], pa.string())
    data[names.start_sec] = pa.array([None] * len(rows), pa.int64())
    data[names.end_sec] = pa.array([None] * len(rows), pa.int64())
    if "embedded_at" in expected.names:
        data["embedded_at"] = pa.array([when] * len(rows), pa.timestamp("us", tz="UTC"))
        data["attempts"] = pa.array([1] * len(rows), pa.int64())
    return pa.table(data)


def counts(objects: int = 0, embedded: int = 0, retryable: int = 0, permanent: int = 0, pending: int = 0) -> list:
    """One status_counts result row."""
    return [
        {
            "objects": objects,
            "embedded": embedded,
            "failed_retryable": retryable,
            "failed_permanent": permanent,
            "pending": pending,
        }
    ]


class ScriptedEngine:
    """An Engine whose answers are scripted per statement name; the last answer of a list repeats."""

    def __init__(
        self,
        settings: Settings,
        *,
        endpoint: Optional[str] = None,
        table: Optional[tuple[Column, ...]] = None,
        results: Optional[pa.Table] = None,
        script: Optional[dict[str, list[Any]]] = None,
    ) -> None:
        self.settings = settings
        self.endpoint = endpoint
        self.table = table
        self.results = results
        self.script = {name: list(answers) for name, answers in (script or {}).items()}
        self.calls: list[tuple[str, str, bool]] = []
        self.names = {s.sql: s.name for s in sql.run_statements(settings)}
        self.names[sql.prune_superseded(settings)] = "prune_superseded"

    def _name(self, text: str) -> str:
        assert text in self.names, f"statement not rendered by embed.sql:\n{text}"
        return self.names[text]

    def _answer(self, name: str) -> Any:
        answers = self.script.get(name)
        assert answers, f"no scripted answer for {name}"
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def named(self, name: str) -> list[str]:
        """The SQL of every call of statement ``name``."""
        return [text for n, text, _ in self.calls if n == name]

    @property
    def sequence(self) -> list[str]:
        """Statement names in the order received."""
        return [n for n, _, _ in self.calls]

    def execute(self, sql_text: str, *, dry_run: bool = False) -> QueryResult:
        name = self._name(sql_text)
        self.calls.append((name, sql_text, dry_run))
        if dry_run:
            answer = self.script.get(f"dry:{name}")
            if answer:
                return self._answer(f"dry:{name}")
            return QueryResult(bytes_processed=1000 + len(self.calls))
        answer = self._answer(name)
        if name == "create_results_table":
            self.table = columns_of(expected_schema(self.settings))
        if name in ("create_model", "replace_model"):
            self.endpoint = self.settings.endpoint
        return answer if isinstance(answer, QueryResult) else QueryResult(affected_rows=answer)

    def rows(self, sql_text: str) -> pa.Table:
        name = self._name(sql_text)
        self.calls.append((name, sql_text, False))
        answer = self._answer(name)
        return answer if isinstance(answer, pa.Table) else pa.Table.from_pylist(answer)

    def iter_rows(self, sql_text: str, batch_size: int = 10_000) -> Iterator[pa.RecordBatch]:
        name = self._name(sql_text)
        self.calls.append((name, sql_text, False))
        table = self.results if self.results is not None else pa.table({})
        return iter(table.to_batches(max_chunksize=2))

    def schema(self, table: TableRef) -> Optional[tuple[Column, ...]]:
        assert table == self.settings.results_table
        return self.table

    def model_endpoint(self, model: ModelRef) -> Optional[str]:
        assert model == self.settings.model
        return self.endpoint
