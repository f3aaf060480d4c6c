"""Check a results table against the expected schema: its columns, and every row, streamed.

Rows arrive as Arrow record batches (or one table), so a large table never has to fit in
memory. A table fails validation when a column is missing or mistyped, or when a
successful row (status '') has an embedding that is NULL, of the wrong length, or holds
NULL or NaN values. Failed rows are counted by status and reported, never a failure here.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Optional, Union

from embed.engines.base import Column
from embed.schema import ExpectedSchema, describe
from embed.sql import RETRYABLE_PREFIX

if TYPE_CHECKING:
    import pyarrow

__all__ = ["ColumnProblem", "MalformedRow", "StatusCount", "ValidationReport", "check_columns", "validate"]

MAX_EXAMPLES = 10
_JSON_VECTOR_KEYS = ("imageEmbedding", "textEmbedding", "embedding")


@dataclass(frozen=True)
class ColumnProblem:
    """A column that is present with the wrong type or mode."""

    name: str
    expected: str
    found: str


@dataclass(frozen=True)
class MalformedRow:
    """An example of a successful row whose embedding is unusable."""

    uri: Optional[str]
    problem: str


@dataclass(frozen=True)
class StatusCount:
    """Failed rows sharing one status; ``retryable`` when the status has the retryable prefix."""

    status: str
    retryable: bool
    rows: int


@dataclass
class ValidationReport:
    """What validation found; ``ok`` is False when the schema is wrong or a successful row is malformed."""

    table: str
    exists: bool = True
    dimension: int = 0
    function: str = ""
    rows: int = 0
    successful_rows: int = 0
    missing_columns: tuple[str, ...] = ()
    mistyped_columns: tuple[ColumnProblem, ...] = ()
    extra_columns: tuple[str, ...] = ()
    null_embedding_rows: int = 0
    wrong_length_rows: int = 0
    null_value_rows: int = 0
    nan_value_rows: int = 0
    malformed_rows: int = 0
    null_status_rows: int = 0
    examples: list[MalformedRow] = field(default_factory=list)
    failures: tuple[StatusCount, ...] = ()

    @property
    def schema_ok(self) -> bool:
        """True when the table exists and no expected column is missing or mistyped."""
        return self.exists and not self.missing_columns and not self.mistyped_columns

    @property
    def ok(self) -> bool:
        """True when the schema is right and every row has a usable status and, if successful, embedding."""
        return self.schema_ok and self.malformed_rows == 0 and self.null_status_rows == 0

    @property
    def failed_rows(self) -> int:
        """Rows with a non-empty status."""
        return sum(f.rows for f in self.failures)

    @property
    def retryable_rows(self) -> int:
        """Failed rows whose status is retryable."""
        return sum(f.rows for f in self.failures if f.retryable)

    def problems(self) -> list[str]:
        """One sentence per problem found, for people."""
        out: list[str] = []
        if not self.exists:
            out.append(f"results table {self.table} does not exist: run `python -m embed run` first")
        if self.missing_columns:
            out.append("missing column(s): " + ", ".join(self.missing_columns))
        out += [f"column {p.name}: {p.found}, expected {p.expected}" for p in self.mistyped_columns]
        for count, what in (
            (self.null_embedding_rows, "a NULL embedding"),
            (self.wrong_length_rows, f"an embedding whose length is not {self.dimension}"),
            (self.null_value_rows, "NULL values in the embedding"),
            (self.nan_value_rows, "NaN values in the embedding"),
        ):
            if count:
                out.append(f"{count:,} successful row(s) with {what}")
        if self.null_status_rows:
            out.append(f"{self.null_status_rows:,} row(s) with a NULL status")
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form for --json."""
        return {
            "ok": self.ok,
            "table": self.table,
            "exists": self.exists,
            "function": self.function,
            "dimension": self.dimension,
            "rows": self.rows,
            "successful_rows": self.successful_rows,
            "failed_rows": self.failed_rows,
            "retryable_rows": self.retryable_rows,
            "missing_columns": list(self.missing_columns),
            "mistyped_columns": [
                {"name": p.name, "expected": p.expected, "found": p.found} for p in self.mistyped_columns
            ],
            "extra_columns": list(self.extra_columns),
            "malformed_rows": self.malformed_rows,
            "null_embedding_rows": self.null_embedding_rows,
            "wrong_length_rows": self.wrong_length_rows,
            "null_value_rows": self.null_value_rows,
            "nan_value_rows": self.nan_value_rows,
            "null_status_rows": self.null_status_rows,
            "examples": [{"uri": e.uri, "problem": e.problem} for e in self.examples],
            "failures": [{"status": f.status, "retryable": f.retryable, "rows": f.rows} for f in self.failures],
            "problems": self.problems(),
        }


def check_columns(
    columns: tuple[Column, ...], expected: ExpectedSchema
) -> tuple[tuple[str, ...], tuple[ColumnProblem, ...], tuple[str, ...]]:
    """Missing, mistyped and unexpected columns of ``columns`` compared with ``expected``."""
    found = {c.name.lower(): c for c in columns}
    missing: list[str] = []
    mistyped: list[ColumnProblem] = []
    for want in expected.columns:
        have = found.get(want.name.lower())
        if have is None:
            if want.required:
                missing.append(want.name)
            continue
        if want.problem(have) is not None:
            mistyped.append(ColumnProblem(want.name, want.describe(), describe(have)))
    known = {name.lower() for name in expected.names}
    extra = tuple(c.name for c in columns if c.name.lower() not in known)
    return tuple(missing), tuple(mistyped), extra


class _RowChecker:
    """Accumulates row counts and embedding problems over record batches."""

    def __init__(self, report: ValidationReport, expected: ExpectedSchema) -> None:
        self.report = report
        self.expected = expected
        self.statuses: Counter[str] = Counter()

    def add(self, batch: "pyarrow.RecordBatch") -> None:
        """Check one record batch."""
        import pyarrow.compute as pc

        self.report.rows += batch.num_rows
        names = {name.lower(): i for i, name in enumerate(batch.schema.names)}
        status_at = names.get(self.expected.result.status.lower())
        if status_at is None or batch.num_rows == 0:
            return
        status = _plain(batch.column(status_at))
        self.report.null_status_rows += status.null_count
        failed = pc.filter(status, pc.fill_null(pc.not_equal(status, ""), False))
        for item in pc.value_counts(failed).to_pylist():
            self.statuses[item["values"]] += item["counts"]
        success = pc.fill_null(pc.equal(status, ""), False)
        embedding_at = names.get(self.expected.result.embedding.lower())
        uri_at = names.get("uri")
        good = batch.filter(success)
        self.report.successful_rows += good.num_rows
        if embedding_at is None or good.num_rows == 0:
            return
        uris = good.column(uri_at).to_pylist() if uri_at is not None else [None] * good.num_rows
        problems = _embedding_problems(_plain(good.column(embedding_at)), self.expected.dimension)
        self._record(problems, uris)

    def _record(self, problems: dict[str, set[int]], uris: list[Optional[str]]) -> None:
        """Add per-category row indices to the report, with a few examples."""
        r = self.report
        r.null_embedding_rows += len(problems["null_embedding"])
        r.wrong_length_rows += len(problems["wrong_length"])
        r.null_value_rows += len(problems["null_values"])
        r.nan_value_rows += len(problems["nan_values"])
        bad: dict[int, str] = {}
        for kind in ("null_embedding", "wrong_length", "null_values", "nan_values"):
            for index in sorted(problems[kind]):
                bad.setdefault(index, kind.replace("_", " "))
        r.malformed_rows += len(bad)
        for index in sorted(bad):
            if len(r.examples) >= MAX_EXAMPLES:
                break
            r.examples.append(MalformedRow(uris[index], bad[index]))

    def failures(self) -> tuple[StatusCount, ...]:
        """Failed rows by status, most frequent first."""
        ranked = sorted(self.statuses.items(), key=lambda item: (-item[1], item[0]))
        return tuple(StatusCount(s, s.startswith(RETRYABLE_PREFIX), n) for s, n in ranked)


def _plain(array: Any) -> Any:
    """The storage array of an extension-typed column (e.g. JSON), else the array itself."""
    import pyarrow as pa

    return array.storage if isinstance(array.type, pa.ExtensionType) else array


def _embedding_problems(array: Any, dimension: int) -> dict[str, set[int]]:
    """Row indices of ``array`` (embeddings of successful rows) per kind of problem."""
    import pyarrow as pa

    kind = array.type
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        return _list_problems(array, dimension)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _json_problems(array.to_pylist(), dimension)
    # Any other encoding cannot hold an embedding; the schema check reports the type.
    return {"null_embedding": set(), "wrong_length": set(range(len(array))), "null_values": set(), "nan_values": set()}


def _list_problems(array: Any, dimension: int) -> dict[str, set[int]]:
    """Problems of ARRAY<FLOAT64> embeddings, computed column-wise with Arrow."""
    import pyarrow as pa
    import pyarrow.compute as pc

    lengths = pc.list_value_length(array)
    null_rows = pc.indices_nonzero(pc.is_null(array)).to_pylist()
    wrong = pc.indices_nonzero(pc.fill_null(pc.not_equal(lengths, dimension), False)).to_pylist()
    values = pc.list_flatten(array)
    parents = pc.list_parent_indices(array)
    null_values = pc.unique(pc.filter(parents, pc.is_null(values))).to_pylist()
    nan_values: list[int] = []
    if pa.types.is_floating(values.type):
        nan_values = pc.unique(pc.filter(parents, pc.fill_null(pc.is_nan(values), False))).to_pylist()
    return {
        "null_embedding": set(null_rows),
        "wrong_length": set(wrong),
        "null_values": set(null_values),
        "nan_values": set(nan_values),
    }


def _json_problems(texts: list[Optional[str]], dimension: int) -> dict[str, set[int]]:
    """Problems of JSON embeddings (flatten_json_output = FALSE), decoded row by row."""
    out: dict[str, set[int]] = {kind: set() for kind in ("null_embedding", "wrong_length", "null_values", "nan_values")}
    for index, text in enumerate(texts):
        vectors = _json_vectors(text)
        if vectors is None:
            out["null_embedding"].add(index)
            continue
        for vector in vectors:
            if not isinstance(vector, list) or len(vector) != dimension:
                out["wrong_length"].add(index)
            if not isinstance(vector, list):
                continue
            if any(v is None or isinstance(v, bool) or not isinstance(v, (int, float)) for v in vector):
                out["null_values"].add(index)
            if any(isinstance(v, float) and math.isnan(v) for v in vector):
                out["nan_values"].add(index)
    return out


def _json_vectors(text: Optional[str]) -> Optional[list[Any]]:
    """The vectors inside one JSON result, or None when it holds none."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if isinstance(value, list):
        return [value]
    if not isinstance(value, dict):
        return None
    vectors = [value[key] for key in _JSON_VECTOR_KEYS if value.get(key) is not None]
    for segment in value.get("videoEmbeddings") or []:
        vectors.append(segment.get("embedding") if isinstance(segment, dict) else segment)
    return vectors or None


def validate(
    table: str,
    columns: Optional[tuple[Column, ...]],
    rows: Union["pyarrow.Table", Iterable["pyarrow.RecordBatch"], None],
    expected: ExpectedSchema,
) -> ValidationReport:
    """Validate results table ``table`` (its ``columns`` and streamed ``rows``) against ``expected``."""
    report = ValidationReport(table=table, dimension=expected.dimension, function=expected.result.function.value)
    if columns is None:
        report.exists = False
        return report
    report.missing_columns, report.mistyped_columns, report.extra_columns = check_columns(columns, expected)
    checker = _RowChecker(report, expected)
    if rows is not None:
        batches = rows.to_batches() if hasattr(rows, "to_batches") else rows
        for batch in batches:
            checker.add(batch)
    report.failures = checker.failures()
    return report
