"""Settings: the `embed` output read, merged with overrides, and validated before any query."""

from __future__ import annotations

import json
import re
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from embed.errors import EmbedError
from embed.identifiers import ConnectionRef, ModelRef, TableRef
from embed.settings import OUTPUT_FIELDS, Settings, load_settings
from tests.support import REPO
from tests.support.outputs import EXAMPLE_OUTPUTS, wrap

REQUIRED = [f for f in OUTPUT_FIELDS if f != "endpoint"]


def load(path: Path, overrides: dict[str, object] | None = None, **env: str) -> Settings:
    """Load settings from an outputs file with the given environment only."""
    return load_settings(overrides, outputs_file=path, environ=env)


def refused(fn: Callable[[], object]) -> str:
    """Run ``fn``, expect an EmbedError with exit code 2, and return its message."""
    with pytest.raises(EmbedError) as info:
        fn()
    assert info.value.exit_code == 2
    return str(info.value)


def fake_terraform(tmp_path: Path, script: str) -> str:
    """Write an executable stand-in for the terraform binary and return its path."""
    path = tmp_path / "terraform"
    path.write_text("#!/bin/sh\n" + script, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


# --- the happy path -----------------------------------------------------------------


def test_example_outputs_load_into_typed_settings() -> None:
    s = load(EXAMPLE_OUTPUTS)
    assert s.project_id == "my-project"
    assert s.location == "US"
    assert s.dataset_id == "bqml_tutorial"
    assert s.connection == ConnectionRef("my-project", "us", "embed_conn")
    assert s.connection_service_account.startswith("bqcx-123456789012-abcd@")
    assert s.object_table == TableRef("my-project", "bqml_tutorial", "images")
    assert s.model == ModelRef("my-project", "bqml_tutorial", "embedding_model")
    assert s.results_table == TableRef("my-project", "bqml_tutorial", "image_embeddings")
    assert s.endpoint == "multimodalembedding@001"
    assert (s.batch_size, s.max_retries, s.flatten_json_output, s.output_dimensionality) == (
        None,
        3,
        True,
        None,
    )  # batch size: auto
    assert not s.is_video
    assert s.results_table.sql == "`my-project.bqml_tutorial.image_embeddings`"
    assert s.connection.sql == "`my-project.us.embed_conn`"


def test_settings_are_frozen() -> None:
    s = load(EXAMPLE_OUTPUTS)
    with pytest.raises(AttributeError):
        s.batch_size = 1  # type: ignore[misc]


def test_bare_embed_object_is_accepted(write_outputs, example_value) -> None:
    assert load(write_outputs(example_value)) == load(EXAMPLE_OUTPUTS)


def test_endpoint_defaults_when_absent(write_outputs, example_value) -> None:
    del example_value["endpoint"]
    assert load(write_outputs(wrap(example_value))).endpoint == "multimodalembedding@001"


def test_domain_scoped_project(write_outputs, domain_scoped_value) -> None:
    p = domain_scoped_value["project_id"]
    s = load(write_outputs(wrap(domain_scoped_value)))
    assert s.model == ModelRef(p, "bqml_tutorial", "embedding_model")
    assert s.results_table.sql == f"`{p}.bqml_tutorial.image_embeddings`"


def test_connection_location_compares_case_insensitively(write_outputs, example_value) -> None:
    example_value["connection"] = "my-project.US.embed_conn"
    assert load(write_outputs(wrap(example_value))).connection.location == "US"


def test_outputs_example_matches_the_root_stack_output() -> None:
    """terraform/outputs.example.json and the `embed` output in terraform/outputs.tf stay in step."""
    text = (REPO / "terraform" / "outputs.tf").read_text(encoding="utf-8")
    block = re.search(r'output\s+"embed"\s*{.*?value\s*=\s*{(.*?)\n\s*}', text, re.S)
    assert block, "no `embed` output with an object value in terraform/outputs.tf"
    stack_fields = set(re.findall(r"^\s*(\w+)\s*=", block.group(1), re.M))
    document = json.loads(EXAMPLE_OUTPUTS.read_text(encoding="utf-8"))
    assert list(document) == ["embed"]
    assert document["embed"]["sensitive"] is False
    type_fields = document["embed"]["type"][1]
    assert set(type_fields) == set(document["embed"]["value"]) == stack_fields == set(OUTPUT_FIELDS)
    assert all(t == "string" for t in type_fields.values())


# --- precedence ---------------------------------------------------------------------


def test_precedence_flag_over_env_over_outputs(write_outputs, example_value) -> None:
    path = write_outputs(wrap(example_value))
    env = {"EMBED_RESULTS_TABLE": "my-project.bqml_tutorial.from_env", "EMBED_BATCH_SIZE": "77"}
    assert load(path).results_table.table == "image_embeddings"
    assert load(path, **env).results_table.table == "from_env"
    assert load(path, **env).batch_size == 77
    flags = {"results_table": "my-project.bqml_tutorial.from_flag", "batch_size": 9}
    s = load(path, flags, **env)
    assert (s.results_table.table, s.batch_size) == ("from_flag", 9)


def test_none_override_does_not_mask_lower_sources(write_outputs, example_value) -> None:
    s = load(write_outputs(wrap(example_value)), {"model": None, "batch_size": None}, EMBED_BATCH_SIZE="12")
    assert (s.model.model, s.batch_size) == ("embedding_model", 12)


def test_env_supplies_tuning_values() -> None:
    s = load(
        EXAMPLE_OUTPUTS,
        EMBED_MAX_RETRIES="5",
        EMBED_FLATTEN_JSON_OUTPUT="false",
        EMBED_OUTPUT_DIMENSIONALITY="256",
    )
    assert (s.max_retries, s.flatten_json_output, s.output_dimensionality) == (5, False, 256)
    video = load(EXAMPLE_OUTPUTS, EMBED_START_SECOND="2.5", EMBED_END_SECOND="30", EMBED_INTERVAL_SECONDS="10")
    assert (video.start_second, video.end_second, video.interval_seconds, video.is_video) == (2.5, 30.0, 10.0, True)


def test_environment_and_flags_alone_skip_terraform(example_value, tmp_path) -> None:
    env = {f"EMBED_{k.upper()}": v for k, v in example_value.items() if k != "results_table"}
    flags = {"results_table": example_value["results_table"]}
    # A missing terraform directory would be an error if terraform were consulted.
    s = load_settings(flags, tf_dir=tmp_path / "absent", environ=env)
    assert s == load(EXAMPLE_OUTPUTS)


def test_outputs_file_is_read_even_when_env_is_complete(example_value, tmp_path) -> None:
    env = {f"EMBED_{k.upper()}": v for k, v in example_value.items()}
    message = refused(lambda: load_settings(outputs_file=tmp_path / "missing.json", environ=env))
    assert "not found" in message


def test_process_environment_is_the_default(monkeypatch) -> None:
    monkeypatch.setenv("EMBED_BATCH_SIZE", "33")
    assert load_settings(outputs_file=EXAMPLE_OUTPUTS).batch_size == 33


def test_unknown_override_is_refused() -> None:
    assert "unknown setting" in refused(lambda: load(EXAMPLE_OUTPUTS, {"batchsize": 3}))


# --- bad outputs --------------------------------------------------------------------


def test_outputs_file_not_found(tmp_path) -> None:
    message = refused(lambda: load(tmp_path / "nope.json"))
    assert "nope.json" in message and "not found" in message and "terraform output -json" in message


def test_outputs_file_invalid_json(tmp_path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"embed": {', encoding="utf-8")
    message = refused(lambda: load(path))
    assert "not valid JSON" in message and "broken.json" in message


def test_outputs_file_not_an_object(write_outputs) -> None:
    assert "expected a JSON object" in refused(lambda: load(write_outputs(["embed"])))


@pytest.mark.parametrize("document", [{}, {"something_else": {"value": 1}}])
def test_missing_embed_output(write_outputs, document) -> None:
    message = refused(lambda: load(write_outputs(document)))
    assert "no `embed` output" in message and "make apply" in message


def test_embed_output_without_value(write_outputs, example_value) -> None:
    message = refused(lambda: load(write_outputs({"embed": example_value})))
    assert "has no `value`" in message


def test_embed_value_not_an_object(write_outputs) -> None:
    message = refused(lambda: load(write_outputs(wrap("my-project"))))
    assert "must be an object" in message


@pytest.mark.parametrize("field", REQUIRED)
def test_missing_field(write_outputs, example_value, field) -> None:
    del example_value[field]
    message = refused(lambda: load(write_outputs(wrap(example_value))))
    assert field in message and f"EMBED_{field.upper()}" in message and "make apply" in message


def test_missing_field_can_be_supplied_by_env(write_outputs, example_value) -> None:
    del example_value["model"]
    s = load(write_outputs(wrap(example_value)), EMBED_MODEL="my-project.bqml_tutorial.other")
    assert s.model.model == "other"


@pytest.mark.parametrize("field", OUTPUT_FIELDS)
@pytest.mark.parametrize("bad", [123, None, ["x"], {"a": "b"}, True])
def test_wrong_type(write_outputs, example_value, field, bad) -> None:
    example_value[field] = bad
    message = refused(lambda: load(write_outputs(wrap(example_value))))
    assert field in message and "must be a string" in message


@pytest.mark.parametrize(
    ("field", "bad", "says"),
    [
        ("project_id", "My_Project", "project id"),
        ("project_id", "abc", "project id"),
        ("location", "mars", "BigQuery location"),
        ("dataset_id", "bqml-tutorial", "dataset id"),
        ("connection", "my-project.embed_conn", "connection reference"),
        ("connection", "projects/my-project/locations/us/connections/embed_conn", "connection reference"),
        ("object_table", "bqml_tutorial.images", "table reference"),
        ("model", "my-project.bqml_tutorial.embedding-model", "model reference"),
        ("results_table", "my-project..image_embeddings", "table reference"),
        ("endpoint", "", "model endpoint"),
        ("connection_service_account", "not-an-email", "service account"),
    ],
)
def test_bad_identifier(write_outputs, example_value, field, bad, says) -> None:
    example_value[field] = bad
    message = refused(lambda: load(write_outputs(wrap(example_value))))
    assert field in message and says in message and "A valid value looks like" in message


def test_location_mismatch(write_outputs, example_value) -> None:
    example_value["connection"] = "my-project.eu.embed_conn"
    message = refused(lambda: load(write_outputs(wrap(example_value))))
    assert "'eu'" in message and "'US'" in message and "location" in message


def test_region_location_mismatch(write_outputs, example_value) -> None:
    example_value.update(location="us-central1")
    message = refused(lambda: load(write_outputs(wrap(example_value))))
    assert "us-central1" in message and "share one location" in message


@pytest.mark.parametrize("field", ["object_table", "model", "results_table"])
def test_object_in_another_dataset_is_refused(write_outputs, example_value, field) -> None:
    example_value[field] = "my-project.elsewhere.thing"
    message = refused(lambda: load(write_outputs(wrap(example_value))))
    assert field in message and "my-project.bqml_tutorial" in message and "location" in message


# --- injection ----------------------------------------------------------------------

INJECTIONS = ["`", ";", "--", "/*", "'", '"', "\n", " ", "\\"]
SAFE_VALUES = {
    "project_id": "my-project",
    "location": "US",
    "dataset_id": "bqml_tutorial",
    "connection": "my-project.us.embed_conn",
    "connection_service_account": "bqcx-1@gcp-sa-bigquery-condel.iam.gserviceaccount.com",
    "object_table": "my-project.bqml_tutorial.images",
    "model": "my-project.bqml_tutorial.embedding_model",
    "results_table": "my-project.bqml_tutorial.image_embeddings",
    "endpoint": "multimodalembedding@001",
}


@pytest.mark.parametrize("fragment", INJECTIONS, ids=repr)
@pytest.mark.parametrize("field", OUTPUT_FIELDS)
@pytest.mark.parametrize("where", ["inside", "end"])
def test_injection_is_refused(write_outputs, example_value, field, fragment, where) -> None:
    safe = SAFE_VALUES[field]
    cut = len(safe) // 2 if where == "inside" else len(safe)
    example_value[field] = safe[:cut] + fragment + "x" + safe[cut:]
    message = refused(lambda: load(write_outputs(wrap(example_value))))
    assert field in message


@pytest.mark.parametrize("fragment", INJECTIONS, ids=repr)
def test_injection_via_flag_names_the_flag(fragment) -> None:
    message = refused(lambda: load(EXAMPLE_OUTPUTS, {"results_table": f"my-project.bqml_tutorial.t{fragment}x"}))
    assert "--results-table" in message


# --- run tuning ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 216_001}, "216,000"),
        ({"batch_size": "many"}, "whole number"),
        ({"max_retries": -1}, "max_retries"),
        ({"output_dimensionality": 1024}, "128, 256, 512 or 1408"),
        ({"output_dimensionality": 256, "interval_seconds": 8}, "refuses it for video"),
        ({"end_second": 121}, "at most 120"),
        ({"start_second": -1}, "0 or more"),
        ({"start_second": 30, "end_second": 20}, "less than end_second"),
        ({"interval_seconds": 3.9}, "at least 4"),
        ({"interval_seconds": 120}, "less than 120"),
        ({"interval_seconds": float("nan")}, "finite"),
        ({"flatten_json_output": "perhaps"}, "true or false"),
        ({"start_second": "soon"}, "number of seconds"),
    ],
)
def test_bad_tuning(overrides: dict[str, Any], says: str) -> None:
    assert says in refused(lambda: load(EXAMPLE_OUTPUTS, overrides))


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"EMBED_BATCH_SIZE": "abc"}, "EMBED_BATCH_SIZE must be a whole number, got 'abc'"),
        ({"EMBED_BATCH_SIZE": "0"}, "(set by EMBED_BATCH_SIZE)"),
        ({"EMBED_MAX_RETRIES": "1.5"}, "EMBED_MAX_RETRIES must be a whole number"),
        ({"EMBED_FLATTEN_JSON_OUTPUT": "maybe"}, "EMBED_FLATTEN_JSON_OUTPUT must be true or false"),
        ({"EMBED_END_SECOND": "later"}, "EMBED_END_SECOND must be a number of seconds"),
        ({"EMBED_INTERVAL_SECONDS": "2"}, "(set by EMBED_INTERVAL_SECONDS)"),
    ],
)
def test_bad_tuning_from_env_names_the_variable(env: dict[str, str], says: str) -> None:
    assert says in refused(lambda: load(EXAMPLE_OUTPUTS, **env))


def test_bad_tuning_from_a_flag_names_the_flag() -> None:
    assert "(set by --batch-size)" in refused(lambda: load(EXAMPLE_OUTPUTS, {"batch_size": 0}))


def test_a_rule_between_two_fields_names_where_each_was_set() -> None:
    message = refused(lambda: load(EXAMPLE_OUTPUTS, {"end_second": 5}, EMBED_START_SECOND="10"))
    assert "must be less than end_second" in message and "(set by EMBED_START_SECOND and --end-second)" in message


@pytest.mark.parametrize("dims", [128, 256, 512, 1408])
def test_valid_dimensions(dims: int) -> None:
    assert load(EXAMPLE_OUTPUTS, {"output_dimensionality": dims}).output_dimensionality == dims


def test_tuning_limits_are_inclusive() -> None:
    s = load(EXAMPLE_OUTPUTS, {"batch_size": 216_000, "start_second": 0, "end_second": 120, "interval_seconds": 4})
    assert (s.batch_size, s.end_second, s.interval_seconds) == (216_000, 120.0, 4.0)


# --- terraform output -json ---------------------------------------------------------


def test_terraform_outputs_are_read_from_terraform_output_json(tmp_path, example_document) -> None:
    saved = tmp_path / "saved.json"
    saved.write_text(json.dumps(example_document), encoding="utf-8")
    # The stand-in checks it is asked for `output -json` in the working directory given.
    bin_path = fake_terraform(
        tmp_path, f'[ "$1 $2" = "output -json" ] && [ "$PWD" = "{tmp_path}" ] && cat "{saved}" || exit 9\n'
    )
    s = load_settings(tf_dir=tmp_path, environ={}, terraform_bin=bin_path)
    assert s == load(EXAMPLE_OUTPUTS)


def test_terraform_failure_passes_on_terraforms_own_message(tmp_path) -> None:
    said = 'Error: Backend initialization required, please run "terraform init"\n\nReason: Initial configuration'
    bin_path = fake_terraform(tmp_path, f"printf '%s\\n' '{said}' >&2\nexit 1\n")
    message = refused(lambda: load_settings(tf_dir=tmp_path, environ={}, terraform_bin=bin_path))
    # Terraform's words, line by line, not bytes escaped by a wrapper; then what to do.
    assert '  Error: Backend initialization required, please run "terraform init"\n' in message
    assert "  Reason: Initial configuration" in message and "\\n" not in message and "b'" not in message
    assert "failed in" in message and "(exit 1)" in message and "make init" in message and "--outputs" in message


def test_terraform_output_that_is_not_json(tmp_path) -> None:
    bin_path = fake_terraform(tmp_path, 'echo "Warning: something"\n')
    message = refused(lambda: load_settings(tf_dir=tmp_path, environ={}, terraform_bin=bin_path))
    assert "did not print JSON" in message


def test_terraform_binary_missing(tmp_path) -> None:
    message = refused(lambda: load_settings(tf_dir=tmp_path, environ={}, terraform_bin=str(tmp_path / "no-tf")))
    assert "was not found" in message and "--outputs" in message


def test_terraform_directory_missing(tmp_path) -> None:
    message = refused(lambda: load_settings(tf_dir=tmp_path / "nowhere", environ={}))
    assert "nowhere" in message and "--tf-dir" in message


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not on PATH")
def test_real_terraform_without_state_says_apply_first(tmp_path) -> None:
    (tmp_path / "main.tf").write_text("", encoding="utf-8")
    message = refused(lambda: load_settings(tf_dir=tmp_path, environ={}))
    assert "no `embed` output" in message and "make apply" in message


def test_results_table_that_is_the_object_table_is_refused() -> None:
    # The local engine rebuilds an object table from its folders: the embeddings would be wiped.
    with pytest.raises(EmbedError, match="results_table .* is the object table"):
        load_settings({"results_table": "local.embed.images"}, local=True, environ={})
