"""Failed objects, for ``embed failures``: each object whose current row failed, with its status and attempts."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from embed import sql
from embed.engines.base import Engine, StatementError
from embed.errors import EmbedError, missing_results_table, refused
from embed.settings import Settings

__all__ = ["FailedObject", "FailedObjects", "read_failed_objects"]


@dataclass(frozen=True)
class FailedObject:
    """One object whose current row failed: its status, whether a run retries it, attempts so far, and when."""

    uri: str
    status: str
    retryable: bool
    attempts: int
    last_attempt: dt.datetime | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (the time in ISO 8601)."""
        return {
            "uri": self.uri,
            "status": self.status,
            "retryable": self.retryable,
            "attempts": self.attempts,
            "last_attempt": None if self.last_attempt is None else self.last_attempt.isoformat(),
        }


@dataclass(frozen=True)
class FailedObjects:
    """The most recent failures, at most ``limit`` of them, and how many there are in all."""

    objects: tuple[FailedObject, ...]
    total: int
    limit: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form for --json."""
        return {
            "total": self.total,
            "shown": len(self.objects),
            "limit": self.limit,
            "failures": [f.to_dict() for f in self.objects],
        }


def read_failed_objects(engine: Engine, settings: Settings, limit: int) -> FailedObjects:
    """The objects whose current row failed, most recent attempt first (runs sql.failed_objects)."""
    if engine.schema(settings.results_table) is None:
        raise EmbedError(missing_results_table(settings.results_table))
    statement = sql.failed_objects(settings, limit)
    try:
        rows = engine.execute(statement).records()
    except StatementError as exc:
        raise refused(statement.name, exc) from None
    objects = tuple(
        FailedObject(
            uri=str(r["uri"]),
            status=str(r["status"]),
            retryable=bool(r["retryable"]),
            attempts=int(r["attempts"] or 0),
            last_attempt=r["last_attempt"],
        )
        for r in rows
    )
    total = int(rows[0]["failed_total"]) if rows else 0
    return FailedObjects(objects, total, limit)
