"""The BigQuery engine: runs the kit's SQL with google-cloud-bigquery.

Every job runs in the configured location (without it BigQuery answers
"Not found: Connection") and carries the labels ``app=embed-kit`` and
``run-id=<run id>``. Calls use a bounded retry, and a network that cannot be
reached at all fails at once with an :class:`EmbedError` instead of retrying
for minutes. Errors from BigQuery become :class:`StatementError`, flagged
``propagating`` when they are the connection's IAM grant not having propagated yet.
"""

from __future__ import annotations

import errno
import re
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Optional

from embed.engines.base import Column, QueryResult, StatementError
from embed.errors import EmbedError
from embed.identifiers import ModelRef, TableRef

if TYPE_CHECKING:
    import pyarrow
    from google.cloud import bigquery

    from embed.settings import Settings

__all__ = [
    "APP_LABEL",
    "BigQueryEngine",
    "connect",
    "is_propagation_error",
    "is_unreachable",
    "label_value",
    "normalise_endpoint",
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
# Standard SQL names for scalar types; records stay RECORD, as BigQuery schemas name them.
_LEGACY_TYPES = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL", "STRUCT": "RECORD"}
_NO_CREDENTIALS = (
    "no Google Cloud credentials found: run `gcloud auth application-default login`,"
    " or set GOOGLE_APPLICATION_CREDENTIALS to a service account key file."
)


def label_value(text: str) -> str:
    """``text`` as a valid label value: lowercase letters, digits, ``_`` and ``-``, at most 63 characters."""
    return _LABEL_VALUE_BAD.sub("-", text.lower())[:63]


def normalise_endpoint(endpoint: str) -> str:
    """The endpoint's name: the last path segment of a full Vertex AI URL, or the name itself."""
    return endpoint.strip().rstrip("/").rsplit("/", 1)[-1]


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
        type=_LEGACY_TYPES.get(kind, kind),
        mode=str(field.mode or "NULLABLE").upper(),
        fields=tuple(_column(f) for f in field.fields),
    )


class BigQueryEngine:
    """Runs statements in BigQuery, in one location, with the kit's labels on every job."""

    def __init__(
        self,
        project: str,
        location: str,
        labels: Optional[Mapping[str, str]] = None,
        run_id: str = "",
        client: "Optional[bigquery.Client]" = None,
        *,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        retry_deadline: float = DEFAULT_RETRY_DEADLINE,
        job_retry_deadline: float = DEFAULT_JOB_RETRY_DEADLINE,
    ) -> None:
        from google.api_core.retry import Retry

        self.project = project
        self.location = location
        self.labels = self._labels(labels or {}, run_id)
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
                    " starting with a letter.",
                    2,
                )
            labels[key] = label_value(str(value))
        if not labels["run-id"]:
            del labels["run-id"]
        return labels

    def _make_client(self) -> "bigquery.Client":
        """A client for the project and location, with Application Default Credentials."""
        from google.auth.exceptions import DefaultCredentialsError
        from google.cloud import bigquery

        try:
            return bigquery.Client(project=self.project, location=self.location)
        except DefaultCredentialsError as exc:
            raise EmbedError(f"{_NO_CREDENTIALS} ({exc})", 2) from None

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Turn the client's exceptions into StatementError (BigQuery said no) or EmbedError (cannot ask)."""
        import requests
        from google.api_core import exceptions as core
        from google.auth import exceptions as auth

        try:
            yield
        except auth.DefaultCredentialsError as exc:
            raise EmbedError(f"{_NO_CREDENTIALS} ({exc})", 2) from None
        except auth.RefreshError as exc:
            raise EmbedError(
                f"Google Cloud refused the credentials ({exc}): run `gcloud auth application-default login`,"
                " or set GOOGLE_APPLICATION_CREDENTIALS to a valid service account key file.",
                2,
            ) from None
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
            " Check the network connection, proxy settings (HTTPS_PROXY) and firewall, then try again.",
            2,
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

    def _job_config(self, dry_run: bool) -> "bigquery.QueryJobConfig":
        """Job options: labels always; no cache and no execution for a dry run."""
        from google.cloud import bigquery

        config = bigquery.QueryJobConfig(labels=dict(self.labels))
        if dry_run:
            config.dry_run = True
            config.use_query_cache = False
        return config

    def _start(self, sql: str, dry_run: bool = False) -> Any:
        """Insert a query job in the configured location; retried only within the bounded deadline."""
        # job_retry=None here: the client's own insert retry would otherwise spin for ten minutes.
        return self._client.query(
            sql,
            job_config=self._job_config(dry_run),
            location=self.location,
            project=self.project,
            retry=self._retry,
            timeout=self._timeout,
            job_retry=None,
        )

    def _wait(self, job: Any, page_size: Optional[int] = None) -> Any:
        """Wait for ``job`` and return its row iterator."""
        return job.result(page_size=page_size, retry=self._retry, job_retry=self._job_retry)

    def execute(self, sql: str, *, dry_run: bool = False) -> QueryResult:
        """Run one statement (or only check it, with ``dry_run``) and wait for it to finish."""
        with self._errors("check a statement" if dry_run else "run a statement"):
            job = self._start(sql, dry_run)
            if dry_run:
                return QueryResult(bytes_processed=job.total_bytes_processed, job_id=job.job_id)
            rows = self._wait(job)
            affected = job.num_dml_affected_rows
            if affected is None:
                affected = getattr(rows, "num_dml_affected_rows", None)
            return QueryResult(affected_rows=affected, bytes_processed=job.total_bytes_processed, job_id=job.job_id)

    def rows(self, sql: str) -> "pyarrow.Table":
        """Run a query and return its rows as an Arrow table."""
        with self._errors("read query results"):
            job = self._start(sql)
            return self._wait(job).to_arrow(create_bqstorage_client=False)

    def iter_rows(self, sql: str, batch_size: int = 10_000) -> Iterator["pyarrow.RecordBatch"]:
        """Run a query and stream its rows as Arrow record batches of at most ``batch_size`` rows."""
        with self._errors("read query results"):
            job = self._start(sql)
            yield from self._wait(job, page_size=batch_size).to_arrow_iterable()

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
        return normalise_endpoint(endpoint) if endpoint else ""


def connect(settings: "Settings", run_id: str, labels: Optional[Mapping[str, str]] = None) -> BigQueryEngine:
    """A BigQuery engine for the settings' project and location, labelled with ``run_id``."""
    return BigQueryEngine(settings.project_id, settings.location, dict(labels or {}), run_id)
