"""Validation: the kit's aggregate query run for real (on the embedded engine) over hand-made results tables."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import pytest

from embed import sql
from embed.engines.base import Column
from embed.engines.local.engine import LocalEngine
from embed.pipeline import validate_results
from embed.schema import expected_schema
from embed.settings import Settings
from embed.validate import validate
from tests.python.scripted import OK, PERMANENT, RETRYABLE, columns_of

DIM = 1408
WHEN = dt.datetime(2026, 8, 1, tzinfo=dt.timezone.utc)


def vec(n: int = DIM, value: float = 0.5) -> list[float | None]:
    return [value] * n


class Results:
    """A results table made by the kit's own CREATE TABLE, filled row by row."""

    def __init__(self, db: Path, settings: Settings) -> None:
        self.settings = settings
        self.engine = LocalEngine(db, default_project=settings.project_id)
        self.engine.execute(sql.create_results_table(settings))
        self.relation = self.engine._quoted(str(settings.results_table))

    def add(
        self,
        uri: str,
        vector: Any,
        status: str | None = OK,
        *,
        endpoint: str | None = None,
        dimension: int | None = None,
        start_sec: int | None = None,
        when: dt.datetime = WHEN,
    ) -> Results:
        value = json.dumps(vector) if isinstance(vector, dict) else vector
        self.engine.con.execute(
            f"INSERT INTO {self.relation} (uri, generation, ml_generate_embedding_result, ml_generate_embedding_status,"
            " ml_generate_embedding_start_sec, embedding_endpoint, embedding_dimension, embedded_at, attempts, run_id)"
            " VALUES (?, 1, ?, ?, ?, ?, ?, ?, 1, 'r')",
            [
                uri,
                value,
                status,
                start_sec,
                endpoint or self.settings.endpoint,
                dimension or (self.settings.output_dimensionality or DIM),
                when,
            ],
        ).fetchall()
        return self

    def report(self):
        return validate_results(self.engine, self.settings)


@pytest.fixture
def results(tmp_path, example_settings):
    made = []

    def build(**overrides: Any) -> Results:
        made.append(Results(tmp_path / f"results-{len(made)}.duckdb", example_settings(**overrides)))
        return made[-1]

    yield build
    for r in made:
        r.engine.close()


def test_good_table_passes(results) -> None:
    table = results()
    for i in range(5):
        table.add(f"gs://b/{i}.jpg", vec())
    report = table.report()
    assert report.ok, report.problems()
    assert report.rows == 5 and report.successful_rows == 5 and report.malformed_rows == 0
    assert report.to_dict()["ok"] is True and report.scope == "the whole table"


@pytest.mark.parametrize(
    ("embedding", "field", "problem"),
    [
        (vec(DIM - 1), "wrong_length_rows", "wrong length"),
        (vec(DIM + 1), "wrong_length_rows", "wrong length"),
        (None, "null_embedding_rows", "no embedding"),
        ([], "null_embedding_rows", "no embedding"),
        (vec(DIM - 1) + [None], "null_value_rows", "null values"),
        (vec(DIM - 1) + [math.nan], "nan_value_rows", "NaN values"),
    ],
)
def test_malformed_successful_row_fails(results, embedding, field: str, problem: str) -> None:
    table = results().add("gs://b/good.jpg", vec()).add("gs://b/good2.jpg", vec()).add("gs://b/bad.jpg", embedding)
    report = table.report()
    assert not report.ok
    assert getattr(report, field) == 1 and report.malformed_rows == 1
    assert [(e.uri, e.problem) for e in report.examples] == [("gs://b/bad.jpg", problem)]
    assert report.to_dict()[field] == 1


def test_failed_rows_are_not_malformed_and_are_grouped(results) -> None:
    table = results().add("gs://b/a.jpg", vec()).add("gs://b/b.jpg", [], RETRYABLE)
    table.add("gs://b/c.jpg", None, RETRYABLE).add("gs://b/d.jpg", [], PERMANENT)
    report = table.report()
    assert report.ok, report.problems()
    groups = {(f.status, f.retryable, f.rows) for f in report.failures}
    assert groups == {(RETRYABLE, True, 2), (PERMANENT, False, 1)}
    assert report.failed_rows == 3 and report.retryable_rows == 2


def test_two_rows_for_one_object_fail_validation(results) -> None:
    """Four rows for two uris (what `run --images A --images A` once stored) is not a valid table."""
    table = results()
    for uri in ("gs://b/a.jpg", "gs://b/a.jpg", "gs://b/b.jpg", "gs://b/b.jpg"):
        table.add(uri, vec())
    report = table.report()
    assert not report.ok and report.duplicate_rows == 4
    assert [e.uri for e in report.examples] == ["gs://b/a.jpg", "gs://b/a.jpg", "gs://b/b.jpg", "gs://b/b.jpg"]
    assert any("repeat an object" in p for p in report.problems())


def test_video_segments_of_one_object_are_not_duplicates(results) -> None:
    table = results(start_second=0, end_second=60, interval_seconds=16)
    for start in (0, 16, 32):
        table.add("gs://b/v.mp4", vec(), start_sec=start)
    assert table.report().ok
    table.add("gs://b/v.mp4", vec(), start_sec=32)
    assert table.report().duplicate_rows == 2


def test_rows_of_another_embedding_space_fail_validation(results) -> None:
    table = (
        results()
        .add("gs://b/a.jpg", vec())
        .add("gs://b/b.jpg", vec(512), endpoint="multimodalembedding@001", dimension=512)
    )
    report = table.report()
    assert not report.ok and report.other_space_rows == 1
    assert report.wrong_length_rows == 1  # measured against the settings' dimension
    assert any("another endpoint or dimension" in p for p in report.problems())


def test_null_status_fails(results) -> None:
    report = results().add("gs://b/a.jpg", vec(), None).report()
    assert report.null_status_rows == 1 and not report.ok


def test_only_counts_and_a_few_examples_come_back(results) -> None:
    table = results()
    for i in range(25):
        table.add(f"gs://b/{i:02}.jpg", vec(3))
    report = table.report()
    assert report.wrong_length_rows == 25 and len(report.examples) == sql.MAX_EXAMPLES
    assert [e.uri for e in report.examples] == [f"gs://b/{i:02}.jpg" for i in range(sql.MAX_EXAMPLES)]


def test_flatten_off_json(results) -> None:
    table = results(flatten_json_output=False, output_dimensionality=128)
    good = {"imageEmbedding": vec(128)}
    table.add("gs://b/a.jpg", good).add("gs://b/b.jpg", {"imageEmbedding": vec(127)})
    table.add("gs://b/c.jpg", {"imageEmbedding": vec(127) + [None]}).add("gs://b/d.jpg", None, RETRYABLE)
    report = table.report()
    assert report.wrong_length_rows == 1 and report.null_value_rows == 1 and report.malformed_rows == 2
    ok = results(flatten_json_output=False, output_dimensionality=128).add("gs://b/a.jpg", good).report()
    assert ok.ok, ok.problems()


# --- the schema alone ------------------------------------------------------------------------


@pytest.fixture
def expected(example_settings):
    return expected_schema(example_settings())


@pytest.mark.parametrize("with_ref", [True, False])
def test_ref_tolerated_present_or_absent(expected, with_ref: bool) -> None:
    report = validate("t", columns_of(expected, ref=with_ref), {"result_rows": 1}, expected)
    assert report.ok and report.extra_columns == ()


def test_missing_column_fails(expected) -> None:
    columns = tuple(c for c in columns_of(expected) if c.name != "ml_generate_embedding_status")
    report = validate("t", columns, None, expected)
    assert not report.ok and report.missing_columns == ("ml_generate_embedding_status",)


def test_mistyped_column_fails(expected) -> None:
    columns = tuple(
        Column(c.name, "STRING") if c.name == "ml_generate_embedding_result" else c for c in columns_of(expected)
    )
    report = validate("t", columns, None, expected)
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


def test_flatten_off_expects_json_not_array(example_settings) -> None:
    expected = expected_schema(example_settings(flatten_json_output=False))
    flat = columns_of(expected_schema(example_settings()))
    report = validate("t", flat, None, expected)
    assert [p.name for p in report.mistyped_columns] == ["ml_generate_embedding_result"]


def test_a_table_with_a_wrong_schema_is_reported_without_querying_it(tmp_path, example_settings) -> None:
    settings = example_settings()
    engine = LocalEngine(tmp_path / "w.duckdb", default_project=settings.project_id)
    engine.con.execute('CREATE SCHEMA "my-project__bqml_tutorial"').fetchall()
    engine.con.execute('CREATE TABLE "my-project__bqml_tutorial"."image_embeddings" (uri VARCHAR)').fetchall()
    report = validate_results(engine, settings)
    assert not report.ok and "generation" in report.missing_columns and report.rows == 0
