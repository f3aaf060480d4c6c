"""The expected results schema for each configuration."""

from __future__ import annotations

import re

import pytest

from embed import schema, sql
from embed.errors import EmbedError
from embed.schema import expected_schema
from tests.support.columns import PASS_THROUGH


def template_columns(text: str) -> dict[str, str]:
    """Column name -> declared type from the rendered CREATE TABLE statement."""
    body = text.split("(", 1)[1].rsplit(")\nPARTITION BY", 1)[0]
    out = {}
    for line in body.strip().splitlines():
        match = re.fullmatch(r"\s*(\w+) (.+?)(?: NOT NULL)?,?", line)
        assert match, line
        out[match.group(1)] = match.group(2)
    return out


@pytest.mark.parametrize("flatten", [True, False])
def test_expected_columns_match_the_results_table_template(example_settings, flatten: bool) -> None:
    settings = example_settings(flatten_json_output=flatten)
    expected = expected_schema(settings)
    declared = template_columns(sql.create_results_table(settings).sql)
    required = {c.name: c.describe() for c in expected.columns if c.required}
    as_sql = {name: "ARRAY<FLOAT64>" if kind == "FLOAT64 REPEATED" else kind for name, kind in required.items()}
    assert as_sql == declared


def test_flatten_on_is_float64_repeated(example_settings) -> None:
    column = expected_schema(example_settings()).column("ml_generate_embedding_result")
    assert (column.type, column.mode) == ("FLOAT64", "REPEATED")


def test_flatten_off_is_json(example_settings) -> None:
    column = expected_schema(example_settings(flatten_json_output=False)).column("ml_generate_embedding_result")
    assert (column.type, column.mode) == ("JSON", "NULLABLE")
    assert expected_schema(example_settings(flatten_json_output=False)).result.json_encoded


def test_dimension_default_and_from_settings(example_settings) -> None:
    assert expected_schema(example_settings()).dimension == 1408
    assert expected_schema(example_settings(output_dimensionality=256)).dimension == 256
    assert expected_schema(example_settings(), dimension=64).dimension == 64


def test_dimension_lookup_by_endpoint() -> None:
    assert schema.dimension_for("multimodalembedding@001") == 1408
    full = "https://aiplatform.googleapis.com/v1/projects/p/publishers/google/models/multimodalembedding@001"
    assert schema.dimension_for(full) == 1408
    assert schema.dimension_for("local-clip", 512) == 512
    with pytest.raises(EmbedError, match="output_dimensionality") as info:
        schema.dimension_for("local-clip")
    assert info.value.exit_code == 2


def test_pass_through_and_tolerated_columns(example_settings) -> None:
    expected = expected_schema(example_settings())
    for name, kind in PASS_THROUGH.items():
        assert expected.column(name).describe() == kind and expected.column(name).required
    assert not expected.column("ref").required
    assert expected.column("metadata").describe() == "RECORD REPEATED" and not expected.column("metadata").required


def test_bookkeeping_columns_are_expected(example_settings) -> None:
    names = set(expected_schema(example_settings()).names)
    assert {"embedding_endpoint", "embedding_dimension", "embedded_at", "attempts", "run_id"} <= names


def test_legacy_type_names_are_normalized() -> None:
    assert schema.normalize_type("INTEGER") == "INT64"
    assert schema.normalize_type("float") == "FLOAT64"
    assert schema.normalize_type("STRUCT") == "RECORD"
