"""The one place SQL is made: jinja2 templates in ``templates/`` rendered from Settings.

Templates receive identifiers as :class:`~embed.identifiers.Sql` (quoted and validated)
and numbers through the ``number`` and ``boolean`` filters; any other value reaching
the output is refused, so no unvetted text can enter a statement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from embed.errors import EmbedError
from embed.identifiers import Sql, string_literal
from embed.settings import Settings

__all__ = [
    "RETRYABLE_PREFIX",
    "Statement",
    "create_model",
    "create_results_table",
    "embed_batch",
    "failure_summary",
    "prune_superseded",
    "read_results",
    "replace_model",
    "retry_batch",
    "run_statements",
    "status_counts",
    "vector_search",
]

# ML.GENERATE_EMBEDDING status of a row that failed for a reason worth retrying.
RETRYABLE_PREFIX = "A retryable error occurred:"
_RESULTS_DESCRIPTION = (
    "Embeddings from ML.GENERATE_EMBEDDING, one row per object (per segment for video), kept by embed-kit."
)
_TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class Statement:
    """A named statement of a run, with when it is issued."""

    name: str
    when: str
    sql: str


def _finalize(value: object) -> str:
    """Let only vetted SQL text into a rendered template."""
    if isinstance(value, Sql):
        return value
    if isinstance(value, jinja2.Undefined):
        str(value)  # StrictUndefined raises here, naming the missing variable
    raise TypeError(f"refusing to render unvetted value {value!r} into SQL; quote it via embed.identifiers")


def _number(value: object) -> Sql:
    """Render a finite int or float as a SQL numeric literal."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"not a number: {value!r}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError(f"not a finite number: {value!r}")
        return Sql(repr(value))
    return Sql(str(value))


def _boolean(value: object) -> Sql:
    """Render a bool as TRUE or FALSE."""
    if not isinstance(value, bool):
        raise TypeError(f"not a bool: {value!r}")
    return Sql("TRUE" if value else "FALSE")


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    """The jinja2 environment: strict about undefined names and unvetted values."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        finalize=_finalize,
        keep_trailing_newline=False,
    )
    env.filters["number"] = _number
    env.filters["boolean"] = _boolean
    return env


def _render(template: str, **context: Any) -> str:
    """Render ``templates/<template>.sql.j2`` without a trailing newline."""
    return _environment().get_template(f"{template}.sql.j2").render(**context).rstrip("\n")


def create_model(settings: Settings) -> str:
    """CREATE MODEL IF NOT EXISTS for the remote embedding model."""
    return _model(settings, replace=False)


def replace_model(settings: Settings) -> str:
    """CREATE OR REPLACE MODEL, for when the existing model's endpoint differs."""
    return _model(settings, replace=True)


def _model(settings: Settings, replace: bool) -> str:
    """Render the remote model statement."""
    return _render(
        "create_model",
        replace=replace,
        model=settings.model.sql,
        connection=settings.connection.sql,
        endpoint=string_literal(settings.endpoint),
    )


def create_results_table(settings: Settings) -> str:
    """CREATE TABLE IF NOT EXISTS for the results table."""
    return _render(
        "create_results_table",
        results=settings.results_table.sql,
        result_type=Sql("ARRAY<FLOAT64>" if settings.flatten_json_output else "JSON"),
        description=string_literal(_RESULTS_DESCRIPTION),
    )


def embed_batch(settings: Settings) -> str:
    """MERGE one batch of new or changed objects' embeddings into the results table."""
    return _batch(settings, retry=False)


def retry_batch(settings: Settings) -> str:
    """MERGE one batch of re-embedded objects whose last status was retryable."""
    return _batch(settings, retry=True)


def _batch(settings: Settings, retry: bool) -> str:
    """Render the embedding MERGE."""
    return _render(
        "embed_batch",
        retry=retry,
        video=settings.is_video,
        results=settings.results_table.sql,
        objects=settings.object_table.sql,
        model=settings.model.sql,
        retryable_prefix=string_literal(RETRYABLE_PREFIX),
        batch_size=settings.batch_size,
        flatten_json_output=settings.flatten_json_output,
        output_dimensionality=settings.output_dimensionality,
        start_second=settings.start_second,
        end_second=settings.end_second,
        interval_seconds=settings.interval_seconds,
    )


def prune_superseded(settings: Settings) -> str:
    """DELETE result rows older than the newest write for their uri (stale video segments)."""
    return _render("prune_superseded", results=settings.results_table.sql)


def status_counts(settings: Settings) -> str:
    """Count objects embedded, failed (retryable or not) and pending, for their current version."""
    return _render(
        "status_counts",
        objects=settings.object_table.sql,
        results=settings.results_table.sql,
        retryable_prefix=string_literal(RETRYABLE_PREFIX),
    )


def failure_summary(settings: Settings) -> str:
    """Failed result rows grouped by status, most frequent first."""
    return _render(
        "failure_summary", results=settings.results_table.sql, retryable_prefix=string_literal(RETRYABLE_PREFIX)
    )


def read_results(settings: Settings) -> str:
    """Every row of the results table, for validation (streamed by the engine)."""
    return _render("read_results", results=settings.results_table.sql)


def vector_search(settings: Settings, image_uri: str, top_k: int) -> str:
    """The ``top_k`` nearest embedded objects to ``image_uri`` by cosine distance, nearest first.

    One row (uri NULL) when ``image_uri`` has an embedding but no neighbours; none when it has none.
    """
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise EmbedError(f"--top-k must be a positive whole number, got {top_k!r}.", 2)
    return _render(
        "vector_search",
        results=settings.results_table.sql,
        image_uri=string_literal(image_uri),
        top_k=top_k,
        search_k=top_k + 1,  # the image itself is its own nearest: searched for, then left out
    )


def run_statements(settings: Settings) -> tuple[Statement, ...]:
    """Every statement a run can issue, in order, with when each is issued."""
    statements = [
        Statement("create_model", "once, first", create_model(settings)),
        Statement("replace_model", "only if the existing model has another endpoint", replace_model(settings)),
        Statement("create_results_table", "once", create_results_table(settings)),
        Statement("embed_batch", "repeated until it merges no rows: new or changed objects", embed_batch(settings)),
        Statement(
            "retry_batch",
            f"with backoff, at most {settings.max_retries} times: objects whose status is retryable",
            retry_batch(settings),
        ),
    ]
    if settings.is_video:
        statements.append(
            Statement("prune_superseded", "after each batch: drops older segments (video)", prune_superseded(settings))
        )
    statements += [
        Statement("status_counts", "at the end, and for `embed status`", status_counts(settings)),
        Statement("failure_summary", "at the end: failed rows by status, none dropped", failure_summary(settings)),
        Statement(
            "read_results",
            "at the end, and for `embed validate`: rows checked against the schema",
            read_results(settings),
        ),
    ]
    return tuple(statements)
