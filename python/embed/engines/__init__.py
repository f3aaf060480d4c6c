"""Engines run the kit's SQL: BigQuery, or the embedded engine offline. :func:`open_engine` opens one by name.

Nothing here imports an engine's libraries: each engine is imported when it is opened.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from embed.errors import EmbedError

if TYPE_CHECKING:
    from embed.engines.base import Engine
    from embed.settings import Settings

__all__ = ["EngineName", "new_run_id", "open_engine"]


def new_run_id() -> str:
    """A run id usable as a BigQuery label value: UTC time and a random suffix."""
    import secrets
    import time

    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


class EngineName(str, Enum):
    """Where statements run: BigQuery, or the embedded engine (DuckDB and a local model, offline)."""

    bigquery = "bigquery"
    local = "local"


def _holds_files(folder: Path) -> bool:
    """True when ``folder`` (or any folder below it) holds anything but folders."""
    if not folder.is_dir():
        return True  # a file given as a folder: the listing names it
    return any(files for _, _, files in os.walk(folder))


def open_engine(
    name: str,
    settings: Settings,
    run_id: str,
    *,
    db: Path | None = None,
    images: Sequence[Path] | None = None,
    need_images: bool = False,
    allow_empty: bool = False,
    warn: Callable[[str], None] | None = None,
) -> Engine:
    """The engine called ``name``, connected for ``settings``, its jobs labelled with ``run_id``.

    The embedded engine opens ``db``; a run needs ``images`` (the object table's folders), which
    must hold files unless ``allow_empty`` (a run that only prunes); other commands read a
    database an earlier run filled. ``warn`` receives the embedded engine's listing warnings.
    """
    if name == EngineName.local:
        from embed.engines.local.engine import DEFAULT_DB, LocalEngine

        path = db if db is not None else DEFAULT_DB
        if need_images and not images:
            raise EmbedError(
                "--engine local needs --images DIR: the folder of images to embed (scanned recursively),"
                " e.g. `python -m embed run --engine local --images photos/`."
            )
        if not need_images and not path.exists():
            raise EmbedError(
                f"no embedded database at {str(path)!r}: run `python -m embed run --engine local --images DIR"
                f"{'' if db is None else ' --db ' + str(db)}` first, or pass --db FILE."
            )
        folders = [Path(p) for p in images or ()]
        if need_images and not allow_empty and folders and all(p.exists() for p in folders):
            if not any(_holds_files(p) for p in folders):
                raise EmbedError(
                    f"no files found under {', '.join(str(p) for p in folders)}: --images takes the folder that"
                    " holds the images (scanned recursively). To remove the results of images deleted from it,"
                    " run with --prune-deleted."
                )
        return LocalEngine(
            path, folders, object_table=settings.object_table, default_project=settings.project_id, warn=warn
        )
    if name != EngineName.bigquery:
        choices = ", ".join(e.value for e in EngineName)
        raise EmbedError(f"unknown engine {name!r}: use one of {choices} (--engine bigquery is the default).")
    from embed.engines.bigquery import connect

    return connect(settings, run_id)
