"""SQL rendering: golden text, sqlglot's BigQuery parse, and the shape of each statement."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from embed import sql
from embed.engines.base import parse_type
from embed.errors import EmbedError
from embed.identifiers import Sql
from embed.schema import expected_schema
from embed.settings import Settings
from tests.support.columns import PASS_THROUGH

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
    return {s.name: s.sql for s in sql.every_statement(settings)}


def golden_cases() -> list[tuple[str, str, str]]:
    """(variant, statement, golden file) for every golden the seed's example defines."""
    cases = [("default", name, f"{name}.sql") for name in all_statements_names()]
    cases += [
        ("json_512", "create_results_table", "create_results_table.json_512.sql"),
        ("json_512", "embed_batch", "embed_batch.json_512.sql"),
        ("json_512", "validate_results", "validate_results.json_512.sql"),
        ("video", "embed_batch", "embed_batch.video.sql"),
    ]
    return cases


def all_statements_names() -> list[str]:
    """Names of every statement, in run order, then those of other commands."""
    return [
        "create_results_table",
        "status_counts",
        "embedding_spaces",
        "create_model",
        "replace_model",
        "pending_objects",
        "embed_batch",
        "retryable_objects",
        "compact_results",
        "prune_deleted",
        "failure_summary",
        "validate_run",
        "validate_results",
        "vector_search",
        "text_search",
        "failed_objects",
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
    assert list(statements) == all_statements_names()
    kinds = {name: type(parse_one(text)) for name, text in statements.items()}
    assert kinds == {
        "create_results_table": exp.Create,
        "status_counts": exp.Select,
        "embedding_spaces": exp.Select,
        "create_model": exp.Create,
        "replace_model": exp.Create,
        "pending_objects": exp.Select,
        "embed_batch": exp.Insert,
        "retryable_objects": exp.Select,
        "compact_results": exp.Delete,
        "prune_deleted": exp.Delete,
        "failure_summary": exp.Select,
        "validate_run": exp.Select,
        "validate_results": exp.Select,
        "vector_search": exp.Select,
        "text_search": exp.Select,
        "failed_objects": exp.Select,
    }


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_parameter_a_statement_uses_is_declared_with_its_type(example_settings, variant: str) -> None:
    for statement in sql.every_statement(example_settings(**VARIANTS[variant])):
        used = {p.name for p in parse_one(statement.sql).find_all(exp.Parameter)}
        assert used == {p.name for p in statement.params}, statement.name
        for param in statement.params:
            parse_type(param.type)


def test_domain_scoped_project_parses(write_outputs, domain_scoped_value) -> None:
    from embed.settings import load_settings
    from tests.support.outputs import wrap

    settings = load_settings(outputs_file=write_outputs(wrap(domain_scoped_value)), environ={})
    for text in all_statements(settings).values():
        parse_one(text)
    assert "`example.com:my-project.bqml_tutorial.embedding_model`" in sql.create_model(settings).sql


def test_what_each_statement_needs_of_an_engine(example_settings) -> None:
    statements = {s.name: s for s in sql.every_statement(example_settings())}
    assert {n for n, s in statements.items() if s.calls_model} == {"embed_batch", "text_search"}
    assert {n for n, s in statements.items() if s.uses_connection} == {
        "create_model",
        "replace_model",
        "pending_objects",
        "embed_batch",
        "retryable_objects",
        "status_counts",
        "prune_deleted",
        "vector_search",
        "text_search",
        "failed_objects",
    }


def test_no_statement_streams_the_embeddings_back(example_settings) -> None:
    """Nothing but VECTOR_SEARCH and the aggregate validation reads the embedding column, and none returns it."""
    for statement in sql.every_statement(example_settings()):
        tree = parse_one(statement.sql)
        if not isinstance(tree, exp.Select):
            continue
        outputs = {e.alias_or_name for e in tree.expressions}
        assert "ml_generate_embedding_result" not in outputs and not tree.is_star, statement.name


# --- the model ----------------------------------------------------------------------


def test_create_model(example_settings) -> None:
    tree = parse_one(sql.create_model(example_settings()).sql)
    assert tree.args.get("exists") is True and not tree.args.get("replace")
    assert tree.this.sql("bigquery") == "`my-project.bqml_tutorial.embedding_model`"
    text = sql.create_model(example_settings(endpoint="multimodalembedding@002")).sql
    assert "REMOTE WITH CONNECTION `my-project.us.embed_conn`" in text
    assert "OPTIONS (ENDPOINT = 'multimodalembedding@002')" in text


def test_replace_model(example_settings) -> None:
    tree = parse_one(sql.replace_model(example_settings()).sql)
    assert tree.args.get("replace") is True and not tree.args.get("exists")


# --- the results table --------------------------------------------------------------


def columns(text: str) -> dict[str, str]:
    """Column name to BigQuery type of a CREATE TABLE."""
    schema = parse_one(text).this
    return {c.name: c.args["kind"].sql("bigquery") for c in schema.expressions if isinstance(c, exp.ColumnDef)}


def test_results_table_columns(example_settings) -> None:
    assert columns(sql.create_results_table(example_settings()).sql) == {
        **PASS_THROUGH,
        "ml_generate_embedding_result": "ARRAY<FLOAT64>",
        "ml_generate_embedding_status": "STRING",
        "ml_generate_embedding_start_sec": "INT64",
        "ml_generate_embedding_end_sec": "INT64",
        "embedding_endpoint": "STRING",
        "embedding_dimension": "INT64",
        "embedded_at": "TIMESTAMP",
        "attempts": "INT64",
        "run_id": "STRING",
    }
    text = sql.create_results_table(example_settings()).sql
    assert "IF NOT EXISTS" in text
    assert "PARTITION BY TIMESTAMP_TRUNC(embedded_at, DAY)" in text and "CLUSTER BY run_id, uri" in text


def test_results_table_columns_are_the_expected_schema(example_settings) -> None:
    for variant in VARIANTS.values():
        settings = example_settings(**variant)
        expected = [c.name for c in expected_schema(settings).columns if c.required]
        assert list(columns(sql.create_results_table(settings).sql)) == expected


def test_results_table_is_json_without_flatten(example_settings) -> None:
    cols = columns(sql.create_results_table(example_settings(flatten_json_output=False)).sql)
    assert cols["ml_generate_embedding_result"] == "JSON"


# --- embedding batches --------------------------------------------------------------


def generate_call(text: str) -> tuple[exp.Insert, exp.Select, dict[str, str]]:
    """The INSERT, the query passed to ML.GENERATE_EMBEDDING, and its STRUCT options."""
    insert = parse_one(text)
    assert isinstance(insert, exp.Insert)
    call = insert.find(exp.GenerateEmbedding)
    query = call.expression.this
    struct = call.args["params_struct"]
    options = {e.this.name: e.expression.sql("bigquery") for e in struct.expressions}
    return insert, query, options


def test_object_table_query_has_only_where(example_settings) -> None:
    """BigQuery allows only WHERE, ORDER BY and LIMIT in a query over an object table."""
    for variant in VARIANTS.values():
        _, query, _ = generate_call(sql.embed_batch(example_settings(**variant)).sql)
        used = {k for k, v in query.args.items() if v}
        assert used <= {"expressions", "from_", "where", "limit", "order"}, used
        assert query.args["from_"].sql("bigquery") == "FROM `my-project.bqml_tutorial.images`"
        assert [e.sql() for e in query.expressions] == ["*"]
        assert query.args["where"].sql("bigquery") == "WHERE uri IN UNNEST(@uris)"
        assert not list(query.find_all(exp.Subquery)) and not [s for s in query.find_all(exp.Select) if s is not query]


def test_batch_appends_and_never_updates(example_settings) -> None:
    """An INSERT bills what it reads, never the results table it appends to."""
    insert, _, _ = generate_call(sql.embed_batch(example_settings()).sql)
    target = insert.this
    assert target.this.sql("bigquery") == "`my-project.bqml_tutorial.image_embeddings`"
    stored = list(columns(sql.create_results_table(example_settings()).sql))
    assert [c.name for c in target.expressions] == stored
    source = insert.expression
    assert not [t for t in source.find_all(exp.Table) if "image_embeddings" in t.sql("bigquery")]
    text = sql.embed_batch(example_settings()).sql
    assert "IFNULL(prior.attempts, 0) + 1" in text and "LEFT JOIN UNNEST(@prior_attempts) AS prior" in text


def test_batch_parameters(example_settings) -> None:
    statement = sql.embed_batch(example_settings(output_dimensionality=256))
    assert {p.name: p.type for p in statement.params} == {
        "uris": "ARRAY<STRING>",
        "prior_attempts": sql.PRIOR_ATTEMPTS_TYPE,
        "endpoint": "STRING",
        "dimension": "INT64",
        "run_id": "STRING",
    }
    values = {p.name: p.value for p in statement.params}
    assert values["endpoint"] == "multimodalembedding@001" and values["dimension"] == 256
    bound = statement.with_params(uris=["gs://b/a'b--c.jpg"], run_id="r1")
    assert {p.name: p.value for p in bound.params}["uris"] == ["gs://b/a'b--c.jpg"]
    assert bound.sql == statement.sql
    with pytest.raises(KeyError):
        statement.with_params(nosuch=1)


def test_pending_objects_are_those_without_a_row_for_their_version_in_this_space(example_settings) -> None:
    text = sql.pending_objects(example_settings()).sql
    assert "r.generation = o.generation" in text and "WHERE r.uri IS NULL" in text
    assert "embedding_endpoint = @endpoint" in text and "embedding_dimension = @dimension" in text
    assert "ml_generate_embedding_result" not in text  # a key scan: never the embeddings


def test_retryable_objects_oldest_attempt_first(example_settings) -> None:
    tree = parse_one(sql.retryable_objects(example_settings()).sql)
    assert tree.args["order"].sql("bigquery") == "ORDER BY attempted_at, l.uri"
    assert "STARTS_WITH(l.status, 'A retryable error occurred:')" in tree.sql("bigquery")
    assert "ml_generate_embedding_result" not in tree.sql("bigquery")


def test_video_options(example_settings) -> None:
    _, _, options = generate_call(sql.embed_batch(example_settings(**VARIANTS["video"])).sql)
    assert options == {
        "flatten_json_output": "TRUE",
        "start_second": "0.0",
        "end_second": "60.0",
        "interval_seconds": "8.5",
    }


def test_struct_options(example_settings) -> None:
    assert generate_call(sql.embed_batch(example_settings()).sql)[2] == {"flatten_json_output": "TRUE"}
    text = sql.embed_batch(example_settings(flatten_json_output=False, output_dimensionality=128)).sql
    assert generate_call(text)[2] == {"flatten_json_output": "FALSE", "output_dimensionality": "128"}


# --- reporting ----------------------------------------------------------------------


def test_status_counts_columns(example_settings) -> None:
    tree = parse_one(sql.status_counts(example_settings()).sql)
    assert [e.alias for e in tree.expressions] == [
        "objects",
        "embedded",
        "failed_retryable",
        "failed_permanent",
        "pending",
        "deleted",
        "superseded_rows",
        "other_space_rows",
    ]
    text = sql.status_counts(example_settings()).sql
    assert "FULL OUTER JOIN per_uri AS p" in text
    assert "ml_generate_embedding_result" not in text


def test_failure_summary_groups_by_status(example_settings) -> None:
    tree = parse_one(sql.failure_summary(example_settings()).sql)
    assert [e.alias_or_name for e in tree.expressions] == ["status", "retryable", "result_rows"]
    assert tree.args["group"].sql("bigquery") == "GROUP BY status, retryable"


def test_failed_objects_lists_current_failures_of_current_objects_up_to_a_parameter(example_settings) -> None:
    statement = sql.failed_objects(example_settings(), 20)
    tree = parse_one(statement.sql)
    assert [e.alias_or_name for e in tree.expressions] == [
        "uri",
        "status",
        "retryable",
        "attempts",
        "last_attempt",
        "failed_total",
    ]
    # The limit is a typed parameter, never text in the SQL; the newest attempts come first.
    assert tree.args["limit"].sql("bigquery") == "LIMIT @limit"
    assert {p.name: (p.type, p.value) for p in statement.params}["limit"] == ("INT64", 20)
    assert tree.args["order"].sql("bigquery") == "ORDER BY last_attempt DESC, l.uri, l.status"
    # Only the current version of an object still in the object table, and only failed rows.
    text = statement.sql
    assert "o.generation = l.generation" in text and "NOT l.superseded" in text and "l.status != ''" in text
    assert "ml_generate_embedding_result" not in text
    for bad in (0, -1, True, 2.5):
        with pytest.raises(EmbedError, match="--limit"):
            sql.failed_objects(example_settings(), bad)


def test_compaction_keeps_only_the_newest_write_per_uri(example_settings) -> None:
    tree = parse_one(sql.compact_results(example_settings()).sql)
    assert "newer.uri = r.uri AND newer.embedded_at > r.embedded_at" in tree.sql("bigquery")


def test_run_validation_reads_only_the_runs_partitions(example_settings) -> None:
    scoped = parse_one(sql.validate_results(example_settings(), scoped=True).sql)
    where = scoped.find(exp.Where).sql("bigquery")
    assert where == "WHERE embedded_at >= @since AND run_id = @run_id"
    assert (
        not parse_one(sql.validate_results(example_settings()).sql)
        .find(exp.Where, bfs=False)
        .sql("bigquery")
        .startswith("WHERE embedded_at")
    )


# --- the rendering guard ------------------------------------------------------------


def test_unvetted_string_cannot_reach_sql() -> None:
    with pytest.raises(TypeError, match="unvetted"):
        sql._render("compact_results", results="`x`; DROP TABLE y; --")
    assert "DELETE FROM `p.d.t`" in sql._render("compact_results", results=Sql("`p.d.t`"))


def test_undefined_template_variable_fails() -> None:
    import jinja2

    with pytest.raises(jinja2.UndefinedError):
        sql._render("compact_results")


@pytest.mark.parametrize("bad", [True, "5", float("inf"), float("nan"), None])
def test_number_filter_refuses_non_numbers(bad) -> None:
    with pytest.raises(TypeError):
        sql._number(bad)


def test_boolean_filter_refuses_non_bools() -> None:
    with pytest.raises(TypeError):
        sql._boolean(1)


# --- similar images -----------------------------------------------------------------


def test_vector_search_is_cosine_over_current_successful_results(example_settings) -> None:
    statement = sql.vector_search(example_settings(), "gs://bucket/images/cat.jpg", 5)
    tree = parse_one(statement.sql)
    search = tree.find(exp.VectorSearch)
    kwargs = {k: search.args[k].expression.sql("bigquery") for k in ("top_k", "distance_type")}
    assert kwargs == {"top_k": "6", "distance_type": "'COSINE'"}  # one more: the image itself is left out
    assert search.args["column_to_search"].sql("bigquery") == "'ml_generate_embedding_result'"
    base = search.this.sql("bigquery")
    assert "JOIN `my-project.bqml_tutorial.images` AS o ON o.uri = r.uri AND o.generation = r.generation" in base
    assert "ml_generate_embedding_status = ''" in base and "embedding_endpoint = @endpoint" in base
    assert "uri = @image_uri" in search.args["query_table"].sql("bigquery")
    assert {p.name: p.value for p in statement.params}["image_uri"] == "gs://bucket/images/cat.jpg"
    assert [e.alias_or_name for e in tree.expressions] == ["uri", "distance"]
    assert tree.args["limit"].expression.sql() == "5"


@pytest.mark.parametrize("uri", ["gs://b/2024--summer.png", "gs://b/bob's cat.jpg", "gs://b/a\nb.jpg"])
def test_any_uri_is_a_parameter_never_text(example_settings, uri) -> None:
    statement = sql.vector_search(example_settings(), uri, 5)
    assert uri not in statement.sql and {p.name: p.value for p in statement.params}["image_uri"] == uri


def test_text_search_embeds_the_text_with_the_same_model(example_settings) -> None:
    statement = sql.text_search(example_settings(output_dimensionality=512), "bob's -- cat", 3)
    tree = parse_one(statement.sql)
    call = tree.find(exp.GenerateEmbedding)
    assert call.this.sql("bigquery") == "`my-project.bqml_tutorial.embedding_model`"
    assert call.expression.sql("bigquery") == "(SELECT @text AS content)"
    assert "512 AS output_dimensionality" in call.sql("bigquery")
    assert statement.calls_model and {p.name: p.value for p in statement.params}["text"] == "bob's -- cat"


@pytest.mark.parametrize("bad", [0, -1, True, "5"])
def test_vector_search_refuses_a_bad_top_k(example_settings, bad) -> None:
    from embed.errors import EmbedError

    with pytest.raises(EmbedError, match="--top-k"):
        sql.vector_search(example_settings(), "gs://b/a.jpg", bad)
