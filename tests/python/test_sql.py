"""SQL rendering: golden text, sqlglot's BigQuery parse, and the shape of each statement."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import pytest
import sqlglot
from sqlglot import exp

from embed import sql
from embed.identifiers import Sql
from embed.settings import Settings

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("EMBED_UPDATE_GOLDEN") == "1"

VARIANTS: dict[str, dict[str, object]] = {
    "default": {},
    "json_512": {"flatten_json_output": False, "output_dimensionality": 512, "batch_size": 1000},
    "video": {"start_second": 0, "end_second": 60, "interval_seconds": 8.5},
}


def parse_one(text: str) -> exp.Expression:
    """Parse exactly one BigQuery statement, refusing sqlglot's opaque fallback."""
    trees = sqlglot.parse(text, read="bigquery")
    assert len(trees) == 1 and trees[0] is not None
    tree = trees[0]
    assert not list(tree.find_all(exp.Command)), f"sqlglot did not understand:\n{text}"
    return tree


def all_statements(settings: Settings) -> dict[str, str]:
    """Every statement function's output, including conditional ones."""
    return {s.name: s.sql for s in sql.run_statements(settings)} | {
        "prune_superseded": sql.prune_superseded(settings),
        "vector_search": sql.vector_search(settings, "gs://bucket/images/cat.jpg", 5),
    }


def golden_cases() -> list[tuple[str, str, str]]:
    """(variant, statement, golden file) for every golden the seed's example defines."""
    cases = [("default", name, f"{name}.sql") for name in all_statements_names()]
    cases += [
        ("json_512", "create_results_table", "create_results_table.json_512.sql"),
        ("json_512", "embed_batch", "embed_batch.json_512.sql"),
        ("video", "embed_batch", "embed_batch.video.sql"),
    ]
    return cases


def all_statements_names() -> list[str]:
    """Names of every statement, in run order, with prune last."""
    return [
        "create_model",
        "replace_model",
        "create_results_table",
        "embed_batch",
        "retry_batch",
        "status_counts",
        "failure_summary",
        "read_results",
        "prune_superseded",
        "vector_search",
    ]


@pytest.mark.parametrize(("variant", "name", "filename"), golden_cases())
def test_golden(example_settings: Callable[..., Settings], variant: str, name: str, filename: str) -> None:
    text = all_statements(example_settings(**VARIANTS[variant]))[name] + "\n"
    path = GOLDEN / filename
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing golden {path}; create it with EMBED_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")


def test_no_stray_goldens() -> None:
    expected = {filename for _, _, filename in golden_cases()} | {"sql_command.txt"}
    assert {p.name for p in GOLDEN.iterdir()} == expected


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_statement_parses(example_settings, variant: str) -> None:
    statements = all_statements(example_settings(**VARIANTS[variant]))
    assert set(statements) == set(all_statements_names())
    kinds = {name: type(parse_one(text)) for name, text in statements.items()}
    assert kinds == {
        "create_model": exp.Create,
        "replace_model": exp.Create,
        "create_results_table": exp.Create,
        "embed_batch": exp.Merge,
        "retry_batch": exp.Merge,
        "status_counts": exp.Select,
        "failure_summary": exp.Select,
        "read_results": exp.Select,
        "prune_superseded": exp.Delete,
        "vector_search": exp.Select,
    }


def test_domain_scoped_project_parses(write_outputs, example_value) -> None:
    from embed.settings import load_settings
    from tests.python.conftest import wrap

    p = "example.com:my-project"
    example_value.update(
        project_id=p,
        connection=f"{p}.us.embed_conn",
        object_table=f"{p}.bqml_tutorial.images",
        model=f"{p}.bqml_tutorial.embedding_model",
        results_table=f"{p}.bqml_tutorial.image_embeddings",
    )
    settings = load_settings(outputs_file=write_outputs(wrap(example_value)), environ={})
    for text in all_statements(settings).values():
        parse_one(text)
    assert "`example.com:my-project.bqml_tutorial.embedding_model`" in sql.create_model(settings)


def test_run_statements_order_and_video_prune(example_settings) -> None:
    names = [s.name for s in sql.run_statements(example_settings())]
    assert names == [n for n in all_statements_names() if n not in ("prune_superseded", "vector_search")]
    video = [s.name for s in sql.run_statements(example_settings(**VARIANTS["video"]))]
    assert "prune_superseded" in video and video.index("prune_superseded") > video.index("retry_batch")


def test_read_results_reads_every_row_of_the_results_table(example_settings) -> None:
    tree = parse_one(sql.read_results(example_settings()))
    assert isinstance(tree, exp.Select) and tree.is_star
    assert tree.find(exp.Table).sql("bigquery") == "`my-project.bqml_tutorial.image_embeddings`"
    assert not tree.args.get("where") and not tree.args.get("limit")


# --- the model ----------------------------------------------------------------------


def test_create_model(example_settings) -> None:
    tree = parse_one(sql.create_model(example_settings()))
    assert tree.args.get("exists") is True and not tree.args.get("replace")
    assert tree.this.sql("bigquery") == "`my-project.bqml_tutorial.embedding_model`"
    text = sql.create_model(example_settings(endpoint="multimodalembedding@002"))
    assert "REMOTE WITH CONNECTION `my-project.us.embed_conn`" in text
    assert "OPTIONS (ENDPOINT = 'multimodalembedding@002')" in text


def test_replace_model(example_settings) -> None:
    tree = parse_one(sql.replace_model(example_settings()))
    assert tree.args.get("replace") is True and not tree.args.get("exists")


# --- the results table --------------------------------------------------------------


def columns(text: str) -> dict[str, str]:
    """Column name to BigQuery type of a CREATE TABLE."""
    schema = parse_one(text).this
    return {c.name: c.args["kind"].sql("bigquery") for c in schema.expressions if isinstance(c, exp.ColumnDef)}


def test_results_table_columns(example_settings) -> None:
    assert columns(sql.create_results_table(example_settings())) == {
        "uri": "STRING",
        "generation": "INT64",
        "content_type": "STRING",
        "size": "INT64",
        "md5_hash": "STRING",
        "updated": "TIMESTAMP",
        "ml_generate_embedding_result": "ARRAY<FLOAT64>",
        "ml_generate_embedding_status": "STRING",
        "ml_generate_embedding_start_sec": "INT64",
        "ml_generate_embedding_end_sec": "INT64",
        "embedded_at": "TIMESTAMP",
        "attempts": "INT64",
    }
    assert "IF NOT EXISTS" in sql.create_results_table(example_settings())


def test_results_table_is_json_without_flatten(example_settings) -> None:
    cols = columns(sql.create_results_table(example_settings(flatten_json_output=False)))
    assert cols["ml_generate_embedding_result"] == "JSON"


# --- embedding batches --------------------------------------------------------------


def generate_call(text: str) -> tuple[exp.Expression, exp.Select, dict[str, str]]:
    """The MERGE, the query passed to ML.GENERATE_EMBEDDING, and its STRUCT options."""
    merge = parse_one(text)
    assert isinstance(merge, exp.Merge)
    selects = [
        s for s in merge.find_all(exp.Select) if s.args.get("from_") and "images" in s.args["from_"].sql("bigquery")
    ]
    inner = [s for s in selects if s.args.get("limit")]
    assert len(inner) == 1, "expected one LIMITed query over the object table"
    struct = next(merge.find_all(exp.Struct))
    options = {e.this.name: e.expression.sql("bigquery") for e in struct.expressions}
    return merge, inner[0], options


def test_generate_embedding_query_uses_only_where_and_limit(example_settings) -> None:
    for text in (sql.embed_batch(example_settings()), sql.retry_batch(example_settings())):
        _, query, _ = generate_call(text)
        used = {k for k, v in query.args.items() if v}
        assert used <= {"expressions", "from_", "where", "limit", "order"}, used
        assert query.args["from_"].sql("bigquery") == "FROM `my-project.bqml_tutorial.images`"
        assert [e.sql() for e in query.expressions] == ["*"]
        assert "ML.GENERATE_EMBEDDING(\n    MODEL `my-project.bqml_tutorial.embedding_model`," in text


def test_batch_size_is_the_limit(example_settings) -> None:
    _, query, _ = generate_call(sql.embed_batch(example_settings(batch_size=1234)))
    assert query.args["limit"].expression.sql() == "1234"


def test_new_or_changed_selection(example_settings) -> None:
    _, query, _ = generate_call(sql.embed_batch(example_settings()))
    where = query.args["where"].this
    assert isinstance(where, exp.Not) and isinstance(where.this, exp.In)
    sub = where.this.args["query"].this
    join = sub.args["joins"][0].sql("bigquery")
    # Done = a result for the same uri and generation that is at least as recent as the object.
    for condition in ("current_object.uri = prior.uri", "current_object.generation = prior.generation",
                      "current_object.updated <= prior.updated"):
        assert condition in join
    assert "STARTS_WITH" not in sub.sql("bigquery")


def test_retry_selection(example_settings) -> None:
    _, query, _ = generate_call(sql.retry_batch(example_settings()))
    where = query.args["where"].this
    assert isinstance(where, exp.In)
    sub = where.args["query"].this
    assert sub.args["where"].sql("bigquery") == (
        "WHERE STARTS_WITH(prior.ml_generate_embedding_status, 'A retryable error occurred:')"
    )
    assert "current_object.generation = prior.generation" in sub.args["joins"][0].sql("bigquery")


def test_merge_is_keyed_by_uri_and_updates_or_inserts(example_settings) -> None:
    merge, _, _ = generate_call(sql.embed_batch(example_settings()))
    assert merge.this.sql("bigquery") == "`my-project.bqml_tutorial.image_embeddings` AS r"
    assert merge.args["on"].sql("bigquery") == "r.uri = e.uri"
    whens = merge.args["whens"].expressions
    assert [bool(w.args.get("matched")) for w in whens] == [True, False]
    updated = {e.this.name for e in whens[0].args["then"].expressions}
    inserted = [c.name for c in whens[1].args["then"].this.expressions]
    stored = set(columns(sql.create_results_table(example_settings())))
    assert updated == stored - {"uri"}
    assert set(inserted) == stored
    assert "attempts = IF(r.generation = e.generation AND r.updated = e.updated, r.attempts + 1, 1)" in (
        sql.embed_batch(example_settings())
    )


def test_video_merge_is_keyed_by_segment(example_settings) -> None:
    merge, _, options = generate_call(sql.embed_batch(example_settings(**VARIANTS["video"])))
    on = merge.args["on"].sql("bigquery")
    assert "r.uri = e.uri" in on and "ml_generate_embedding_start_sec" in on
    assert options == {
        "flatten_json_output": "TRUE",
        "start_second": "0.0",
        "end_second": "60.0",
        "interval_seconds": "8.5",
    }


def test_struct_options(example_settings) -> None:
    assert generate_call(sql.embed_batch(example_settings()))[2] == {"flatten_json_output": "TRUE"}
    options = generate_call(sql.embed_batch(example_settings(flatten_json_output=False, output_dimensionality=128)))[2]
    assert options == {"flatten_json_output": "FALSE", "output_dimensionality": "128"}


# --- reporting ----------------------------------------------------------------------


def test_status_counts_columns(example_settings) -> None:
    tree = parse_one(sql.status_counts(example_settings()))
    assert [e.alias for e in tree.expressions] == [
        "objects",
        "embedded",
        "failed_retryable",
        "failed_permanent",
        "pending",
    ]
    text = sql.status_counts(example_settings())
    assert "LEFT JOIN `my-project.bqml_tutorial.image_embeddings` AS r" in text
    assert "r.generation = o.generation" in text


def test_failure_summary_groups_by_status(example_settings) -> None:
    tree = parse_one(sql.failure_summary(example_settings()))
    assert [e.alias for e in tree.expressions] == ["status", "retryable", "result_rows"]
    assert tree.args["group"].sql("bigquery") == "GROUP BY status, retryable"


def test_prune_keeps_only_the_newest_write_per_uri(example_settings) -> None:
    tree = parse_one(sql.prune_superseded(example_settings()))
    assert "newer.uri = r.uri AND newer.embedded_at > r.embedded_at" in tree.sql("bigquery")


# --- the rendering guard ------------------------------------------------------------


def test_unvetted_string_cannot_reach_sql() -> None:
    with pytest.raises(TypeError, match="unvetted"):
        sql._render("prune_superseded", results="`x`; DROP TABLE y; --")
    assert "DELETE FROM `p.d.t`" in sql._render("prune_superseded", results=Sql("`p.d.t`"))


def test_undefined_template_variable_fails() -> None:
    import jinja2

    with pytest.raises(jinja2.UndefinedError):
        sql._render("prune_superseded")


@pytest.mark.parametrize("bad", [True, "5", float("inf"), float("nan"), None])
def test_number_filter_refuses_non_numbers(bad) -> None:
    with pytest.raises(TypeError):
        sql._number(bad)


def test_boolean_filter_refuses_non_bools() -> None:
    with pytest.raises(TypeError):
        sql._boolean(1)


# --- similar images -----------------------------------------------------------------


def test_vector_search_is_cosine_over_successful_results(example_settings) -> None:
    tree = parse_one(sql.vector_search(example_settings(), "gs://bucket/images/cat.jpg", 5))
    search = tree.find(exp.VectorSearch)
    assert search is not None
    kwargs = {k: search.args[k].expression.sql("bigquery") for k in ("top_k", "distance_type")}
    assert kwargs == {"top_k": "6", "distance_type": "'COSINE'"}  # one more: the image itself is left out
    assert search.args["column_to_search"].sql("bigquery") == "'ml_generate_embedding_result'"
    for side in (search.this, search.args["query_table"]):
        assert side.find(exp.Table).sql("bigquery") == "`my-project.bqml_tutorial.image_embeddings`"
        assert "ml_generate_embedding_status = ''" in side.sql("bigquery")
    assert "uri = 'gs://bucket/images/cat.jpg'" in search.args["query_table"].sql("bigquery")
    assert [e.alias_or_name for e in tree.expressions] == ["uri", "distance"]
    assert tree.args["order"].sql("bigquery") == "ORDER BY neighbour.distance, neighbour.uri"
    assert tree.args["limit"].expression.sql() == "5"


@pytest.mark.parametrize("bad", ["gs://b/it's.jpg", "gs://b/a\nb.jpg"])
def test_vector_search_refuses_a_uri_that_could_leave_its_quotes(example_settings, bad) -> None:
    from embed.errors import EmbedError

    with pytest.raises(EmbedError, match="cannot use"):
        sql.vector_search(example_settings(), bad.replace("\\n", "\n"), 5)


@pytest.mark.parametrize("bad", [0, -1, True, "5"])
def test_vector_search_refuses_a_bad_top_k(example_settings, bad) -> None:
    from embed.errors import EmbedError

    with pytest.raises(EmbedError, match="--top-k"):
        sql.vector_search(example_settings(), "gs://b/a.jpg", bad)
