"""The BigQuery engine against the REAL google-cloud-bigquery client; only the HTTP transport is scripted."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import requests
from urllib3.exceptions import NameResolutionError, NewConnectionError

from embed.engines.base import Column, QueryParameter, Statement, StatementError
from embed.errors import EmbedError
from embed.identifiers import ModelRef, TableRef
from tests.python.google_fake import BQ, FakeBigQuery, FakeGoogle, ScriptedQuery, error_body

bigquery = pytest.importorskip("google.cloud.bigquery")
from google.auth.credentials import AnonymousCredentials  # noqa: E402

from embed.engines.bigquery import (  # noqa: E402
    BigQueryEngine,
    connect,
    is_propagation_error,
    label_value,
    table_label,
)

PROJECT = "my-project"
PROPAGATION_403 = (
    "bqcx-123456789012-abcd@gcp-sa-bigquery-condel.iam.gserviceaccount.com does not have the permission"
    " to access or use the endpoint. Please grant the Vertex AI user role to the service account."
)


def make_engine(
    script: Callable[[str, dict[str, Any]], ScriptedQuery] = lambda sql, body: ScriptedQuery(),
    *,
    location: str = "US",
    run_id: str = "Run_2026-08-01T12:00:00Z",
    labels: dict[str, str] | None = None,
) -> tuple[BigQueryEngine, FakeGoogle]:
    """An engine whose real client talks to a scripted transport."""
    fake = FakeGoogle()
    FakeBigQuery(fake, script)
    client = bigquery.Client(project=PROJECT, credentials=AnonymousCredentials(), _http=fake.session())
    return BigQueryEngine(PROJECT, location, labels or {}, run_id, client, retry_deadline=2.0), fake


def stmt(text: str, *params: QueryParameter, calls_model: bool = False) -> Statement:
    """A statement for the engine."""
    return Statement("test", text, tuple(params), calls_model=calls_model)


def inserted(fake: FakeGoogle) -> list[dict[str, Any]]:
    """Bodies of every jobs.insert request."""
    return [s.body for s in fake.sent if s.method == "POST" and s.path.endswith(f"/projects/{PROJECT}/jobs")]


# --- execute -----------------------------------------------------------------------------------------------


def test_execute_sends_query_location_and_labels() -> None:
    engine, fake = make_engine(location="EU", labels={"team": "Vision"})
    result = engine.execute(stmt("CREATE MODEL IF NOT EXISTS `my-project.d.m` OPTIONS (x = 1)"))
    [body] = inserted(fake)
    query = body["configuration"]["query"]
    assert query["query"] == "CREATE MODEL IF NOT EXISTS `my-project.d.m` OPTIONS (x = 1)"
    assert query["useLegacySql"] is False
    assert body["jobReference"]["location"] == "EU"
    assert body["jobReference"]["projectId"] == PROJECT
    assert body["configuration"]["labels"] == {
        "app": "embed-kit",
        "run-id": "run_2026-08-01t12-00-00z",
        "team": "vision",
    }
    assert "dryRun" not in body["configuration"]
    # Polling for the result also names the location, or BigQuery cannot find the job.
    polls = [s for s in fake.sent if s.method == "GET" and "/queries/" in s.path]
    assert polls and all(s.params["location"] == "EU" for s in polls)
    assert result.job_id == body["jobReference"]["jobId"]


def test_execute_dry_run_returns_bytes_and_disables_cache() -> None:
    engine, fake = make_engine(lambda sql, body: ScriptedQuery(bytes_processed=123_456))
    result = engine.execute(stmt("SELECT 1"), dry_run=True)
    [body] = inserted(fake)
    assert body["configuration"]["dryRun"] is True
    assert body["configuration"]["query"]["useQueryCache"] is False
    assert body["configuration"]["labels"]["app"] == "embed-kit"
    assert body["jobReference"]["location"] == "US"
    assert result.bytes_processed == 123_456
    assert result.affected_rows is None
    # A dry run starts no job: nothing is polled or read.
    assert [s.method for s in fake.sent] == ["POST"]


def test_execute_dml_returns_affected_rows() -> None:
    engine, fake = make_engine(lambda sql, body: ScriptedQuery(dml_affected_rows=42, bytes_processed=10))
    result = engine.execute(
        stmt("MERGE `my-project.d.r` AS r USING (SELECT 1) AS s ON FALSE WHEN NOT MATCHED THEN INSERT ROW")
    )
    assert result.affected_rows == 42
    assert result.bytes_processed == 10


def test_labels_are_valid_label_values() -> None:
    long_run = "X" * 100 + ".Run:ID"
    engine, _ = make_engine(run_id=long_run)
    assert engine.labels["run-id"] == "x" * 63
    assert label_value("2026-08-01T12:00:00.123Z/ab") == "2026-08-01t12-00-00-123z-ab"


def test_bad_label_key_is_refused() -> None:
    with pytest.raises(EmbedError, match="label key 'Bad Key'"):
        make_engine(labels={"Bad Key": "x"})


# --- rows ----------------------------------------------------------------------------------------------------

RESULT_SCHEMA = [
    {"name": "uri", "type": "STRING", "mode": "NULLABLE"},
    {"name": "ml_generate_embedding_result", "type": "FLOAT", "mode": "REPEATED"},
    {"name": "ml_generate_embedding_status", "type": "STRING", "mode": "NULLABLE"},
]
RESULT_ROWS = [
    [f"gs://b/{i}.png", [0.5 * i, 1.0, -2.0], "" if i % 2 else "A retryable error occurred: x"] for i in range(7)
]


def test_a_query_returns_its_rows_as_arrow() -> None:
    engine, fake = make_engine(lambda sql, body: ScriptedQuery(schema=RESULT_SCHEMA, rows=RESULT_ROWS))
    table = engine.execute(stmt("SELECT * FROM `my-project.bqml_tutorial.image_embeddings`")).rows
    assert isinstance(table, pa.Table)
    assert table.column_names == ["uri", "ml_generate_embedding_result", "ml_generate_embedding_status"]
    assert table.num_rows == 7
    assert table.schema.field("ml_generate_embedding_result").type == pa.list_(pa.float64())
    assert table.column("ml_generate_embedding_result")[3].as_py() == [1.5, 1.0, -2.0]
    assert table.column("uri").to_pylist() == [r[0] for r in RESULT_ROWS]
    [body] = inserted(fake)
    assert body["configuration"]["query"]["query"] == "SELECT * FROM `my-project.bqml_tutorial.image_embeddings`"
    assert body["configuration"]["labels"]["app"] == "embed-kit"


def test_rows_of_empty_result() -> None:
    engine, _ = make_engine(lambda sql, body: ScriptedQuery(schema=RESULT_SCHEMA, rows=[]))
    assert engine.execute(stmt("SELECT * FROM t WHERE FALSE")).rows.num_rows == 0


def test_bytes_billed_are_reported() -> None:
    engine, _ = make_engine(
        lambda sql, body: ScriptedQuery(dml_affected_rows=3, bytes_processed=11, bytes_billed=10 << 20)
    )
    result = engine.execute(stmt("DELETE FROM t WHERE TRUE"))
    assert result.bytes_billed == 10 << 20 and result.bytes_processed == 11


# --- query parameters -----------------------------------------------------------------------------------------


def test_values_travel_as_typed_query_parameters() -> None:
    engine, fake = make_engine()
    since = dt.datetime(2026, 8, 1, 12, tzinfo=dt.timezone.utc)
    engine.execute(
        stmt(
            "SELECT 1",
            QueryParameter("uris", "ARRAY<STRING>", ["gs://b/bob's cat.jpg", "gs://b/2024--summer.png"]),
            QueryParameter(
                "prior_attempts",
                "ARRAY<STRUCT<uri STRING, generation INT64, attempts INT64>>",
                [{"uri": "gs://b/a.jpg", "generation": 7, "attempts": 2}],
            ),
            QueryParameter("nothing", "ARRAY<STRUCT<uri STRING, attempts INT64>>", []),
            QueryParameter("dimension", "INT64", 1408),
            QueryParameter("since", "TIMESTAMP", since),
        )
    )
    [body] = inserted(fake)
    query = body["configuration"]["query"]
    assert query["parameterMode"] == "NAMED"
    params = {p["name"]: p for p in query["queryParameters"]}
    assert params["uris"]["parameterType"] == {"type": "ARRAY", "arrayType": {"type": "STRING"}}
    assert [v["value"] for v in params["uris"]["parameterValue"]["arrayValues"]] == [
        "gs://b/bob's cat.jpg",
        "gs://b/2024--summer.png",
    ]
    struct_type = params["prior_attempts"]["parameterType"]["arrayType"]
    assert struct_type["type"] == "STRUCT"
    assert [(f["name"], f["type"]["type"]) for f in struct_type["structTypes"]] == [
        ("uri", "STRING"),
        ("generation", "INT64"),
        ("attempts", "INT64"),
    ]
    [item] = params["prior_attempts"]["parameterValue"]["arrayValues"]
    assert {k: v["value"] for k, v in item["structValues"].items()} == {
        "uri": "gs://b/a.jpg",
        "generation": "7",
        "attempts": "2",
    }
    assert params["nothing"]["parameterType"]["arrayType"]["type"] == "STRUCT"
    assert params["dimension"] == {
        "name": "dimension",
        "parameterType": {"type": "INT64"},
        "parameterValue": {"value": "1408"},
    }
    assert params["since"]["parameterValue"]["value"].startswith("2026-08-01 12:00:00")


# --- a job that fails -----------------------------------------------------------------------------------------

BACKEND = {"reason": "jobBackendError", "message": "The job encountered an internal error during execution."}


def flaky(first: ScriptedQuery) -> Callable[[str, dict[str, Any]], ScriptedQuery]:
    """A script whose first job fails as ``first`` says and whose later jobs succeed."""
    calls = []

    def script(sql: str, body: dict[str, Any]) -> ScriptedQuery:
        calls.append(sql)
        return first if len(calls) == 1 else ScriptedQuery(dml_affected_rows=1)

    return script


def test_a_job_failing_for_a_transient_reason_is_run_again() -> None:
    engine, fake = make_engine(flaky(ScriptedQuery(error=BACKEND)))
    assert engine.execute(stmt("DELETE FROM t WHERE TRUE")).affected_rows == 1
    assert len(inserted(fake)) == 2


def test_a_job_that_calls_the_model_is_never_run_again() -> None:
    """Its rows may already have been sent to (and billed by) the endpoint."""
    engine, fake = make_engine(flaky(ScriptedQuery(error=BACKEND)))
    with pytest.raises(StatementError, match="internal error"):
        engine.execute(stmt("INSERT INTO r SELECT * FROM ML.GENERATE_EMBEDDING(MODEL m, TABLE t)", calls_model=True))
    assert len(inserted(fake)) == 1


# --- other runs -----------------------------------------------------------------------------------------------


def jobs_page(*jobs: tuple[str, dict[str, str]]) -> dict[str, Any]:
    return {
        "kind": "bigquery#jobList",
        "jobs": [
            {
                "id": f"{PROJECT}:US.{job_id}",
                "jobReference": {"projectId": PROJECT, "jobId": job_id, "location": "US"},
                "state": "RUNNING",
                "status": {"state": "RUNNING"},
                "configuration": {"labels": labels, "query": {"query": "x"}},
            }
            for job_id, labels in jobs
        ],
    }


def test_running_jobs_of_this_kit_on_the_same_table_are_found() -> None:
    table = TableRef(PROJECT, "bqml_tutorial", "image_embeddings")
    engine, fake = make_engine()
    mine = {"app": "embed-kit", "results-table": table_label(table)}
    fake.route(
        "GET",
        BQ + r"/projects/my-project/jobs",
        (
            200,
            jobs_page(
                ("other_run", mine),
                ("other_table", {"app": "embed-kit", "results-table": table_label(TableRef(PROJECT, "d", "x"))}),
                ("not_ours", {"results-table": table_label(table)}),
            ),
        ),
    )
    assert engine.running_jobs(table) == ("other_run",)
    [listing] = fake.calls("GET", "/jobs")
    assert listing.params["stateFilter"] == "running" and listing.params["allUsers"] == "True"
    assert "minCreationTime" in listing.params


def test_running_jobs_falls_back_to_the_callers_own_jobs() -> None:
    table = TableRef(PROJECT, "d", "t")
    engine, fake = make_engine()
    answers = [(403, error_body(403, "Access Denied: bigquery.jobs.listAll", "accessDenied")), (200, jobs_page())]
    fake.route("GET", BQ + r"/projects/my-project/jobs", lambda sent, match: answers.pop(0))
    assert engine.running_jobs(table) == ()
    listings = fake.calls("GET", "/jobs")
    assert [s.params.get("allUsers") for s in listings] == ["True", None]


def test_jobs_carry_the_results_table_label() -> None:
    fake = FakeGoogle()
    FakeBigQuery(fake, lambda sql, body: ScriptedQuery())
    client = bigquery.Client(project=PROJECT, credentials=AnonymousCredentials(), _http=fake.session())
    table = TableRef(PROJECT, "bqml_tutorial", "image_embeddings")
    engine = BigQueryEngine(PROJECT, "US", {}, "r", client, results_table=table)
    engine.execute(stmt("SELECT 1"))
    assert inserted(fake)[0]["configuration"]["labels"]["results-table"] == "my-project-bqml_tutorial-image_embeddings"
    long = TableRef(PROJECT, "d" * 40, "t" * 40)
    assert len(table_label(long)) <= 63 and table_label(long) != table_label(TableRef(PROJECT, "d" * 40, "t" * 41))


# --- errors --------------------------------------------------------------------------------------------------


def test_propagation_403_on_insert_is_propagating() -> None:
    engine, _ = make_engine(
        lambda sql, body: ScriptedQuery(insert_error=(403, error_body(403, PROPAGATION_403, "accessDenied")))
    )
    with pytest.raises(StatementError) as info:
        engine.execute(stmt("CREATE MODEL IF NOT EXISTS m"))
    assert info.value.propagating is True
    assert "does not have the permission to access or use the endpoint" in str(info.value)


def test_propagation_failure_of_the_job_is_propagating() -> None:
    message = (
        "Access Denied: BigQuery BigQuery: bqcx-1-abcd@gcp-sa-bigquery-condel.iam.gserviceaccount.com"
        " does not have the permission to access resource projects/my-project/locations/us/publishers/google"
    )
    engine, _ = make_engine(lambda sql, body: ScriptedQuery(error={"reason": "accessDenied", "message": message}))
    with pytest.raises(StatementError) as info:
        engine.execute(stmt("SELECT * FROM ML.GENERATE_EMBEDDING(MODEL m, TABLE t)"))
    assert info.value.propagating is True
    assert "does not have the permission to access resource" in str(info.value)


def test_other_400_is_final_with_server_message() -> None:
    message = "Syntax error: Unexpected keyword FROM at [1:8]"
    engine, _ = make_engine(
        lambda sql, body: ScriptedQuery(insert_error=(400, error_body(400, message, "invalidQuery")))
    )
    with pytest.raises(StatementError) as info:
        engine.execute(stmt("SELECT FROM"), dry_run=True)
    assert info.value.propagating is False
    assert message in str(info.value)


def test_failed_job_is_final_and_mentions_location_for_missing_connection() -> None:
    engine, _ = make_engine(
        lambda sql, body: ScriptedQuery(error={"reason": "notFound", "message": "Not found: Connection embed_conn"})
    )
    with pytest.raises(StatementError) as info:
        engine.execute(stmt("CREATE MODEL m REMOTE WITH CONNECTION `my-project.us.embed_conn`"))
    assert info.value.propagating is False
    assert "Not found: Connection embed_conn" in str(info.value)
    assert "location 'US'" in str(info.value)


def test_access_denied_on_a_table_is_not_propagation() -> None:
    message = "Access Denied: Table my-project:d.t: User does not have permission to query table my-project:d.t."
    assert not is_propagation_error(message)
    engine, _ = make_engine(
        lambda sql, body: ScriptedQuery(insert_error=(403, error_body(403, message, "accessDenied")))
    )
    with pytest.raises(StatementError) as info:
        engine.execute(stmt("SELECT * FROM `my-project.d.t`"))
    assert info.value.propagating is False


@pytest.mark.parametrize(
    "message",
    [
        "Service account bqcx-123-abcd@gcp-sa-bigquery-condel.iam.gserviceaccount.com does not exist.",
        "bqcx-123-abcd@gcp-sa-bigquery-condel.iam.gserviceaccount.com does not have permission"
        " aiplatform.endpoints.predict",
    ],
)
def test_new_connection_service_account_errors_are_propagating(message: str) -> None:
    assert is_propagation_error(message)


def unreachable_error() -> requests.exceptions.ConnectionError:
    """What requests raises when the host name cannot be resolved (no network)."""
    cause = NameResolutionError("bigquery.googleapis.com", None, "[Errno -2] Name or service not known")
    return requests.exceptions.ConnectionError(cause)


@pytest.fixture
def no_retry_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test at the first back-off sleep: an unreachable network must not be retried."""

    def sleep(seconds: float) -> None:
        raise AssertionError(f"the client backed off {seconds:.1f}s to retry an unreachable network")

    monkeypatch.setattr("time.sleep", sleep)


@pytest.mark.usefixtures("no_retry_sleep")
def test_unreachable_network_fails_at_once_without_retrying() -> None:
    engine, fake = make_engine()
    fake.fail_with = unreachable_error()
    with pytest.raises(EmbedError) as info:
        engine.execute(stmt("SELECT 1"))
    assert info.value.exit_code == 2
    assert str(info.value).startswith("cannot reach BigQuery")
    assert "HTTPS_PROXY" in str(info.value)
    assert len(fake.sent) == 1  # no retry loop on a network that is not there


def test_connection_reset_is_retried_then_succeeds() -> None:
    engine, fake = make_engine()
    fake.fail_next = [requests.exceptions.ConnectionError(ConnectionResetError(104, "Connection reset by peer"))]
    result = engine.execute(stmt("SELECT 1"))
    assert result.job_id is not None
    assert len(inserted(fake)) == 2  # the reset insert, then its retry


@pytest.mark.usefixtures("no_retry_sleep")
def test_refused_connection_is_unreachable() -> None:
    engine, fake = make_engine()
    fake.fail_with = requests.exceptions.ConnectionError(
        NewConnectionError(None, "Failed to establish a new connection: [Errno 111] Connection refused")  # type: ignore
    )
    with pytest.raises(EmbedError, match="cannot reach BigQuery"):
        engine.schema(TableRef(PROJECT, "d", "t"))
    assert len(fake.sent) == 1


# --- schema ----------------------------------------------------------------------------------------------------


def test_schema_maps_fields_with_nested_records() -> None:
    engine, fake = make_engine()
    fake.route(
        "GET",
        BQ + r"/projects/my-project/datasets/bqml_tutorial/tables/images",
        (
            200,
            {
                "tableReference": {"projectId": PROJECT, "datasetId": "bqml_tutorial", "tableId": "images"},
                "schema": {
                    "fields": [
                        {"name": "uri", "type": "STRING", "mode": "NULLABLE"},
                        {"name": "generation", "type": "INTEGER"},
                        {"name": "size", "type": "INT64", "mode": "NULLABLE"},
                        {"name": "updated", "type": "TIMESTAMP", "mode": "NULLABLE"},
                        {"name": "ok", "type": "BOOLEAN"},
                        {"name": "embedding", "type": "FLOAT", "mode": "REPEATED"},
                        {
                            "name": "metadata",
                            "type": "RECORD",
                            "mode": "REPEATED",
                            "fields": [
                                {"name": "name", "type": "STRING"},
                                {"name": "value", "type": "STRING"},
                            ],
                        },
                    ]
                },
            },
        ),
    )
    columns = engine.schema(TableRef(PROJECT, "bqml_tutorial", "images"))
    assert columns == (
        Column("uri", "STRING"),
        Column("generation", "INT64"),
        Column("size", "INT64"),
        Column("updated", "TIMESTAMP"),
        Column("ok", "BOOL"),
        Column("embedding", "FLOAT64", "REPEATED"),
        Column("metadata", "RECORD", "REPEATED", (Column("name", "STRING"), Column("value", "STRING"))),
    )
    [get] = fake.calls("GET", "/tables/images")
    assert get.url.startswith("https://bigquery.googleapis.com/bigquery/v2/projects/my-project/datasets/bqml_tutorial")


def test_schema_of_missing_table_is_none() -> None:
    engine, fake = make_engine()
    fake.route(
        "GET",
        BQ + r"/projects/my-project/datasets/d/tables/missing",
        (404, error_body(404, "Not found: Table my-project:d.missing", "notFound")),
    )
    assert engine.schema(TableRef(PROJECT, "d", "missing")) is None
    assert len(fake.calls("GET", "/tables/missing")) == 1


def test_schema_permission_error_is_a_statement_error() -> None:
    engine, fake = make_engine()
    fake.route(
        "GET",
        BQ + r"/projects/my-project/datasets/d/tables/t",
        (
            403,
            error_body(
                403, "Access Denied: Table my-project:d.t: Permission bigquery.tables.get denied", "accessDenied"
            ),
        ),
    )
    with pytest.raises(StatementError, match="bigquery.tables.get denied") as info:
        engine.schema(TableRef(PROJECT, "d", "t"))
    assert info.value.propagating is False


# --- model endpoint ----------------------------------------------------------------------------------------------


def model_resource(endpoint: str | None) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "modelReference": {"projectId": PROJECT, "datasetId": "bqml_tutorial", "modelId": "embedding_model"},
        "modelType": "MODEL_TYPE_UNSPECIFIED",
    }
    if endpoint is not None:
        resource["remoteModelInfo"] = {
            "endpoint": endpoint,
            "connection": "projects/123/locations/us/connections/embed_conn",
        }
    return resource


MODEL = ModelRef(PROJECT, "bqml_tutorial", "embedding_model")
MODEL_PATH = BQ + r"/projects/my-project/datasets/bqml_tutorial/models/embedding_model"


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("multimodalembedding@001", "multimodalembedding@001"),
        (
            "https://us-central1-aiplatform.googleapis.com/v1/projects/my-project/locations/us-central1"
            "/publishers/google/models/multimodalembedding@001",
            "multimodalembedding@001",
        ),
        (
            "https://aiplatform.googleapis.com/v1/projects/p/locations/us/publishers/google/models/text-embedding-005/",
            "text-embedding-005",
        ),
        (None, ""),
    ],
)
def test_model_endpoint_is_normalised(endpoint: str | None, expected: str) -> None:
    engine, fake = make_engine()
    fake.route("GET", MODEL_PATH, (200, model_resource(endpoint)))
    assert engine.model_endpoint(MODEL) == expected
    assert len(fake.calls("GET", "/models/embedding_model")) == 1


def test_model_endpoint_of_missing_model_is_none() -> None:
    engine, fake = make_engine()
    fake.route(
        "GET",
        MODEL_PATH,
        (404, error_body(404, "Not found: Model my-project:bqml_tutorial.embedding_model", "notFound")),
    )
    assert engine.model_endpoint(MODEL) is None


# --- credentials and connect ---------------------------------------------------------------------------------------


def test_connect_without_credentials_says_how_to_log_in(
    example_settings: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    with pytest.raises(EmbedError) as info:
        connect(example_settings(), "run-1")
    assert info.value.exit_code == 2
    assert "gcloud auth application-default login" in str(info.value)
    assert "GOOGLE_APPLICATION_CREDENTIALS" in str(info.value)


def authorized_user_file(tmp_path: Path) -> Path:
    """An Application Default Credentials file for a user, as `gcloud auth application-default login` writes."""
    path = tmp_path / "adc.json"
    path.write_text(
        json.dumps({"type": "authorized_user", "client_id": "id", "client_secret": "secret", "refresh_token": "token"}),
        encoding="utf-8",
    )
    return path


@pytest.mark.usefixtures("no_retry_sleep")
def test_connect_with_unreachable_network_fails_with_clear_message(
    example_settings: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real credentials flow and real sockets: the token refresh cannot connect, so the statement fails at once."""
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(authorized_user_file(tmp_path)))
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTPS_PROXY", "https_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens on the discard port
    engine = connect(example_settings(), "run-1")
    assert engine.labels == {
        "app": "embed-kit",
        "run-id": "run-1",
        "results-table": "my-project-bqml_tutorial-image_embeddings",
    }
    assert engine.location == "US" and engine.project == "my-project"
    with pytest.raises(EmbedError) as info:
        engine.execute(stmt("SELECT 1"))
    assert info.value.exit_code == 2
    assert str(info.value).startswith("cannot reach BigQuery")
