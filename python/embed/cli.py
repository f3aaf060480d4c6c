"""Command-line interface: ``embed COMMAND`` (or ``python -m embed COMMAND``).

Each command builds its task, runs it, and renders the result (a rich table, or JSON with
``--json``). Commands import what they need inside their bodies, so that ``--help`` stays fast
and never loads google.cloud, torch, duckdb or rich. The options are declared in
:mod:`embed.options`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer

from embed import __version__
from embed import options as opt
from embed import summary as out
from embed.engines import EngineName
from embed.errors import EmbedError
from embed.options import PanelCommand, SettingsFlags, settings_options

app = typer.Typer(
    name="embed",
    help="BigQuery ML image embeddings, provisioned by Terraform.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Plain help: rich's renderer alone costs more than importing typer (bench/startup.py).
    rich_markup_mode=None,
)


def _command(name: str) -> Callable[[Callable[..., Any]], Any]:
    """Register a command whose help groups its options by panel."""
    return app.command(name, cls=PanelCommand)


def _print_version(value: bool) -> None:
    """--version: print the kit's version and stop."""
    if value:
        typer.echo(f"embed-kit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """BigQuery ML image embeddings, provisioned by Terraform."""


@_command("sql")
@settings_options(tuning=True)
def sql_command(flags: SettingsFlags, check: opt.CheckOpt = False) -> None:
    """Print every statement a run would issue; run nothing."""
    from embed import sql

    settings = flags.load()
    if check:
        from embed import googlesql

        googlesql.require()
    statements = sql.run_statements(settings)
    for statement in statements:
        params = "".join(f"\n--   @{p.name} {p.type}" for p in statement.params)
        typer.echo(f"-- {statement.name}: {statement.when}{params}\n{statement.sql};\n")
    if check:
        typer.echo(googlesql.verify(settings, statements), err=True)


@_command("run")
@settings_options(tuning=True, engine=True)
def run_command(
    flags: SettingsFlags,
    images: opt.ImagesOpt = None,
    dry_run: opt.DryRunOpt = False,
    iam_wait: opt.IamWaitOpt = None,
    retry_delay: opt.RetryDelayOpt = None,
    prune_deleted: opt.PruneDeletedOpt = False,
    re_embed: opt.ReEmbedOpt = False,
    json_output: opt.JsonOpt = False,
) -> None:
    """Embed new or changed objects, retry failures, validate."""
    from contextlib import redirect_stdout

    from embed.engines import new_run_id
    from embed.pipeline import Pipeline

    settings = flags.load()
    run_id = new_run_id()
    engine = flags.open(settings, run_id=run_id, images=images, need_images=not dry_run, allow_empty=prune_deleted)
    progress = out.RunProgress(out.console(stderr=True))
    pipeline = Pipeline(
        engine,
        settings,
        run_id=run_id,
        progress=progress,
        iam_wait=iam_wait,
        retry_delay=retry_delay,
        re_embed=re_embed,
        prune_deleted=prune_deleted,
    )
    if not json_output:
        out.console(stderr=True).print(f"run {run_id}", highlight=False)
    try:
        # Whatever a library prints while the run goes on is progress, not the result: keep stdout for it.
        with redirect_stdout(sys.stderr):
            report = pipeline.dry_run() if dry_run else pipeline.run()
    finally:
        progress.close()
    if json_output:
        out.print_json(report.to_dict())
    else:
        out.render_run(report)
    if report.counts.failed and report.dry_run is None:
        typer.echo(out.failures_hint(report.counts.failed, flags.selection()), err=True)
    if not report.ok:
        raise typer.Exit(2 if dry_run else 1)


@_command("status")
@settings_options(engine=True)
def status_command(flags: SettingsFlags, json_output: opt.JsonOpt = False) -> None:
    """Count objects embedded, failed, pending and deleted."""
    from embed.pipeline import read_status

    settings = flags.load()
    status = read_status(flags.open(settings), settings)
    if json_output:
        out.print_json(status.to_dict())
    elif status.counts is None:
        typer.echo(status.message)
    else:
        out.render(out.status_table, status.counts, status.failures)
    if status.counts is not None and status.counts.failed:
        typer.echo(out.failures_hint(status.counts.failed, flags.selection()), err=json_output)


@_command("failures")
@settings_options(engine=True)
def failures_command(flags: SettingsFlags, limit: opt.LimitOpt = 50, json_output: opt.JsonOpt = False) -> None:
    """List failed objects: uri, status, attempts, last attempt."""
    from embed.failures import read_failed_objects

    settings = flags.load()
    out.show(read_failed_objects(flags.open(settings), settings, limit), json_output, out.failures_table)


@_command("validate")
@settings_options(tuning=("flatten_json_output", "output_dimensionality"), engine=True)
def validate_command(flags: SettingsFlags, json_output: opt.JsonOpt = False) -> None:
    """Check the results table's schema and rows; exit 1 if bad."""
    from embed.pipeline import validate_results

    settings = flags.load()
    report = validate_results(flags.open(settings), settings)
    out.show(report, json_output, out.validation_table)
    if not report.ok:
        raise typer.Exit(1)


@_command("similar")
@settings_options(engine=True)
def similar_command(
    image_uri: opt.ImageUriArg = None,
    *,
    text: opt.TextOpt = None,
    top_k: opt.TopKOpt = 5,
    flags: SettingsFlags,
    json_output: opt.JsonOpt = False,
) -> None:
    """List the images nearest to an image (or a text), by cosine."""
    from embed.search import local_image_uri, similar

    if flags.engine_name == EngineName.local:
        image_uri = local_image_uri(image_uri, text)
    settings = flags.load()
    found = similar(flags.open(settings), settings, image_uri=image_uri, text=text, top_k=top_k)
    if json_output:
        out.print_json([n.to_dict() for n in found])
    else:
        out.render(out.neighbours_table, image_uri if text is None else f"text {text!r}", [n.to_dict() for n in found])


@_command("plan-review")
def plan_review(
    plan_json: opt.PlanJsonArg,
    output: opt.OutputOpt = None,
    fail_on_data_loss: opt.FailOnDataLossOpt = False,
    offline: opt.OfflineOpt = False,
) -> None:
    """Summarize a Terraform plan as Markdown for a pull request."""
    from embed import planreview

    summary = planreview.summarize(planreview.load_plan(plan_json))
    planreview.write_markdown(planreview.render_markdown(summary, offline=offline), output)
    if fail_on_data_loss and summary.data_loss:
        raise planreview.data_loss_error(summary)


@_command("doctor")
@settings_options(tuning=True)
def doctor_command(flags: SettingsFlags, json_output: opt.JsonOpt = False) -> None:
    """Preflight: credentials, APIs, permissions, IAM, locations."""
    from embed import doctor

    settings = flags.load()
    results = doctor.run_checks(settings)
    if json_output:
        typer.echo(doctor.to_json(results, settings))
    else:
        out.render(out.doctor_table, results, settings)
    problems = doctor.problems_summary(results)
    if problems:
        typer.echo(f"error: {problems}", err=True)
        raise typer.Exit(2)


def main() -> None:
    """Run the CLI, turning an EmbedError into its message and exit code."""
    try:
        app()
    except EmbedError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
