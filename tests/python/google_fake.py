"""A scripted stand-in for Google's REST endpoints, mounted as a requests transport adapter.

The real client libraries (google-cloud-bigquery, google.auth's AuthorizedSession) build
and send every request; only the answers come from here. Each request is recorded
with its method, URL, query parameters and JSON body so tests can assert what was sent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from requests.adapters import BaseAdapter

Handler = Callable[["Sent", "re.Match[str]"], "tuple[int, Any]"]


@dataclass
class Sent:
    """One request the client sent."""

    method: str
    url: str
    path: str
    params: dict[str, str]
    body: Any
    headers: dict[str, str]


def error_body(code: int, message: str, reason: str, status: str = "") -> dict[str, Any]:
    """A Google API error response body."""
    return {
        "error": {
            "code": code,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": reason}],
            "status": status,
        }
    }


class FakeGoogle(BaseAdapter):
    """A transport adapter answering requests from a list of (method, path pattern, handler) routes."""

    def __init__(self) -> None:
        super().__init__()
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.sent: list[Sent] = []
        self.fail_with: BaseException | None = None  # raised for every request when set
        self.fail_next: list[BaseException] = []  # raised once each, for the next requests

    def route(self, method: str, pattern: str, handler: Handler | tuple[int, Any]) -> None:
        """Answer ``method`` requests whose URL (host + path) matches ``pattern``; later routes win."""
        answer = handler if callable(handler) else (lambda sent, match, fixed=handler: fixed)
        self.routes.insert(0, (method, re.compile(pattern), answer))

    def session(self, credentials: Any = None) -> requests.Session:
        """A google.auth AuthorizedSession (anonymous by default) whose every https request is answered here."""
        from google.auth.credentials import AnonymousCredentials
        from google.auth.transport.requests import AuthorizedSession

        return self.mount_on(AuthorizedSession(credentials or AnonymousCredentials()))

    def mount_on(self, session: requests.Session) -> requests.Session:
        """Mount this adapter on an existing session (an AuthorizedSession, say) and return it."""
        session.trust_env = False
        session.mount("https://", self)
        return session

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # noqa: D102
        parts = urlsplit(request.url or "")
        raw = request.body.decode("utf-8") if isinstance(request.body, bytes) else request.body
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        sent = Sent(
            method=request.method or "",
            url=request.url or "",
            path=parts.path,
            params={k: v[-1] for k, v in parse_qs(parts.query).items()},
            body=body,
            headers=dict(request.headers),
        )
        self.sent.append(sent)
        if self.fail_next:
            raise self.fail_next.pop(0)
        if self.fail_with is not None:
            raise self.fail_with
        target = parts.netloc + parts.path
        for method, pattern, handler in self.routes:
            match = pattern.fullmatch(target)
            if method == sent.method and match:
                status, payload = handler(sent, match)
                return self._response(request, status, payload)
        return self._response(
            request, 404, error_body(404, f"Not found: no fake route for {method} {target}", "notFound")
        )

    @staticmethod
    def _response(request: requests.PreparedRequest, status: int, payload: Any) -> requests.Response:
        response = requests.Response()
        response.status_code = status
        response._content = json.dumps(payload).encode("utf-8")
        response.headers["Content-Type"] = "application/json; charset=UTF-8"
        response.url = request.url or ""
        response.request = request
        response.encoding = "utf-8"
        return response

    def close(self) -> None:  # noqa: D102
        pass

    def calls(self, method: str, path_contains: str) -> list[Sent]:
        """The recorded requests with ``method`` whose path contains ``path_contains``."""
        return [s for s in self.sent if s.method == method and path_contains in s.path]


BQ = r"(?:bigquery\.googleapis\.com)/bigquery/v2"


@dataclass
class ScriptedQuery:
    """How the fake BigQuery answers one query: rows, DML count, bytes, or a failure."""

    schema: list[dict[str, Any]] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    dml_affected_rows: int | None = None
    bytes_processed: int = 0
    bytes_billed: int | None = None
    error: dict[str, Any] | None = None  # errorResult of a job that fails
    insert_error: tuple[int, dict[str, Any]] | None = None  # HTTP error answering jobs.insert


def _cell(value: Any) -> Any:
    """A value in the REST row format: strings, or lists / records of cells."""
    if value is None:
        return None
    if isinstance(value, list):
        return [{"v": _cell(v)} for v in value]
    if isinstance(value, dict):
        return {"f": [{"v": _cell(v)} for v in value.values()]}
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def encode_rows(rows: list[list[Any]]) -> list[dict[str, Any]]:
    """Rows in the REST ``{"f": [{"v": ...}]}`` format."""
    return [{"f": [{"v": _cell(v)} for v in row]} for row in rows]


class FakeBigQuery:
    """Jobs, query results, tables and models answered the way the BigQuery REST API answers them."""

    def __init__(self, fake: FakeGoogle, script: Callable[[str, dict[str, Any]], ScriptedQuery]) -> None:
        self.fake = fake
        self.script = script
        self.jobs: dict[str, tuple[dict[str, Any], ScriptedQuery]] = {}
        fake.route("POST", BQ + r"/projects/([^/]+)/jobs", self._insert)
        fake.route("GET", BQ + r"/projects/([^/]+)/jobs/([^/]+)", self._get_job)
        fake.route("GET", BQ + r"/projects/([^/]+)/queries/([^/]+)", self._query_results)
        fake.route("GET", BQ + r"/projects/([^/]+)/datasets/_results/tables/([^/]+)/data", self._tabledata)

    def _insert(self, sent: Sent, match: re.Match[str]) -> tuple[int, Any]:
        body = sent.body
        config = body["configuration"]
        scripted = self.script(config["query"]["query"], body)
        if scripted.insert_error is not None:
            return scripted.insert_error
        ref = dict(body["jobReference"])
        job_id = ref["jobId"]
        resource = {
            "kind": "bigquery#job",
            "id": f"{ref['projectId']}:{ref.get('location', '')}.{job_id}",
            "jobReference": ref,
            "configuration": json.loads(json.dumps(config)),
            "status": {"state": "DONE"},
            "statistics": {
                "creationTime": "1700000000000",
                "totalBytesProcessed": str(scripted.bytes_processed),
                "query": {"totalBytesProcessed": str(scripted.bytes_processed)},
            },
        }
        if scripted.bytes_billed is not None:
            resource["statistics"]["query"]["totalBytesBilled"] = str(scripted.bytes_billed)
        if scripted.dml_affected_rows is not None:
            resource["statistics"]["query"]["numDmlAffectedRows"] = str(scripted.dml_affected_rows)
        if scripted.error is not None:
            resource["status"]["errorResult"] = scripted.error
            resource["status"]["errors"] = [scripted.error]
        if not config.get("dryRun"):
            resource["configuration"]["query"]["destinationTable"] = {
                "projectId": ref["projectId"],
                "datasetId": "_results",
                "tableId": job_id,
            }
            self.jobs[job_id] = (resource, scripted)
        return 200, resource

    def _get_job(self, sent: Sent, match: re.Match[str]) -> tuple[int, Any]:
        return 200, self.jobs[match.group(2)][0]

    def _page(self, scripted: ScriptedQuery, params: dict[str, str]) -> dict[str, Any]:
        start = int(params.get("pageToken") or params.get("startIndex") or 0)
        size = int(params.get("maxResults") or 0) or len(scripted.rows)
        rows = scripted.rows[start : start + size]
        page: dict[str, Any] = {"totalRows": str(len(scripted.rows)), "rows": encode_rows(rows)}
        if start + size < len(scripted.rows):
            page["pageToken"] = str(start + size)
        return page

    def _query_results(self, sent: Sent, match: re.Match[str]) -> tuple[int, Any]:
        resource, scripted = self.jobs[match.group(2)]
        if scripted.error is not None:
            code = 403 if scripted.error.get("reason") == "accessDenied" else 400
            return code, error_body(code, scripted.error["message"], scripted.error["reason"])
        answer: dict[str, Any] = {
            "kind": "bigquery#getQueryResultsResponse",
            "jobReference": resource["jobReference"],
            "jobComplete": True,
            "cacheHit": False,
        }
        if scripted.dml_affected_rows is not None:
            answer["numDmlAffectedRows"] = str(scripted.dml_affected_rows)
        if scripted.schema:
            answer["schema"] = {"fields": scripted.schema}
            if sent.params.get("maxResults") != "0":  # maxResults=0 asks for completion only
                answer.update(self._page(scripted, sent.params))
            else:
                answer["totalRows"] = str(len(scripted.rows))
        return 200, answer

    def _tabledata(self, sent: Sent, match: re.Match[str]) -> tuple[int, Any]:
        _, scripted = self.jobs[match.group(2)]
        return 200, {"kind": "bigquery#tableDataList", **self._page(scripted, sent.params)}
