"""BigQuery's rules the embedded engine enforces: each one fed the shape BigQuery refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from embed import sql
from embed.engines.base import QueryParameter, Statement, StatementError
from embed.engines.local.engine import LocalEngine
from embed.engines.local.objects import uri_of
from tests.local.sample import PHOTOS, LocalRun, sample_set

OBJECTS = "`local.embed.images`"
RESULTS = "`local.embed.image_embeddings`"
MODEL = "`local.embed.embedding_model`"


@pytest.fixture
def local(tmp_path: Path) -> LocalRun:
    """A database with the model, an empty results table, and an object table of two photos."""
    run = LocalRun(sample_set(tmp_path / "images", PHOTOS[:2], bad=False), tmp_path / "embed.duckdb")
    run.engine.execute(sql.create_model(run.settings))
    run.engine.execute(sql.create_results_table(run.settings))
    return run


def generate(query: str) -> Statement:
    """SELECT from ML.GENERATE_EMBEDDING over ``query``."""
    return Statement(
        "probe", f"SELECT uri FROM ML.GENERATE_EMBEDDING(MODEL {MODEL}, ({query}), STRUCT(TRUE AS flatten_json_output))"
    )


# --- the object-table query ------------------------------------------------------------------

# The first run shape of the kit (a subquery naming what is already embedded), then other forbidden clauses.
FORBIDDEN = {
    "subquery": f"""SELECT * FROM {OBJECTS} WHERE uri NOT IN (
        SELECT prior.uri FROM {RESULTS} AS prior JOIN {OBJECTS} AS current_object
        ON current_object.uri = prior.uri AND current_object.generation = prior.generation) LIMIT 500""",
    "a JOIN": f"SELECT o.* FROM {OBJECTS} AS o JOIN {RESULTS} AS r ON r.uri = o.uri",
    "GROUP BY": f"SELECT uri FROM {OBJECTS} GROUP BY uri",
    "SELECT DISTINCT": f"SELECT DISTINCT * FROM {OBJECTS}",
    "a WITH clause": f"WITH o AS (SELECT * FROM {OBJECTS}) SELECT * FROM o",
    "subquery (EXISTS)": (
        f"SELECT * FROM {OBJECTS} AS o WHERE EXISTS (SELECT 1 FROM {RESULTS} AS r WHERE r.uri = o.uri)"
    ),
    "window function": f"SELECT * FROM {OBJECTS} QUALIFY ROW_NUMBER() OVER (ORDER BY uri) < 3",
    "UNION": f"SELECT * FROM {OBJECTS} UNION ALL SELECT * FROM {OBJECTS}",
}


@pytest.mark.parametrize("what", FORBIDDEN)
def test_object_table_query_allows_only_where_order_by_and_limit(local: LocalRun, what: str) -> None:
    with pytest.raises(StatementError) as info:
        local.engine.execute(generate(FORBIDDEN[what]))
    message = str(info.value)
    assert "You can only specify WHERE, ORDER BY, and LIMIT clauses in the query" in message
    assert "local.embed.images" in message
    assert local.model.sent == []  # refused before any model call


def test_object_table_query_with_where_order_by_and_limit_runs(local: LocalRun) -> None:
    query = f"SELECT * FROM {OBJECTS} WHERE uri LIKE '%.png' ORDER BY uri LIMIT 1"
    assert local.engine.execute(generate(query)).rows.num_rows == 1


def test_a_standard_table_query_may_hold_any_clause(local: LocalRun) -> None:
    """The rule is about object tables: a query over the results table may join and nest."""
    query = (
        f"SELECT r.uri FROM {RESULTS} AS r JOIN {RESULTS} AS s ON s.uri = r.uri"
        f" WHERE r.uri IN (SELECT uri FROM {RESULTS})"
    )
    assert local.engine.execute(generate(query)).rows.num_rows == 0


def test_rows_per_job_quota(local: LocalRun) -> None:
    local.engine.rows_per_job = 1
    uris = [uri_of(local.folder / p) for p in PHOTOS[:2]]
    with pytest.raises(StatementError, match="rows-per-job quota"):
        local.engine.execute(sql.embed_batch(local.settings).with_params(uris=uris, run_id="r"))
    assert local.model.sent == []


# --- MERGE --------------------------------------------------------------------------------------


def merge(source: str) -> Statement:
    return Statement(
        "merge",
        f"MERGE {RESULTS} AS r USING ({source}) AS s ON r.uri = s.uri"
        " WHEN MATCHED THEN UPDATE SET attempts = r.attempts + 1",
    )


def put_row(engine: LocalEngine, uri: str) -> None:
    engine.con.execute(
        'INSERT INTO "local__embed"."image_embeddings" (uri, embedding_endpoint, embedding_dimension, embedded_at,'
        " attempts) VALUES (?, 'local/efficientnet-lite0', 1280, now(), 1)",
        [uri],
    ).fetchall()


def test_merge_matching_a_target_row_to_two_source_rows_is_refused(local: LocalRun) -> None:
    put_row(local.engine, "file:///a.png")
    twice = "SELECT 'file:///a.png' AS uri UNION ALL SELECT 'file:///a.png' AS uri"
    with pytest.raises(StatementError, match="UPDATE/MERGE must match at most one source row for each target row"):
        local.engine.execute(merge(twice))
    assert [r["attempts"] for r in local.rows()] == [1]  # nothing changed
    assert local.engine.execute(merge("SELECT 'file:///a.png' AS uri")).affected_rows == 1
    assert [r["attempts"] for r in local.rows()] == [2]


def test_merge_that_only_inserts_may_match_anything(local: LocalRun) -> None:
    put_row(local.engine, "file:///a.png")
    statement = Statement(
        "merge",
        f"MERGE {RESULTS} AS r USING (SELECT 'file:///b.png' AS uri UNION ALL SELECT 'file:///b.png' AS uri) AS s"
        " ON r.uri = s.uri WHEN NOT MATCHED THEN INSERT (uri, embedding_endpoint, embedding_dimension, embedded_at,"
        " attempts) VALUES (s.uri, 'x', 1, CURRENT_TIMESTAMP(), 1)",
    )
    assert local.engine.execute(statement).affected_rows == 2


# --- query parameters ----------------------------------------------------------------------------


def test_a_missing_parameter_is_refused(local: LocalRun) -> None:
    statement = Statement("probe", f"SELECT uri FROM {OBJECTS} WHERE uri IN UNNEST(@uris)")
    with pytest.raises(StatementError, match="Query parameter 'uris' not found"):
        local.engine.execute(statement)


@pytest.mark.parametrize(
    ("param", "says"),
    [
        (QueryParameter("uris", "ARRAY<STRING>", "file:///a.png"), "is not an array"),
        (QueryParameter("uris", "ARRAY<STRING>", [1, 2]), "is not a valid STRING"),
        (QueryParameter("uris", "ARRAY<STRING>", ["a", None]), "NULL element"),
        (QueryParameter("uris", "ARRAY<INT64>", [1, 2]), "No matching signature for operator IN UNNEST"),
        (QueryParameter("uris", "STRING", "a"), "Values referenced in UNNEST must be arrays"),
    ],
)
def test_a_parameter_of_the_wrong_type_is_refused(local: LocalRun, param: QueryParameter, says: str) -> None:
    statement = Statement("probe", f"SELECT uri FROM {OBJECTS} WHERE uri IN UNNEST(@uris)", (param,))
    with pytest.raises(StatementError, match=says):
        local.engine.execute(statement)


def test_a_scalar_parameter_compared_with_a_column_of_another_type_is_refused(local: LocalRun) -> None:
    text = f"SELECT uri FROM {OBJECTS} WHERE size = @size"
    with pytest.raises(StatementError, match="No matching signature for operator EQ for argument types: INT64, STRING"):
        local.engine.execute(Statement("probe", text, (QueryParameter("size", "STRING", "12"),)))
    assert local.engine.execute(Statement("probe", text, (QueryParameter("size", "INT64", 12),))).rows.num_rows == 0
    bad_struct = QueryParameter("prior_attempts", sql.PRIOR_ATTEMPTS_TYPE, [{"uri": "a", "attempts": 1}])
    with pytest.raises(StatementError, match="exactly the fields uri, generation, attempts"):
        local.engine.execute(sql.embed_batch(local.settings).with_params(prior_attempts=bad_struct.value))


def test_values_never_need_quoting(local: LocalRun, tmp_path: Path) -> None:
    from tests.local.sample import copy_photo

    odd = [copy_photo(PHOTOS[0], local.folder / name) for name in ("2024--summer.png", "bob's cat.png")]
    uris = [uri_of(p) for p in odd]
    done = local.engine.execute(sql.embed_batch(local.settings).with_params(uris=uris, run_id="r"))
    assert done.affected_rows == 2
    found = local.engine.execute(sql.vector_search(local.settings, uris[1], 1)).records()
    assert found == [{"uri": uris[0], "distance": pytest.approx(0.0, abs=1e-6)}]


# --- results too large to return -------------------------------------------------------------------


def test_a_response_too_large_is_refused(local: LocalRun) -> None:
    local.engine.response_limit = 100
    with pytest.raises(StatementError, match="Response too large to return"):
        local.engine.execute(Statement("probe", f"SELECT * FROM {OBJECTS}"))
