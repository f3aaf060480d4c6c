"""GoogleSQL, BigQuery's SQL front end, analyzes every statement the kit renders, over a catalog built
from the kit's own definitions; and refuses the mistakes BigQuery's front end would refuse."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from embed import googlesql, sql
from embed.engines.base import Statement
from embed.errors import EmbedError
from embed.schema import OBJECT_TABLE_COLUMNS, expected_schema
from embed.settings import Settings, load_settings
from tests.python.test_sql import VARIANTS
from tests.support import REPO
from tests.support.outputs import EXAMPLE_OUTPUTS

Analyzer = Callable[[Settings], Any]
GOLDEN_SQL_COMMAND = Path(__file__).parent / "golden" / "sql_command.txt"
TEMPLATES = Path(sql.__file__).parent / "templates"


def rendered(settings: Settings) -> list[Statement]:
    """Every statement the kit renders for ``settings``, with its query parameters: a run's, then the others."""
    return list(sql.every_statement(settings))


def rejection(analyzer: Any, text: str, params: dict[str, str] | None = None) -> str:
    """The reason GoogleSQL gives for refusing ``text``; fails the test if it is accepted."""
    with pytest.raises(googlesql.Rejected) as caught:
        analyzer.analyze(text, params)
    assert caught.value.exit_code == 1
    return caught.value.reason


# --- every statement the kit renders --------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_rendered_statement_is_accepted(googlesql_analyzer: Analyzer, example_settings, variant: str) -> None:
    settings = example_settings(**VARIANTS[variant])
    statements = rendered(settings)
    rejected = googlesql_analyzer(settings).check(statements)
    assert not rejected, "\n".join(str(r) for r in rejected)
    assert {s.name for s in statements} >= {"create_model", "embed_batch", "vector_search"}


def test_every_template_is_analyzed(monkeypatch, example_settings) -> None:
    """The statements above come from every template, so a new template cannot escape the analyzer."""
    used: set[str] = set()
    render = sql._render

    def recording(template: str, **context: Any) -> str:
        used.add(template)
        return render(template, **context)

    monkeypatch.setattr(sql, "_render", recording)
    for overrides in VARIANTS.values():
        rendered(example_settings(**overrides))
    # Templates starting with _ are parts the others include, analyzed within them.
    assert used == {p.name.removesuffix(".sql.j2") for p in TEMPLATES.glob("*.sql.j2") if not p.name.startswith("_")}


@pytest.mark.parametrize("variant", VARIANTS)
def test_results_table_is_created_as_the_catalog_declares(
    googlesql_analyzer: Analyzer, example_settings, variant: str
) -> None:
    """The CREATE TABLE the kit issues, resolved by GoogleSQL, has exactly schema.py's columns and types."""
    settings = example_settings(**VARIANTS[variant])
    analysis = googlesql_analyzer(settings).analyze(sql.create_results_table(settings).sql)
    assert analysis.kind == "CreateTableStmt"
    declared = [(c.name, c.sql_type) for c in expected_schema(settings).columns if c.required]
    assert list(analysis.columns) == declared


@pytest.mark.parametrize(("flatten", "embedding_type"), [(True, "ARRAY<FLOAT64>"), (False, "JSON")])
def test_generate_embedding_passes_its_input_through(
    googlesql_analyzer: Analyzer, example_settings, flatten: bool, embedding_type: str
) -> None:
    settings = example_settings(flatten_json_output=flatten)
    analyzer = googlesql_analyzer(settings)
    model, objects = settings.model.sql, settings.object_table.sql
    over_objects = analyzer.analyze(
        f"SELECT * FROM ML.GENERATE_EMBEDDING(MODEL {model},"
        f" (SELECT * FROM {objects} WHERE uri IN UNNEST(@uris)), STRUCT(TRUE AS flatten_json_output))",
        {"uris": "ARRAY<STRING>"},
    )
    embedding = [
        ("ml_generate_embedding_result", embedding_type),
        ("ml_generate_embedding_status", "STRING"),
        ("ml_generate_embedding_start_sec", "INT64"),
        ("ml_generate_embedding_end_sec", "INT64"),
    ]
    assert list(over_objects.columns) == [(c.name, c.sql_type) for c in OBJECT_TABLE_COLUMNS] + embedding
    over_text = analyzer.analyze(
        f"SELECT * FROM ML.GENERATE_EMBEDDING(MODEL {model}, (SELECT @text AS content), STRUCT(TRUE AS"
        " flatten_json_output))",
        {"text": "STRING"},
    )
    assert list(over_text.columns) == [("content", "STRING")] + embedding
    without_options = analyzer.analyze(f"SELECT * FROM ML.GENERATE_EMBEDDING(MODEL {model}, TABLE {objects})")
    assert without_options.columns == over_objects.columns


def test_vector_search_returns_query_base_and_distance(googlesql_analyzer: Analyzer, example_settings) -> None:
    settings = example_settings()
    results = settings.results_table.sql
    analysis = googlesql_analyzer(settings).analyze(
        f"SELECT * FROM VECTOR_SEARCH((SELECT uri, ml_generate_embedding_result FROM {results}),"
        f" 'ml_generate_embedding_result', (SELECT uri, ml_generate_embedding_result FROM {results}),"
        " top_k => @k, distance_type => 'COSINE')",
        {"k": "INT64"},
    )
    row = "STRUCT<uri STRING, ml_generate_embedding_result ARRAY<FLOAT64>>"
    assert analysis.columns == (("query", row), ("base", row), ("distance", "FLOAT64"))


@pytest.mark.parametrize(
    "type_",
    [
        "STRING",
        "INT64",
        "FLOAT64",
        "BOOL",
        "TIMESTAMP",
        "JSON",
        "ARRAY<STRING>",
        "ARRAY<STRUCT<uri STRING, attempts INT64>>",
    ],
)
def test_parameter_types_are_bigquery_type_strings(googlesql_analyzer: Analyzer, example_settings, type_: str) -> None:
    analysis = googlesql_analyzer(example_settings()).analyze("SELECT @p AS p", {"p": type_})
    assert analysis.columns == (("p", type_),)


def test_a_malformed_parameter_type_is_a_bug_not_a_rejection(googlesql_analyzer: Analyzer, example_settings) -> None:
    with pytest.raises(ValueError, match="ARRAY<STRING"):
        googlesql_analyzer(example_settings()).analyze("SELECT @p AS p", {"p": "ARRAY<STRING"})


# --- what GoogleSQL refuses ---------------------------------------------------------


@pytest.fixture
def default_analyzer(googlesql_analyzer: Analyzer, example_settings) -> Any:
    """The analyzer over the example's catalog."""
    return googlesql_analyzer(example_settings())


@pytest.fixture
def names(example_settings) -> dict[str, str]:
    """The example's quoted names, for hand-written statements."""
    s = example_settings()
    return {"objects": s.object_table.sql, "results": s.results_table.sql, "model": s.model.sql}


def test_refuses_a_misspelt_column(default_analyzer, names) -> None:
    reason = rejection(default_analyzer, f"SELECT urii FROM {names['objects']}")
    assert reason.startswith("Unrecognized name: urii; Did you mean uri? [at 1:8]")
    assert reason.endswith("SELECT urii FROM `my-project.bqml_tutorial.images`\n       ^")


def test_refuses_an_insert_value_of_the_wrong_type(default_analyzer, names) -> None:
    reason = rejection(
        default_analyzer,
        f"INSERT INTO {names['results']} (uri, embedded_at, attempts)"
        " VALUES ('gs://b/a.png', CURRENT_TIMESTAMP(), 'one')",
    )
    assert reason.startswith(
        "Value has type STRING which cannot be inserted into column attempts, which has type INT64"
    )
    reason = rejection(
        default_analyzer,
        f"INSERT INTO {names['results']} (uri, ml_generate_embedding_result) SELECT uri, size FROM {names['objects']}",
    )
    assert reason.startswith(
        "Query column 2 has type INT64 which cannot be inserted into column ml_generate_embedding_result,"
        " which has type ARRAY<FLOAT64>"
    )


def test_refuses_a_missing_parameter(default_analyzer, names) -> None:
    reason = rejection(default_analyzer, f"SELECT uri FROM {names['objects']} WHERE uri IN UNNEST(@uris)")
    assert reason.startswith("Query parameter 'uris' not found")


@pytest.mark.parametrize(
    ("type_", "says"),
    [
        ("STRING", "Second argument of IN UNNEST must be an array but was STRING"),
        ("ARRAY<INT64>", "No matching signature for operator IN UNNEST for argument types: STRING, ARRAY<INT64>"),
    ],
)
def test_refuses_a_parameter_of_the_wrong_type(default_analyzer, names, type_: str, says: str) -> None:
    text = f"SELECT uri FROM {names['objects']} WHERE uri IN UNNEST(@uris)"
    assert rejection(default_analyzer, text, {"uris": type_}).startswith(says)
    default_analyzer.analyze(text, {"uris": "ARRAY<STRING>"})


def test_refuses_generate_embedding_over_another_input(default_analyzer, names) -> None:
    reason = rejection(
        default_analyzer,
        f"SELECT * FROM ML.GENERATE_EMBEDDING(MODEL {names['model']}, (SELECT uri FROM {names['objects']}),"
        " STRUCT(TRUE AS flatten_json_output))",
    )
    assert reason.startswith("ML.GENERATE_EMBEDDING's input fits none of its forms: over an object table:")
    assert 'Required column "generation" not found in table passed as argument 2 of GENERATE_EMBEDDING' in reason
    assert 'over text (a `content` column): Function does not allow extra input column named "uri"' in reason


def test_refuses_generate_embedding_without_its_model(default_analyzer, names) -> None:
    reason = rejection(default_analyzer, f"SELECT * FROM ML.GENERATE_EMBEDDING(TABLE {names['objects']})")
    assert reason.startswith(
        "ML.GENERATE_EMBEDDING's input fits none of its forms: over an object table: No matching signature for"
        " ML.GENERATE_EMBEDDING"
    )
    assert "Signature requires at least 2 arguments, found 1 argument" in reason


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        ("top_k => 'six'", "Argument 5: Unable to coerce type STRING to expected type INT64"),
        (
            "6",
            "Positional argument at 4 is invalid because argument `query_column_to_search` can only be referred"
            " to by name",
        ),
    ],
)
def test_refuses_vector_search_with_wrong_arguments(default_analyzer, names, arguments: str, says: str) -> None:
    table = f"TABLE {names['results']}"
    reason = rejection(
        default_analyzer, f"SELECT * FROM VECTOR_SEARCH({table}, 'ml_generate_embedding_result', {table}, {arguments})"
    )
    assert reason.startswith("No matching signature for VECTOR_SEARCH") and says in reason


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            "SELECT uri FROM `my-project.bqml_tutorial.image_embedding`",
            "Table not found: `my-project.bqml_tutorial.image_embedding`; Did you mean"
            " my-project.bqml_tutorial.image_embeddings?",
        ),
        (
            "SELECT * FROM ML.GENERATE_EMBEDDING(MODEL `my-project.bqml_tutorial.other_model`,"
            " TABLE `my-project.bqml_tutorial.images`, STRUCT(TRUE AS flatten_json_output))",
            "Model not found: `my-project.bqml_tutorial.other_model`",
        ),
        (
            "CREATE MODEL `my-project.bqml_tutorial.m` REMOTE WITH CONNECTION `my-project.eu.other`"
            " OPTIONS (ENDPOINT = 'multimodalembedding@001')",
            "Connection not found: `my-project.eu.other`",
        ),
    ],
)
def test_refuses_what_the_catalog_lacks(default_analyzer, text: str, says: str) -> None:
    assert rejection(default_analyzer, text).startswith(says)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("SELECT CAST(1 AS FLOAT32)", "Type not found: FLOAT32"),
        ("SELECT CAST(1 AS INT32)", "Type not found: INT32"),
        ("SELECT CAST(NULL AS UUID)", "Type not found: UUID"),
        ("SELECT 1 AS qualify", "Syntax error: Unexpected keyword QUALIFY"),
    ],
)
def test_the_language_is_bigquerys(default_analyzer, text: str, says: str) -> None:
    """BigQuery's product mode, features and reserved keywords apply: GoogleSQL's default options accept
    the first two and the last, its maximum feature set the first three."""
    assert rejection(default_analyzer, text).startswith(says)


def test_a_crashed_analyzer_is_replaced(googlesql_analyzer: Analyzer, example_settings, monkeypatch) -> None:
    """After a trap inside the WebAssembly module its state is undefined; the next analysis starts another."""
    import wasmtime
    import zetasql.types as zt

    def crashing(settings: Settings, form: str) -> Callable[[Any], Any]:
        # A relation argument without its number of occurrences fails an internal check of the analyzer.
        relation = zt.FunctionArgumentType(kind=zt.SignatureArgumentKind.ARG_TYPE_RELATION)
        tvf = zt.TableValuedFunction(
            name_path=["T"],
            type=zt.FunctionEnums.TableValuedFunctionType.FIXED_OUTPUT_SCHEMA_TVF,
            signature=zt.FunctionSignature(argument=[relation], return_type=relation),
        )
        return lambda runtime: zt.SimpleCatalog(name="crash", custom_tvf=[tvf])

    settings = example_settings(results_table="my-project.bqml_tutorial.crash")
    before = googlesql.runtime.instance()
    with monkeypatch.context() as patch:
        patch.setattr(googlesql.catalog, "builder", crashing)
        with pytest.raises(wasmtime.Trap):
            googlesql_analyzer(settings).analyze("SELECT 1")
    assert googlesql_analyzer(example_settings()).analyze("SELECT 1 AS one").columns == (("one", "INT64"),)
    assert googlesql.runtime.instance() is not before


# --- `embed sql --check` -------------------------------------------------------------


def embed(*args: str, prelude: str = "") -> subprocess.CompletedProcess[str]:
    """Run the CLI in a subprocess with no EMBED_* variables, after ``prelude`` (Python)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMBED_")}
    code = f"{prelude}\nimport sys\nsys.argv = ['embed', *sys.argv[1:]]\nfrom embed.cli import main\nmain()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


def test_sql_check_analyzes_what_sql_prints(googlesql_analyzer: Analyzer) -> None:
    result = embed("sql", "--outputs", "terraform/outputs.example.json", "--check")
    assert result.returncode == 0, result.stderr
    assert result.stdout == GOLDEN_SQL_COMMAND.read_text(encoding="utf-8")
    count = len(re.findall(r"^-- \w+: ", result.stdout, re.MULTILINE))
    assert count == len(sql.run_statements(load_settings(outputs_file=EXAMPLE_OUTPUTS, environ={})))
    assert f"accepts all {count} statements" in result.stderr


def test_sql_check_without_the_extra_says_how_to_install_it() -> None:
    result = embed(
        "sql",
        "--outputs",
        "terraform/outputs.example.json",
        "--check",
        prelude="import sys; sys.modules['zetasql'] = None",
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert "pip install 'embed-kit[check]'" in result.stderr and "Traceback" not in result.stderr


def test_sql_help_names_the_extra() -> None:
    result = embed("sql", "--help", prelude="import os; os.environ['COLUMNS'] = '200'")
    assert result.returncode == 0
    assert "--check" in result.stdout and "pip install 'embed-kit[check]'" in result.stdout


def test_verify_lists_every_rejection(googlesql_analyzer: Analyzer, example_settings) -> None:
    settings = example_settings()
    good = sql.validate_results(settings)
    bad = [
        Statement("typo", "SELECT urii FROM `my-project.bqml_tutorial.images`"),
        Statement("no_table", "SELECT 1 FROM `my-project.bqml_tutorial.nothing`"),
    ]
    assert googlesql.verify(settings, [good]).endswith("accepts all 1 statements.")
    with pytest.raises(EmbedError) as caught:
        googlesql.verify(settings, [good, *bad])
    assert caught.value.exit_code == 1
    message = str(caught.value)
    assert message.startswith("GoogleSQL rejects 2 of 3 statements:\n  typo: Unrecognized name: urii")
    assert "\n  no_table: Table not found" in message and "validate_results" not in message


# --- the compiled module's cache ------------------------------------------------------

# A tiny module stands in for the 28 MB analyzer: the cache logic is the same, without the 20 s compile.
WAT = '(module (func (export "answer") (result i32) i32.const 42))'


@pytest.fixture
def wasm(tmp_path: Path) -> Path:
    pytest.importorskip("wasmtime")
    path = tmp_path / "tiny.wasm"
    path.write_text(WAT, encoding="utf-8")
    return path


def answer(engine: Any, module: Any) -> int:
    """Instantiate ``module`` and call its export, proving it loaded whole."""
    import wasmtime

    store = wasmtime.Store(engine)
    return wasmtime.Instance(store, module, []).exports(store)["answer"](store)


def test_module_is_compiled_once_then_loaded_from_the_cache(wasm: Path, tmp_path: Path, monkeypatch) -> None:
    import wasmtime

    cache = tmp_path / "cache"
    engine = wasmtime.Engine()
    assert answer(engine, googlesql.load_module(engine, wasm, cache)) == 42
    [saved] = cache.glob("tiny-*.cwasm")
    assert saved.name.endswith(f"-wasmtime-{metadata.version('wasmtime')}.cwasm")
    assert not [p for p in cache.iterdir() if p.name.startswith(".")], "no temporary file left behind"

    def no_compiling(*args: Any) -> None:
        raise AssertionError("compiled again despite the cache")

    monkeypatch.setattr(wasmtime.Module, "from_file", no_compiling)
    assert answer(engine, googlesql.load_module(engine, wasm, cache)) == 42


def test_a_damaged_cache_is_replaced_and_only_two_builds_are_kept(wasm: Path, tmp_path: Path) -> None:
    import wasmtime

    cache = tmp_path / "cache"
    cache.mkdir()
    engine = wasmtime.Engine()
    googlesql.load_module(engine, wasm, cache)
    [saved] = cache.glob("tiny-*.cwasm")
    saved.write_bytes(b"not a module")
    older, recent = (cache / f"tiny-{n}-wasmtime-1.0.0.cwasm" for n in ("0000", "1111"))
    for age, build in ((3600, older), (60, recent)):  # builds another environment used an hour, a minute ago
        build.write_bytes(b"another build")
        os.utime(build, (build.stat().st_atime - age, build.stat().st_mtime - age))
    assert answer(engine, googlesql.load_module(engine, wasm, cache)) == 42
    assert sorted(cache.glob("tiny-*.cwasm")) == sorted([saved, recent]) and saved.read_bytes() != b"not a module"


def test_an_unwritable_cache_only_warns(wasm: Path, tmp_path: Path, capsys) -> None:
    import wasmtime

    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache folder should be", encoding="utf-8")
    engine = wasmtime.Engine()
    assert answer(engine, googlesql.load_module(engine, wasm, blocked / "cache")) == 42
    assert "warning: cannot keep the compiled analyzer" in capsys.readouterr().err


def test_cache_dir_follows_xdg(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert googlesql.cache_dir() == tmp_path / "embed-kit"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert googlesql.cache_dir() == Path.home() / ".cache" / "embed-kit"
