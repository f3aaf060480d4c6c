"""Similar images: the embedded objects nearest to an image or to a text, by VECTOR_SEARCH over the results."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embed import sql
from embed.engines.base import Engine, StatementError
from embed.errors import EmbedError, missing_results_table, refused
from embed.settings import Settings

__all__ = ["Neighbour", "local_image_uri", "similar"]


@dataclass(frozen=True)
class Neighbour:
    """An embedded object near the query, and its cosine distance to it."""

    uri: str
    distance: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {"uri": self.uri, "distance": self.distance}


def local_image_uri(image_uri: str | None, text: str | None) -> str | None:
    """For the embedded engine: the uri its listing gives ``image_uri`` when that is a path; ``--text`` is refused."""
    if text is not None:
        raise EmbedError(
            "--text needs a model that embeds text and images in one space; the embedded engine's local model"
            " embeds images only. Search by an image (similar PATH), or run on BigQuery."
        )
    if image_uri is None or "://" in image_uri:
        return image_uri
    from embed.engines.local.objects import uri_of

    return uri_of(Path(image_uri))


def similar(
    engine: Engine, settings: Settings, *, image_uri: str | None = None, text: str | None = None, top_k: int = 5
) -> tuple[Neighbour, ...]:
    """The ``top_k`` objects nearest to ``image_uri`` (an embedded object) or to ``text``, nearest first."""
    if (image_uri is None) == (text is None):
        raise EmbedError('similar takes an IMAGE_URI or --text "…", one of the two.')
    if not settings.flatten_json_output:
        raise EmbedError("similar needs ARRAY<FLOAT64> embeddings; the results hold JSON (--no-flatten-json-output).")
    statement = (
        sql.text_search(settings, text, top_k) if text is not None else sql.vector_search(settings, image_uri, top_k)
    )
    if engine.schema(settings.results_table) is None:
        raise EmbedError(missing_results_table(settings.results_table))
    try:
        rows = engine.execute(statement).records()
    except StatementError as exc:
        raise refused(statement.name, exc) from None
    if rows:
        return tuple(Neighbour(r["uri"], r["distance"]) for r in rows if r["uri"] is not None)
    if text is not None:
        raise EmbedError(
            f"no neighbours for {text!r}: the text could not be embedded (at most 32 tokens), or"
            f" {settings.results_table} holds no embeddings of {settings.endpoint}; see `python -m embed status`."
        )
    raise EmbedError(
        f"{image_uri} has no embedding in {settings.results_table}: run `python -m embed run` first, and check"
        " `python -m embed status` (a row that failed has no embedding)."
    )
