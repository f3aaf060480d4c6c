"""Preflight: check, before anything is spent, that a run can work, and say plainly what is missing.

Checks, in order: credentials; the BigQuery, BigQuery Connection, Vertex AI and Cloud Resource
Manager APIs are enabled; the caller holds every permission a run uses (jobs, the connection,
the model, the results table; with user credentials, using the project as quota project); the
connection exists where the settings say; its service account holds roles/aiplatform.user;
the dataset is in the configured location. A network that cannot be reached, or a quota
project the caller may not use, stops the remaining checks at once. google.* is imported
inside the functions that use it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from embed.errors import FIX_CREDENTIALS, FIX_NETWORK

if TYPE_CHECKING:
    import requests

    from embed.settings import Settings

__all__ = [
    "AI_USER_ROLE",
    "CHECK_NAMES",
    "CheckResult",
    "INFERENCE_PERMISSIONS",
    "REQUIRED_APIS",
    "all_ok",
    "problems_summary",
    "run_checks",
    "to_json",
]

CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
# Cloud Resource Manager: the permission and IAM policy checks below, and the stack's project grants.
REQUIRED_APIS = (
    "bigquery.googleapis.com",
    "bigqueryconnection.googleapis.com",
    "aiplatform.googleapis.com",
    "cloudresourcemanager.googleapis.com",
)
# What the caller needs for a run, each with the narrowest predefined role that grants it: create the
# remote model through the connection, read its endpoint, read the object table, create and fill the
# results table.
PERMISSION_ROLES = {
    "bigquery.jobs.create": "roles/bigquery.jobUser",
    "bigquery.connections.use": "roles/bigquery.connectionUser",
    "bigquery.connections.delegate": "roles/bigquery.connectionAdmin",
    "bigquery.models.create": "roles/bigquery.dataEditor",
    "bigquery.models.getData": "roles/bigquery.dataEditor",
    "bigquery.models.getMetadata": "roles/bigquery.dataEditor",
    "bigquery.models.updateData": "roles/bigquery.dataEditor",
    "bigquery.models.updateMetadata": "roles/bigquery.dataEditor",
    "bigquery.tables.create": "roles/bigquery.dataEditor",
    "bigquery.tables.getData": "roles/bigquery.dataEditor",
    "bigquery.tables.updateData": "roles/bigquery.dataEditor",
}
INFERENCE_PERMISSIONS = tuple(PERMISSION_ROLES)
# User credentials bill API calls to a quota project, here the settings' project.
QUOTA_PERMISSION = "serviceusage.services.use"
QUOTA_ROLE = "roles/serviceusage.serviceUsageConsumer"
AI_USER_ROLE = "roles/aiplatform.user"
DEFAULT_TIMEOUT = 15.0  # seconds per request


@dataclass(frozen=True)
class CheckResult:
    """One check: ``ok``, or the ``problem`` found and the ``fix``; ``skipped`` when it could not run."""

    name: str
    ok: bool
    detail: str = ""
    problem: str = ""
    fix: str = ""
    skipped: bool = False


class _Stop(Exception):
    """A failure that makes the remaining checks pointless (no network, refused credentials)."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix


class _Google:
    """JSON over an authorized session, turning transport failures into :class:`_Stop`."""

    def __init__(self, session: requests.Session, timeout: float) -> None:
        self.session = session
        self.timeout = timeout

    def call(self, method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        """Send one request; return the status and the JSON body ({} when there is none)."""
        import requests
        from google.auth import exceptions as auth

        host = url.split("/")[2]
        try:
            response = self.session.request(method, url, json=body, timeout=self.timeout)
        except (auth.RefreshError, requests.exceptions.RequestException, auth.TransportError) as exc:
            raise _stopped(exc, f"cannot reach {host}: {type(exc).__name__}") from None
        try:
            data = response.json()
        except ValueError:
            data = {}
        data = data if isinstance(data, dict) else {}
        refused = _quota_project_refused(response.status_code, data)
        if refused is not None:
            raise refused
        return response.status_code, data


_FIX_NETWORK_AGAIN = f"{FIX_NETWORK}, then run doctor again"


def _stopped(exc: Exception, unreachable: str) -> _Stop:
    """The stop for refused credentials, or for a Google endpoint out of reach (``unreachable``: which, how)."""
    from google.auth import exceptions as auth

    if isinstance(exc, auth.RefreshError):
        return _Stop(f"Google refused the credentials: {exc}", FIX_CREDENTIALS)
    return _Stop(f"{unreachable}: {exc}", _FIX_NETWORK_AGAIN)


def _server_message(status: int, data: dict[str, Any]) -> str:
    """The error message of a Google API error body."""
    error = data.get("error")
    message = error.get("message") if isinstance(error, dict) else None
    return f"HTTP {status}: {message or 'no message'}"


def _quota_project_refused(status: int, data: dict[str, Any]) -> _Stop | None:
    """A 403 because the caller may not bill calls to its quota project (USER_PROJECT_DENIED), as a stop."""
    error = data.get("error")
    details = error.get("details") if isinstance(error, dict) else None
    infos = [d for d in details or () if isinstance(d, dict) and d.get("reason") == "USER_PROJECT_DENIED"]
    if status != 403 or not infos:
        return None
    project = str((infos[0].get("metadata") or {}).get("consumer", "")).removeprefix("projects/")
    project = project or "the quota project"
    return _Stop(
        f"Google refused every call: user credentials bill API calls to a quota project, here {project}, and the"
        f" caller lacks {QUOTA_PERMISSION} there ({_server_message(status, data)})",
        f"grant the caller {QUOTA_ROLE} on {project}, or bill another project you may use:"
        " `gcloud auth application-default set-quota-project OTHER_PROJECT`",
    )


def _credentials(credentials: Any) -> tuple[Any, CheckResult]:
    """Application Default Credentials (or the given ones) and the check's result; (None, failure) if none."""
    import google.auth
    from google.auth import exceptions as auth

    if credentials is None:
        try:
            credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM])
        except auth.DefaultCredentialsError as exc:
            # The library's own message only adds detail when GOOGLE_APPLICATION_CREDENTIALS is wrong.
            reason = f" ({exc})" if os.environ.get("GOOGLE_APPLICATION_CREDENTIALS") else ""
            return None, CheckResult(
                "credentials", False, problem=f"no Google Cloud credentials found{reason}", fix=FIX_CREDENTIALS
            )
    who = getattr(credentials, "service_account_email", None) or getattr(credentials, "account", None)
    kind = type(credentials).__module__.split(".")[-1] + "." + type(credentials).__name__
    return credentials, CheckResult("credentials", True, detail=f"{who or 'found'} ({kind})")


def _with_quota_project(credentials: Any, project: str) -> Any:
    """User credentials without a quota project bill API checks to ``project`` (Service Usage requires one)."""
    from google.oauth2 import credentials as user

    if isinstance(credentials, user.Credentials) and not credentials.quota_project_id:
        return credentials.with_quota_project(project)
    return credentials


def _refresh(credentials: Any) -> None:
    """Obtain an access token now, so a refused or unreachable token service is named as such."""
    from google.auth import exceptions as auth
    from google.auth.transport.requests import Request

    if credentials.valid:
        return
    try:
        credentials.refresh(Request())
    except (auth.RefreshError, auth.TransportError) as exc:
        raise _stopped(exc, "cannot reach Google's token service to use the credentials") from None


def _api(google: _Google, project: str, service: str) -> CheckResult:
    """Is ``service`` enabled in ``project``?"""
    name = f"api {service}"
    status, data = google.call("GET", f"https://serviceusage.googleapis.com/v1/projects/{project}/services/{service}")
    if status == 200 and data.get("state") == "ENABLED":
        return CheckResult(name, True, detail="enabled")
    if status == 200:
        return CheckResult(
            name,
            False,
            problem=f"{service} is not enabled in project {project} (state {data.get('state', 'unknown')})",
            fix=f"run `make apply` (the stack enables it), or `gcloud services enable {service} --project {project}`",
        )
    return CheckResult(
        name,
        False,
        problem=f"cannot tell whether {service} is enabled: {_server_message(status, data)}",
        fix="grant the caller roles/serviceusage.serviceUsageViewer on the project, or check the API in the console",
    )


def _permissions(google: _Google, project: str, quota_project: bool) -> CheckResult:
    """Does the caller hold, on the project, every permission a run needs (``quota_project``: and may bill it)?"""
    name = "caller permissions"
    wanted = list(INFERENCE_PERMISSIONS) + ([QUOTA_PERMISSION] if quota_project else [])
    status, data = google.call(
        "POST",
        f"https://cloudresourcemanager.googleapis.com/v1/projects/{project}:testIamPermissions",
        {"permissions": wanted},
    )
    if status != 200:
        return CheckResult(
            name,
            False,
            problem=f"cannot test the caller's permissions on project {project}: {_server_message(status, data)}",
            fix="check the project id, and that the Cloud Resource Manager API is enabled",
        )
    granted = set(data.get("permissions") or ())
    missing = [p for p in wanted if p not in granted]
    if not missing:
        return CheckResult(name, True, detail=f"all {len(wanted)} held on project {project}")
    roles = sorted({PERMISSION_ROLES.get(p, QUOTA_ROLE) for p in missing})
    return CheckResult(
        name,
        False,
        problem=f"the caller lacks {', '.join(missing)} on project {project}",
        fix=(
            f"grant the caller {', '.join(roles)} on project {project} (roles/bigquery.admin holds them all);"
            " grants on the dataset or the connection alone are not visible to this project-level check"
        ),
    )


def _connection(google: _Google, settings: Settings) -> tuple[CheckResult, str | None]:
    """Does the connection exist in its location, with the service account the settings name?"""
    ref = settings.connection
    name = "connection"
    url = (
        f"https://bigqueryconnection.googleapis.com/v1/projects/{ref.project}/locations/{ref.location}"
        f"/connections/{ref.connection_id}"
    )
    status, data = google.call("GET", url)
    if status == 404:
        return (
            CheckResult(
                name,
                False,
                problem=f"connection {ref} does not exist in location {ref.location}",
                fix=f"run `make apply`; the connection must be in the dataset's location ({settings.location})",
            ),
            None,
        )
    if status != 200:
        return (
            CheckResult(
                name,
                False,
                problem=f"cannot read connection {ref}: {_server_message(status, data)}",
                fix="grant the caller roles/bigquery.connectionUser (or connectionAdmin) on the project",
            ),
            None,
        )
    account = (data.get("cloudResource") or {}).get("serviceAccountId")
    if not account:
        return (
            CheckResult(
                name,
                False,
                problem=f"connection {ref} is not a Cloud resource connection (no service account)",
                fix="recreate it with `cloud_resource {}` via `make apply`",
            ),
            None,
        )
    if account.lower() != settings.connection_service_account.lower():
        return (
            CheckResult(
                name,
                False,
                problem=(
                    f"connection {ref} has service account {account}, but the `embed` output says"
                    f" {settings.connection_service_account}"
                ),
                fix="run `make apply` so the outputs match the connection, or fix --connection-service-account",
            ),
            account,
        )
    return CheckResult(name, True, detail=f"{ref}, service account {account}"), account


def _service_account_role(google: _Google, settings: Settings, account: str) -> CheckResult:
    """Does the connection's service account hold roles/aiplatform.user in the model's project?"""
    project = settings.model.project
    name = "service account role"
    member = f"serviceAccount:{account}".lower()
    status, data = google.call(
        "POST",
        f"https://cloudresourcemanager.googleapis.com/v1/projects/{project}:getIamPolicy",
        {"options": {"requestedPolicyVersion": 3}},
    )
    if status != 200:
        return CheckResult(
            name,
            False,
            problem=f"cannot read the IAM policy of project {project}: {_server_message(status, data)}",
            fix=(
                "grant the caller roles/iam.securityReviewer (resourcemanager.projects.getIamPolicy),"
                " or check the grant in the console"
            ),
        )
    bindings = [
        b
        for b in data.get("bindings") or ()
        if b.get("role") == AI_USER_ROLE and member in (m.lower() for m in b.get("members") or ())
    ]
    if not bindings:
        return CheckResult(
            name,
            False,
            problem=f"serviceAccount:{account} does not hold {AI_USER_ROLE} in project {project}",
            fix=(
                f"grant {AI_USER_ROLE} to serviceAccount:{account} with `make apply`, or wait: IAM can take 7 minutes"
            ),
        )
    conditional = all("condition" in b for b in bindings)
    detail = f"{AI_USER_ROLE} granted in {project}" + (" (with a condition)" if conditional else "")
    return CheckResult(name, True, detail=detail + "; a new grant can take up to 7 minutes to take effect")


def _locations(session: requests.Session, credentials: Any, settings: Settings, timeout: float) -> CheckResult:
    """Are the dataset (and so the object table, model and results), the connection and the settings in one place?"""
    import requests
    from google.api_core import exceptions as core
    from google.api_core.retry import Retry
    from google.auth import exceptions as auth
    from google.cloud import bigquery

    from embed.engines.bigquery import should_retry

    name = "locations"
    dataset = f"{settings.project_id}.{settings.dataset_id}"
    client = bigquery.Client(project=settings.project_id, credentials=credentials, _http=session)
    try:
        found = client.get_dataset(dataset, retry=Retry(predicate=should_retry, deadline=timeout), timeout=timeout)
    except core.NotFound:
        return CheckResult(
            name, False, problem=f"dataset {dataset} does not exist", fix="run `make apply` to create it"
        )
    except core.RetryError as exc:
        raise _Stop(f"cannot reach BigQuery: {exc.cause or exc}", _FIX_NETWORK_AGAIN) from None
    except core.GoogleAPICallError as exc:
        return CheckResult(
            name,
            False,
            problem=f"cannot read dataset {dataset}: {exc.message}",
            fix="grant the caller roles/bigquery.metadataViewer (or dataViewer) on the dataset",
        )
    except (auth.RefreshError, requests.exceptions.RequestException, auth.TransportError) as exc:
        raise _stopped(exc, "cannot reach BigQuery") from None
    places = {
        "dataset": str(found.location or "?"),
        "settings": settings.location,
        "connection": settings.connection.location,
    }
    if len({p.lower() for p in places.values()}) == 1:
        return CheckResult(name, True, detail=", ".join(f"{k} {v}" for k, v in places.items()))
    return CheckResult(
        name,
        False,
        problem="locations differ: " + ", ".join(f"{k} {v}" for k, v in places.items()),
        fix=(
            "the remote model, connection and tables must share one location: set `location` in the stack to the"
            f" dataset's ({places['dataset']}), create the connection there, and run `make apply`"
        ),
    )


class _Checks:
    """The checks after credentials, in the order they run; each runs lazily, so a _Stop can skip the rest.

    The connection check finds the connection's service account, which the next check looks up.
    """

    NAMES = (
        *(f"api {service}" for service in REQUIRED_APIS),
        "caller permissions",
        "connection",
        "service account role",
        "locations",
    )

    def __init__(self, settings: Settings, session: requests.Session, credentials: Any, timeout: float) -> None:
        self.settings = settings
        self.session = session
        self.credentials = credentials
        self.timeout = timeout
        self.google = _Google(session, timeout)
        self.service_account: str | None = None

    def __iter__(self) -> Iterator[tuple[str, Callable[[], CheckResult]]]:
        s = self.settings
        quota = getattr(self.credentials, "quota_project_id", None) == s.project_id
        checks = [
            *(lambda service=service: _api(self.google, s.project_id, service) for service in REQUIRED_APIS),
            lambda: _permissions(self.google, s.project_id, quota),
            self._connection,
            lambda: _service_account_role(self.google, s, self.service_account or s.connection_service_account),
            lambda: _locations(self.session, self.credentials, s, self.timeout),
        ]
        return iter(zip(self.NAMES, checks))

    def _connection(self) -> CheckResult:
        result, self.service_account = _connection(self.google, self.settings)
        return result


CHECK_NAMES = _Checks.NAMES  # after "credentials"


def run_checks(
    settings: Settings,
    *,
    credentials: Any = None,
    make_session: Callable[[Any], requests.Session] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[CheckResult]:
    """Run every check; after a failure that stops them (no credentials, no network) the rest are skipped.

    ``make_session`` builds the authorized HTTP session from the credentials (default: google.auth's
    AuthorizedSession); BigQuery calls share it.
    """
    credentials, found = _credentials(credentials)
    results = [found]
    stop: str | None = None if found.ok else "no credentials"
    if found.ok:
        credentials = _with_quota_project(credentials, settings.project_id)
        try:
            _refresh(credentials)
        except _Stop as exc:
            results[0] = CheckResult("credentials", False, problem=exc.problem, fix=exc.fix)
            stop = "the credentials cannot be used"
    if stop is not None:
        results += [CheckResult(n, False, problem=f"not checked: {stop}", skipped=True) for n in CHECK_NAMES]
        return results
    if make_session is None:
        from google.auth.transport.requests import AuthorizedSession

        make_session = AuthorizedSession
    session = make_session(credentials)
    for name, check in _Checks(settings, session, credentials, timeout):
        if stop is not None:
            results.append(CheckResult(name, False, problem=f"not checked: {stop}", skipped=True))
            continue
        try:
            results.append(check())
        except _Stop as exc:
            results.append(CheckResult(name, False, problem=exc.problem, fix=exc.fix))
            stop = "an earlier check could not reach Google Cloud"
    return results


def all_ok(results: list[CheckResult]) -> bool:
    """True when every check passed."""
    return all(r.ok for r in results)


def problems_summary(results: list[CheckResult]) -> str | None:
    """One line naming how many checks failed and the first one's problem and fix; None when none failed."""
    problems = [r for r in results if not r.ok and not r.skipped]
    if not problems:
        return None
    first = problems[0]
    return f"{len(problems)} check(s) failed. {first.name}: {first.problem}. Fix: {first.fix}."


def to_json(results: list[CheckResult], settings: Settings) -> str:
    """The results as a JSON document: ``ok``, the project and location, and every check."""
    return json.dumps(
        {
            "ok": all_ok(results),
            "project_id": settings.project_id,
            "location": settings.location,
            "checks": [asdict(r) for r in results],
        },
        indent=2,
    )
