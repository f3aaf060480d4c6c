"""A run: check the results table's embedding space, make sure the model exists, embed what is new, retry, validate.

The pipeline holds an :class:`~embed.engines.base.Engine` and does not know which one; every
statement comes from :mod:`embed.sql`. Waiting (``sleep``) and time (``clock``, ``now``) are
injectable so the retry and IAM-propagation logic can be driven by tests.

What a run bills, by BigQuery's on-demand rules (see the README's "What a run costs"):

- one key scan picks the pending objects (new or changed, or never embedded in this space);
- each batch appends (INSERT, which bills only what it reads: the object table's metadata);
  batches are sized so that a batch's fixed cost, its object-table scan of at least 10 MB,
  stays under a quarter of the bytes of the rows it writes;
- each retry round is one key scan and its batches, each retryable object sent once;
- at the end, one key scan counts states; superseded rows (changed objects, retried rows)
  are deleted in at most one statement, only when there are some; and the rows the run wrote
  are validated by one aggregate query that reads only today's partitions.

A re-run with nothing new reads key columns only, never an embedding.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from embed import sql
from embed.engines import new_run_id
from embed.engines.base import Column, Engine, QueryResult, Statement, StatementError
from embed.errors import EmbedError, refused
from embed.identifiers import endpoint_name
from embed.reports import DryRunCheck, ObjectCounts, PipelineEvent, RunReport, StatementRun, StatusReport
from embed.schema import dimension_for, expected_schema
from embed.settings import MAX_BATCH_SIZE, Settings
from embed.validate import FailureGroup, ValidationReport, validate

__all__ = [
    "DEFAULT_IAM_WAIT",
    "FIXED_COST_SHARE",
    "MIN_BILLED_BYTES",
    "Pipeline",
    "auto_batch_size",
    "batches",
    "new_run_id",
    "read_failures",
    "read_status",
    "read_status_counts",
    "row_bytes",
    "validate_results",
]

DEFAULT_IAM_WAIT = 600.0  # seconds; IAM grants usually propagate in 2 minutes, sometimes 7 or more
_IAM_FIRST_DELAY = 10.0
_IAM_MAX_DELAY = 60.0
_RETRY_MAX_DELAY = 300.0
# BigQuery bills at least 10 MB for each table a query references.
MIN_BILLED_BYTES = 10 * 2**20
# The uris of one batch travel in its jobs.insert request, which BigQuery caps at 10 MB.
MAX_PARAMETER_BYTES = 8 * 2**20
# Auto batch size: a batch's fixed cost (its object-table scan) at most this share of the bytes it writes.
FIXED_COST_SHARE = 0.25
# The run's validation reads rows embedded since its start less this margin: the server's clock and ours may differ.
_CLOCK_MARGIN = dt.timedelta(hours=1)


def batches(uris: Sequence[str], size: int, max_bytes: int = MAX_PARAMETER_BYTES) -> Iterator[list[str]]:
    """``uris`` in order, ``size`` at a time, a batch cut early where its uris would pass ``max_bytes``."""
    chunk: list[str] = []
    held = 0
    for uri in uris:
        weight = len(uri.encode("utf-8")) + 16  # the uri and its JSON quoting in the request
        if chunk and (len(chunk) == size or held + weight > max_bytes):
            yield chunk
            chunk, held = [], 0
        chunk.append(uri)
        held += weight
    if chunk:
        yield chunk


def row_bytes(settings: Settings) -> int:
    """About how many bytes one result row weighs, by BigQuery's logical sizes (its embedding dominates)."""
    dimension = dimension_for(settings.endpoint, settings.output_dimensionality)
    # FLOAT64 elements are 8 bytes; a JSON vector is text, about 20 bytes an element.
    per_value = 8 if settings.flatten_json_output else 20
    return dimension * per_value + 256


def auto_batch_size(pending: int, fixed_bytes: int, row: int) -> int:
    """Objects per batch so one batch's ``fixed_bytes`` are at most FIXED_COST_SHARE of its rows' bytes.

    At most MAX_BATCH_SIZE (the rows-per-job quota); the batches are then evened out, never below
    that size (1,500 pending objects at a size of 1,000 make one batch, not 1,000 and 500).
    """
    if pending <= 0:
        return 1
    fixed = max(fixed_bytes, MIN_BILLED_BYTES)
    size = max(1, math.ceil(fixed / (FIXED_COST_SHARE * row)))
    batches = max(1, pending // size)
    if math.ceil(pending / batches) > MAX_BATCH_SIZE:
        batches = math.ceil(pending / MAX_BATCH_SIZE)
    return math.ceil(pending / batches)


def _first_row(result: QueryResult) -> dict[str, Any]:
    """The one row of an aggregate query (empty when there is none)."""
    rows = result.records()
    return rows[0] if rows else {}


def _counts(result: QueryResult) -> ObjectCounts:
    """The row of sql.status_counts."""
    row = _first_row(result)
    return ObjectCounts(**{name: int(row.get(name) or 0) for name in ObjectCounts.__dataclass_fields__})


def read_status_counts(engine: Engine, settings: Settings) -> ObjectCounts:
    """Counts of embedded, failed, pending and deleted objects (runs sql.status_counts)."""
    try:
        return _counts(engine.execute(sql.status_counts(settings)))
    except StatementError as exc:
        raise refused("status_counts", exc) from None


def read_status(engine: Engine, settings: Settings) -> StatusReport:
    """Objects by state and, when some failed, failed rows by status (for `embed status`)."""
    if engine.schema(settings.results_table) is None:
        return StatusReport(str(settings.results_table))
    counts = read_status_counts(engine, settings)
    failed = counts.failed
    return StatusReport(str(settings.results_table), counts, read_failures(engine, settings) if failed else ())


def _failures(result: QueryResult) -> tuple[FailureGroup, ...]:
    """The rows of sql.failure_summary."""
    return tuple(
        FailureGroup(str(r["status"]), bool(r["retryable"]), int(r["result_rows"] or 0)) for r in result.records()
    )


def read_failures(engine: Engine, settings: Settings) -> tuple[FailureGroup, ...]:
    """Current failed result rows grouped by status (runs sql.failure_summary)."""
    try:
        return _failures(engine.execute(sql.failure_summary(settings)))
    except StatementError as exc:
        raise refused("failure_summary", exc) from None


def validate_results(engine: Engine, settings: Settings) -> ValidationReport:
    """Validate the whole results table: its schema, then its rows with one aggregate query."""
    expected = expected_schema(settings)
    table = str(settings.results_table)
    try:
        columns = engine.schema(settings.results_table)
        report = validate(table, columns, None, expected, endpoint=settings.endpoint)
        if not report.schema_ok:  # the aggregate query would not even run
            return report
        counts = _first_row(engine.execute(sql.validate_results(settings)))
        failures = _failures(engine.execute(sql.failure_summary(settings)))
    except StatementError as exc:
        raise refused("validate_results", exc) from None
    return validate(table, columns, counts, expected, endpoint=settings.endpoint, failures=failures)


class Pipeline:
    """One run of the kit against an engine."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        run_id: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
        progress: Callable[[PipelineEvent], None] | None = None,
        iam_wait: float | None = None,
        retry_delay: float | None = None,
        re_embed: bool = False,
        prune_deleted: bool = False,
    ) -> None:
        iam_wait = DEFAULT_IAM_WAIT if iam_wait is None else iam_wait
        retry_delay = engine.retry_delay if retry_delay is None else retry_delay
        if iam_wait < 0:
            raise EmbedError(f"--iam-wait must be 0 or more seconds, got {iam_wait}.")
        if retry_delay < 0:
            raise EmbedError(f"the retry delay must be 0 or more seconds, got {retry_delay}.")
        self.engine = engine
        self.settings = settings
        self.sleep = sleep
        self.clock = clock
        self.now = now
        self.progress = progress or (lambda event: None)
        self.iam_wait = iam_wait
        self.retry_delay = retry_delay
        self.re_embed = re_embed
        self.prune_deleted = prune_deleted
        self.dimension = dimension_for(settings.endpoint, settings.output_dimensionality)
        self._columns: tuple[Column, ...] | None = None  # the results table's, when it existed before the run
        self.report = RunReport(run_id=run_id or new_run_id(), billing=engine.billing)

    def say(self, message: str) -> None:
        """Record ``message`` in the report and pass it to the progress callback."""
        self.report.messages.append(message)
        self.progress(PipelineEvent("message", message))

    # --- statements ----------------------------------------------------------------

    def _execute(self, statement: Statement) -> QueryResult:
        """Run a statement and record its job and bytes; wait out IAM propagation where the statement can hit it.

        A statement that failed because a grant has not propagated yet was refused before it did
        anything (no model call was made), so running it again is safe.
        """
        wait_for_iam = statement.uses_connection
        deadline = self.clock() + self.iam_wait
        delay = _IAM_FIRST_DELAY
        while True:
            try:
                result = self.engine.execute(statement)
                break
            except StatementError as exc:
                if not (wait_for_iam and exc.propagating):
                    raise refused(statement.name, exc) from None
                remaining = deadline - self.clock()
                if remaining <= 0:
                    raise self._iam_error(statement.name, exc) from None
                pause = min(delay, remaining)
                self.say(
                    f"{statement.name}: the connection's service account cannot read the objects or use the"
                    f" endpoint yet ({exc}). IAM grants take minutes to propagate; retrying in {pause:.0f}s"
                    f" ({remaining:.0f}s left of --iam-wait)."
                )
                self.sleep(pause)
                delay = min(delay * 2, _IAM_MAX_DELAY)
        self.report.statements.append(
            StatementRun(statement.name, result.job_id, result.bytes_billed, result.model_rows)
        )
        return result

    def _iam_error(self, name: str, exc: StatementError) -> EmbedError:
        """The error for an IAM grant that did not propagate within iam_wait."""
        s = self.settings
        return EmbedError(
            f"{name} still fails after waiting {self.iam_wait:.0f}s for IAM: {exc}. Grant roles/aiplatform.user to"
            f" serviceAccount:{s.connection_service_account} in {s.project_id} (and roles/storage.objectViewer on"
            " the bucket), or wait: IAM can take 7 minutes. Then run again, or raise --iam-wait."
        )

    # --- checks before any model call ------------------------------------------------

    def check_other_runs(self) -> None:
        """Refuse while another run's jobs are writing to the same results table."""
        table = self.settings.results_table
        try:
            jobs = self.engine.running_jobs(table)
        except StatementError as exc:
            raise refused("listing running jobs", exc) from None
        if jobs:
            shown = ", ".join(jobs[:5]) + (f" and {len(jobs) - 5} more" if len(jobs) > 5 else "")
            raise EmbedError(
                f"another embed run is writing to {table}: job(s) {shown} still running. Two runs would embed"
                " (and pay for) the same objects. Wait for them to finish (`bq wait JOB_ID`) or cancel them"
                " (`bq cancel JOB_ID`), then run again."
            )

    def ensure_results_table(self) -> None:
        """Create the results table if missing; refuse one of another shape. Keeps an existing one's columns."""
        try:
            columns = self.engine.schema(self.settings.results_table)
        except StatementError as exc:
            raise refused("reading the results table", exc) from None
        expected = expected_schema(self.settings)
        if columns is None:
            self._execute(sql.create_results_table(self.settings))
            self.say(f"created results table {self.settings.results_table}")
            return
        # Embedding into a table the INSERT cannot write would spend model calls and then fail.
        report = validate(str(self.settings.results_table), columns, None, expected)
        if not report.schema_ok:
            raise EmbedError(
                f"results table {self.settings.results_table} does not have the schema the kit writes: "
                + "; ".join(report.problems())
                + ". Nothing was embedded. Check the settings (e.g. --no-flatten-json-output) match the table,"
                " or pass another --results-table; `python -m embed validate` shows the table's state."
            )
        self._columns = columns

    def check_space(self, counts: ObjectCounts) -> None:
        """Refuse to add embeddings of another endpoint or dimension than the table holds (unless re-embedding)."""
        if not counts.other_space_rows:
            return
        s = self.settings
        others = [
            r
            for r in self._execute(sql.embedding_spaces(s)).records()
            if (r["endpoint"], int(r["dimension"])) != (s.endpoint, self.dimension)
        ]
        held = "; ".join(f"{int(r['result_rows']):,} row(s) of {r['endpoint']} ({r['dimension']}-d)" for r in others)
        if self.re_embed:
            self.say(
                f"--re-embed: {s.results_table} holds {held}. Each object is embedded again with {s.endpoint}"
                f" ({self.dimension}-d); its older rows are removed only once its new row is written."
            )
            return
        back = "set the endpoint and --output-dimensionality back"
        if len(others) == 1:  # name the flags that select the table's space
            endpoint, dimension = others[0]["endpoint"], int(others[0]["dimension"])
            flags = [f"--endpoint {endpoint}"] if endpoint != s.endpoint else []
            flags += [f"--output-dimensionality {dimension}"] if dimension != self.dimension else []
            back = f"keep the table's space ({' '.join(flags)})"
        raise EmbedError(
            f"{s.results_table} holds {held}, but the settings embed with {s.endpoint} ({self.dimension}-d):"
            " vectors of two models or lengths cannot be compared, so nothing was embedded. Pass another"
            f" --results-table for the new embeddings, or {back}, or run with --re-embed to replace every"
            " embedding (the old rows are kept until their replacements are written)."
        )

    def _existing_model(self) -> str | None:
        """The endpoint of the model the settings name (None: no model; "": not a remote model)."""
        try:
            return self.engine.model_endpoint(self.settings.model)
        except StatementError as exc:
            raise refused("reading the model", exc) from None

    def _model_statement(self, existing: str | None) -> Statement | None:
        """The statement that makes the settings' model from ``existing``: create, replace, or none."""
        s = self.settings
        if existing is None:
            return sql.create_model(s)
        if endpoint_name(existing) == endpoint_name(s.endpoint):
            return None
        if not existing:
            raise EmbedError(
                f"model {s.model} exists but is not a remote model: the kit would replace it with the"
                f" {s.endpoint} remote model. Point `model` (--model) at another name, or drop that model first."
            )
        return sql.replace_model(s)

    def ensure_model(self) -> str:
        """Create the model if absent, replace it if its endpoint differs; return what was done."""
        s = self.settings
        existing = self._existing_model()
        statement = self._model_statement(existing)
        if statement is None:
            return "kept"
        self._execute(statement)
        if existing is None:
            self.say(f"created model {s.model} (endpoint {s.endpoint})")
            return "created"
        self.say(f"replaced model {s.model}: its endpoint was {existing!r}, the settings say {s.endpoint!r}")
        return "replaced"

    # --- embedding -----------------------------------------------------------------

    def _batch_size(self, pending: int) -> int:
        """--batch-size, or the auto size for ``pending`` objects, priced by a dry run of one batch."""
        if self.settings.batch_size is not None:
            return self.settings.batch_size
        fixed = 0
        try:
            checked = self.engine.execute(sql.embed_batch(self.settings), dry_run=True)
            fixed = checked.billed or 0
        except StatementError:
            pass  # the run's first batch reports the real error; size for the 10 MB minimum meanwhile
        return auto_batch_size(pending, fixed, row_bytes(self.settings))

    def _embed(self, uris: Sequence[str], prior: Sequence[dict[str, Any]] = ()) -> int:
        """Embed ``uris`` in batches, each object sent once (``prior``: their earlier attempts); return rows written."""
        r = self.report
        if not r.batch_size:
            r.batch_size = self._batch_size(len(uris))
        statement = sql.embed_batch(self.settings)
        attempts = {row["uri"]: row for row in prior}
        written = 0
        for chunk in batches(uris, r.batch_size):
            batch = statement.with_params(
                uris=chunk,
                prior_attempts=[
                    {"uri": u, "generation": attempts[u]["generation"], "attempts": attempts[u]["attempts"]}
                    for u in chunk
                    if u in attempts
                ],
                run_id=r.run_id,
            )
            started = self.clock()
            result = self._execute(batch)
            r.embedding_seconds += self.clock() - started
            r.batches += 1
            r.objects_sent += len(chunk)
            rows = result.affected_rows or 0
            written += rows
            r.rows_written += rows
            self.progress(PipelineEvent("advance", advance=len(chunk)))
        return written

    def embed_pending(self) -> int:
        """Embed every object pending in the settings' space, in batches; return how many were pending."""
        uris = [row["uri"] for row in self._execute(sql.pending_objects(self.settings)).records()]
        if uris:
            self.progress(PipelineEvent("start", total=len(uris)))
            self._embed(uris)
        return len(uris)

    def _retryable(self) -> list[dict[str, Any]]:
        """Objects whose current row has a retryable status, oldest attempt first."""
        return self._execute(sql.retryable_objects(self.settings)).records()

    def retry_failed(self) -> None:
        """Retry retryable objects in rounds with backoff, each object once a round, until none remain,
        a round makes no progress, or --max-retries rounds ran."""
        s, r = self.settings, self.report
        remaining = self._retryable()
        while remaining:
            if r.retries >= s.max_retries:
                self.say(
                    f"{len(remaining):,} object(s) still have retryable errors after {r.retries} retries"
                    " (--max-retries); they are kept, and the next run retries them."
                )
                return
            delay = min(self.retry_delay * 2**r.retries, _RETRY_MAX_DELAY)
            r.retries += 1
            if r.batches:  # something was just sent: give the endpoint time; older failures need no wait
                self.say(
                    f"{len(remaining):,} object(s) failed with retryable errors; retry {r.retries} of"
                    f" {s.max_retries} in {delay:.0f}s"
                )
                self.sleep(delay)
            else:
                self.say(f"{len(remaining):,} object(s) kept retryable errors from earlier runs; retrying them now")
            self.progress(PipelineEvent("start", total=len(remaining)))
            self._embed([row["uri"] for row in remaining], prior=remaining)
            r.retried_objects += len(remaining)
            after = self._retryable()
            if len(after) >= len(remaining):
                self.say(
                    f"retry {r.retries} made no progress ({len(after):,} object(s) still have retryable"
                    " errors); stopping retries. The rows are kept; run again later."
                )
                return
            remaining = after

    def counts(self) -> ObjectCounts:
        """Objects by state, and superseded and other-space rows (one key scan: sql.status_counts)."""
        return _counts(self._execute(sql.status_counts(self.settings)))

    def finish(self, counts: ObjectCounts) -> None:
        """Compact superseded rows (at most once), prune if asked, count failures, validate what was written."""
        s, r = self.settings, self.report
        if counts.superseded_rows:
            r.compacted_rows = self._execute(sql.compact_results(s)).affected_rows or 0
            counts = replace(counts, superseded_rows=0, other_space_rows=0)
            self.say(f"removed {r.compacted_rows:,} superseded row(s): each object keeps its newest result")
        if self.prune_deleted:
            if counts.deleted:
                r.pruned_rows = self._execute(sql.prune_deleted(s)).affected_rows or 0
                self.say(
                    f"--prune-deleted: removed {r.pruned_rows:,} row(s) of {counts.deleted:,} object(s)"
                    " no longer in the object table"
                )
                counts = replace(counts, deleted=0)
            else:
                self.say("--prune-deleted: no object was deleted; nothing to remove")
        elif counts.deleted:
            self.say(
                f"{counts.deleted:,} object(s) with results are no longer in the object table; their rows are kept"
                " (and never returned by `similar`). `python -m embed run --prune-deleted` removes them."
            )
        r.counts = counts
        if r.rows_written:
            if counts.failed:
                r.failures = _failures(self._execute(sql.failure_summary(s)))
            since = self._started_at - _CLOCK_MARGIN
            statement = sql.validate_results(s, scoped=True).with_params(since=since, run_id=r.run_id)
            row = _first_row(self._execute(statement))
            r.validation = validate(
                str(s.results_table),
                self._columns or self.engine.schema(s.results_table),
                row,
                expected_schema(s),
                endpoint=s.endpoint,
                failures=r.failures,
                scope=f"the {r.rows_written:,} row(s) this run wrote",
            )

    # --- runs ----------------------------------------------------------------------

    def run(self) -> RunReport:
        """Check, embed what is pending, retry, compact, and validate the rows written.

        A run that finds nothing pending, retryable or superseded issues one key scan and stops. Objects
        that arrive or change while it goes on are embedded by one more pass at the end.
        """
        started = self.clock()
        self._started_at = self.now()  # rows this run writes are embedded after this (see _CLOCK_MARGIN)
        r = self.report
        self.check_other_runs()
        self.ensure_results_table()
        counts = self.counts()
        self.check_space(counts)
        r.model_action = self.ensure_model()
        if counts.pending:
            self.embed_pending()
        if counts.failed_retryable or r.batches:
            self.retry_failed()
        if r.rows_written:
            counts = self.counts()
            if counts.pending:  # objects that arrived or changed while the run went on: one more pass
                self.say(f"{counts.pending:,} object(s) arrived or changed during the run; embedding them now")
                self.embed_pending()
                counts = self.counts()
        self.finish(counts)
        if r.objects_sent == 0:
            self.say("nothing new to embed: every object's current version already has a result (0 embedded).")
        elif r.images_per_second is not None:
            self.say(
                f"sent {r.objects_sent:,} object(s) to the model in {r.batches:,} batch(es) of up to"
                f" {r.batch_size:,} in {r.embedding_seconds:.1f}s: {r.images_per_second:.1f} images/s"
            )
        failed = r.counts.failed_permanent
        if failed:
            self.say(
                f"{failed:,} object(s) failed for reasons retrying cannot fix; they are kept in the results table"
                " with their status (`python -m embed failures` lists them)."
            )
        r.elapsed = self.clock() - started
        return r

    def dry_run(self) -> RunReport:
        """Check and price every statement a run can issue; nothing is created, changed or spent."""
        started = self.clock()
        s = self.settings
        existing = self._existing_model()
        needed = self._model_statement(existing)
        try:
            exists = {"model": existing is not None, "results_table": self.engine.schema(s.results_table) is not None}
        except StatementError as exc:
            raise refused("reading the results table", exc) from None
        checks = []
        for statement in sql.run_statements(s, pruning=self.prune_deleted):
            missing = sorted(what.replace("_", " ") for what in statement.requires if not exists[what])
            reason = None
            if statement.creates == "model" and statement != needed:
                reason = f"this run does not issue it (issued {statement.when})"
            elif missing:
                reason = f"needs the {' and the '.join(missing)}, which the run creates first"
            if reason is not None:
                checks.append(DryRunCheck(statement.name, skipped=reason))
                continue
            try:
                result = self.engine.execute(statement, dry_run=True)
            except StatementError as exc:
                checks.append(DryRunCheck(statement.name, error=str(exc)))
                continue
            checks.append(DryRunCheck(statement.name, bytes_billed=result.billed))
        self.report.dry_run = tuple(checks)
        self.report.elapsed = self.clock() - started
        return self.report
