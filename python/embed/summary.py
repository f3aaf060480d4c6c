"""What people see: a progress bar on stderr while a run goes on, and rich summary tables at the end."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import datetime as dt

    from rich.console import Console
    from rich.progress import Progress, TaskID
    from rich.table import Table

    from embed.doctor import CheckResult
    from embed.failures import FailedObjects
    from embed.reports import ObjectCounts, PipelineEvent, RunReport
    from embed.settings import Settings
    from embed.validate import FailureGroup, ValidationReport

__all__ = [
    "RunProgress",
    "console",
    "print_json",
    "render",
    "render_run",
    "show",
    "warn",
    "doctor_table",
    "failures_hint",
    "failures_table",
    "neighbours_table",
    "run_table",
    "status_table",
    "validation_table",
]


@functools.cache
def console(stderr: bool = False) -> Console:
    """The rich console on stdout (results) or stderr (messages, warnings and the progress bar: one, so they
    never overlap)."""
    from rich.console import Console

    return Console(stderr=stderr)


def warn(message: str) -> None:
    """Print a warning on stderr."""
    console(stderr=True).print(f"warning: {message}", style="yellow", markup=False, highlight=False, soft_wrap=True)


def print_json(data: object) -> None:
    """Write ``data`` as the only thing on stdout."""
    import json

    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def render(table_of: Callable[..., Table], *args: Any, **kwargs: Any) -> None:
    """Print on stdout the rich table ``table_of`` builds."""
    console().print(table_of(*args, **kwargs))


def show(result: Any, json_output: bool, table_of: Callable[..., Table], *args: Any) -> None:
    """Print ``result`` on stdout as JSON (its ``to_dict()``), or as the table ``table_of`` makes of it and ``args``."""
    if json_output:
        print_json(result.to_dict())
    else:
        render(table_of, result, *args)


def render_run(report: RunReport) -> None:
    """Print on stdout a run's tables: its statements, then the objects' states (unless a dry run), its validation."""
    render(run_table, report)
    if report.dry_run is None:
        render(status_table, report.counts, report.failures)
    if report.validation is not None:
        render(validation_table, report.validation, failures=False)  # the status table lists the failures


class RunProgress:
    """Shows pipeline events on stderr: messages as lines, embedding as a bar with count and ETA."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __call__(self, event: PipelineEvent) -> None:
        """Handle one event."""
        if event.kind == "message":
            self.console.print(event.message, markup=False, highlight=False)
        elif event.kind == "start" and event.total:
            self._start(event.total)
        elif event.kind == "advance" and self._progress is not None and self._task is not None:
            self._progress.advance(self._task, event.advance)

    def _start(self, total: int) -> None:
        """Open the bar for ``total`` objects (only on a terminal)."""
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.close()
        self._progress = Progress(
            TextColumn("embedding"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            disable=not self.console.is_terminal,
            transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task("embedding", total=total)

    def close(self) -> None:
        """Stop the bar if one is showing."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._task = None


def _table(title: str) -> Table:
    """A two-column table."""
    from rich.table import Table

    table = Table(title=title, show_header=False)
    table.add_column("")
    table.add_column("", justify="right")
    return table


def _failure_rows(table: Table, failures: tuple[FailureGroup, ...]) -> None:
    """Failed rows by status, marking retryable ones."""
    from rich.text import Text

    for f in failures:
        kind = "retryable" if f.retryable else "not retryable"
        table.add_row(Text(f"failed ({kind}): {f.status}"), f"{f.rows:,}")


def status_table(counts: ObjectCounts, failures: tuple[FailureGroup, ...] = ()) -> Table:
    """Objects by state, then failed rows by status."""
    table = _table("Objects")
    table.add_row("objects", f"{counts.objects:,}")
    table.add_row("embedded", f"{counts.embedded:,}")
    table.add_row("failed, retryable", f"{counts.failed_retryable:,}")
    table.add_row("failed, not retryable", f"{counts.failed_permanent:,}")
    table.add_row("pending", f"{counts.pending:,}")
    if counts.deleted:
        table.add_row("deleted (results kept; --prune-deleted removes them)", f"{counts.deleted:,}")
    if counts.superseded_rows:
        table.add_row("superseded rows (the next run removes them)", f"{counts.superseded_rows:,}")
    _failure_rows(table, failures)
    return table


def validation_table(report: ValidationReport, failures: bool = True) -> Table:
    """Validation outcome: counts, failed rows by status (unless ``failures`` is False), then each problem."""
    from rich.text import Text

    table = _table(f"Validation of {report.table}: {'OK' if report.ok else 'FAILED'}")
    table.add_row("checked", report.scope)
    table.add_row("rows", f"{report.rows:,}")
    table.add_row("successful rows", f"{report.successful_rows:,}")
    table.add_row(f"malformed successful rows (dimension {report.dimension})", f"{report.malformed_rows:,}")
    if failures:
        _failure_rows(table, report.failures)
    for problem in report.problems():
        table.add_row(Text(problem, style="red"), "")
    for example in report.examples:
        table.add_row(Text(f"example: {example.uri} ({example.problem})"), "")
    return table


def _size(count: int) -> str:
    """Bytes in binary units, as BigQuery's console shows them."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return f"{count:,} B"


def run_table(report: RunReport) -> Table:
    """What a run did: model, batches, retries, bytes billed, time (the objects' counts are in :func:`status_table`)."""
    from rich.text import Text

    table = _table(f"Run {report.run_id}")
    if report.dry_run is not None:
        for check in report.dry_run:
            if check.error is not None:
                outcome = Text(f"error: {check.error}", style="red")
            elif check.skipped is not None:
                outcome = Text(f"not checked: {check.skipped}")
            else:
                outcome = Text(f"{_size(check.bytes_billed or 0)} billed")
            table.add_row(check.name, outcome)
        table.add_row(Text(f"bytes billed, {report.billing}"), _size(report.bytes_billed))
        return table
    table.add_row("model", report.model_action)
    table.add_row("objects sent to the model", f"{report.objects_sent:,}")
    table.add_row("batches", f"{report.batches:,}" + (f" of up to {report.batch_size:,}" if report.batches else ""))
    table.add_row("rows written", f"{report.rows_written:,}")
    table.add_row("retry rounds", f"{report.retries:,}")
    if report.compacted_rows:
        table.add_row("superseded rows removed", f"{report.compacted_rows:,}")
    if report.pruned_rows:
        table.add_row("rows of deleted objects removed", f"{report.pruned_rows:,}")
    table.add_row(Text(f"bytes billed, {report.billing}"), _size(report.bytes_billed))
    table.add_row("elapsed", f"{report.elapsed:.1f}s")
    rate = report.images_per_second
    table.add_row("images/s", "-" if rate is None else f"{rate:.1f}")
    if report.validation is not None:
        table.add_row("validation", "OK" if report.validation.ok else "[red]FAILED[/red]")
    if report.job_ids:
        table.add_row("jobs", Text("\n".join(report.job_ids)))
    return table


def neighbours_table(image_uri: str, neighbours: list[dict[str, Any]]) -> Table:
    """The images nearest to ``image_uri``, closest first: rank, uri and cosine distance."""
    from rich.table import Table

    table = Table(title=f"Nearest to {image_uri} (cosine distance)", header_style="bold")
    table.add_column("#", justify="right")
    table.add_column("uri", overflow="fold")  # a uri cut short cannot be opened
    table.add_column("distance", justify="right")
    for rank, item in enumerate(neighbours, 1):
        table.add_row(str(rank), item["uri"], f"{item['distance']:.4f}")
    return table


def failures_table(failed: FailedObjects) -> Table:
    """Failed objects, most recent attempt first: uri, status, attempts and last attempt.

    A status that starts "A retryable error occurred" is retried by the next run; the others stay.
    """
    from rich.table import Table
    from rich.text import Text

    shown = len(failed.objects)
    more = f"; the {shown:,} most recent (--limit {failed.limit:,})" if shown < failed.total else ""
    table = Table(title=f"Failed objects: {failed.total:,}{more}", header_style="bold")
    table.add_column("uri", overflow="fold", ratio=1)
    table.add_column("status", overflow="fold", ratio=1)
    table.add_column("attempts", justify="right", no_wrap=True)
    table.add_column("last attempt (UTC)", no_wrap=True)
    for item in failed.objects:
        when = "-" if item.last_attempt is None else _utc(item.last_attempt)
        table.add_row(Text(item.uri), Text(item.status), f"{item.attempts:,}", when)
    return table


def _utc(moment: dt.datetime) -> str:
    """``moment`` in UTC, to the second."""
    import datetime as dt

    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def doctor_table(results: list[CheckResult], settings: Settings) -> Table:
    """doctor's checks: each check, its status, and what was found or what to do."""
    from rich.table import Table

    table = Table(title=f"embed doctor: project {settings.project_id}, location {settings.location}")
    table.add_column("check", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("details")
    for r in results:
        if r.ok:
            table.add_row(r.name, "[green]ok[/green]", r.detail)
        elif r.skipped:
            table.add_row(r.name, "[yellow]skipped[/yellow]", r.problem)
        else:
            table.add_row(r.name, "[red]MISSING[/red]", f"{r.problem}\n[bold]fix:[/bold] {r.fix}")
    return table


def failures_hint(failed: int, selection: list[str]) -> str:
    """The command that lists ``failed`` failed objects, with the flags (``selection``) that select the same results."""
    words = ["python -m embed failures", *selection]
    return f"{failed:,} object(s) failed: `{' '.join(words)}` lists each with its status and attempts."
