"""The BigQuery engine: runs the kit's SQL with google-cloud-bigquery.

Every job runs in the configured location (without it BigQuery answers
"Not found: Connection") and carries the labels ``app=embed-kit``, ``run-id=<run id>``
and ``results-table=<the results table>``, by which a run finds another run's jobs on the
same table. Values travel as query parameters. Calls use a bounded retry, and a network
that cannot be reached at all fails at once with an :class:`EmbedError` instead of
retrying for minutes. A job that fails is re-run only for a transient reason, and never
when its statement calls the model: the calls of a failed job may already be billed.
Errors from BigQuery become :class:`StatementError`, flagged ``propagating`` when they
are the connection's IAM grant not having propagated yet.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from embed.engines.base import (
    Column,
    QueryParameter,
    QueryResult,
    Statement,
    StatementError,
    normalize_type,
    parse_type,
)
from embed.errors import FIX_CREDENTIALS, FIX_NETWORK, EmbedError
from embed.identifiers import ModelRef, TableRef, endpoint_name

if TYPE_CHECKING:
    from google.cloud import bigquery

    from embed.settings import Settings

__all__ = [
    "APP_LABEL",
    "BigQueryEngine",
    "connect",
    "is_propagation_error",
    "is_unreachable",
    "label_value",
    "query_parameter",
    "table_label",
    "should_retry",
    "should_retry_job",
]

APP_LABEL = "embed-kit"
DEFAULT_REQUEST_TIMEOUT = 60.0  # seconds per HTTP request (jobs.insert, tables.get ...)
DEFAULT_RETRY_DEADLINE = 60.0  # seconds a transient API error is retried for
DEFAULT_JOB_RETRY_DEADLINE = 300.0  # seconds a job failing for a transient reason is re-run for

_LABEL_KEY = re.compile(r"[a-z][a-z0-9_-]{0,62}")
_LABEL_VALUE_BAD = re.compile(r"[^a-z0-9_-]")
# Failures of a fresh connection whose IAM grant has not reached Vertex AI yet.
_PROPAGATION = (
    re.compile(r"does not have (?:the )?permission to access (?:resource|or use the endpoint)", re.I),
    re.compile(r"bqcx-\S*.*(?:does not exist|permission)", re.I | re.S),
    re.compile(r"service account\S*.*does not exist", re.I | re.S),
)
_RETRYABLE_REASONS = frozenset({"rateLimitExceeded", "backendError", "internalError", "badGateway"})
_JOB_RETRYABLE_REASONS = frozenset({"jobBackendError", "jobInternalError", "jobRateLimitExceeded"})
_NO_CREDENTIALS = f"no Google Cloud credentials found: {FIX_CREDENTIALS}."


def label_value(text: str) -> str:
    """``text`` as a valid label value: lowercase letters, digits, ``_`` and ``-``, at most 63 characters."""
    return _LABEL_VALUE_BAD.sub("-", text.lower())[:63]


def table_label(table: TableRef) -> str:
    """The ``results-table`` label value of ``table``: its name made a valid label, with a short hash if cut."""
    text = label_value(str(table))
    if len(str(table)) <= 63 and text == str(table).lower().replace(".", "-").replace(":", "-"):
        return text
    digest = hashlib.sha256(str(table).encode()).hexdigest()[:10]
    return text[:52] + "-" + digest


def query_parameter(param: QueryParameter) -> Any:
    """The google-cloud-bigquery parameter for ``param`` (scalar, ARRAY or STRUCT, nested as declared)."""
    return _parameter(param.name, parse_type(param.type), param.value)


def _parameter(name: str | None, kind: Any, value: Any) -> Any:
    from google.cloud import bigquery

    if isinstance(kind, tuple) and kind[0] == "ARRAY":
        item = kind[1]
        if isinstance(item, tuple) and item[0] == "STRUCT":
            values = [_parameter(None, item, v) for v in value or []]
            return bigquery.ArrayQueryParameter(name, _parameter_type(item), values)
        return bigquery.ArrayQueryParameter(name, item, list(value or []))
    if isinstance(kind, tuple) and kind[0] == "STRUCT":
        fields = [_parameter(field, field_kind, (value or {}).get(field)) for field, field_kind in kind[1]]
        return bigquery.StructQueryParameter(name, *fields)
    return bigquery.ScalarQueryParameter(name, kind, value)


def _parameter_type(kind: Any, name: str | None = None) -> Any:
    from google.cloud import bigquery

    if isinstance(kind, tuple) and kind[0] == "STRUCT":
        return bigquery.StructQueryParameterType(*(_parameter_type(k, n) for n, k in kind[1]), name=name)
    if isinstance(kind, tuple) and kind[0] == "ARRAY":
        return bigquery.ArrayQueryParameterType(_parameter_type(kind[1]), name=name)
    return bigquery.ScalarQueryParameterType(kind, name=name)


def is_propagation_error(message: str) -> bool:
    """True when ``message`` is an IAM grant (or service account) not yet known to Vertex AI or IAM."""
    return any(p.search(message) for p in _PROPAGATION)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, then its causes and contexts, and the reasons urllib3 wraps, each once."""
    seen: set[int] = set()
    todo: list[Any] = [exc]
    while todo:
        item = todo.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        todo.extend([item.__cause__, item.__context__, getattr(item, "reason", None), getattr(item, "cause", None)])
        todo.extend(a for a in getattr(item, "args", ()) if isinstance(a, BaseException))


def is_unreachable(exc: BaseException) -> bool:
    """True when ``exc`` means no connection could be made at all (no DNS, refused, proxy down, no route)."""
    import requests
    from urllib3.exceptions import NewConnectionError, ProxyError

    for item in _causes(exc):
        if isinstance(item, (NewConnectionError, ProxyError, requests.exceptions.ConnectTimeout)):
            return True
        if isinstance(item, requests.exceptions.ProxyError):
            return True
        if isinstance(item, OSError) and item.errno in (errno.ENETUNREACH, errno.ECONNREFUSED, errno.EHOSTUNREACH):
            return True
    return False


def _api_errors(exc: BaseException) -> list[dict[str, Any]]:
    """The ``errors`` list of a google API error, or []."""
    errors = getattr(exc, "errors", None)
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


def should_retry(exc: BaseException) -> bool:
    """Retry a call on transient server or transport errors, never when the network is unreachable."""
    import requests
    from google.api_core import exceptions as core
    from google.auth import exceptions as auth

    if is_unreachable(exc) or isinstance(exc, requests.exceptions.SSLError):
        return False
    errors = _api_errors(exc)
    if errors:
        return errors[0].get("reason") in _RETRYABLE_REASONS
    return isinstance(
        exc,
        (
            core.TooManyRequests,
            core.InternalServerError,
            core.BadGateway,
            core.ServiceUnavailable,
            requests.exceptions.ConnectionError,
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.Timeout,
            auth.TransportError,
        ),
    )


def should_retry_job(exc: BaseException) -> bool:
    """Re-run a query job that failed for a transient reason (backend error, rate limit)."""
    from google.api_core import exceptions as core

    if isinstance(exc, core.RetryError) and exc.cause is not None:
        exc = exc.cause
    if should_retry(exc):
        return True
    errors = _api_errors(exc)
    return bool(errors) and errors[0].get("reason") in _JOB_RETRYABLE_REASONS


def _column(field: Any) -> Column:
    """A Column from a google-cloud-bigquery SchemaField, with standard SQL type names."""
    kind = str(field.field_type).upper()
    return Column(
        name=field.name,
        type=normalize_type(kind),
        mode=str(field.mode or "NULLABLE").upper(),
        fields=tuple(_column(f) for f in field.fields),
    )


class BigQueryEngine:
    """Runs statements in BigQuery, in one location, with the kit's labels on every job."""

    billing = "reported by BigQuery"
    retry_delay = 15.0  # seconds: a busy Vertex AI endpoint needs time; doubled each round

    def __init__(
        self,
        project: str,
        location: str,
        labels: Mapping[str, str] | None = None,
        run_id: str = "",
        client: bigquery.Client | None = None,
        results_table: TableRef | None = None,
        *,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        retry_deadline: float = DEFAULT_RETRY_DEADLINE,
        job_retry_deadline: float = DEFAULT_JOB_RETRY_DEADLINE,
    ) -> None:
        from google.api_core.retry import Retry

        self.project = project
        self.location = location
        extra = dict(labels or {})
        if results_table is not None:
            extra["results-table"] = table_label(results_table)
        self.labels = self._labels(extra, run_id)
        self._timeout = request_timeout
        self._retry = Retry(predicate=should_retry, deadline=retry_deadline)
        self._job_retry = Retry(predicate=should_retry_job, deadline=job_retry_deadline)
        self._client = client if client is not None else self._make_client()

    @staticmethod
    def _labels(extra: Mapping[str, str], run_id: str) -> dict[str, str]:
        """The job labels: ``extra`` plus ``app`` and ``run-id``, every value made valid."""
        labels = {}
        for key, value in {**extra, "app": APP_LABEL, "run-id": run_id}.items():
            if not _LABEL_KEY.fullmatch(key):
                raise EmbedError(
                    f"label key {key!r} is not valid: use 1-63 lowercase letters, digits, _ or -,"
                    " starting with a letter."
                )
            labels[key] = label_value(str(value))
        if not labels["run-id"]:
            del labels["run-id"]
        return labels

    def _make_client(self) -> bigquery.Client:
        """A client for the project and location, with Application Default Credentials."""
        from google.auth.exceptions import DefaultCredentialsError
        from google.cloud import bigquery

        try:
            return bigquery.Client(project=self.project, location=self.location)
        except DefaultCredentialsError as exc:
            raise EmbedError(f"{_NO_CREDENTIALS} ({exc})") from None

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Turn the client's exceptions into StatementError (BigQuery said no) or EmbedError (cannot ask)."""
        import requests
        from google.api_core import exceptions as core
        from google.auth import exceptions as auth

        try:
            yield
        except auth.DefaultCredentialsError as exc:
            raise EmbedError(f"{_NO_CREDENTIALS} ({exc})") from None
        except auth.RefreshError as exc:
            raise EmbedError(f"Google Cloud refused the credentials ({exc}): {FIX_CREDENTIALS}.") from None
        except core.RetryError as exc:
            cause = exc.cause if exc.cause is not None else exc
            if isinstance(cause, core.GoogleAPICallError):
                raise self._statement_error(cause) from None
            raise self._unreachable(what, cause) from None
        except core.GoogleAPICallError as exc:
            raise self._statement_error(exc) from None
        except (requests.exceptions.RequestException, auth.TransportError, ConnectionError) as exc:
            raise self._unreachable(what, exc) from None

    def _unreachable(self, what: str, exc: BaseException) -> EmbedError:
        """The error for a BigQuery that cannot be reached."""
        return EmbedError(
            f"cannot reach BigQuery to {what} in project {self.project!r}: {type(exc).__name__}: {exc}."
            f" To fix: {FIX_NETWORK}, then try again."
        )

    def _statement_error(self, exc: Any) -> StatementError:
        """A StatementError with the server's message, flagged when it is IAM still propagating."""
        message = (getattr(exc, "message", None) or str(exc)).strip()
        if is_propagation_error(message):
            return StatementError(message, propagating=True)
        if "not found: connection" in message.lower():
            message += (
                f"\n(The job ran in location {self.location!r}; the connection must be in the same location"
                " as the dataset, and the `embed` output's location must match both.)"
            )
        return StatementError(message, propagating=False)

    def _job_config(self, statement: Statement, dry_run: bool) -> bigquery.QueryJobConfig:
        """Job options: labels and query parameters always; no cache and no execution for a dry run."""
        from google.cloud import bigquery

        config = bigquery.QueryJobConfig(
            labels=dict(self.labels), query_parameters=[query_parameter(p) for p in statement.params]
        )
        if dry_run:
            config.dry_run = True
            config.use_query_cache = False
        return config

    def _start(self, statement: Statement, dry_run: bool = False) -> Any:
        """Insert a query job in the configured location; retried only within the bounded deadline."""
        # job_retry=None here: the client's own insert retry would otherwise spin for ten minutes.
        return self._client.query(
            statement.sql,
            job_config=self._job_config(statement, dry_run),
            location=self.location,
            project=self.project,
            retry=self._retry,
            timeout=self._timeout,
            job_retry=None,
        )

    def execute(self, statement: Statement, *, dry_run: bool = False) -> QueryResult:
        """Run one statement (or only check it, with ``dry_run``) and wait for it to finish.

        A statement that calls the model is never re-run by the client: a failed job's calls may be billed.
        """
        with self._errors("check a statement" if dry_run else "run a statement"):
            job = self._start(statement, dry_run)
            if dry_run:
                return QueryResult(bytes_processed=job.total_bytes_processed, job_id=job.job_id)
            job_retry = None if statement.calls_model else self._job_retry
            rows = job.result(retry=self._retry, job_retry=job_retry)
            affected = job.num_dml_affected_rows
            if affected is None:
                affected = getattr(rows, "num_dml_affected_rows", None)
            table = None
            if job.statement_type in (None, "SELECT"):
                table = rows.to_arrow(create_bqstorage_client=False)
            return QueryResult(
                rows=table,
                affected_rows=affected,
                bytes_processed=job.total_bytes_processed,
                bytes_billed=job.total_bytes_billed,
                job_id=job.job_id,
            )

    def running_jobs(self, table: TableRef) -> tuple[str, ...]:
        """Ids of running jobs labelled by this kit for ``table`` (every user's when allowed, else the caller's)."""
        from google.api_core.exceptions import Forbidden

        wanted = table_label(table)
        since = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=7)  # a query job runs at most 6 hours
        query = dict(
            project=self.project,
            state_filter="running",
            min_creation_time=since,
            retry=self._retry,
            timeout=self._timeout,
        )
        with self._errors("list running jobs"):
            try:
                jobs = list(self._client.list_jobs(all_users=True, **query))
            except Forbidden:  # bigquery.jobs.listAll is not granted: the caller's own jobs
                jobs = list(self._client.list_jobs(**query))
        return tuple(
            job.job_id
            for job in jobs
            if (job.labels or {}).get("app") == APP_LABEL and (job.labels or {}).get("results-table") == wanted
        )

    def schema(self, table: TableRef) -> tuple[Column, ...] | None:
        """The schema of ``table``, or None when it does not exist."""
        from google.api_core.exceptions import NotFound

        with self._errors(f"read the schema of {table}"):
            try:
                found = self._client.get_table(str(table), retry=self._retry, timeout=self._timeout)
            except NotFound:
                return None
            return tuple(_column(f) for f in found.schema)

    def model_endpoint(self, model: ModelRef) -> str | None:
        """The endpoint name of remote model ``model``, None when it does not exist, "" when it is not remote."""
        from google.api_core.exceptions import NotFound

        with self._errors(f"read model {model}"):
            try:
                found = self._client.get_model(str(model), retry=self._retry, timeout=self._timeout)
            except NotFound:
                return None
        endpoint = (found._properties.get("remoteModelInfo") or {}).get("endpoint")
        return endpoint_name(endpoint) if endpoint else ""


def connect(settings: Settings, run_id: str, labels: Mapping[str, str] | None = None) -> BigQueryEngine:
    """A BigQuery engine for the settings' project and location; jobs carry ``run_id`` and the results table."""
    return BigQueryEngine(
        settings.project_id, settings.location, dict(labels or {}), run_id, results_table=settings.results_table
    )
