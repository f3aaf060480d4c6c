"""A run: make sure the model exists, embed new objects in batches, retry retryable failures, validate.

The pipeline holds an :class:`~embed.engines.base.Engine` and does not know which one;
every statement comes from :mod:`embed.sql`. Waiting (``sleep``) and time (``clock``)
are injectable so the retry and IAM-propagation logic can be driven by tests.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from embed import sql
from embed.engines.base import Engine, QueryResult, StatementError
from embed.errors import EmbedError
from embed.schema import ExpectedSchema, expected_schema
from embed.settings import Settings
from embed.validate import StatusCount, ValidationReport, check_columns, validate

__all__ = [
    "DEFAULT_IAM_WAIT",
    "DryRunCheck",
    "Pipeline",
    "PipelineEvent",
    "RunReport",
    "StatusCounts",
    "read_failures",
    "read_status_counts",
    "validate_results",
]

DEFAULT_IAM_WAIT = 600.0  # seconds; IAM grants usually propagate in 2 minutes, sometimes 7 or more
_IAM_FIRST_DELAY = 10.0
_IAM_MAX_DELAY = 60.0
_RETRY_FIRST_DELAY = 15.0
_RETRY_MAX_DELAY = 300.0
# Extra embed batches allowed beyond what the pending count needs (objects may arrive mid-run).
_BATCH_SLACK = 10


@dataclass(frozen=True)
class PipelineEvent:
    """Progress of a run: a ``message``, the ``start`` of embedding ``total`` objects, or an ``advance``."""

    kind: str
    message: str = ""
    total: Optional[int] = None
    advance: int = 0


@dataclass(frozen=True)
class StatusCounts:
    """Objects of the object table by the state of their current version's embedding."""

    objects: int = 0
    embedded: int = 0
    failed_retryable: int = 0
    failed_permanent: int = 0
    pending: int = 0

    def to_dict(self) -> dict[str, int]:
        """A JSON-ready form."""
        return {
            "objects": self.objects,
            "embedded": self.embedded,
            "failed_retryable": self.failed_retryable,
            "failed_permanent": self.failed_permanent,
            "pending": self.pending,
        }


@dataclass(frozen=True)
class DryRunCheck:
    """One statement checked by a dry run: bytes it would process, or why it was not checked or failed."""

    name: str
    bytes_processed: Optional[int] = None
    skipped: Optional[str] = None
    error: Optional[str] = None


@dataclass
class RunReport:
    """What a run did and found."""

    model_action: str = ""
    rows_merged: int = 0
    batches: int = 0
    retries: int = 0
    retried_rows: int = 0
    counts: StatusCounts = field(default_factory=StatusCounts)
    failures: tuple[StatusCount, ...] = ()
    elapsed: float = 0.0
    embedding_seconds: float = 0.0
    messages: list[str] = field(default_factory=list)
    validation: Optional[ValidationReport] = None
    dry_run: Optional[tuple[DryRunCheck, ...]] = None

    @property
    def embedded(self) -> int:
        """Objects whose current version has an embedding."""
        return self.counts.embedded

    @property
    def images_per_second(self) -> Optional[float]:
        """Objects embedded (merged, retries included) per second of embedding statements; None if none ran."""
        rows = self.rows_merged + self.retried_rows
        if rows == 0 or self.embedding_seconds <= 0:
            return None
        return rows / self.embedding_seconds

    @property
    def ok(self) -> bool:
        """True when validation passed (a dry run: when every checked statement passed)."""
        if self.dry_run is not None:
            return all(check.error is None for check in self.dry_run)
        return self.validation is not None and self.validation.ok

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form for --json."""
        out: dict[str, Any] = {"ok": self.ok, "elapsed_seconds": round(self.elapsed, 3), "messages": self.messages}
        if self.dry_run is not None:
            out["dry_run"] = [
                {"name": c.name, "bytes_processed": c.bytes_processed, "skipped": c.skipped, "error": c.error}
                for c in self.dry_run
            ]
            return out
        out |= {
            "model": self.model_action,
            "embedded": self.embedded,
            "rows_merged": self.rows_merged,
            "batches": self.batches,
            "retries": self.retries,
            "retried_rows": self.retried_rows,
            "embedding_seconds": round(self.embedding_seconds, 3),
            "images_per_second": None if self.images_per_second is None else round(self.images_per_second, 1),
            "counts": self.counts.to_dict(),
            "failures": [{"status": f.status, "retryable": f.retryable, "rows": f.rows} for f in self.failures],
            "validation": self.validation.to_dict() if self.validation is not None else None,
        }
        return out


def _refused(name: str, error: StatementError) -> EmbedError:
    """The EmbedError for a statement the engine refused for a reason retrying cannot fix."""
    return EmbedError(f"{name} failed: {error}", 2)


def read_status_counts(engine: Engine, settings: Settings) -> StatusCounts:
    """Counts of embedded, failed and pending objects (runs sql.status_counts)."""
    try:
        table = engine.rows(sql.status_counts(settings))
    except StatementError as exc:
        raise _refused("status_counts", exc) from None
    rows = table.to_pylist()
    if not rows:
        return StatusCounts()
    row = rows[0]
    return StatusCounts(**{name: int(row.get(name) or 0) for name in StatusCounts.__dataclass_fields__})


def read_failures(engine: Engine, settings: Settings) -> tuple[StatusCount, ...]:
    """Failed result rows grouped by status (runs sql.failure_summary)."""
    try:
        table = engine.rows(sql.failure_summary(settings))
    except StatementError as exc:
        raise _refused("failure_summary", exc) from None
    return tuple(
        StatusCount(str(r["status"]), bool(r["retryable"]), int(r["result_rows"] or 0)) for r in table.to_pylist()
    )


def validate_results(
    engine: Engine, settings: Settings, expected: Optional[ExpectedSchema] = None
) -> ValidationReport:
    """Validate the results table: its schema, and its rows streamed by sql.read_results."""
    expected = expected or expected_schema(settings)
    try:
        columns = engine.schema(settings.results_table)
        rows = engine.iter_rows(sql.read_results(settings)) if columns is not None else None
        return validate(str(settings.results_table), columns, rows, expected)
    except StatementError as exc:
        raise _refused("read_results", exc) from None


def _same_endpoint(existing: str, configured: str) -> bool:
    """True when a model's endpoint (a name, a full Vertex URL, or local/<name>) names ``configured``."""
    existing = existing.rstrip("/")
    return existing == configured or existing.rsplit("/", 1)[-1] == configured


class Pipeline:
    """One run of the kit against an engine."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        progress: Optional[Callable[[PipelineEvent], None]] = None,
        iam_wait: float = DEFAULT_IAM_WAIT,
        retry_delay: float = _RETRY_FIRST_DELAY,
    ) -> None:
        if iam_wait < 0:
            raise EmbedError(f"--iam-wait must be 0 or more seconds, got {iam_wait}.", 2)
        self.engine = engine
        self.settings = settings
        self.sleep = sleep
        self.clock = clock
        self.progress = progress or (lambda event: None)
        self.iam_wait = iam_wait
        self.retry_delay = retry_delay
        self.report = RunReport()

    def say(self, message: str) -> None:
        """Record ``message`` in the report and pass it to the progress callback."""
        self.report.messages.append(message)
        self.progress(PipelineEvent("message", message))

    # --- statements ----------------------------------------------------------------

    def _execute(self, name: str, statement: str, *, wait_for_iam: bool = False) -> QueryResult:
        """Run a statement; with ``wait_for_iam``, retry IAM-propagation failures for up to iam_wait seconds."""
        deadline = self.clock() + self.iam_wait
        delay = _IAM_FIRST_DELAY
        while True:
            try:
                return self.engine.execute(statement)
            except StatementError as exc:
                if not (wait_for_iam and exc.propagating):
                    raise _refused(name, exc) from None
                remaining = deadline - self.clock()
                if remaining <= 0:
                    raise self._iam_error(name, exc) from None
                pause = min(delay, remaining)
                self.say(
                    f"{name}: the connection's service account cannot use the endpoint yet ({exc}). IAM grants"
                    f" take minutes to propagate; retrying in {pause:.0f}s ({remaining:.0f}s left of --iam-wait)."
                )
                self.sleep(pause)
                delay = min(delay * 2, _IAM_MAX_DELAY)

    def _iam_error(self, name: str, exc: StatementError) -> EmbedError:
        """The error for an IAM grant that did not propagate within iam_wait."""
        s = self.settings
        return EmbedError(
            f"{name} still fails after waiting {self.iam_wait:.0f}s for IAM: {exc}. Grant roles/aiplatform.user to"
            f" serviceAccount:{s.connection_service_account} in {s.project_id} (and roles/storage.objectViewer on"
            " the bucket), or wait: IAM can take 7 minutes. Then run again, or raise --iam-wait.",
            2,
        )

    # --- steps ---------------------------------------------------------------------

    def ensure_model(self) -> str:
        """Create the model if absent, replace it if its endpoint differs; return what was done."""
        s = self.settings
        try:
            existing = self.engine.model_endpoint(s.model)
        except StatementError as exc:
            raise _refused("reading the model", exc) from None
        if existing is None:
            self._execute("create_model", sql.create_model(s), wait_for_iam=True)
            self.say(f"created model {s.model} (endpoint {s.endpoint})")
            return "created"
        if _same_endpoint(existing, s.endpoint):
            return "kept"
        if not existing:
            raise EmbedError(
                f"model {s.model} exists but is not a remote model: the kit would replace it with the"
                f" {s.endpoint} remote model. Point `model` (--model) at another name, or drop that model first.",
                2,
            )
        self._execute("replace_model", sql.replace_model(s), wait_for_iam=True)
        self.say(f"replaced model {s.model}: its endpoint was {existing!r}, the settings say {s.endpoint!r}")
        return "replaced"

    def ensure_results_table(self) -> None:
        """Create the results table if it does not exist."""
        try:
            columns = self.engine.schema(self.settings.results_table)
        except StatementError as exc:
            raise _refused("reading the results table", exc) from None
        if columns is None:
            self._execute("create_results_table", sql.create_results_table(self.settings))
            self.say(f"created results table {self.settings.results_table}")
            return
        # Embedding into a table the MERGE cannot write would spend model calls and then fail.
        missing, mistyped, _ = check_columns(columns, expected_schema(self.settings))
        if missing or mistyped:
            problems = ([f"missing column(s) {', '.join(missing)}"] if missing else []) + [
                f"column {p.name} is {p.found}, expected {p.expected}" for p in mistyped
            ]
            raise EmbedError(
                f"results table {self.settings.results_table} does not have the schema the kit writes: "
                + "; ".join(problems)
                + ". Nothing was embedded. Check the settings (e.g. --no-flatten-json-output) match the table,"
                " or pass another --results-table; `python -m embed validate` shows the table's state.",
                2,
            )

    def _merge(self, name: str, statement: str) -> int:
        """Run one embedding MERGE (and prune stale video segments); return rows it merged."""
        started = self.clock()
        merged = self._execute(name, statement, wait_for_iam=True).affected_rows or 0
        self.report.embedding_seconds += self.clock() - started
        if merged and self.settings.is_video:
            self._execute("prune_superseded", sql.prune_superseded(self.settings))
        return merged

    def embed_new(self, pending: int) -> None:
        """Run embed_batch until a batch merges no rows."""
        s, r = self.settings, self.report
        limit = math.ceil(pending / s.batch_size) + _BATCH_SLACK
        self.progress(PipelineEvent("start", total=pending))
        statement = sql.embed_batch(s)
        while True:
            if r.batches >= limit:
                self.say(
                    f"stopped after {r.batches} batches: more than the {pending:,} pending objects needed;"
                    " objects may be arriving while the run goes on. Run again to continue."
                )
                return
            merged = self._merge("embed_batch", statement)
            r.batches += 1
            if merged == 0:
                return
            r.rows_merged += merged
            self.progress(PipelineEvent("advance", advance=min(merged, s.batch_size)))

    def retry_failed(self, counts: StatusCounts) -> StatusCounts:
        """Retry objects with retryable statuses, with backoff, until none remain, no progress, or max_retries."""
        s, r = self.settings, self.report
        remaining = counts.failed_retryable
        attempt = 0
        while remaining > 0:
            if attempt >= s.max_retries:
                self.say(
                    f"{remaining:,} object(s) still have retryable errors after {attempt} retries"
                    " (--max-retries); they are kept, and the next run retries them."
                )
                break
            delay = min(self.retry_delay * 2**attempt, _RETRY_MAX_DELAY)
            attempt += 1
            self.say(
                f"{remaining:,} object(s) failed with retryable errors; retry {attempt} of {s.max_retries}"
                f" in {delay:.0f}s"
            )
            self.sleep(delay)
            statement = sql.retry_batch(s)
            for _ in range(math.ceil(remaining / s.batch_size)):
                merged = self._merge("retry_batch", statement)
                r.retried_rows += merged
                if merged == 0:
                    break
            r.retries = attempt
            counts = read_status_counts(self.engine, s)
            if counts.failed_retryable >= remaining:
                self.say(
                    f"retry {attempt} made no progress ({counts.failed_retryable:,} object(s) still have"
                    " retryable errors); stopping retries. The rows are kept; run again later."
                )
                break
            remaining = counts.failed_retryable
        return counts

    # --- runs ----------------------------------------------------------------------

    def run(self) -> RunReport:
        """Ensure the model and results table, embed, retry, count, and validate."""
        started = self.clock()
        r = self.report
        r.model_action = self.ensure_model()
        self.ensure_results_table()
        before = read_status_counts(self.engine, self.settings)
        self.embed_new(before.pending)
        counts = read_status_counts(self.engine, self.settings)
        r.counts = self.retry_failed(counts)
        r.failures = read_failures(self.engine, self.settings)
        permanent = [f for f in r.failures if not f.retryable]
        if r.rows_merged + r.retried_rows == 0:
            self.say("nothing new to embed: every object's current version already has a result (0 embedded).")
        elif r.images_per_second is not None:
            self.say(
                f"embedding statements processed {r.rows_merged + r.retried_rows:,} object(s) in"
                f" {r.embedding_seconds:.1f}s: {r.images_per_second:.1f} images/s"
            )
        if permanent:
            self.say(
                f"{sum(f.rows for f in permanent):,} row(s) failed for reasons retrying cannot fix; they are kept"
                " in the results table with their status (see failures)."
            )
        r.validation = validate_results(self.engine, self.settings)
        r.elapsed = self.clock() - started
        return r

    def dry_run(self) -> RunReport:
        """Dry-run every statement a run can issue; nothing is created, changed or spent."""
        started = self.clock()
        s = self.settings
        try:
            model_exists = self.engine.model_endpoint(s.model) is not None
            table_exists = self.engine.schema(s.results_table) is not None
        except StatementError as exc:
            raise _refused("reading the model and results table", exc) from None
        checks = []
        for statement in sql.run_statements(s):
            reason = None
            if statement.name not in ("create_model", "replace_model", "create_results_table") and not table_exists:
                reason = "needs the results table, which the run creates first"
            elif statement.name in ("embed_batch", "retry_batch") and not model_exists:
                reason = "needs the model, which the run creates first"
            if reason is not None:
                checks.append(DryRunCheck(statement.name, skipped=reason))
                continue
            try:
                result = self.engine.execute(statement.sql, dry_run=True)
            except StatementError as exc:
                checks.append(DryRunCheck(statement.name, error=str(exc)))
                continue
            checks.append(DryRunCheck(statement.name, bytes_processed=result.bytes_processed))
        self.report.dry_run = tuple(checks)
        self.report.elapsed = self.clock() - started
        return self.report
