"""The validator on good and broken Arrow tables shaped like real results."""

from __future__ import annotations

import json
import math

import pyarrow as pa
import pytest

from embed.engines.base import Column
from embed.schema import EmbeddingFunction, expected_schema
from embed.validate import validate
from tests.python.scripted import OK, PERMANENT, RETRYABLE, columns_of, result_rows

DIM = 1408


def vec(n: int = DIM, value: float = 0.5) -> list[float]:
    return [value] * n


@pytest.fixture
def expected(example_settings):
    return expected_schema(example_settings())


def test_good_table_passes(expected) -> None:
    rows = [(f"gs://b/{i}.jpg", vec(), OK) for i in range(5)]
    report = validate("t", columns_of(expected), result_rows(expected, rows), expected)
    assert report.ok, report.problems()
    assert report.rows == 5 and report.successful_rows == 5 and report.malformed_rows == 0
    assert report.to_dict()["ok"] is True


@pytest.mark.parametrize("with_ref", [True, False])
def test_ref_tolerated_present_or_absent(expected, with_ref: bool) -> None:
    rows = [("gs://b/a.jpg", vec(), OK)]
    report = validate("t", columns_of(expected, ref=with_ref), result_rows(expected, rows, ref=with_ref), expected)
    assert report.ok and report.extra_columns == ()


@pytest.mark.parametrize(
    ("embedding", "field"),
    [
        (vec(DIM - 1), "wrong_length_rows"),
        (vec(DIM + 1), "wrong_length_rows"),
        (None, "null_embedding_rows"),
        (vec(DIM - 1) + [None], "null_value_rows"),
        (vec(DIM - 1) + [math.nan], "nan_value_rows"),
    ],
)
def test_malformed_successful_row_fails(expected, embedding, field: str) -> None:
    rows = [("gs://b/good.jpg", vec(), OK), ("gs://b/good2.jpg", vec(), OK), ("gs://b/bad.jpg", embedding, OK)]
    report = validate("t", columns_of(expected), result_rows(expected, rows), expected)
    assert not report.ok
    assert getattr(report, field) == 1 and report.malformed_rows == 1
    assert [e.uri for e in report.examples] == ["gs://b/bad.jpg"]
    assert report.to_dict()[field] == 1


def test_failed_rows_are_not_malformed_and_are_grouped(expected) -> None:
    rows = [
        ("gs://b/a.jpg", vec(), OK),
        ("gs://b/b.jpg", [], RETRYABLE),
        ("gs://b/c.jpg", None, RETRYABLE),
        ("gs://b/d.jpg", [], PERMANENT),
    ]
    report = validate("t", columns_of(expected), result_rows(expected, rows), expected)
    assert report.ok
    groups = {(f.status, f.retryable, f.rows) for f in report.failures}
    assert groups == {(RETRYABLE, True, 2), (PERMANENT, False, 1)}
    assert report.failed_rows == 3 and report.retryable_rows == 2


def test_counts_accumulate_across_record_batches(expected) -> None:
    rows = [(f"gs://b/{i}.jpg", vec() if i % 3 else vec(3), OK) for i in range(7)]
    table = result_rows(expected, rows)
    report = validate("t", columns_of(expected), iter(table.to_batches(max_chunksize=2)), expected)
    assert report.rows == 7 and report.wrong_length_rows == 3


def test_missing_column_fails(expected) -> None:
    columns = tuple(c for c in columns_of(expected) if c.name != "ml_generate_embedding_status")
    report = validate("t", columns, result_rows(expected, [("gs://b/a.jpg", vec(), OK)]), expected)
    assert not report.ok and report.missing_columns == ("ml_generate_embedding_status",)


def test_mistyped_column_fails(expected) -> None:
    columns = tuple(
        Column(c.name, "STRING") if c.name == "ml_generate_embedding_result" else c for c in columns_of(expected)
    )
    report = validate("t", columns, result_rows(expected, [("gs://b/a.jpg", vec(), OK)]), expected)
    assert not report.ok
    [problem] = report.mistyped_columns
    assert problem.name == "ml_generate_embedding_result"
    assert (problem.expected, problem.found) == ("FLOAT64 REPEATED", "STRING")


def test_scalar_where_repeated_expected_is_mistyped(expected) -> None:
    columns = tuple(
        Column(c.name, "FLOAT") if c.name == "ml_generate_embedding_result" else c for c in columns_of(expected)
    )
    report = validate("t", columns, None, expected)
    assert [p.name for p in report.mistyped_columns] == ["ml_generate_embedding_result"]


def test_missing_table_fails(expected) -> None:
    report = validate("p.d.t", None, None, expected)
    assert not report.ok and not report.exists
    assert "does not exist" in report.problems()[0]


def test_flatten_off_json(example_settings) -> None:
    expected = expected_schema(example_settings(flatten_json_output=False, output_dimensionality=128))
    columns = columns_of(expected)
    assert dict((c.name, c.type) for c in columns)["ml_generate_embedding_result"] == "JSON"
    good = json.dumps({"imageEmbedding": vec(128)})
    short = json.dumps({"imageEmbedding": vec(127)})
    nan = '{"imageEmbedding": [' + ", ".join(["0.5"] * 127 + ["NaN"]) + "]}"
    rows = [("gs://b/a.jpg", good, OK), ("gs://b/b.jpg", short, OK), ("gs://b/c.jpg", nan, OK),
            ("gs://b/d.jpg", None, RETRYABLE)]
    report = validate("t", columns, result_rows(expected, rows, json_text=True), expected)
    assert report.wrong_length_rows == 1 and report.nan_value_rows == 1 and report.malformed_rows == 2
    ok = validate("t", columns, result_rows(expected, rows[:1], json_text=True), expected)
    assert ok.ok


def test_flatten_off_expects_json_not_array(example_settings) -> None:
    expected = expected_schema(example_settings(flatten_json_output=False))
    flat = columns_of(expected_schema(example_settings()))
    report = validate("t", flat, None, expected)
    assert [p.name for p in report.mistyped_columns] == ["ml_generate_embedding_result"]


def test_ai_generate_embedding_names(example_settings) -> None:
    expected = expected_schema(example_settings(), function=EmbeddingFunction.AI, dimension=4)
    rows = [("gs://b/a.jpg", vec(4), OK), ("gs://b/b.jpg", vec(5), OK), ("gs://b/c.jpg", [], RETRYABLE)]
    report = validate("t", columns_of(expected), result_rows(expected, rows), expected)
    assert report.function == "AI.GENERATE_EMBEDDING"
    assert report.wrong_length_rows == 1 and report.retryable_rows == 1 and not report.ok
    ml_columns = columns_of(expected_schema(example_settings()))
    wrong = validate("t", ml_columns, None, expected)
    assert "embedding" in wrong.missing_columns and "status" in wrong.missing_columns


def test_null_status_fails(expected) -> None:
    table = result_rows(expected, [("gs://b/a.jpg", vec(), OK)])
    table = table.set_column(
        table.schema.get_field_index("ml_generate_embedding_status"),
        "ml_generate_embedding_status",
        pa.array([None], pa.string()),
    )
    report = validate("t", columns_of(expected), table, expected)
    assert report.null_status_rows == 1 and not report.ok
