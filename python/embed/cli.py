"""Command-line interface: ``python -m embed COMMAND``.

Commands import what they need inside their bodies so that ``--help`` stays
instant and never loads google.cloud, torch or duckdb.
"""

from __future__ import annotations

import functools
import inspect
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Callable, Optional, Union

import typer

from embed.errors import EmbedError

if TYPE_CHECKING:
    from embed.settings import Settings

app = typer.Typer(
    name="embed",
    help="BigQuery ML image embeddings, provisioned by Terraform.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """BigQuery ML image embeddings, provisioned by Terraform."""


# Options that pick the settings; shared by every command that talks to BigQuery.
# Flags override EMBED_<FIELD> environment variables, which override the `embed` output.
def _opt(flag: str, help_text: str) -> Any:
    """A settings option whose absence (None) leaves the field to lower-precedence sources."""
    return typer.Option(flag, help=help_text, show_default=False)


# Where the settings come from, and the `embed` output's fields: every settings command takes these.
_SOURCE_OPTIONS: dict[str, Any] = {
    "outputs": Annotated[
        Optional[Path], _opt("--outputs", "Saved `terraform output -json` (embed under value); terraform is not run.")
    ],
    "tf_dir": Annotated[Optional[Path], _opt("--tf-dir", "Terraform root stack with the outputs (default: terraform).")],
    "project_id": Annotated[Optional[str], _opt("--project-id", "Override the project id.")],
    "location": Annotated[Optional[str], _opt("--location", "Override the BigQuery location.")],
    "dataset_id": Annotated[Optional[str], _opt("--dataset-id", "Override the dataset id.")],
    "connection": Annotated[Optional[str], _opt("--connection", "Override the connection (project.location.id).")],
    "connection_service_account": Annotated[
        Optional[str], _opt("--connection-service-account", "Override the connection's service account.")
    ],
    "object_table": Annotated[
        Optional[str], _opt("--object-table", "Override the object table (project.dataset.table).")
    ],
    "model": Annotated[Optional[str], _opt("--model", "Override the model (project.dataset.model).")],
    "results_table": Annotated[
        Optional[str], _opt("--results-table", "Override the results table (project.dataset.table).")
    ],
    "endpoint": Annotated[Optional[str], _opt("--endpoint", "Override the model endpoint.")],
}
# How to run: the Settings fields beyond the output's; a command takes all of them or the ones it names.
_TUNING_OPTIONS: dict[str, Any] = {
    "batch_size": Annotated[Optional[int], _opt("--batch-size", "Objects per job (default: 500; at most 216,000).")],
    "max_retries": Annotated[
        Optional[int], _opt("--max-retries", "Retry rounds for retryable failures (default: 3).")
    ],
    "flatten_json_output": Annotated[
        Optional[bool],
        _opt("--flatten-json-output/--no-flatten-json-output", "ARRAY<FLOAT64> embeddings, or JSON (default: flatten)."),
    ],
    "output_dimensionality": Annotated[
        Optional[int], _opt("--output-dimensionality", "128, 256, 512 or 1408, images only (default: 1408).")
    ],
    "start_second": Annotated[Optional[float], _opt("--start-second", "Video: first second to embed (default: 0).")],
    "end_second": Annotated[Optional[float], _opt("--end-second", "Video: last second, at most 120 (default: 120).")],
    "interval_seconds": Annotated[
        Optional[float], _opt("--interval-seconds", "Video: segment length, 4 to <120 (default: 16).")
    ],
}


def _load_settings(
    outputs: Optional[Path], tf_dir: Optional[Path], overrides: dict[str, Any], engine: str = "bigquery"
) -> "Settings":
    """Settings from flags, environment and Terraform outputs (see embed.settings); the local engine needs no outputs."""
    from embed.settings import load_settings

    local = engine == "local" and outputs is None
    return load_settings(overrides, outputs_file=outputs, tf_dir=tf_dir, local=local)


_Command = Callable[..., Any]


@dataclass(frozen=True)
class SettingsFlags:
    """The settings flags a command was given: the outputs' whereabouts and field overrides (None where not given)."""

    outputs: Optional[Path]
    tf_dir: Optional[Path]
    overrides: dict[str, Any]

    def load(self, engine: str = "bigquery") -> "Settings":
        """The settings these flags select, for ``engine`` (the local engine needs no outputs)."""
        return _load_settings(self.outputs, self.tf_dir, dict(self.overrides), engine)


def settings_options(tuning: Union[bool, tuple[str, ...]] = False) -> Callable[[_Command], _Command]:
    """Give a command the settings options in place of its ``flags: SettingsFlags`` parameter.

    The command's signature (which typer reads) lists the source options, and all tuning options
    (``tuning=True``) or the ones named; the command is called with them gathered into ``flags``.
    """
    options = dict(_SOURCE_OPTIONS)
    if tuning is True:
        options.update(_TUNING_OPTIONS)
    elif tuning:
        options.update({name: _TUNING_OPTIONS[name] for name in tuning})

    def decorate(command: _Command) -> _Command:
        signature = inspect.signature(command, eval_str=True)
        params = list(signature.parameters.values())
        at = [p.name for p in params].index("flags")
        params[at : at + 1] = [
            inspect.Parameter(name, params[at].kind, default=None, annotation=annotation)
            for name, annotation in options.items()
        ]

        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            values = {name: kwargs.pop(name, None) for name in options}
            flags = SettingsFlags(values.pop("outputs"), values.pop("tf_dir"), values)
            return command(*args, flags=flags, **kwargs)

        wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in params} | {"return": signature.return_annotation}
        return wrapper

    return decorate


@app.command("sql")
@settings_options(tuning=True)
def sql_command(
    flags: SettingsFlags,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Also analyze each statement offline with GoogleSQL, BigQuery's SQL front end: names, types,"
            " signatures. Needs the `check` extra: pip install 'embed-kit\\[check]'.",
        ),
    ] = False,
) -> None:
    """Print every statement a run would issue, without running anything."""
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


EngineOpt = Annotated[
    str,
    typer.Option(
        "--engine", help="Where statements run: bigquery, or local (embedded DuckDB and a local model, offline)."
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print only JSON on stdout (messages stay on stderr).")]
DbOpt = Annotated[
    Optional[Path],
    typer.Option("--db", help="--engine local: the DuckDB file (default: embed-local.duckdb).", show_default=False),
]
ImagesOpt = Annotated[
    Optional[list[Path]],
    typer.Option("--images", help="--engine local: a folder of images, scanned recursively (repeatable).",
                 show_default=False),
]
ENGINES = ("bigquery", "local")
# The embedded engine's model calls cost nothing and its faults are injected: retry rounds need no long wait.
_LOCAL_RETRY_DELAY = 1.0
_LOCAL_BILLING = "estimated by BigQuery's documented on-demand rules (the embedded engine bills nothing)"


def _engine(
    name: str,
    settings: "Settings",
    run_id: str,
    *,
    db: Optional[Path] = None,
    images: Optional[list[Path]] = None,
    need_images: bool = False,
) -> Any:
    """The engine called ``name``, connected for ``settings``, its jobs labelled with ``run_id``.

    The local engine opens ``db``; a run needs ``images`` (the object table's folders), other
    commands read a database an earlier run filled.
    """
    if name == "local":
        from embed.engines.local.engine import DEFAULT_DB, LocalEngine

        path = db if db is not None else DEFAULT_DB
        if need_images and not images:
            raise EmbedError(
                "--engine local needs --images DIR: the folder of images to embed (scanned recursively),"
                " e.g. `python -m embed run --engine local --images photos/`.",
                2,
            )
        if not need_images and not path.exists():
            raise EmbedError(
                f"no embedded database at {str(path)!r}: run `python -m embed run --engine local --images DIR"
                f"{'' if db is None else ' --db ' + str(db)}` first, or pass --db FILE.",
                2,
            )
        return LocalEngine(
            path, images or (), object_table=settings.object_table, default_project=settings.project_id, warn=_warn
        )
    if name != "bigquery":
        raise EmbedError(
            f"unknown engine {name!r}: use one of {', '.join(ENGINES)} (--engine bigquery is the default).", 2
        )
    from embed.engines.bigquery import connect

    return connect(settings, run_id)


def _new_run_id() -> str:
    """A fresh run id (labels the jobs a command starts)."""
    from embed.pipeline import new_run_id

    return new_run_id()


def _print_json(data: object) -> None:
    """Write ``data`` as the only thing on stdout."""
    import json

    typer.echo(json.dumps(data, indent=2))


@functools.lru_cache(maxsize=None)
def _stderr() -> Any:
    """The rich console on stderr, for messages, warnings and the progress bar (one, so they never overlap)."""
    from rich.console import Console

    return Console(stderr=True)


def _warn(message: str) -> None:
    """Print a warning on stderr."""
    _stderr().print(f"warning: {message}", style="yellow", markup=False, highlight=False, soft_wrap=True)


@app.command("run")
@settings_options(tuning=True)
def run_command(
    flags: SettingsFlags,
    engine: EngineOpt = "bigquery",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check and price every statement (bytes billed); run nothing.")
    ] = False,
    json_output: JsonOpt = False,
    iam_wait: Annotated[
        float, typer.Option("--iam-wait", help="Seconds to keep retrying while an IAM grant propagates.")
    ] = 600.0,
    retry_delay: Annotated[
        Optional[float],
        typer.Option(
            "--retry-delay",
            help="Seconds before the first retry round, doubled each round (default: 15; 1 with --engine local).",
            show_default=False,
        ),
    ] = None,
    re_embed: Annotated[
        bool,
        typer.Option(
            "--re-embed",
            help="Embed every object again when the results hold another endpoint or dimension;"
            " old rows go only once replaced.",
        ),
    ] = False,
    prune_deleted: Annotated[
        bool, typer.Option("--prune-deleted", help="Remove the results of objects no longer in the object table.")
    ] = False,
    db: DbOpt = None,
    images: ImagesOpt = None,
) -> None:
    """Create the model, embed new or changed objects, retry retryable failures, and validate what was written."""
    from contextlib import redirect_stdout

    from embed.pipeline import DEFAULT_RETRY_DELAY, Pipeline, new_run_id
    from embed.summary import RunProgress, run_table, status_table, validation_table

    settings = flags.load(engine)
    console = _stderr()
    progress = RunProgress(console)
    run_id = new_run_id()
    runner = _engine(engine, settings, run_id, db=db, images=images, need_images=not dry_run)
    local = engine == "local"
    pipeline = Pipeline(
        runner,
        settings,
        run_id=run_id,
        progress=progress,
        iam_wait=iam_wait,
        retry_delay=retry_delay if retry_delay is not None else (_LOCAL_RETRY_DELAY if local else DEFAULT_RETRY_DELAY),
        re_embed=re_embed,
        prune_deleted=prune_deleted,
        billing=_LOCAL_BILLING if local else "reported by BigQuery",
    )
    if not json_output:
        console.print(f"run {run_id}", highlight=False)
    try:
        # Whatever a library prints while the run goes on is progress, not the result: keep stdout for it.
        with redirect_stdout(sys.stderr):
            report = pipeline.dry_run() if dry_run else pipeline.run()
    finally:
        progress.close()
    if json_output:
        _print_json(report.to_dict())
    else:
        from rich.console import Console

        out = Console()
        out.print(run_table(report))
        if report.dry_run is None:
            out.print(status_table(report.counts, report.failures))
        if report.validation is not None:
            out.print(validation_table(report.validation, failures=False))  # the status table lists them
    if not report.ok:
        raise typer.Exit(2 if dry_run else 1)


@app.command("status")
@settings_options()
def status_command(
    flags: SettingsFlags, engine: EngineOpt = "bigquery", json_output: JsonOpt = False, db: DbOpt = None
) -> None:
    """Count objects embedded, failed (retryable or not) and pending."""
    from embed.pipeline import read_failures, read_status_counts

    settings = flags.load(engine)
    runner = _engine(engine, settings, _new_run_id(), db=db)
    if runner.schema(settings.results_table) is None:
        message = f"results table {settings.results_table} does not exist yet: run `python -m embed run`."
        if json_output:
            _print_json({"results_table_exists": False, "counts": None, "failures": [], "message": message})
        else:
            typer.echo(message)
        return
    counts = read_status_counts(runner, settings)
    failures = read_failures(runner, settings) if counts.failed_retryable or counts.failed_permanent else ()
    if json_output:
        _print_json(
            {
                "results_table_exists": True,
                "counts": counts.to_dict(),
                "failures": [{"status": f.status, "retryable": f.retryable, "rows": f.rows} for f in failures],
            }
        )
    else:
        from rich.console import Console

        from embed.summary import status_table

        Console().print(status_table(counts, failures))


@app.command("validate")
@settings_options(tuning=("flatten_json_output", "output_dimensionality"))
def validate_command(
    flags: SettingsFlags, engine: EngineOpt = "bigquery", json_output: JsonOpt = False, db: DbOpt = None
) -> None:
    """Check the results table against the expected schema; exit 1 if it does not match."""
    from embed.pipeline import validate_results

    settings = flags.load(engine)
    report = validate_results(_engine(engine, settings, _new_run_id(), db=db), settings)
    if json_output:
        _print_json(report.to_dict())
    else:
        from rich.console import Console

        from embed.summary import validation_table

        Console().print(validation_table(report))
    if not report.ok:
        raise typer.Exit(1)


@app.command("similar")
@settings_options()
def similar_command(
    image_uri: Annotated[
        Optional[str],
        typer.Argument(
            help="The image's uri (gs://… on BigQuery; file://… or a path with --engine local).", show_default=False
        ),
    ] = None,
    text: Annotated[
        Optional[str],
        typer.Option(
            "--text", help="Search by a text description instead (BigQuery: the multimodal model embeds it).",
            show_default=False,
        ),
    ] = None,
    top_k: Annotated[int, typer.Option("--top-k", help="How many neighbours to list.")] = 5,
    *,
    flags: SettingsFlags,
    engine: EngineOpt = "bigquery",
    json_output: JsonOpt = False,
    db: DbOpt = None,
) -> None:
    """List the images nearest to IMAGE_URI (or to --text) by cosine distance (VECTOR_SEARCH over the results)."""
    from embed import sql
    from embed.engines.base import StatementError

    if (image_uri is None) == (text is None):
        raise EmbedError("similar takes an IMAGE_URI or --text \"…\", one of the two.", 2)
    settings = flags.load(engine)
    if text is not None and engine == "local":
        raise EmbedError(
            "--text needs a model that embeds text and images in one space; the embedded engine's local model"
            " embeds images only. Search by an image (similar PATH), or run on BigQuery.",
            2,
        )
    if image_uri is not None and engine == "local" and "://" not in image_uri:
        image_uri = Path(image_uri).absolute().as_uri()
    if not settings.flatten_json_output:
        raise EmbedError("similar needs ARRAY<FLOAT64> embeddings; the results hold JSON (--no-flatten-json-output).", 2)
    if text is not None:
        statement = sql.text_search(settings, text, top_k)
    else:
        statement = sql.vector_search(settings, str(image_uri), top_k)
    runner = _engine(engine, settings, _new_run_id(), db=db)
    if runner.schema(settings.results_table) is None:
        raise EmbedError(f"results table {settings.results_table} does not exist yet: run `python -m embed run`.", 2)
    try:
        rows = runner.execute(statement).records()
    except StatementError as exc:
        raise EmbedError(f"{statement.name} failed: {exc}", 2) from None
    if not rows:
        if text is not None:
            raise EmbedError(
                f"no neighbours for {text!r}: the text could not be embedded (at most 32 tokens), or"
                f" {settings.results_table} holds no embeddings of {settings.endpoint}; see `python -m embed status`.",
                2,
            )
        raise EmbedError(
            f"{image_uri} has no embedding in {settings.results_table}: run `python -m embed run` first, and check"
            " `python -m embed status` (a row that failed has no embedding).",
            2,
        )
    neighbours = [{"uri": r["uri"], "distance": r["distance"]} for r in rows if r["uri"] is not None]
    if json_output:
        _print_json(neighbours)
        return
    from rich.console import Console

    from embed.summary import neighbours_table

    Console().print(neighbours_table(image_uri if text is None else f"text {text!r}", neighbours))


@app.command("plan-review")
def plan_review(
    plan_json: Path = typer.Argument(
        ..., help="JSON of `terraform show -json PLANFILE`, or - for stdin.", show_default=False
    ),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the Markdown here, not stdout."),
    fail_on_data_loss: bool = typer.Option(
        False, "--fail-on-data-loss", help="Exit 1 if a dataset, table or bucket is destroyed or replaced."
    ),
    offline: bool = typer.Option(False, "--offline", help="Say the plan was made with the offline stand-in."),
) -> None:
    """Summarize a Terraform plan as Markdown for a pull-request comment."""
    from embed import planreview

    summary = planreview.summarize(planreview.load_plan(plan_json))
    markdown = planreview.render_markdown(summary, offline=offline)
    if output is None:
        typer.echo(markdown, nl=False)
    else:
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(markdown, encoding="utf-8")
        except OSError as exc:
            raise EmbedError(f"cannot write {output}: {exc}", 2) from None
    if fail_on_data_loss and summary.data_loss:
        raise EmbedError(
            "the plan destroys or replaces stored data (embeddings or images would be lost): "
            + ", ".join(summary.data_loss)
            + ". Change the configuration so these are updated in place, or, if the loss is intended,"
            " back the data up and run without --fail-on-data-loss.",
            1,
        )


@app.command("doctor")
@settings_options(tuning=True)
def doctor_command(flags: SettingsFlags, json_output: JsonOpt = False) -> None:
    """Preflight: credentials, APIs, permissions, the connection's IAM grant and locations; exit 2 if any is missing."""
    from embed import doctor

    settings = flags.load()
    results = doctor.run_checks(settings)
    if json_output:
        typer.echo(doctor.to_json(results, settings))
    else:
        doctor.print_table(results, settings)
    if not doctor.all_ok(results):
        problems = [r for r in results if not r.ok and not r.skipped]
        first = problems[0]
        typer.echo(f"error: {len(problems)} check(s) failed. {first.name}: {first.problem}. Fix: {first.fix}.", err=True)
        raise typer.Exit(2)


def main() -> None:
    """Run the CLI, turning an EmbedError into its message and exit code."""
    try:
        app()
    except EmbedError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
