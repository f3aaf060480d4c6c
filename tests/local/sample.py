"""Shared helpers of the embedded engine's tests: a small set of real photos and runs with the real model."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from embed.demo import lay_out
from embed.engines.base import Statement
from embed.engines.local.engine import LocalEngine
from embed.engines.local.models import load_model
from embed.pipeline import Pipeline
from embed.reports import RunReport
from embed.settings import Settings, load_settings

# Small on purpose (2 cores): five photos, one of them a stereo pair's second view.
PHOTOS = ("astronaut.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png", "motorcycle_right.png")
MORE_PHOTOS = ("coffee.png", "hubble_deep_field.jpg", "no_time_for_that_tiny.gif")


def local_settings(**overrides: Any) -> Settings:
    """The embedded engine's default settings, ignoring the environment."""
    return load_settings(overrides, local=True, environ={})


@dataclass
class CountingModel:
    """The real local model, with a record of every row sent to it (nothing about its results is faked)."""

    inner: Any
    sent: list[str] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        return self.inner.endpoint

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def embed_images(self, items: Sequence[Any], output_dimensionality: int | None = None) -> list[Any]:
        self.sent.extend(item.uri for item in items)
        return self.inner.embed_images(items, output_dimensionality=output_dimensionality)


def query(engine: LocalEngine, text: str) -> Any:
    """The rows of a BigQuery query run on the embedded engine, as an Arrow table."""
    return engine.execute(Statement("query", text)).rows


def stored(engine: LocalEngine, settings: Settings) -> list[dict[str, Any]]:
    """Every row of the results table, read straight from the database."""
    relation = engine._quoted(str(settings.results_table))
    return engine.con.sql(f"SELECT * FROM {relation} ORDER BY uri, embedded_at").to_arrow_table().to_pylist()


def sample_set(dest: Path, photos: Sequence[str] = PHOTOS, bad: bool = True) -> Path:
    """Lay out ``photos`` (and the bad files) under ``dest``; a cached copy makes later calls cheap."""
    lay_out(dest, photos=photos, bad=bad, views=False)
    return dest


class LocalRun:
    """An embedded database over a folder, with the counting model, and runs of the pipeline on it."""

    def __init__(self, folder: Path, db: Path, settings: Settings | None = None) -> None:
        self.folder = folder
        self.settings = settings or local_settings()
        self.model = CountingModel(load_model(self.settings.endpoint))
        self.engine = LocalEngine(
            db, [folder], object_table=self.settings.object_table, load_model=lambda endpoint: self.model
        )
        self.engine.stats.sent = []  # every row sent to ML.GENERATE_EMBEDDING, injected faults included

    def run(self, **pipeline: Any) -> RunReport:
        """One run of the pipeline; waits are skipped."""
        return Pipeline(self.engine, self.settings, sleep=lambda seconds: None, **pipeline).run()

    def sent_during(self, **pipeline: Any) -> tuple[RunReport, list[str]]:
        """A run, and the uris it sent to ML.GENERATE_EMBEDDING (rows failed by injected faults included)."""
        sent = self.engine.stats.sent
        before = len(sent)
        report = self.run(**pipeline)
        return report, sent[before:]

    def rows(self) -> list[dict[str, Any]]:
        """Every row of the results table, read straight from the database."""
        return stored(self.engine, self.settings)

    def results(self) -> dict[str, dict[str, Any]]:
        """The results table by uri (a test fails on a uri with two rows)."""
        rows = self.rows()
        by_uri = {row["uri"]: row for row in rows}
        assert len(by_uri) == len(rows), "two result rows for one uri"
        return by_uri


def copy_photo(name: str, dest: Path) -> Path:
    """Copy one skimage photo to ``dest``."""
    import skimage

    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(skimage.__file__).parent / "data" / name, dest)
    return dest
