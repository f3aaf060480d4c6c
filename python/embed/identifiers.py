"""Validated BigQuery identifiers and literals, quoted for SQL.

Every name that reaches SQL passes through here. A value is checked against the
rules for its kind (project, dataset, table, model, connection, location, endpoint)
and refused with an :class:`EmbedError` that names the field and shows a valid value.
The accepted alphabets exclude backticks, quotes, semicolons, whitespace and
comment markers, so a quoted value can never end its quotes or start a new statement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import TypeVar

from embed.errors import EmbedError

__all__ = [
    "Sql",
    "ConnectionRef",
    "ModelRef",
    "TableRef",
    "check_dataset_id",
    "check_endpoint",
    "check_location",
    "check_project_id",
    "check_service_account",
    "parse_connection",
    "parse_model",
    "parse_table",
    "string_literal",
]

# GCP project id: 6-30 of [a-z0-9-], starts with a letter, does not end with a hyphen;
# optionally prefixed by a domain for domain-scoped projects (example.com:my-project).
_DOMAIN = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+"
# "local" is the embedded engine's project: too short for a Google Cloud project, so it names none.
_PROJECT = re.compile(rf"(?:{_DOMAIN}:)?[a-z][a-z0-9-]{{4,28}}[a-z0-9]|local")
_DATASET = re.compile(r"[A-Za-z0-9_]{1,1024}")
_MODEL = re.compile(r"[A-Za-z0-9_]{1,1024}")
# BigQuery table names also allow Unicode letters and digits, and hyphens.
_TABLE = re.compile(r"[\w-]{1,1024}")
_CONNECTION_ID = re.compile(r"[A-Za-z0-9_-]{1,1024}")
# BigQuery location: the US or EU multi-region, or a region such as us-central1.
_LOCATION = re.compile(r"(?:us|eu|[a-z]+-[a-z]+[0-9]+)", re.IGNORECASE)
# A Vertex AI endpoint name, or an embedded engine's model, which says it is local: local/<name>.
_ENDPOINT = re.compile(r"(?:local/)?[A-Za-z0-9][A-Za-z0-9._@-]{0,254}")
_SERVICE_ACCOUNT = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}@[a-z0-9][a-z0-9.-]*\.[a-z]+")
_LITERAL_SAFE = re.compile(r"[^'\"\\`\n\r\x00]*")


class Sql(str):
    """Text vetted for SQL: a quoted identifier, a literal or a rendered number."""

    __slots__ = ()


def _refuse(field: str, value: object, kind: str, example: str) -> EmbedError:
    """Build the error for a value that is not a valid ``kind``."""
    return EmbedError(f"{field} is not a valid {kind}: {value!r}. A valid value looks like {example}.")


def _text(field: str, value: object) -> str:
    """Return ``value`` if it is a string, else raise naming ``field``."""
    if not isinstance(value, str):
        raise EmbedError(f"{field} must be a string, got {type(value).__name__} {value!r}.")
    return value


def _ok(pattern: re.Pattern[str], text: str) -> bool:
    """True if ``text`` matches ``pattern`` and holds no ``--`` comment marker."""
    return pattern.fullmatch(text) is not None and "--" not in text


def _checked(value: object, field: str, pattern: re.Pattern[str], kind: str, example: str) -> str:
    """Return ``value`` if it is a string ``pattern`` matches; else raise naming ``field``, ``kind``, ``example``."""
    text = _text(field, value)
    if not _ok(pattern, text):
        raise _refuse(field, value, kind, example)
    return text


def check_project_id(value: object, field: str = "project_id") -> str:
    """Return a valid Google Cloud project id (plain or domain-scoped) or raise."""
    example = (
        "'my-project' (6-30 lowercase letters, digits or hyphens, starting with a letter)"
        " or, for a domain-scoped project, 'example.com:my-project'"
    )
    return _checked(value, field, _PROJECT, "project id", example)


def check_dataset_id(value: object, field: str = "dataset_id") -> str:
    """Return a valid dataset id (letters, digits, underscores) or raise."""
    return _checked(value, field, _DATASET, "dataset id", "'bqml_tutorial' (letters, digits and underscores only)")


def check_location(value: object, field: str = "location") -> str:
    """Return a valid BigQuery location (US, EU or a region) or raise."""
    return _checked(value, field, _LOCATION, "BigQuery location", "'US', 'EU' or a region such as 'us-central1'")


def check_endpoint(value: object, field: str = "endpoint") -> str:
    """Return a valid remote model endpoint name or raise."""
    example = "'multimodalembedding@001' (or 'local/efficientnet-lite0-int8' for --engine local)"
    return _checked(value, field, _ENDPOINT, "model endpoint", example)


def endpoint_name(endpoint: str) -> str:
    """The model an endpoint names: the last segment of a full Vertex AI URL; ``local/…`` and plain names as given."""
    text = endpoint.strip().rstrip("/")
    return text if text.startswith("local/") else text.rsplit("/", 1)[-1]


def check_service_account(value: object, field: str = "connection_service_account") -> str:
    """Return a valid service account e-mail or raise."""
    example = "'bqcx-123456789012-abcd@gcp-sa-bigquery-condel.iam.gserviceaccount.com'"
    return _checked(value, field, _SERVICE_ACCOUNT, "service account e-mail", example)


class _DottedRef:
    """Shared by the references below: dotted text, and the backquoted form for SQL."""

    def __str__(self) -> str:
        return ".".join(getattr(self, f.name) for f in fields(self))  # type: ignore[arg-type]

    @property
    def sql(self) -> Sql:
        """The backquoted form for SQL."""
        return Sql(f"`{self}`")


@dataclass(frozen=True)
class TableRef(_DottedRef):
    """A table as ``project.dataset.table``."""

    project: str
    dataset: str
    table: str


@dataclass(frozen=True)
class ModelRef(_DottedRef):
    """A BigQuery ML model as ``project.dataset.model``."""

    project: str
    dataset: str
    model: str


@dataclass(frozen=True)
class ConnectionRef(_DottedRef):
    """A connection as ``project.location.connection_id``, the form WITH CONNECTION takes."""

    project: str
    location: str
    connection_id: str


_Ref = TypeVar("_Ref", TableRef, ModelRef, ConnectionRef)
# Each reference's kind, example, and the patterns of its three parts.
_REFS: dict[type, tuple[str, str, tuple[re.Pattern[str], ...]]] = {
    TableRef: (
        "table reference",
        "'my-project.bqml_tutorial.images' (project.dataset.table)",
        (_PROJECT, _DATASET, _TABLE),
    ),
    ModelRef: (
        "model reference",
        "'my-project.bqml_tutorial.embedding_model' (project.dataset.model)",
        (_PROJECT, _DATASET, _MODEL),
    ),
    ConnectionRef: (
        "connection reference",
        "'my-project.us.embed_conn' (project.location.connection_id)",
        (_PROJECT, _LOCATION, _CONNECTION_ID),
    ),
}


def _parse(kind: type[_Ref], value: object, field: str) -> _Ref:
    """Split ``project.x.y`` (the project may hold dots: domain scope) and check each part."""
    what, example, patterns = _REFS[kind]
    parts = _text(field, value).rsplit(".", 2)
    if len(parts) != 3 or not all(_ok(p, part) for p, part in zip(patterns, parts)):
        raise _refuse(field, value, what, example)
    return kind(*parts)


def parse_table(value: object, field: str) -> TableRef:
    """Parse and validate ``project.dataset.table``."""
    return _parse(TableRef, value, field)


def parse_model(value: object, field: str = "model") -> ModelRef:
    """Parse and validate ``project.dataset.model``."""
    return _parse(ModelRef, value, field)


def parse_connection(value: object, field: str = "connection") -> ConnectionRef:
    """Parse and validate ``project.location.connection_id``."""
    return _parse(ConnectionRef, value, field)


def string_literal(value: str) -> Sql:
    """Quote ``value`` as a single-quoted SQL string; refuse quotes, backslashes and newlines."""
    if not isinstance(value, str) or not _ok(_LITERAL_SAFE, value):
        raise EmbedError(f"cannot use {value!r} as a SQL string: it contains a quote, backslash or newline.")
    return Sql(f"'{value}'")
