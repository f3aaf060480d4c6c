"""Command-line interface: ``python -m embed COMMAND``.

Commands import what they need inside their bodies so that ``--help`` stays
instant and never loads google.cloud, torch or duckdb.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from embed.errors import EmbedError

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
