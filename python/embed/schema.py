"""The schema downstream users rely on: the expected results-table columns for each configuration.

A results table holds the object table's pass-through columns, ML.GENERATE_EMBEDDING's output
columns, and the kit's bookkeeping columns from ``templates/create_results_table.sql.j2``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from embed.engines.base import Column, normalize_type
from embed.errors import EmbedError
from embed.identifiers import endpoint_name
from embed.settings import Settings

__all__ = [
    "DIMENSIONS_BY_ENDPOINT",
    "EmbeddingResult",
    "ExpectedColumn",
    "ExpectedSchema",
    "OBJECT_TABLE_COLUMNS",
    "describe",
    "dimension_for",
    "expected_schema",
]

# Default embedding length of each known endpoint, used when output_dimensionality is unset.
DIMENSIONS_BY_ENDPOINT: Mapping[str, int] = {"multimodalembedding@001": 1408}


@dataclass(frozen=True)
class EmbeddingResult:
    """ML.GENERATE_EMBEDDING's output columns; ``json_encoded`` when flatten_json_output is FALSE."""

    json_encoded: bool = False
    function: str = "ML.GENERATE_EMBEDDING"
    embedding: str = "ml_generate_embedding_result"
    status: str = "ml_generate_embedding_status"
    start_sec: str = "ml_generate_embedding_start_sec"
    end_sec: str = "ml_generate_embedding_end_sec"


@dataclass(frozen=True)
class ExpectedColumn:
    """A column the results table should have; ``required=False`` means tolerated if absent.

    ``fields`` lists a RECORD's fields as GoogleSQL writes them (``name STRING, value STRING``).
    """

    name: str
    type: str
    mode: str = "NULLABLE"
    required: bool = True
    fields: str = ""

    @property
    def sql_type(self) -> str:
        """The full GoogleSQL type: ``ARRAY<FLOAT64>``, ``ARRAY<STRUCT<name STRING, value STRING>>`` ..."""
        kind = normalize_type(self.type)
        if kind == "RECORD":
            kind = f"STRUCT<{self.fields}>"
        return f"ARRAY<{kind}>" if self.mode.upper() == "REPEATED" else kind

    def problem(self, actual: Column) -> str | None:
        """Why ``actual`` does not fit this column, or None when it does (NULLABLE and REQUIRED both fit)."""
        expected_repeated = self.mode.upper() == "REPEATED"
        actual_repeated = actual.mode.upper() == "REPEATED"
        if normalize_type(actual.type) != normalize_type(self.type) or expected_repeated != actual_repeated:
            return f"expected {self.describe()}, found {describe(actual)}"
        return None

    def describe(self) -> str:
        """The type as BigQuery shows it: ``FLOAT64 REPEATED`` or ``STRING``."""
        return f"{normalize_type(self.type)} REPEATED" if self.mode.upper() == "REPEATED" else normalize_type(self.type)


def describe(column: Column) -> str:
    """A found column's type as BigQuery shows it."""
    kind = normalize_type(column.type)
    return f"{kind} REPEATED" if column.mode.upper() == "REPEATED" else kind


@dataclass(frozen=True)
class ExpectedSchema:
    """The expected results-table schema for one configuration, and the embedding length."""

    result: EmbeddingResult
    dimension: int
    columns: tuple[ExpectedColumn, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """Names of every expected or tolerated column, in table order."""
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> ExpectedColumn:
        """The expected column called ``name``."""
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)


def dimension_for(endpoint: str, output_dimensionality: int | None = None) -> int:
    """Embedding length: ``output_dimensionality`` when set, else the endpoint's default."""
    if output_dimensionality is not None:
        return output_dimensionality
    if endpoint.startswith("local/"):
        # The embedded engine's models know their own length; importing them loads no torch.
        from embed.engines.local.models import endpoint_dimension

        return endpoint_dimension(endpoint)
    name = endpoint_name(endpoint)
    if name not in DIMENSIONS_BY_ENDPOINT:
        known = ", ".join(sorted(DIMENSIONS_BY_ENDPOINT))
        raise EmbedError(
            f"the embedding length of endpoint {endpoint!r} is not known (known: {known}):"
            " set output_dimensionality (--output-dimensionality) so results can be validated."
        )
    return DIMENSIONS_BY_ENDPOINT[name]


# An object table's columns, as BigQuery defines them; `ref` (an ObjectRef) is newer and may be absent.
OBJECT_TABLE_COLUMNS = (
    ExpectedColumn("uri", "STRING"),
    ExpectedColumn("generation", "INT64"),
    ExpectedColumn("content_type", "STRING"),
    ExpectedColumn("size", "INT64"),
    ExpectedColumn("md5_hash", "STRING"),
    ExpectedColumn("updated", "TIMESTAMP"),
    ExpectedColumn("metadata", "RECORD", "REPEATED", required=False, fields="name STRING, value STRING"),
    ExpectedColumn(
        "ref", "RECORD", required=False, fields="uri STRING, version STRING, authorizer STRING, details JSON"
    ),
)
# Written by the kit's batch INSERT (templates/create_results_table.sql.j2).
_BOOKKEEPING = (
    ExpectedColumn("embedding_endpoint", "STRING"),
    ExpectedColumn("embedding_dimension", "INT64"),
    ExpectedColumn("embedded_at", "TIMESTAMP"),
    ExpectedColumn("attempts", "INT64"),
    ExpectedColumn("run_id", "STRING"),
)


def expected_schema(
    settings: Settings | None = None,
    *,
    flatten_json_output: bool | None = None,
    dimension: int | None = None,
) -> ExpectedSchema:
    """The expected schema for ``settings`` (or defaults); keyword arguments override single aspects."""
    if flatten_json_output is None:
        flatten_json_output = settings is None or settings.flatten_json_output
    if dimension is None:
        endpoint = settings.endpoint if settings is not None else "multimodalembedding@001"
        dimension = dimension_for(endpoint, settings.output_dimensionality if settings is not None else None)
    if dimension < 1:
        raise EmbedError(f"an embedding dimension must be positive, got {dimension}.")
    result = EmbeddingResult(json_encoded=not flatten_json_output)
    if result.json_encoded:
        embedding = ExpectedColumn(result.embedding, "JSON")
    else:
        embedding = ExpectedColumn(result.embedding, "FLOAT64", "REPEATED")
    columns = (
        *OBJECT_TABLE_COLUMNS,  # ML.GENERATE_EMBEDDING passes every object table column through
        embedding,
        ExpectedColumn(result.status, "STRING"),
        ExpectedColumn(result.start_sec, "INT64"),
        ExpectedColumn(result.end_sec, "INT64"),
        *_BOOKKEEPING,
    )
    return ExpectedSchema(result, dimension, columns)
