"""The preflight check against scripted Google REST answers; the real AuthorizedSession and BigQuery client run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from urllib3.exceptions import NameResolutionError

from embed import doctor
from embed.settings import Settings
from tests.python.google_fake import BQ, FakeGoogle, error_body
from tests.support import REPO

pytest.importorskip("google.cloud.bigquery")
from google.auth import exceptions as auth_exceptions  # noqa: E402
from google.auth.credentials import AnonymousCredentials  # noqa: E402

SA = "bqcx-123456789012-abcd@gcp-sa-bigquery-condel.iam.gserviceaccount.com"
SERVICES = r"serviceusage\.googleapis\.com/v1/projects/my-project/services/([a-z.]+)"
TEST_PERMISSIONS = r"cloudresourcemanager\.googleapis\.com/v1/projects/my-project:testIamPermissions"
GET_POLICY = r"cloudresourcemanager\.googleapis\.com/v1/projects/my-project:getIamPolicy"
CONNECTION = r"bigqueryconnection\.googleapis\.com/v1/projects/my-project/locations/us/connections/embed_conn"
DATASET = BQ + r"/projects/my-project/datasets/bqml_tutorial"
# Every permission a run uses: the model through the connection, the object table, the results table.
RUN_PERMISSIONS = [
    "bigquery.jobs.create",
    "bigquery.connections.use",
    "bigquery.connections.delegate",
    "bigquery.models.create",
    "bigquery.models.getData",
    "bigquery.models.getMetadata",
    "bigquery.models.updateData",
    "bigquery.models.updateMetadata",
    "bigquery.tables.create",
    "bigquery.tables.getData",
    "bigquery.tables.updateData",
]


def healthy_project() -> FakeGoogle:
    """A project where everything the kit needs is in place."""
    fake = FakeGoogle()
    fake.route(
        "GET", SERVICES, lambda sent, m: (200, {"name": f"projects/123/services/{m.group(1)}", "state": "ENABLED"})
    )
    fake.route("POST", TEST_PERMISSIONS, lambda sent, m: (200, {"permissions": sent.body["permissions"]}))
    fake.route(
        "GET",
        CONNECTION,
        (200, {"name": "projects/123/locations/us/connections/embed_conn", "cloudResource": {"serviceAccountId": SA}}),
    )
    fake.route(
        "POST",
        GET_POLICY,
        (
            200,
            {
                "version": 1,
                "bindings": [
                    {"role": "roles/owner", "members": ["user:admin@example.com"]},
                    {"role": "roles/aiplatform.user", "members": ["group:ml@example.com", f"serviceAccount:{SA}"]},
                ],
            },
        ),
    )
    fake.route("GET", DATASET, (200, dataset_resource("US")))
    return fake


def dataset_resource(location: str) -> dict[str, Any]:
    return {"datasetReference": {"projectId": "my-project", "datasetId": "bqml_tutorial"}, "location": location}


def check(fake: FakeGoogle, settings: Settings, credentials: Any = None) -> dict[str, doctor.CheckResult]:
    """Run the checks against ``fake``; results by check name."""
    results = doctor.run_checks(settings, credentials=credentials or AnonymousCredentials(), make_session=fake.session)
    assert [r.name for r in results] == ["credentials", *doctor.CHECK_NAMES]
    return {r.name: r for r in results}


def failing(results: dict[str, doctor.CheckResult]) -> list[str]:
    return [name for name, r in results.items() if not r.ok]


def test_healthy_project_passes_every_check(example_settings: Callable[..., Settings]) -> None:
    fake = healthy_project()
    results = check(fake, example_settings())
    assert failing(results) == []
    assert doctor.all_ok(list(results.values()))
    # What was asked, and of whom:
    services = [s.path.rsplit("/", 1)[-1] for s in fake.calls("GET", "/services/")]
    assert services == [
        "bigquery.googleapis.com",
        "bigqueryconnection.googleapis.com",
        "aiplatform.googleapis.com",
        "cloudresourcemanager.googleapis.com",
    ]
    [tested] = fake.calls("POST", ":testIamPermissions")
    assert sorted(tested.body["permissions"]) == sorted(RUN_PERMISSIONS)
    [policy] = fake.calls("POST", ":getIamPolicy")
    assert policy.body == {"options": {"requestedPolicyVersion": 3}}
    assert len(fake.calls("GET", "/connections/embed_conn")) == 1
    assert len(fake.calls("GET", "/datasets/bqml_tutorial")) == 1
    assert "dataset US" in results["locations"].detail
    assert SA in results["connection"].detail


def test_disabled_api_says_how_to_enable_it(example_settings: Callable[..., Settings]) -> None:
    fake = healthy_project()
    fake.route(
        "GET",
        r"serviceusage\.googleapis\.com/v1/projects/my-project/services/aiplatform\.googleapis\.com",
        (200, {"name": "projects/123/services/aiplatform.googleapis.com", "state": "DISABLED"}),
    )
    results = check(fake, example_settings())
    assert failing(results) == ["api aiplatform.googleapis.com"]
    result = results["api aiplatform.googleapis.com"]
    assert "not enabled in project my-project" in result.problem
    assert "gcloud services enable aiplatform.googleapis.com --project my-project" in result.fix


def test_unreadable_service_state_is_a_problem_with_the_server_message(
    example_settings: Callable[..., Settings],
) -> None:
    fake = healthy_project()
    fake.route("GET", SERVICES, (403, error_body(403, "Permission denied to get service", "forbidden")))
    results = check(fake, example_settings())
    assert failing(results)[:4] == [f"api {s}" for s in doctor.REQUIRED_APIS]
    assert "Permission denied to get service" in results["api bigquery.googleapis.com"].problem


def test_missing_caller_permissions_are_named(example_settings: Callable[..., Settings]) -> None:
    fake = healthy_project()
    fake.route("POST", TEST_PERMISSIONS, (200, {"permissions": ["bigquery.jobs.create", "bigquery.tables.getData"]}))
    results = check(fake, example_settings())
    assert failing(results) == ["caller permissions"]
    problem = results["caller permissions"].problem
    for permission in (
        "bigquery.models.create",
        "bigquery.models.getData",
        "bigquery.models.updateData",
        "bigquery.models.updateMetadata",
    ):
        assert permission in problem
    assert "bigquery.jobs.create" not in problem
    assert "roles/bigquery.dataEditor" in results["caller permissions"].fix


@pytest.mark.parametrize(
    ("held_without", "roles"),
    [
        (
            ["bigquery.connections.use", "bigquery.connections.delegate"],
            "roles/bigquery.connectionAdmin, roles/bigquery.connectionUser",
        ),
        (
            ["bigquery.models.getMetadata", "bigquery.tables.create", "bigquery.tables.updateData"],
            "roles/bigquery.dataEditor",
        ),
        (["bigquery.jobs.create"], "roles/bigquery.jobUser"),
    ],
)
def test_missing_run_permissions_name_the_roles_that_grant_them(
    example_settings: Callable[..., Settings], held_without: list[str], roles: str
) -> None:
    fake = healthy_project()
    fake.route(
        "POST",
        TEST_PERMISSIONS,
        lambda sent, m: (200, {"permissions": [p for p in sent.body["permissions"] if p not in held_without]}),
    )
    results = check(fake, example_settings())
    assert failing(results) == ["caller permissions"]
    result = results["caller permissions"]
    assert result.problem == f"the caller lacks {', '.join(held_without)} on project my-project"
    assert result.fix.startswith(f"grant the caller {roles} on project my-project")


def test_user_credentials_need_to_use_the_quota_project(example_settings: Callable[..., Settings]) -> None:
    from google.oauth2.credentials import Credentials

    fake = healthy_project()
    fake.route(
        "POST",
        TEST_PERMISSIONS,
        lambda sent, m: (
            200,
            {"permissions": [p for p in sent.body["permissions"] if p != "serviceusage.services.use"]},
        ),
    )
    results = check(fake, example_settings(), credentials=Credentials(token="user-token"))
    [tested] = fake.calls("POST", ":testIamPermissions")
    assert sorted(tested.body["permissions"]) == sorted([*RUN_PERMISSIONS, "serviceusage.services.use"])
    assert failing(results) == ["caller permissions"]
    assert "roles/serviceusage.serviceUsageConsumer" in results["caller permissions"].fix
    # Service account credentials bill their own project: the permission is not asked for.
    fake = healthy_project()
    check(fake, example_settings())
    [tested] = fake.calls("POST", ":testIamPermissions")
    assert "serviceusage.services.use" not in tested.body["permissions"]


def test_a_refused_quota_project_is_explained_once(example_settings: Callable[..., Settings]) -> None:
    from google.oauth2.credentials import Credentials

    denied = error_body(
        403, "Caller does not have required permission to use project my-project.", "forbidden", "PERMISSION_DENIED"
    )
    denied["error"]["details"] = [
        {"@type": "type.googleapis.com/google.rpc.Help", "links": []},
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "USER_PROJECT_DENIED",
            "domain": "googleapis.com",
            "metadata": {"service": "serviceusage.googleapis.com", "consumer": "projects/my-project"},
        },
    ]
    fake = healthy_project()
    fake.route("GET", SERVICES, (403, denied))
    results = check(fake, example_settings(), credentials=Credentials(token="user-token"))
    first = results["api bigquery.googleapis.com"]
    assert "quota project, here my-project" in first.problem and "serviceusage.services.use" in first.problem
    assert "roles/serviceusage.serviceUsageConsumer on my-project" in first.fix
    assert "gcloud auth application-default set-quota-project" in first.fix
    assert all(results[n].skipped for n in doctor.CHECK_NAMES[1:])
    assert len(fake.sent) == 1


def test_no_permissions_at_all(example_settings: Callable[..., Settings]) -> None:
    fake = healthy_project()
    fake.route("POST", TEST_PERMISSIONS, (200, {}))  # the API omits the list when nothing is held
    results = check(fake, example_settings())
    assert "bigquery.jobs.create" in results["caller permissions"].problem


@pytest.mark.parametrize(
    "bindings",
    [
        [],
        [{"role": "roles/aiplatform.user", "members": ["serviceAccount:someone-else@p.iam.gserviceaccount.com"]}],
        [{"role": "roles/aiplatform.viewer", "members": [f"serviceAccount:{SA}"]}],
    ],
)
def test_service_account_without_aiplatform_user(
    example_settings: Callable[..., Settings], bindings: list[Any]
) -> None:
    fake = healthy_project()
    fake.route("POST", GET_POLICY, (200, {"version": 1, "bindings": bindings}))
    results = check(fake, example_settings())
    assert failing(results) == ["service account role"]
    result = results["service account role"]
    assert f"serviceAccount:{SA} does not hold roles/aiplatform.user in project my-project" in result.problem
    assert result.fix == (
        f"grant roles/aiplatform.user to serviceAccount:{SA} with `make apply`, or wait: IAM can take 7 minutes"
    )


def test_missing_connection(example_settings: Callable[..., Settings]) -> None:
    fake = healthy_project()
    fake.route("GET", CONNECTION, (404, error_body(404, "Connection not found", "notFound")))
    results = check(fake, example_settings())
    assert failing(results) == ["connection"]
    assert "my-project.us.embed_conn does not exist in location us" in results["connection"].problem


def test_connection_with_another_service_account(example_settings: Callable[..., Settings]) -> None:
    other = "bqcx-999-zzzz@gcp-sa-bigquery-condel.iam.gserviceaccount.com"
    fake = healthy_project()
    fake.route("GET", CONNECTION, (200, {"cloudResource": {"serviceAccountId": other}}))
    results = check(fake, example_settings())
    # The outputs are stale, and the connection's real account has no grant either.
    assert failing(results) == ["connection", "service account role"]
    assert other in results["connection"].problem and SA in results["connection"].problem
    assert f"serviceAccount:{other}" in results["service account role"].problem


def test_dataset_in_another_location(example_settings: Callable[..., Settings]) -> None:
    fake = healthy_project()
    fake.route("GET", DATASET, (200, dataset_resource("EU")))
    results = check(fake, example_settings())
    assert failing(results) == ["locations"]
    assert "dataset EU" in results["locations"].problem and "settings US" in results["locations"].problem


def test_missing_dataset(example_settings: Callable[..., Settings]) -> None:
    fake = healthy_project()
    fake.route("GET", DATASET, (404, error_body(404, "Not found: Dataset my-project:bqml_tutorial", "notFound")))
    results = check(fake, example_settings())
    assert failing(results) == ["locations"]
    assert "dataset my-project.bqml_tutorial does not exist" in results["locations"].problem


def test_unreachable_network_stops_at_the_first_request(
    example_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("time.sleep", lambda s: pytest.fail(f"backed off {s}s on an unreachable network"))
    fake = healthy_project()
    fake.fail_with = requests.exceptions.ConnectionError(
        NameResolutionError("serviceusage.googleapis.com", None, "[Errno -2] Name or service not known")  # type: ignore
    )
    results = check(fake, example_settings())
    first = results["api bigquery.googleapis.com"]
    assert not first.ok and not first.skipped
    assert first.problem.startswith("cannot reach serviceusage.googleapis.com")
    assert all(results[n].skipped for n in doctor.CHECK_NAMES[1:])
    assert len(fake.sent) == 1


class RefusedCredentials(AnonymousCredentials):
    """Credentials whose token refresh the server refuses (a revoked login, say)."""

    @property
    def valid(self) -> bool:
        return False

    def refresh(self, request: Any) -> None:
        raise auth_exceptions.RefreshError("invalid_grant: Token has been expired or revoked.")


def test_refused_credentials_stop_every_check(example_settings: Callable[..., Settings]) -> None:
    fake = healthy_project()
    results = check(fake, example_settings(), credentials=RefusedCredentials())
    assert failing(results) == ["credentials", *doctor.CHECK_NAMES]
    assert "invalid_grant" in results["credentials"].problem
    assert "gcloud auth application-default login" in results["credentials"].fix
    assert fake.sent == []


def test_user_credentials_bill_checks_to_the_project(example_settings: Callable[..., Settings]) -> None:
    from google.oauth2.credentials import Credentials

    fake = healthy_project()
    results = check(fake, example_settings(), credentials=Credentials(token="user-token"))
    assert failing(results) == []
    for sent in fake.sent:
        assert sent.headers["authorization"] == "Bearer user-token"
        assert sent.headers["x-goog-user-project"] == "my-project"


def test_no_credentials_in_process(
    example_settings: Callable[..., Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    results = {r.name: r for r in doctor.run_checks(example_settings())}
    assert not results["credentials"].ok
    assert "missing.json" in results["credentials"].problem
    assert "gcloud auth application-default login" in results["credentials"].fix
    assert all(results[n].skipped for n in doctor.CHECK_NAMES)


def test_json_and_table_output(example_settings: Callable[..., Settings], capsys: pytest.CaptureFixture[str]) -> None:
    settings = example_settings()
    fake = healthy_project()
    fake.route("GET", DATASET, (200, dataset_resource("EU")))
    results = doctor.run_checks(settings, credentials=AnonymousCredentials(), make_session=fake.session)
    document = json.loads(doctor.to_json(results, settings))
    assert document["ok"] is False and document["project_id"] == "my-project"
    assert [c["name"] for c in document["checks"]] == ["credentials", *doctor.CHECK_NAMES]
    [bad] = [c for c in document["checks"] if not c["ok"]]
    assert bad["name"] == "locations" and bad["fix"]
    from rich.console import Console

    from embed.summary import doctor_table

    Console().print(doctor_table(results, settings))
    printed = capsys.readouterr().out
    assert "locations" in printed and "MISSING" in printed and "ok" in printed


# --- the command, as a user runs it -------------------------------------------------------------------------


def embed_doctor(
    tmp_path: Path, *args: str, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m embed doctor --outputs <example> ARGS`` with a clean home and no Google configuration."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("EMBED_", "GOOGLE_", "CLOUDSDK_", "GCE_")) and k.lower() not in ("https_proxy", "no_proxy")
    }
    env |= {
        "HOME": str(tmp_path / "home"),
        "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"),
        "GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "no-such-key.json"),
        "NO_GCE_CHECK": "True",
    } | (extra_env or {})
    return subprocess.run(
        [sys.executable, "-m", "embed", "doctor", "--outputs", "terraform/outputs.example.json", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_doctor_json_without_credentials(tmp_path: Path) -> None:
    result = embed_doctor(tmp_path, "--json")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    document = json.loads(result.stdout)
    assert document["ok"] is False
    credentials = document["checks"][0]
    assert credentials["name"] == "credentials" and credentials["ok"] is False
    assert "no Google Cloud credentials found" in credentials["problem"]
    assert "gcloud auth application-default login" in result.stderr
    assert "GOOGLE_APPLICATION_CREDENTIALS" in result.stderr
    # the checks skipped after it are not counted as failures
    assert result.stderr.startswith("error: 1 check(s) failed. credentials: no Google Cloud credentials found")


def test_cli_doctor_table_without_credentials(tmp_path: Path) -> None:
    result = embed_doctor(tmp_path)
    assert result.returncode == 2
    assert "credentials" in result.stdout and "MISSING" in result.stdout and "skipped" in result.stdout
    assert "Traceback" not in result.stderr


def test_cli_doctor_without_network(tmp_path: Path) -> None:
    """Credentials exist but nothing can be reached: one clear problem, exit 2, no traceback."""
    adc = tmp_path / "adc.json"
    adc.write_text(
        json.dumps({"type": "authorized_user", "client_id": "i", "client_secret": "s", "refresh_token": "t"}),
        encoding="utf-8",
    )
    result = embed_doctor(
        tmp_path,
        "--json",
        extra_env={"GOOGLE_APPLICATION_CREDENTIALS": str(adc), "HTTPS_PROXY": "http://127.0.0.1:9"},
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    credentials = json.loads(result.stdout)["checks"][0]
    assert credentials["problem"].startswith("cannot reach Google's token service")
    assert "HTTPS_PROXY" in credentials["fix"]


def test_cli_doctor_bad_settings_exit_2(tmp_path: Path) -> None:
    result = embed_doctor(tmp_path, "--json", "--location", "nowhere land")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
