"""The one place SQL is made: jinja2 templates in ``templates/`` rendered from Settings.

Templates receive identifiers as :class:`~embed.identifiers.Sql` (quoted and validated)
and numbers through the ``number`` and ``boolean`` filters; any other value reaching
the output is refused, so no unvetted text can enter a statement.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from embed.engines.base import QueryParameter, Statement
from embed.errors import EmbedError
from embed.identifiers import Sql, string_literal
from embed.schema import dimension_for
from embed.settings import Settings
from embed.statuses import RETRYABLE_PREFIX

__all__ = [
    "MAX_EXAMPLES",
    "PRIOR_ATTEMPTS_TYPE",
    "compact_results",
    "create_model",
    "create_results_table",
    "embed_batch",
    "embedding_spaces",
    "every_statement",
    "failed_objects",
    "failure_summary",
    "pending_objects",
    "prune_deleted",
    "replace_model",
    "retryable_objects",
    "run_statements",
    "status_counts",
    "text_search",
    "validate_results",
    "vector_search",
]

# What a statement needs to exist before it can run (Statement.requires).
_TABLE = frozenset({"results_table"})
_TABLE_AND_MODEL = frozenset({"results_table", "model"})
# Rows of prior attempts a retry batch passes, so each new row counts its object's attempts.
PRIOR_ATTEMPTS_TYPE = "ARRAY<STRUCT<uri STRING, generation INT64, attempts INT64>>"
# Malformed rows (and duplicated uris) that validation returns as examples; the rest are only counted.
MAX_EXAMPLES = 10
_RESULTS_DESCRIPTION = (
    "Embeddings from ML.GENERATE_EMBEDDING, one current row per object (per segment for video),"
    " appended by embed-kit; partitioned by day of embedded_at, clustered by run_id."
)
_TEMPLATES = Path(__file__).parent / "templates"


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


def _space(settings: Settings) -> tuple[QueryParameter, ...]:
    """@endpoint and @dimension: the embedding space the settings produce, which each result row records."""
    return (
        QueryParameter("endpoint", "STRING", settings.endpoint),
        QueryParameter("dimension", "INT64", dimension_for(settings.endpoint, settings.output_dimensionality)),
    )


def _text(template: str, settings: Settings, **context: Any) -> str:
    """Render ``template`` with the settings' vetted names and options, and ``context``."""
    return _render(
        template,
        results=settings.results_table.sql,
        objects=settings.object_table.sql,
        model=settings.model.sql,
        connection=settings.connection.sql,
        retryable_prefix=string_literal(RETRYABLE_PREFIX),
        flatten_json_output=settings.flatten_json_output,
        output_dimensionality=settings.output_dimensionality,
        start_second=settings.start_second,
        end_second=settings.end_second,
        interval_seconds=settings.interval_seconds,
        **{"with_attempts": False, **context},
    )


def create_model(settings: Settings) -> Statement:
    """CREATE MODEL IF NOT EXISTS for the remote embedding model."""
    # DDL options take literals only: the endpoint is vetted text.
    text = _text("create_model", settings, replace=False, endpoint=string_literal(settings.endpoint))
    return Statement("create_model", text, uses_connection=True, when="once, if the model is missing", creates="model")


def replace_model(settings: Settings) -> Statement:
    """CREATE OR REPLACE MODEL, for when the existing model's endpoint differs."""
    text = _text("create_model", settings, replace=True, endpoint=string_literal(settings.endpoint))
    return Statement(
        "replace_model",
        text,
        uses_connection=True,
        when="only if the existing model has another endpoint and the results hold none of its embeddings",
        creates="model",
    )


def create_results_table(settings: Settings) -> Statement:
    """CREATE TABLE IF NOT EXISTS for the results table, partitioned by day of embedded_at."""
    result_type = Sql("ARRAY<FLOAT64>" if settings.flatten_json_output else "JSON")
    text = _text(
        "create_results_table", settings, result_type=result_type, description=string_literal(_RESULTS_DESCRIPTION)
    )
    return Statement(
        "create_results_table", text, when="once, if the results table is missing", creates="results_table"
    )


def embedding_spaces(settings: Settings) -> Statement:
    """Result rows by the endpoint and dimension they were embedded with."""
    text = _text("embedding_spaces", settings)
    return Statement(
        "embedding_spaces", text, when="when rows of another space were counted: to name them", requires=_TABLE
    )


def pending_objects(settings: Settings) -> Statement:
    """Uris of objects whose current version has no result row in the settings' embedding space."""
    text = _text("pending_objects", settings)
    when = "once, when objects are pending: the new and changed ones, which the batches then embed"
    return Statement("pending_objects", text, _space(settings), uses_connection=True, when=when, requires=_TABLE)


def embed_batch(settings: Settings) -> Statement:
    """INSERT the embeddings of the objects named by @uris (a retry passes their earlier attempts)."""
    size = f"{settings.batch_size:,}" if settings.batch_size else "auto-sized (see README: what a run costs)"
    params = (
        QueryParameter("uris", "ARRAY<STRING>", []),
        QueryParameter("prior_attempts", PRIOR_ATTEMPTS_TYPE, []),
        *_space(settings),
        QueryParameter("run_id", "STRING", ""),
    )
    when = f"per batch of {size} pending uris, then of each retry round; appends one row per object (segment)"
    return Statement(
        "embed_batch",
        _text("embed_batch", settings),
        params,
        calls_model=True,
        uses_connection=True,
        when=when,
        requires=_TABLE_AND_MODEL,
    )


def retryable_objects(settings: Settings) -> Statement:
    """Objects whose current row has a retryable status, oldest attempt first, with their attempt counts."""
    when = f"before each retry round, at most {settings.max_retries} rounds with backoff"
    text = _text("retryable_objects", settings, with_attempts=True)
    return Statement("retryable_objects", text, _space(settings), uses_connection=True, when=when, requires=_TABLE)


def status_counts(settings: Settings) -> Statement:
    """Objects embedded, failed (retryable or not), pending and deleted, and superseded result rows."""
    when = "first (a run with nothing to do stops here), again at the end, and for `embed status`"
    return Statement(
        "status_counts",
        _text("status_counts", settings),
        _space(settings),
        uses_connection=True,
        when=when,
        requires=_TABLE,
    )


def compact_results(settings: Settings) -> Statement:
    """DELETE result rows that a newer row of the same uri supersedes (changed objects, retried rows)."""
    when = "at the end, only when rows were superseded: at most once per run"
    return Statement("compact_results", _text("compact_results", settings), when=when, requires=_TABLE)


def prune_deleted(settings: Settings) -> Statement:
    """DELETE result rows of objects no longer in the object table."""
    text = _text("prune_deleted", settings)
    return Statement("prune_deleted", text, uses_connection=True, when="only with --prune-deleted", requires=_TABLE)


def failure_summary(settings: Settings) -> Statement:
    """Current failed rows grouped by status, most frequent first."""
    when = "at the end, when the run wrote rows, and for `embed status`: failed rows by status"
    return Statement(
        "failure_summary", _text("failure_summary", settings), _space(settings), when=when, requires=_TABLE
    )


def failed_objects(settings: Settings, limit: int) -> Statement:
    """Objects whose current row failed, most recent attempt first, at most @limit of them (and how many in all)."""
    _positive("--limit", limit)
    text = _text("failed_objects", settings, with_attempts=True)
    params = (*_space(settings), QueryParameter("limit", "INT64", limit))
    return Statement("failed_objects", text, params, uses_connection=True, when="for `embed failures`", requires=_TABLE)


def validate_results(settings: Settings, *, scoped: bool = False) -> Statement:
    """Count malformed, duplicated and other-space rows in SQL; ``scoped``: only one run's rows."""
    text = _text(
        "validate_results", settings, json=not settings.flatten_json_output, scoped=scoped, examples=MAX_EXAMPLES
    )
    params = _space(settings)
    if scoped:
        params += (QueryParameter("since", "TIMESTAMP", None), QueryParameter("run_id", "STRING", ""))
        return Statement(
            "validate_run", text, params, when="at the end, when the run wrote rows: those rows only", requires=_TABLE
        )
    return Statement("validate_results", text, params, when="for `embed validate`: the whole table", requires=_TABLE)


def _positive(flag: str, value: int) -> int:
    """``value`` of option ``flag``, refused unless it is a positive whole number."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise EmbedError(f"{flag} must be a positive whole number, got {value!r}.")
    return value


def vector_search(settings: Settings, image_uri: str, top_k: int) -> Statement:
    """The ``top_k`` nearest embedded objects to ``image_uri`` by cosine distance, nearest first.

    One row (uri NULL) when ``image_uri`` has an embedding but no neighbours; none when it has none.
    Only objects still in the object table, at the version that was embedded, are neighbours.
    """
    # The image itself is its own nearest: searched for, then left out.
    text = _text("vector_search", settings, top_k=_positive("--top-k", top_k), search_k=top_k + 1)
    params = (QueryParameter("image_uri", "STRING", image_uri), *_space(settings))
    return Statement(
        "vector_search", text, params, uses_connection=True, when="for `embed similar URI`", requires=_TABLE
    )


def text_search(settings: Settings, text: str, top_k: int) -> Statement:
    """The ``top_k`` embedded objects nearest to ``text``, embedded by the same multimodal model."""
    rendered = _text("text_search", settings, top_k=_positive("--top-k", top_k))
    params = (QueryParameter("text", "STRING", text), *_space(settings))
    return Statement(
        "text_search",
        rendered,
        params,
        calls_model=True,
        uses_connection=True,
        when="for `embed similar --text`",
        requires=_TABLE_AND_MODEL,
    )


def run_statements(settings: Settings, *, pruning: bool = True) -> tuple[Statement, ...]:
    """Every statement a run can issue, in order (``pruning``: with the one ``--prune-deleted`` adds)."""
    statements = (
        create_results_table(settings),
        status_counts(settings),
        embedding_spaces(settings),
        create_model(settings),
        replace_model(settings),
        pending_objects(settings),
        embed_batch(settings),
        retryable_objects(settings),
        compact_results(settings),
        prune_deleted(settings),
        failure_summary(settings),
        validate_results(settings, scoped=True),
    )
    return statements if pruning else tuple(s for s in statements if s.name != "prune_deleted")


def every_statement(settings: Settings) -> tuple[Statement, ...]:
    """Every statement the kit renders for ``settings``: a run's, then validate's, similar's and failures'.

    The values of ``similar``'s and ``failures``' parameters are examples; the text is what they issue.
    """
    return (
        *run_statements(settings),
        validate_results(settings),
        vector_search(settings, "gs://bucket/images/cat.jpg", 5),
        text_search(settings, "a red motorcycle", 5),
        failed_objects(settings, 50),
    )
