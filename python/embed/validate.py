"""Check a results table against the expected schema, and its rows with one aggregate query.

The engine counts, in SQL (``templates/validate_results.sql.j2``), successful rows whose
embedding is missing, of the wrong length, or holds NULL or NaN values; rows that repeat an
object (per video segment); and rows of another embedding space. Only the counts and a few
example uris come back, so validating a table of any size downloads almost nothing.
A table fails validation when a column is missing or mistyped, or when any of those counts
is not zero. Failed rows (a non-empty status) are counted by status and reported, never a
failure here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from embed.engines.base import Column
from embed.errors import missing_results_table
from embed.schema import ExpectedSchema, describe

__all__ = ["ColumnProblem", "MalformedRow", "FailureGroup", "ValidationReport", "check_columns", "validate"]

_COUNTS = (
    "result_rows",
    "successful_rows",
    "null_status_rows",
    "null_embedding_rows",
    "wrong_length_rows",
    "null_value_rows",
    "nan_value_rows",
    "duplicate_rows",
    "other_space_rows",
)


@dataclass(frozen=True)
class ColumnProblem:
    """A column that is present with the wrong type or mode."""

    name: str
    expected: str
    found: str


@dataclass(frozen=True)
class MalformedRow:
    """An example of a row that fails validation: a malformed embedding, or a repeated object."""

    uri: str | None
    problem: str


@dataclass(frozen=True)
class FailureGroup:
    """Failed rows sharing one status; ``retryable`` when the status has the retryable prefix."""

    status: str
    retryable: bool
    rows: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {"status": self.status, "retryable": self.retryable, "rows": self.rows}


@dataclass
class ValidationReport:
    """What validation found; ``ok`` is False when the schema is wrong or any row fails a check."""

    table: str
    exists: bool = True
    scope: str = "the whole table"
    dimension: int = 0
    endpoint: str = ""
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
    null_status_rows: int = 0
    duplicate_rows: int = 0
    other_space_rows: int = 0
    examples: list[MalformedRow] = field(default_factory=list)
    failures: tuple[FailureGroup, ...] = ()

    @property
    def malformed_rows(self) -> int:
        """Successful rows whose embedding is unusable."""
        return self.null_embedding_rows + self.wrong_length_rows + self.null_value_rows + self.nan_value_rows

    @property
    def schema_ok(self) -> bool:
        """True when the table exists and no expected column is missing or mistyped."""
        return self.exists and not self.missing_columns and not self.mistyped_columns

    @property
    def ok(self) -> bool:
        """True when the schema is right and every row is usable, current and of one embedding space."""
        return (
            self.schema_ok
            and self.malformed_rows == 0
            and self.null_status_rows == 0
            and self.duplicate_rows == 0
            and self.other_space_rows == 0
        )

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
            out.append(missing_results_table(self.table).rstrip("."))
        if self.missing_columns:
            out.append("missing column(s): " + ", ".join(self.missing_columns))
        out += [f"column {p.name}: {p.found}, expected {p.expected}" for p in self.mistyped_columns]
        for count, what in (
            (self.null_embedding_rows, "no embedding"),
            (self.wrong_length_rows, f"an embedding whose length is not {self.dimension}"),
            (self.null_value_rows, "NULL values in the embedding"),
            (self.nan_value_rows, "NaN values in the embedding"),
        ):
            if count:
                out.append(f"{count:,} successful row(s) with {what}")
        if self.null_status_rows:
            out.append(f"{self.null_status_rows:,} row(s) with a NULL status")
        if self.duplicate_rows:
            out.append(
                f"{self.duplicate_rows:,} row(s) repeat an object (or a video segment): a run that stopped before"
                " compacting left them; `python -m embed run` removes the older rows"
            )
        if self.other_space_rows:
            out.append(
                f"{self.other_space_rows:,} row(s) were embedded with another endpoint or dimension than"
                f" {self.endpoint} ({self.dimension}): their vectors cannot be compared with the others"
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form for --json."""
        return {
            "ok": self.ok,
            "table": self.table,
            "scope": self.scope,
            "exists": self.exists,
            "function": self.function,
            "endpoint": self.endpoint,
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
            "duplicate_rows": self.duplicate_rows,
            "other_space_rows": self.other_space_rows,
            "examples": [{"uri": e.uri, "problem": e.problem} for e in self.examples],
            "failures": [f.to_dict() for f in self.failures],
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


def validate(
    table: str,
    columns: tuple[Column, ...] | None,
    counts: Mapping[str, Any] | None,
    expected: ExpectedSchema,
    *,
    endpoint: str = "",
    failures: tuple[FailureGroup, ...] = (),
    scope: str = "the whole table",
) -> ValidationReport:
    """The report for results table ``table``: its ``columns`` and the one row of ``validate_results``."""
    report = ValidationReport(
        table=table,
        scope=scope,
        dimension=expected.dimension,
        endpoint=endpoint,
        function=expected.result.function,
        failures=failures,
    )
    if columns is None:
        report.exists = False
        return report
    report.missing_columns, report.mistyped_columns, report.extra_columns = check_columns(columns, expected)
    if counts is None:
        return report
    values = {name: int(counts.get(name) or 0) for name in _COUNTS}
    report.rows = values.pop("result_rows")
    for name, value in values.items():
        setattr(report, name, value)
    report.examples = [MalformedRow(e.get("uri"), str(e.get("problem"))) for e in counts.get("examples") or []]
    report.examples += [MalformedRow(uri, "repeated object") for uri in counts.get("duplicate_examples") or []]
    return report
