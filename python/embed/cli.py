"""Command-line interface: ``python -m embed COMMAND``.

Commands import what they need inside their bodies so that ``--help`` stays
instant and never loads google.cloud, torch or duckdb.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

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


OutputsOpt = Annotated[
    Optional[Path], _opt("--outputs", "Saved `terraform output -json` (embed under value); terraform is not run.")
]
TfDirOpt = Annotated[Optional[Path], _opt("--tf-dir", "Terraform root stack with the outputs (default: terraform).")]
ProjectIdOpt = Annotated[Optional[str], _opt("--project-id", "Override the project id.")]
LocationOpt = Annotated[Optional[str], _opt("--location", "Override the BigQuery location.")]
DatasetIdOpt = Annotated[Optional[str], _opt("--dataset-id", "Override the dataset id.")]
ConnectionOpt = Annotated[Optional[str], _opt("--connection", "Override the connection (project.location.id).")]
ServiceAccountOpt = Annotated[
    Optional[str], _opt("--connection-service-account", "Override the connection's service account.")
]
ObjectTableOpt = Annotated[Optional[str], _opt("--object-table", "Override the object table (project.dataset.table).")]
ModelOpt = Annotated[Optional[str], _opt("--model", "Override the model (project.dataset.model).")]
ResultsTableOpt = Annotated[
    Optional[str], _opt("--results-table", "Override the results table (project.dataset.table).")
]
EndpointOpt = Annotated[Optional[str], _opt("--endpoint", "Override the model endpoint.")]
BatchSizeOpt = Annotated[Optional[int], _opt("--batch-size", "Objects per job (default: 500; at most 216,000).")]
MaxRetriesOpt = Annotated[Optional[int], _opt("--max-retries", "Retry rounds for retryable failures (default: 3).")]
FlattenOpt = Annotated[
    Optional[bool],
    _opt("--flatten-json-output/--no-flatten-json-output", "ARRAY<FLOAT64> embeddings, or JSON (default: flatten)."),
]
DimensionOpt = Annotated[
    Optional[int], _opt("--output-dimensionality", "128, 256, 512 or 1408, images only (default: 1408).")
]
StartSecondOpt = Annotated[Optional[float], _opt("--start-second", "Video: first second to embed (default: 0).")]
EndSecondOpt = Annotated[Optional[float], _opt("--end-second", "Video: last second, at most 120 (default: 120).")]
IntervalOpt = Annotated[Optional[float], _opt("--interval-seconds", "Video: segment length, 4 to <120 (default: 16).")]


def _load_settings(outputs: Optional[Path], tf_dir: Optional[Path], overrides: dict[str, Any]) -> "Settings":
    """Settings from flags, environment and Terraform outputs (see embed.settings)."""
    from embed.settings import load_settings

    return load_settings(overrides, outputs_file=outputs, tf_dir=tf_dir)


@app.command("sql")
def sql_command(
    outputs: OutputsOpt = None,
    tf_dir: TfDirOpt = None,
    project_id: ProjectIdOpt = None,
    location: LocationOpt = None,
    dataset_id: DatasetIdOpt = None,
    connection: ConnectionOpt = None,
    connection_service_account: ServiceAccountOpt = None,
    object_table: ObjectTableOpt = None,
    model: ModelOpt = None,
    results_table: ResultsTableOpt = None,
    endpoint: EndpointOpt = None,
    batch_size: BatchSizeOpt = None,
    max_retries: MaxRetriesOpt = None,
    flatten_json_output: FlattenOpt = None,
    output_dimensionality: DimensionOpt = None,
    start_second: StartSecondOpt = None,
    end_second: EndSecondOpt = None,
    interval_seconds: IntervalOpt = None,
) -> None:
    """Print every statement a run would issue, without running anything."""
    overrides = dict(locals())  # the settings flags, by field name; None where not given
    del overrides["outputs"], overrides["tf_dir"]
    from embed import sql

    settings = _load_settings(outputs, tf_dir, overrides)
    for statement in sql.run_statements(settings):
        typer.echo(f"-- {statement.name}: {statement.when}\n{statement.sql};\n")


@app.command("plan-review")
def plan_review(
    plan_json: Path = typer.Argument(
        ..., help="JSON of `terraform show -json PLANFILE`, or - for stdin.", show_default=False
    ),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the Markdown here, not stdout."),
    fail_on_data_loss: bool = typer.Option(
        False, "--fail-on-data-loss", help="Exit 1 if a BigQuery dataset or table is destroyed or replaced."
    ),
) -> None:
    """Summarize a Terraform plan as Markdown for a pull-request comment."""
    from embed import planreview

    summary = planreview.summarize(planreview.load_plan(plan_json))
    markdown = planreview.render_markdown(summary)
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
            "the plan destroys or replaces BigQuery data (embeddings would be lost): "
            + ", ".join(summary.data_loss)
            + ". Change the configuration so these are updated in place, or, if the loss is intended,"
            " back the data up and run without --fail-on-data-loss.",
            1,
        )


def main() -> None:
    """Run the CLI, turning an EmbedError into its message and exit code."""
    try:
        app()
    except EmbedError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
