"""BigQuery table functions the embedded engine evaluates itself: ML.GENERATE_EMBEDDING and VECTOR_SEARCH.

:func:`generate_embedding` takes the rows of the call's input relation (run on DuckDB by the
engine) and returns them with BigQuery's four output columns; :func:`generate_options` reads the
call's STRUCT of options. :func:`vector_search_sql` is the DuckDB query VECTOR_SEARCH runs over
its two input relations, giving BigQuery's ``query``, ``base`` and ``distance`` columns.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from embed.engines.base import StatementError
from embed.engines.local.objects import path_of

if TYPE_CHECKING:
    import pyarrow
    from sqlglot import exp

__all__ = [
    "EmbeddingStats",
    "GenerateOptions",
    "generate_embedding",
    "generate_options",
    "literal_value",
    "vector_search_sql",
]

RESULT = "ml_generate_embedding_result"
STATUS = "ml_generate_embedding_status"
START_SEC = "ml_generate_embedding_start_sec"
END_SEC = "ml_generate_embedding_end_sec"
_VIDEO_OPTIONS = ("start_second", "end_second", "interval_seconds")
_KNOWN_OPTIONS = ("flatten_json_output", "output_dimensionality", *_VIDEO_OPTIONS)
# BigQuery's distance types and the DuckDB list function computing each.
_DISTANCES = {
    "COSINE": "list_cosine_distance({q}, {b})",
    "EUCLIDEAN": "list_distance({q}, {b})",
    "DOT_PRODUCT": "-list_inner_product({q}, {b})",
}


@dataclass
class EmbeddingStats:
    """Rows the engine sent to a model, and the seconds spent embedding them (decode and inference).

    ``sent`` records the uri of every row sent when it is a list (tests set one); None keeps no record.
    """

    rows: int = 0
    seconds: float = 0.0
    calls: int = 0
    sent: list[str] | None = None


@dataclass(frozen=True)
class GenerateOptions:
    """The STRUCT options of an ML.GENERATE_EMBEDDING call."""

    flatten_json_output: bool = True
    output_dimensionality: int | None = None


def literal_value(node: exp.Expression) -> Any:
    """The Python value of a literal, boolean or NULL node."""
    from sqlglot import exp

    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.Neg):
        return -literal_value(node.this)
    if isinstance(node, exp.Literal):
        if node.is_string:
            return node.this
        text = str(node.this)
        return float(text) if any(c in text for c in ".eE") else int(text)
    raise StatementError(f"the embedded engine needs a literal here, got {node.sql('bigquery')}")


def generate_options(struct: exp.Expression | None) -> GenerateOptions:
    """Read ``STRUCT(TRUE AS flatten_json_output, …)``; refuse options a local image model cannot honour."""
    from sqlglot import exp

    values: dict[str, Any] = {}
    for item in struct.expressions if struct is not None else []:
        if isinstance(item, (exp.PropertyEQ, exp.Alias)):
            name = (item.this.name if isinstance(item, exp.PropertyEQ) else item.alias).lower()
            value = literal_value(item.expression if isinstance(item, exp.PropertyEQ) else item.this)
        else:
            raise StatementError(f"ML.GENERATE_EMBEDDING options must be named: {item.sql('bigquery')}")
        if name not in _KNOWN_OPTIONS:
            raise StatementError(f"ML.GENERATE_EMBEDDING has no option {name!r}")
        values[name] = value
    video = [name for name in _VIDEO_OPTIONS if values.get(name) is not None]
    if video:
        raise StatementError(
            f"the embedded engine's local models embed images only; video options ({', '.join(video)})"
            " cannot be honoured. Unset them, or run on BigQuery."
        )
    flatten = values.get("flatten_json_output", True)
    dimension = values.get("output_dimensionality")
    return GenerateOptions(bool(flatten), None if dimension is None else int(dimension))


def generate_embedding(
    rows: pyarrow.Table,
    model: Any,
    options: GenerateOptions,
    stats: EmbeddingStats,
    *,
    faults: Any = None,
    attempts: Callable[[list[tuple[str, int]]], list[int]] | None = None,
) -> pyarrow.Table:
    """ML.GENERATE_EMBEDDING over object-table ``rows``: every input column plus the four output columns.

    With ``faults`` (a :class:`~embed.engines.local.models.faults.FaultInjector` that is enabled),
    the rows whose attempt (from ``attempts``, kept per object version) it picks come back with a
    retryable status, as from a busy endpoint, and are not sent to the model.
    """
    import pyarrow as pa

    from embed.engines.local.models import EmbeddingOutcome, ImageInput
    from embed.statuses import RESOURCE_EXHAUSTED

    if "uri" not in rows.column_names:
        raise StatementError("ML.GENERATE_EMBEDDING needs the object table's uri column in its input")
    wanted = [c for c in ("uri", "generation", "size", "content_type") if c in rows.column_names]
    records = rows.select(wanted).to_pylist()
    outcomes: list[EmbeddingOutcome | None] = [None] * len(records)
    items, where = [], []
    for i, record in enumerate(records):
        uri = record.get("uri")
        path = path_of(uri) if uri else None
        if path is None:
            outcomes[i] = EmbeddingOutcome(
                None, f"Invalid uri {uri!r}: the embedded engine reads file:// objects only."
            )
            continue
        size = record.get("size")
        items.append(ImageInput(uri, path, int(size) if size is not None else -1, record.get("content_type")))
        where.append(i)
    stats.rows += len(items)
    if stats.sent is not None:
        stats.sent.extend(item.uri for item in items)
    if faults is not None and faults.enabled and attempts is not None and items:
        counts = attempts([(records[i]["uri"], records[i].get("generation") or 0) for i in where])
        kept = []
        for i, item, attempt in zip(where, items, counts):
            if faults.fails(item.uri, attempt):
                outcomes[i] = EmbeddingOutcome(None, RESOURCE_EXHAUSTED)
            else:
                kept.append((i, item))
        where, items = [i for i, _ in kept], [item for _, item in kept]
    if items:
        started = time.perf_counter()
        produced = model.embed_images(items, output_dimensionality=options.output_dimensionality)
        stats.seconds += time.perf_counter() - started
        stats.calls += 1
        if len(produced) != len(items):
            raise StatementError(f"the local model returned {len(produced)} results for {len(items)} rows")
        for i, outcome in zip(where, produced):
            outcomes[i] = outcome
    vectors = [o.embedding if o is not None and not o.status else None for o in outcomes]
    statuses = [o.status if o is not None else "" for o in outcomes]
    if options.flatten_json_output:
        # BigQuery has no NULL arrays: a failed row's embedding is empty.
        result = pa.array([[float(x) for x in v] if v is not None else [] for v in vectors], pa.list_(pa.float64()))
    else:
        result = pa.array(
            [json.dumps({"imageEmbedding": [float(x) for x in v]}) if v is not None else None for v in vectors],
            pa.string(),
        )
    nulls = pa.nulls(len(records), pa.int64())
    out = rows
    for name, column in (
        (RESULT, result),
        (STATUS, pa.array(statuses, pa.string())),
        (START_SEC, nulls),
        (END_SEC, nulls),
    ):
        if name in out.column_names:
            out = out.drop_columns([name])
        out = out.append_column(name, column)
    return out


def vector_search_sql(base: str, query: str, base_column: str, query_column: str, top_k: int, distance: str) -> str:
    """DuckDB SQL over relations ``base`` and ``query`` giving VECTOR_SEARCH's ``query``, ``base``, ``distance``."""
    from sqlglot import exp

    if distance not in _DISTANCES:
        raise StatementError(f"VECTOR_SEARCH distance_type must be one of {', '.join(_DISTANCES)}, got {distance!r}")
    if top_k < 1:
        raise StatementError(f"VECTOR_SEARCH top_k must be positive, got {top_k}")
    b_col = exp.to_identifier(base_column, quoted=True).sql("duckdb")
    q_col = exp.to_identifier(query_column, quoted=True).sql("duckdb")
    measure = _DISTANCES[distance].format(q=f"query_rows.query.{q_col}", b=f"base_rows.base.{b_col}")
    return (
        f"WITH query_rows AS (SELECT q AS query, row_number() OVER () AS query_ordinal FROM {query} AS q"
        f" WHERE q.{q_col} IS NOT NULL AND len(q.{q_col}) > 0),"
        f" base_rows AS (SELECT b AS base FROM {base} AS b WHERE b.{b_col} IS NOT NULL AND len(b.{b_col}) > 0),"
        f" scored AS (SELECT query_rows.query AS query, base_rows.base AS base, CAST({measure} AS DOUBLE) AS distance,"
        f" query_ordinal FROM query_rows CROSS JOIN base_rows)"
        f" SELECT query, base, distance FROM scored"
        f" QUALIFY row_number() OVER (PARTITION BY query_ordinal ORDER BY distance) <= {int(top_k)}"
        f" ORDER BY query_ordinal, distance"
    )
