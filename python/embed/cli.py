"""Command-line interface: ``embed COMMAND`` (or ``python -m embed COMMAND``).

Commands import what they need inside their bodies, so that ``--help`` stays fast and never loads
google.cloud, torch, duckdb or rich. Help is plain text, as Terraform prints it, with each
command's options grouped by panel (engine, connection and settings sources, embedding options,
video, run tuning, output).
"""

from __future__ import annotations

import functools
import inspect
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Callable, Optional, Union

import typer
from typer.core import TyperCommand

from embed import __version__, engines
from embed.engines import EngineName
from embed.errors import VALIDATION, EmbedError

if TYPE_CHECKING:
    from embed.settings import Settings

ENGINE_PANEL = "Engine"
SOURCES_PANEL = "Connection and settings sources"
EMBEDDING_PANEL = "Embedding options"
VIDEO_PANEL = "Video"
TUNING_PANEL = "Run tuning"
OUTPUT_PANEL = "Output"
_PANELS = ("Arguments", ENGINE_PANEL, SOURCES_PANEL, EMBEDDING_PANEL, VIDEO_PANEL, TUNING_PANEL, OUTPUT_PANEL)
_TERM_MAX = 30  # the widest flag column, as click lays it out


class PanelCommand(TyperCommand):
    """A command whose help lists its options by panel (``rich_help_panel``), in plain text."""

    def format_options(self, ctx: Any, formatter: Any) -> None:
        """Write each panel's options under its own heading, in one column layout; options without a panel go last."""
        sections: dict[str, list[tuple[str, str]]] = {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None:
                panel = "Arguments" if param.param_type_name == "argument" else getattr(param, "rich_help_panel", None)
                sections.setdefault(panel or "Options", []).append(record)
        # Flags longer than the column get their help on the next line, as click does; the others align.
        width = min(max((len(term) for rows in sections.values() for term, _ in rows), default=0), _TERM_MAX)
        for title in sorted(sections, key=lambda t: _PANELS.index(t) if t in _PANELS else len(_PANELS)):
            with formatter.section(title):
                formatter.write_dl([(term.ljust(width), text) for term, text in sections[title]], col_max=_TERM_MAX)


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


def _opt(flag: str, help_text: str, panel: str, metavar: Optional[str] = None) -> Any:
    """A settings option whose absence (None) leaves the field to lower-precedence sources."""
    return typer.Option(flag, help=help_text, show_default=False, rich_help_panel=panel, metavar=metavar)


def _source(flag: str, help_text: str, metavar: str) -> Any:
    """An option of the connection and settings sources panel."""
    return _opt(flag, help_text, SOURCES_PANEL, metavar)


# Where the settings come from, and the `embed` output's fields: every settings command takes these.
# Flags override EMBED_<FIELD> environment variables, which override the `embed` output.
_SOURCE_OPTIONS: dict[str, Any] = {
    "outputs": Annotated[
        Optional[Path],
        _source("--outputs", "Saved `terraform output -json` (- reads stdin); terraform is not run.", "FILE"),
    ],
    "tf_dir": Annotated[
        Optional[Path], _source("--tf-dir", "Root stack to run `terraform output` in (default: terraform).", "DIR")
    ],
    "project_id": Annotated[Optional[str], _source("--project-id", "Override the project id.", "ID")],
    "location": Annotated[Optional[str], _source("--location", "Override the BigQuery location.", "LOCATION")],
    "dataset_id": Annotated[Optional[str], _source("--dataset-id", "Override the dataset id.", "ID")],
    "connection": Annotated[
        Optional[str], _source("--connection", "Override the connection (project.location.id).", "CONNECTION")
    ],
    "connection_service_account": Annotated[
        Optional[str], _source("--connection-service-account", "Override the connection's service account.", "EMAIL")
    ],
    "object_table": Annotated[
        Optional[str], _source("--object-table", "Override the object table (project.dataset.table).", "TABLE")
    ],
    "model": Annotated[Optional[str], _source("--model", "Override the model (project.dataset.model).", "MODEL")],
    "results_table": Annotated[
        Optional[str], _source("--results-table", "Override the results table (project.dataset.table).", "TABLE")
    ],
    "endpoint": Annotated[Optional[str], _source("--endpoint", "Override the model endpoint.", "ENDPOINT")],
}
# How to run: the Settings fields beyond the output's; a command takes all of them or the ones it names.
_TUNING_OPTIONS: dict[str, Any] = {
    "batch_size": Annotated[
        Optional[int],
        _opt("--batch-size", "Objects per job (default: sized by cost; at most 216,000).", TUNING_PANEL, "N"),
    ],
    "max_retries": Annotated[
        Optional[int], _opt("--max-retries", "Retry rounds for retryable failures (default: 3).", TUNING_PANEL, "N")
    ],
    "flatten_json_output": Annotated[
        Optional[bool],
        _opt(
            "--flatten-json-output/--no-flatten-json-output",
            "ARRAY<FLOAT64> embeddings, or JSON (default: flatten).",
            EMBEDDING_PANEL,
        ),
    ],
    "output_dimensionality": Annotated[
        Optional[int],
        _opt("--output-dimensionality", "128, 256, 512 or 1408, images only (default: 1408).", EMBEDDING_PANEL, "N"),
    ],
    "start_second": Annotated[
        Optional[float], _opt("--start-second", "First second to embed (default: 0).", VIDEO_PANEL, "SECONDS")
    ],
    "end_second": Annotated[
        Optional[float], _opt("--end-second", "Last second, at most 120 (default: 120).", VIDEO_PANEL, "SECONDS")
    ],
    "interval_seconds": Annotated[
        Optional[float], _opt("--interval-seconds", "Segment length, 4 to <120 (default: 16).", VIDEO_PANEL, "SECONDS")
    ],
}


_Command = Callable[..., Any]


@dataclass(frozen=True)
class SettingsFlags:
    """The settings flags a command was given: the outputs' whereabouts and field overrides (None where not given)."""

    outputs: Optional[Path]
    tf_dir: Optional[Path]
    overrides: dict[str, Any]

    def load(self, engine_name: str = EngineName.bigquery) -> "Settings":
        """The settings these flags select, for ``engine_name`` (the embedded engine needs no outputs)."""
        from embed.settings import load_settings

        local = engine_name == EngineName.local and self.outputs is None
        return load_settings(dict(self.overrides), outputs_file=self.outputs, tf_dir=self.tf_dir, local=local)


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


EngineOpt = Annotated[
    EngineName,
    typer.Option(
        "--engine",
        help="Where statements run: bigquery, or local (embedded DuckDB and a local model, offline).",
        rich_help_panel=ENGINE_PANEL,
        case_sensitive=False,
    ),
]
DbOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--db",
        help="--engine local: the DuckDB file (default: embed-local.duckdb).",
        show_default=False,
        rich_help_panel=ENGINE_PANEL,
        metavar="FILE",
    ),
]
ImagesOpt = Annotated[
    Optional[list[Path]],
    typer.Option(
        "--images",
        help="--engine local: a folder of images, scanned recursively (repeatable).",
        show_default=False,
        rich_help_panel=ENGINE_PANEL,
        metavar="DIR",
    ),
]
JsonOpt = Annotated[
    bool,
    typer.Option("--json", help="Print only JSON on stdout (messages go to stderr).", rich_help_panel=OUTPUT_PANEL),
]


@_command("sql")
@settings_options(tuning=True)
def sql_command(
    flags: SettingsFlags,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Also analyze each statement offline with GoogleSQL, BigQuery's SQL front end: names, types,"
            " signatures. Needs the `check` extra: pip install 'embed-kit[check]'.",
            rich_help_panel=OUTPUT_PANEL,
        ),
    ] = False,
) -> None:
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


def _new_run_id() -> str:
    """A fresh run id (labels the jobs a command starts)."""
    from embed.pipeline import new_run_id

    return new_run_id()


def _print_json(data: object) -> None:
    """Write ``data`` as the only thing on stdout."""
    import json

    typer.echo(json.dumps(data, indent=2))


@functools.lru_cache(maxsize=None)
def _console(stderr: bool = False) -> Any:
    """The rich console on stdout (results) or stderr (messages, warnings and the progress bar: one, so they never
    overlap)."""
    from rich.console import Console

    return Console(stderr=stderr)


def _warn(message: str) -> None:
    """Print a warning on stderr."""
    _console(stderr=True).print(f"warning: {message}", style="yellow", markup=False, highlight=False, soft_wrap=True)


def _failures_hint(failed: int, engine_name: EngineName, flags: SettingsFlags, db: Optional[Path]) -> str:
    """The command that lists ``failed`` failed objects, with the flags that select the same results."""
    words = ["python -m embed failures"]
    if engine_name == EngineName.local:
        words.append("--engine local")
    for flag, value in (("--db", db), ("--outputs", flags.outputs), ("--tf-dir", flags.tf_dir)):
        if value is not None:
            words.append(f"{flag} {value}")
    return f"{failed:,} object(s) failed: `{' '.join(words)}` lists each with its status and attempts."


@_command("run")
@settings_options(tuning=True)
def run_command(
    flags: SettingsFlags,
    engine_name: EngineOpt = EngineName.bigquery,
    db: DbOpt = None,
    images: ImagesOpt = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Check and price every statement (bytes billed); run nothing.",
            rich_help_panel=TUNING_PANEL,
        ),
    ] = False,
    iam_wait: Annotated[
        Optional[float],
        typer.Option(
            "--iam-wait",
            help="Seconds to keep retrying while an IAM grant propagates (default: 600).",
            show_default=False,
            rich_help_panel=TUNING_PANEL,
            metavar="SECONDS",
        ),
    ] = None,
    retry_delay: Annotated[
        Optional[float],
        typer.Option(
            "--retry-delay",
            help="Seconds before the first retry round, doubled each round (default: 15; 1 with --engine local).",
            show_default=False,
            rich_help_panel=TUNING_PANEL,
            metavar="SECONDS",
        ),
    ] = None,
    prune_deleted: Annotated[
        bool,
        typer.Option(
            "--prune-deleted",
            help="Remove the results of objects no longer in the object table.",
            rich_help_panel=TUNING_PANEL,
        ),
    ] = False,
    re_embed: Annotated[
        bool,
        typer.Option(
            "--re-embed",
            help="Embed every object again when the results hold another endpoint or dimension;"
            " old rows go only once replaced.",
            rich_help_panel=EMBEDDING_PANEL,
        ),
    ] = False,
    json_output: JsonOpt = False,
) -> None:
    """Embed new or changed objects, retry failures, validate."""
    from contextlib import redirect_stdout

    from embed.pipeline import Pipeline, new_run_id
    from embed.summary import RunProgress, run_table, status_table, validation_table

    settings = flags.load(engine_name)
    console = _console(stderr=True)
    progress = RunProgress(console)
    run_id = new_run_id()
    engine = engines.open_engine(
        engine_name.value,
        settings,
        run_id,
        db=db,
        images=images,
        need_images=not dry_run,
        allow_empty=prune_deleted,
        warn=_warn,
    )
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
        out = _console()
        out.print(run_table(report))
        if report.dry_run is None:
            out.print(status_table(report.counts, report.failures))
        if report.validation is not None:
            out.print(validation_table(report.validation, failures=False))  # the status table lists them
    failed = report.counts.failed_retryable + report.counts.failed_permanent
    if failed and report.dry_run is None:
        typer.echo(_failures_hint(failed, engine_name, flags, db), err=True)
    if not report.ok:
        raise typer.Exit(2 if dry_run else 1)


def _results_missing(settings: "Settings") -> str:
    """What to say when the results table does not exist yet."""
    return f"results table {settings.results_table} does not exist yet: run `python -m embed run`."


@_command("status")
@settings_options()
def status_command(
    flags: SettingsFlags, engine_name: EngineOpt = EngineName.bigquery, db: DbOpt = None, json_output: JsonOpt = False
) -> None:
    """Count objects embedded, failed, pending and deleted."""
    from embed.pipeline import read_failures, read_status_counts

    settings = flags.load(engine_name)
    engine = engines.open_engine(engine_name.value, settings, _new_run_id(), db=db, warn=_warn)
    if engine.schema(settings.results_table) is None:
        if json_output:
            message = _results_missing(settings)
            _print_json({"results_table_exists": False, "counts": None, "failures": [], "message": message})
        else:
            typer.echo(_results_missing(settings))
        return
    counts = read_status_counts(engine, settings)
    failed = counts.failed_retryable + counts.failed_permanent
    failures = read_failures(engine, settings) if failed else ()
    if json_output:
        _print_json(
            {
                "results_table_exists": True,
                "counts": counts.to_dict(),
                "failures": [f.to_dict() for f in failures],
            }
        )
    else:
        from embed.summary import status_table

        _console().print(status_table(counts, failures))
    if failed:
        typer.echo(_failures_hint(failed, engine_name, flags, db), err=json_output)


@_command("failures")
@settings_options()
def failures_command(
    flags: SettingsFlags,
    engine_name: EngineOpt = EngineName.bigquery,
    db: DbOpt = None,
    limit: Annotated[
        int,
        typer.Option("--limit", help="List at most this many, most recent first.", rich_help_panel=OUTPUT_PANEL,
                     metavar="N", min=1),
    ] = 50,
    json_output: JsonOpt = False,
) -> None:
    """List failed objects: uri, status, attempts, last attempt."""
    from embed.failures import read_failed_objects

    settings = flags.load(engine_name)
    engine = engines.open_engine(engine_name.value, settings, _new_run_id(), db=db, warn=_warn)
    if engine.schema(settings.results_table) is None:
        raise EmbedError(_results_missing(settings))
    failed = read_failed_objects(engine, settings, limit)
    if json_output:
        _print_json(failed.to_dict())
        return
    from embed.summary import failures_table

    _console().print(failures_table(failed))


@_command("validate")
@settings_options(tuning=("flatten_json_output", "output_dimensionality"))
def validate_command(
    flags: SettingsFlags, engine_name: EngineOpt = EngineName.bigquery, db: DbOpt = None, json_output: JsonOpt = False
) -> None:
    """Check the results table's schema and rows; exit 1 if bad."""
    from embed.pipeline import validate_results

    settings = flags.load(engine_name)
    report = validate_results(engines.open_engine(engine_name.value, settings, _new_run_id(), db=db, warn=_warn), settings)
    if json_output:
        _print_json(report.to_dict())
    else:
        from embed.summary import validation_table

        _console().print(validation_table(report))
    if not report.ok:
        raise typer.Exit(1)


@_command("similar")
@settings_options()
def similar_command(
    image_uri: Annotated[
        Optional[str],
        typer.Argument(
            help="The image's uri (gs://… on BigQuery; file://… or a path with --engine local).",
            show_default=False,
            metavar="IMAGE_URI",
        ),
    ] = None,
    *,
    text: Annotated[
        Optional[str],
        typer.Option(
            "--text",
            help="Search by a text description instead (BigQuery: the multimodal model embeds it).",
            show_default=False,
            metavar="TEXT",
        ),
    ] = None,
    top_k: Annotated[
        int, typer.Option("--top-k", help="How many neighbours to list.", rich_help_panel=OUTPUT_PANEL, metavar="N")
    ] = 5,
    flags: SettingsFlags,
    engine_name: EngineOpt = EngineName.bigquery,
    db: DbOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """List the images nearest to an image (or a text), by cosine."""
    from embed import sql
    from embed.engines.base import StatementError

    if (image_uri is None) == (text is None):
        raise EmbedError("similar takes an IMAGE_URI or --text \"…\", one of the two.")
    local = engine_name == EngineName.local
    settings = flags.load(engine_name)
    if text is not None and local:
        raise EmbedError(
            "--text needs a model that embeds text and images in one space; the embedded engine's local model"
            " embeds images only. Search by an image (similar PATH), or run on BigQuery."
        )
    if image_uri is not None and local and "://" not in image_uri:
        image_uri = Path(image_uri).absolute().as_uri()
    if not settings.flatten_json_output:
        raise EmbedError("similar needs ARRAY<FLOAT64> embeddings; the results hold JSON (--no-flatten-json-output).")
    if text is not None:
        statement = sql.text_search(settings, text, top_k)
    else:
        statement = sql.vector_search(settings, str(image_uri), top_k)
    engine = engines.open_engine(engine_name.value, settings, _new_run_id(), db=db, warn=_warn)
    if engine.schema(settings.results_table) is None:
        raise EmbedError(_results_missing(settings))
    try:
        rows = engine.execute(statement).records()
    except StatementError as exc:
        raise EmbedError(f"{statement.name} failed: {exc}") from None
    if not rows:
        if text is not None:
            raise EmbedError(
                f"no neighbours for {text!r}: the text could not be embedded (at most 32 tokens), or"
                f" {settings.results_table} holds no embeddings of {settings.endpoint}; see `python -m embed status`."
            )
        raise EmbedError(
            f"{image_uri} has no embedding in {settings.results_table}: run `python -m embed run` first, and check"
            " `python -m embed status` (a row that failed has no embedding)."
        )
    neighbours = [{"uri": r["uri"], "distance": r["distance"]} for r in rows if r["uri"] is not None]
    if json_output:
        _print_json(neighbours)
        return
    from embed.summary import neighbours_table

    _console().print(neighbours_table(image_uri if text is None else f"text {text!r}", neighbours))


@_command("plan-review")
def plan_review(
    plan_json: Annotated[
        Path,
        typer.Argument(
            help="JSON of `terraform show -json PLANFILE`, or - for stdin.", show_default=False, metavar="PLAN_JSON"
        ),
    ],
    output: Annotated[
        Optional[Path],
        typer.Option(
            "--output", "-o", help="Write the Markdown here, not stdout.", rich_help_panel=OUTPUT_PANEL, metavar="FILE"
        ),
    ] = None,
    fail_on_data_loss: Annotated[
        bool,
        typer.Option(
            "--fail-on-data-loss",
            help="Exit 1 if a dataset, table or bucket is destroyed or replaced.",
            rich_help_panel=OUTPUT_PANEL,
        ),
    ] = False,
    offline: Annotated[
        bool,
        typer.Option(
            "--offline", help="Say the plan was made with the offline stand-in.", rich_help_panel=OUTPUT_PANEL
        ),
    ] = False,
) -> None:
    """Summarize a Terraform plan as Markdown for a pull request."""
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
            raise EmbedError(f"cannot write {output}: {exc}") from None
    if fail_on_data_loss and summary.data_loss:
        raise EmbedError(
            "the plan destroys or replaces stored data (embeddings or images would be lost): "
            + ", ".join(summary.data_loss)
            + ". Change the configuration so these are updated in place, or, if the loss is intended,"
            " back the data up and run without --fail-on-data-loss.", VALIDATION
        )


@_command("doctor")
@settings_options(tuning=True)
def doctor_command(flags: SettingsFlags, json_output: JsonOpt = False) -> None:
    """Preflight: credentials, APIs, permissions, IAM, locations."""
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
