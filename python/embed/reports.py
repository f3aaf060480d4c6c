"""What runs and commands report: progress events, object counts, the statements a run issued, its summary.

These are plain values: the pipeline fills them, and the CLI renders them (:mod:`embed.summary`)
or prints them as JSON (``to_dict``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from embed.errors import missing_results_table
from embed.validate import FailureGroup, ValidationReport

__all__ = ["DryRunCheck", "ObjectCounts", "PipelineEvent", "RunReport", "StatementRun", "StatusReport"]


@dataclass(frozen=True)
class PipelineEvent:
    """Progress of a run: a ``message``, the ``start`` of embedding ``total`` objects, or an ``advance``."""

    kind: str
    message: str = ""
    total: int | None = None
    advance: int = 0


@dataclass(frozen=True)
class ObjectCounts:
    """Objects of the object table by the state of their current version's embedding, and stale rows."""

    objects: int = 0
    embedded: int = 0
    failed_retryable: int = 0
    failed_permanent: int = 0
    pending: int = 0
    deleted: int = 0
    superseded_rows: int = 0
    other_space_rows: int = 0

    @property
    def failed(self) -> int:
        """Objects whose current version failed, retryable or not."""
        return self.failed_retryable + self.failed_permanent

    def to_dict(self) -> dict[str, int]:
        """A JSON-ready form."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class StatementRun:
    """One statement a run issued: its job, the bytes billed (or estimated) and the rows it sent to the model."""

    name: str
    job_id: str | None = None
    bytes_billed: int | None = None
    model_rows: int = 0


@dataclass(frozen=True)
class DryRunCheck:
    """One statement checked by a dry run: bytes it would bill, or why it was not checked or failed."""

    name: str
    bytes_billed: int | None = None
    skipped: str | None = None
    error: str | None = None


@dataclass
class RunReport:
    """What a run did and found."""

    run_id: str = ""
    model_action: str = ""
    batch_size: int = 0
    rows_written: int = 0
    objects_sent: int = 0
    batches: int = 0
    retries: int = 0
    retried_objects: int = 0
    compacted_rows: int = 0
    pruned_rows: int = 0
    counts: ObjectCounts = field(default_factory=ObjectCounts)
    failures: tuple[FailureGroup, ...] = ()
    elapsed: float = 0.0
    embedding_seconds: float = 0.0
    messages: list[str] = field(default_factory=list)
    statements: list[StatementRun] = field(default_factory=list)
    validation: ValidationReport | None = None
    dry_run: tuple[DryRunCheck, ...] | None = None
    billing: str = ""

    @property
    def embedded(self) -> int:
        """Objects whose current version has an embedding."""
        return self.counts.embedded

    @property
    def bytes_billed(self) -> int:
        """Bytes billed by every statement of the run (a dry run: that its statements would bill)."""
        if self.dry_run is not None:
            return sum(c.bytes_billed or 0 for c in self.dry_run)
        return sum(s.bytes_billed or 0 for s in self.statements)

    @property
    def job_ids(self) -> list[str]:
        """The jobs the run started, in order (none on the embedded engine)."""
        return [s.job_id for s in self.statements if s.job_id]

    @property
    def images_per_second(self) -> float | None:
        """Objects sent to the model per second of embedding statements; None if none ran."""
        if self.objects_sent == 0 or self.embedding_seconds <= 0:
            return None
        return self.objects_sent / self.embedding_seconds

    @property
    def ok(self) -> bool:
        """True when the rows the run wrote validated (a dry run: when every checked statement passed)."""
        if self.dry_run is not None:
            return all(check.error is None for check in self.dry_run)
        return self.validation is None or self.validation.ok

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form for --json."""
        out: dict[str, Any] = {
            "ok": self.ok,
            "run_id": self.run_id,
            "elapsed_seconds": round(self.elapsed, 3),
            "bytes_billed": self.bytes_billed,
            "billing": self.billing,
            "messages": self.messages,
        }
        if self.dry_run is not None:
            out["dry_run"] = [
                {"name": c.name, "bytes_billed": c.bytes_billed, "skipped": c.skipped, "error": c.error}
                for c in self.dry_run
            ]
            return out
        out |= {
            "model": self.model_action,
            "embedded": self.embedded,
            "batch_size": self.batch_size,
            "batches": self.batches,
            "objects_sent": self.objects_sent,
            "rows_written": self.rows_written,
            "retries": self.retries,
            "retried_objects": self.retried_objects,
            "compacted_rows": self.compacted_rows,
            "pruned_rows": self.pruned_rows,
            "embedding_seconds": round(self.embedding_seconds, 3),
            "images_per_second": None if self.images_per_second is None else round(self.images_per_second, 1),
            "counts": self.counts.to_dict(),
            "failures": [f.to_dict() for f in self.failures],
            "validation": self.validation.to_dict() if self.validation is not None else None,
            "jobs": [
                {"name": s.name, "job_id": s.job_id, "bytes_billed": s.bytes_billed, "model_rows": s.model_rows}
                for s in self.statements
            ],
        }
        return out


@dataclass(frozen=True)
class StatusReport:
    """What `embed status` found: the objects by state and the failed rows by status (None: no results table)."""

    table: str
    counts: ObjectCounts | None = None
    failures: tuple[FailureGroup, ...] = ()

    @property
    def message(self) -> str:
        """What to say when the results table does not exist yet."""
        return "" if self.counts is not None else missing_results_table(self.table)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form for --json."""
        out: dict[str, Any] = {
            "results_table_exists": self.counts is not None,
            "counts": None if self.counts is None else self.counts.to_dict(),
            "failures": [f.to_dict() for f in self.failures],
        }
        if self.counts is None:
            out["message"] = self.message
        return out
