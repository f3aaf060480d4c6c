"""The command line's options: panels, the settings options every command shares, and option types.

Help is plain text, as Terraform prints it, with each command's options grouped by panel (engine,
connection and settings sources, embedding options, video, run tuning, output). The settings
options (where the settings come from, and overrides of each field) are declared once and given
to a command by :func:`settings_options`, which gathers them into a :class:`SettingsFlags`.
"""

from __future__ import annotations

import functools
import inspect
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperCommand

from embed.engines import EngineName

if TYPE_CHECKING:
    from embed.engines.base import Engine
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


def _opt(flag: str, help_text: str, panel: str, metavar: str | None = None) -> Any:
    """A settings option whose absence (None) leaves the field to lower-precedence sources."""
    return typer.Option(flag, help=help_text, show_default=False, rich_help_panel=panel, metavar=metavar)


def _source(flag: str, help_text: str, metavar: str) -> Any:
    """An option of the connection and settings sources panel."""
    return _opt(flag, help_text, SOURCES_PANEL, metavar)


# Where the settings come from, and the `embed` output's fields: every settings command takes these.
# Flags override EMBED_<FIELD> environment variables, which override the `embed` output.
_SOURCE_OPTIONS: dict[str, Any] = {
    "outputs": Annotated[
        Path | None,
        _source("--outputs", "Saved `terraform output -json` (- reads stdin); terraform is not run.", "FILE"),
    ],
    "tf_dir": Annotated[
        Path | None, _source("--tf-dir", "Root stack to run `terraform output` in (default: terraform).", "DIR")
    ],
    "project_id": Annotated[str | None, _source("--project-id", "Override the project id.", "ID")],
    "location": Annotated[str | None, _source("--location", "Override the BigQuery location.", "LOCATION")],
    "dataset_id": Annotated[str | None, _source("--dataset-id", "Override the dataset id.", "ID")],
    "connection": Annotated[
        str | None, _source("--connection", "Override the connection (project.location.id).", "CONNECTION")
    ],
    "connection_service_account": Annotated[
        str | None, _source("--connection-service-account", "Override the connection's service account.", "EMAIL")
    ],
    "object_table": Annotated[
        str | None, _source("--object-table", "Override the object table (project.dataset.table).", "TABLE")
    ],
    "model": Annotated[str | None, _source("--model", "Override the model (project.dataset.model).", "MODEL")],
    "results_table": Annotated[
        str | None, _source("--results-table", "Override the results table (project.dataset.table).", "TABLE")
    ],
    "endpoint": Annotated[str | None, _source("--endpoint", "Override the model endpoint.", "ENDPOINT")],
}
# How to run: the Settings fields beyond the output's; a command takes all of them or the ones it names.
_TUNING_OPTIONS: dict[str, Any] = {
    "batch_size": Annotated[
        int | None,
        _opt("--batch-size", "Objects per job (default: sized by cost; at most 216,000).", TUNING_PANEL, "N"),
    ],
    "max_retries": Annotated[
        int | None, _opt("--max-retries", "Retry rounds for retryable failures (default: 3).", TUNING_PANEL, "N")
    ],
    "flatten_json_output": Annotated[
        bool | None,
        _opt(
            "--flatten-json-output/--no-flatten-json-output",
            "ARRAY<FLOAT64> embeddings, or JSON (default: flatten).",
            EMBEDDING_PANEL,
        ),
    ],
    "output_dimensionality": Annotated[
        int | None,
        _opt("--output-dimensionality", "128, 256, 512 or 1408, images only (default: 1408).", EMBEDDING_PANEL, "N"),
    ],
    "start_second": Annotated[
        float | None, _opt("--start-second", "First second to embed (default: 0).", VIDEO_PANEL, "SECONDS")
    ],
    "end_second": Annotated[
        float | None, _opt("--end-second", "Last second, at most 120 (default: 120).", VIDEO_PANEL, "SECONDS")
    ],
    "interval_seconds": Annotated[
        float | None, _opt("--interval-seconds", "Segment length, 4 to <120 (default: 16).", VIDEO_PANEL, "SECONDS")
    ],
}


_Command = Callable[..., Any]


@dataclass(frozen=True)
class SettingsFlags:
    """The settings flags a command was given: the outputs' whereabouts, field overrides (None where not
    given), and for the commands that run statements the engine and its database."""

    outputs: Path | None
    tf_dir: Path | None
    overrides: dict[str, Any]
    engine_name: EngineName = EngineName.bigquery
    db: Path | None = None

    def load(self) -> Settings:
        """The settings these flags select, for their engine (the embedded engine needs no outputs)."""
        from embed.settings import load_settings

        local = self.engine_name == EngineName.local and self.outputs is None
        return load_settings(dict(self.overrides), outputs_file=self.outputs, tf_dir=self.tf_dir, local=local)

    def open(self, settings: Settings, run_id: str | None = None, **options: Any) -> Engine:
        """The engine these flags name, for ``settings``, its jobs labelled with ``run_id`` or a fresh run id."""
        from embed import engines
        from embed.summary import warn

        run_id = run_id or engines.new_run_id()
        return engines.open_engine(self.engine_name.value, settings, run_id, db=self.db, warn=warn, **options)

    def selection(self) -> list[str]:
        """The flags, as typed on a command line, that select the same engine, settings and tables."""
        words = [] if self.engine_name == EngineName.bigquery else [f"--engine {self.engine_name.value}"]
        given = {"db": self.db, "outputs": self.outputs, "tf_dir": self.tf_dir}
        given |= {name: self.overrides.get(name) for name in _SOURCE_OPTIONS if name in self.overrides}
        for name, value in given.items():
            if value is not None:
                words.append(f"--{name.replace('_', '-')} {shlex.quote(str(value))}")
        return words


def settings_options(tuning: bool | tuple[str, ...] = False, engine: bool = False) -> Callable[[_Command], _Command]:
    """Give a command the settings options in place of its ``flags: SettingsFlags`` parameter.

    The command's signature (which typer reads) lists ``--engine`` and ``--db`` (``engine=True``),
    the source options, and all tuning options (``tuning=True``) or the ones named; the command is
    called with them gathered into ``flags``.
    """
    options: dict[str, Any] = {"engine_name": EngineOpt, "db": DbOpt} if engine else {}
    options.update(_SOURCE_OPTIONS)
    if tuning is True:
        options.update(_TUNING_OPTIONS)
    elif tuning:
        options.update({name: _TUNING_OPTIONS[name] for name in tuning})

    def decorate(command: _Command) -> _Command:
        signature = inspect.signature(command, eval_str=True)
        params = list(signature.parameters.values())
        at = [p.name for p in params].index("flags")
        params[at : at + 1] = [
            inspect.Parameter(
                name,
                params[at].kind,
                default=EngineName.bigquery if name == "engine_name" else None,
                annotation=annotation,
            )
            for name, annotation in options.items()
        ]

        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            values = {name: kwargs.pop(name, None) for name in options}
            chosen = {name: values.pop(name) for name in ("engine_name", "db") if name in values}
            flags = SettingsFlags(values.pop("outputs"), values.pop("tf_dir"), values, **chosen)
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
    Path | None,
    typer.Option(
        "--db",
        help="--engine local: the DuckDB file (default: embed-local.duckdb).",
        show_default=False,
        rich_help_panel=ENGINE_PANEL,
        metavar="FILE",
    ),
]
ImagesOpt = Annotated[
    list[Path] | None,
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


CheckOpt = Annotated[
    bool,
    typer.Option(
        "--check",
        help="Also analyze each statement offline with GoogleSQL, BigQuery's SQL front end: names, types,"
        " signatures. Needs the `check` extra: pip install 'embed-kit[check]'.",
        rich_help_panel=OUTPUT_PANEL,
    ),
]
DryRunOpt = Annotated[
    bool,
    typer.Option(
        "--dry-run", help="Check and price every statement (bytes billed); run nothing.", rich_help_panel=TUNING_PANEL
    ),
]
IamWaitOpt = Annotated[
    float | None,
    typer.Option(
        "--iam-wait",
        help="Seconds to keep retrying while an IAM grant propagates (default: 600).",
        show_default=False,
        rich_help_panel=TUNING_PANEL,
        metavar="SECONDS",
    ),
]
RetryDelayOpt = Annotated[
    float | None,
    typer.Option(
        "--retry-delay",
        help="Seconds before the first retry round, doubled each round (default: 15; 1 with --engine local).",
        show_default=False,
        rich_help_panel=TUNING_PANEL,
        metavar="SECONDS",
    ),
]
PruneDeletedOpt = Annotated[
    bool,
    typer.Option(
        "--prune-deleted",
        help="Remove the results of objects no longer in the object table.",
        rich_help_panel=TUNING_PANEL,
    ),
]
ReEmbedOpt = Annotated[
    bool,
    typer.Option(
        "--re-embed",
        help="Embed every object again when the results hold another endpoint or dimension;"
        " old rows go only once replaced.",
        rich_help_panel=EMBEDDING_PANEL,
    ),
]
LimitOpt = Annotated[
    int,
    typer.Option(
        "--limit", help="List at most this many, most recent first.", rich_help_panel=OUTPUT_PANEL, metavar="N", min=1
    ),
]
ImageUriArg = Annotated[
    str | None,
    typer.Argument(
        help="The image's uri (gs://… on BigQuery; file://… or a path with --engine local).",
        show_default=False,
        metavar="IMAGE_URI",
    ),
]
TextOpt = Annotated[
    str | None,
    typer.Option(
        "--text",
        help="Search by a text description instead (BigQuery: the multimodal model embeds it).",
        show_default=False,
        metavar="TEXT",
    ),
]
TopKOpt = Annotated[
    int, typer.Option("--top-k", help="How many neighbours to list.", rich_help_panel=OUTPUT_PANEL, metavar="N")
]
PlanJsonArg = Annotated[
    Path,
    typer.Argument(
        help="JSON of `terraform show -json PLANFILE`, or - for stdin.", show_default=False, metavar="PLAN_JSON"
    ),
]
OutputOpt = Annotated[
    Path | None,
    typer.Option(
        "--output", "-o", help="Write the Markdown here, not stdout.", rich_help_panel=OUTPUT_PANEL, metavar="FILE"
    ),
]
FailOnDataLossOpt = Annotated[
    bool,
    typer.Option(
        "--fail-on-data-loss",
        help="Exit 1 if a dataset, table or bucket is destroyed or replaced.",
        rich_help_panel=OUTPUT_PANEL,
    ),
]
OfflineOpt = Annotated[
    bool,
    typer.Option("--offline", help="Say the plan was made with the offline stand-in.", rich_help_panel=OUTPUT_PANEL),
]
