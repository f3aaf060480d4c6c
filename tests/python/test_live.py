"""Against a real project: doctor and a tiny query. Needs EMBED_LIVE_PROJECT and Application Default Credentials.

Optional: EMBED_LIVE_LOCATION (default US) and EMBED_LIVE_OUTPUTS, a saved `terraform output -json` of an
applied stack in that project; with it, every doctor check must pass.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from embed.engines.base import QueryParameter, Statement
from embed.identifiers import ModelRef, TableRef

PROJECT = os.environ.get("EMBED_LIVE_PROJECT", "")
LOCATION = os.environ.get("EMBED_LIVE_LOCATION", "US")
OUTPUTS = os.environ.get("EMBED_LIVE_OUTPUTS", "")


def _why_skip() -> str | None:
    """The reason live tests cannot run here, or None."""
    if not PROJECT:
        return "EMBED_LIVE_PROJECT is not set: live tests need a real Google Cloud project"
    try:
        import google.auth
        from google.auth.exceptions import DefaultCredentialsError
    except ImportError:
        return "google-auth is not installed"
    try:
        google.auth.default()
    except DefaultCredentialsError:
        return "no Application Default Credentials: run `gcloud auth application-default login`"
    return None


pytestmark = [pytest.mark.live, pytest.mark.skipif(_why_skip() is not None, reason=_why_skip() or "")]


def _settings():  # type: ignore[no-untyped-def]
    """Settings from EMBED_LIVE_OUTPUTS, or placeholder names in the live project (some checks then fail)."""
    from embed.settings import load_settings

    if OUTPUTS:
        return load_settings(outputs_file=Path(OUTPUTS), environ={})
    dataset = "embed_kit_live"
    return load_settings(
        {
            "project_id": PROJECT,
            "location": LOCATION,
            "dataset_id": dataset,
            "connection": f"{PROJECT}.{LOCATION.lower()}.embed_conn",
            "connection_service_account": "bqcx-000000000000-live@gcp-sa-bigquery-condel.iam.gserviceaccount.com",
            "object_table": f"{PROJECT}.{dataset}.images",
            "model": f"{PROJECT}.{dataset}.embedding_model",
            "results_table": f"{PROJECT}.{dataset}.image_embeddings",
        },
        environ={},
    )


def test_live_doctor() -> None:
    from embed import doctor

    settings = _settings()
    results = doctor.run_checks(settings)
    by_name = {r.name: r for r in results}
    assert by_name["credentials"].ok, by_name["credentials"].problem
    for result in results:
        assert not result.problem.startswith("cannot reach"), result.problem
        assert result.ok or result.fix or result.skipped, result
    # With the project's own credentials, the API checks get a definite answer.
    assert by_name["api bigquery.googleapis.com"].ok, by_name["api bigquery.googleapis.com"].problem
    if OUTPUTS:
        assert doctor.all_ok(results), [r for r in results if not r.ok]


def test_live_tiny_query() -> None:
    from embed.engines.bigquery import BigQueryEngine

    run_id = time.strftime("live-%Y%m%d-%H%M%S", time.gmtime())
    engine = BigQueryEngine(PROJECT, LOCATION, {}, run_id)
    sql = Statement("tiny", "SELECT @one AS one, 'embed-kit' AS app", (QueryParameter("one", "INT64", 1),))
    dry = engine.execute(sql, dry_run=True)
    assert dry.bytes_processed == 0
    done = engine.execute(sql)
    assert done.records() == [{"one": 1, "app": "embed-kit"}]
    assert done.job_id
    assert engine.running_jobs(TableRef(PROJECT, "d", "t")) == ()

    from google.cloud import bigquery

    job = bigquery.Client(project=PROJECT).get_job(done.job_id, location=LOCATION)
    assert job.labels == {"app": "embed-kit", "run-id": run_id}
    assert job.location.lower() == LOCATION.lower()


def test_live_schema_and_missing_objects() -> None:
    from embed.engines.bigquery import BigQueryEngine

    engine = BigQueryEngine(PROJECT, "US", {}, "live-schema")
    columns = engine.schema(TableRef("bigquery-public-data", "samples", "shakespeare"))
    assert columns is not None
    assert {c.name: c.type for c in columns}["word_count"] == "INT64"
    assert engine.schema(TableRef(PROJECT, "embed_kit_no_such_dataset", "t")) is None
    assert engine.model_endpoint(ModelRef(PROJECT, "embed_kit_no_such_dataset", "m")) is None


@pytest.mark.skipif(
    not OUTPUTS, reason="EMBED_LIVE_OUTPUTS is not set: the whole flow needs an applied stack's outputs"
)
def test_live_whole_flow_run_rerun_validate() -> None:
    """`embed run` on the applied stack, then a re-run that embeds nothing new, then `embed validate`."""
    import json
    import subprocess
    import sys

    def embed(*args: str) -> dict:
        done = subprocess.run(
            [sys.executable, "-m", "embed", *args, "--outputs", OUTPUTS, "--json"], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout)

    first = embed("run")
    assert first["counts"]["objects"] > 0
    assert first["validation"] is None or first["validation"]["ok"]
    again = embed("run")
    assert again["objects_sent"] == 0 and again["counts"]["embedded"] == first["counts"]["embedded"]
    assert [job["name"] for job in again["jobs"]] == ["status_counts"]  # one key scan, no embedding read
    assert embed("validate")["ok"]
