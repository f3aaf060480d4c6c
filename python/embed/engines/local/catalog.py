"""What the embedded engine keeps in its DuckDB file besides the tables.

Models, object tables, file hashes, tables' partitioning columns (for the billing model), and
how many times each object version was sent to a model (the fault knob's attempt counts).

BigQuery names map to DuckDB as ``project.dataset.table`` -> schema ``"project__dataset"``,
table ``"table"``. The catalog lives in schema ``_embed_local``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from embed.engines.local.billing import Layout
from embed.engines.local.objects import ObjectFile

if TYPE_CHECKING:
    import duckdb

__all__ = ["CATALOG_SCHEMA", "Catalog", "run", "schema_name"]

CATALOG_SCHEMA = "_embed_local"


def run(con: duckdb.DuckDBPyConnection, text: str, params: list | None = None) -> list[tuple]:
    """Execute ``text`` and fetch its whole result (DuckDB refuses new work while a result is unread)."""
    cursor = con.execute(text, params) if params is not None else con.execute(text)
    return cursor.fetchall()


def schema_name(project: str, dataset: str) -> str:
    """The DuckDB schema that holds BigQuery dataset ``project.dataset``."""
    return f"{project}__{dataset}"


class Catalog:
    """The engine's own tables: remote models by name, object tables and their folders, cached file hashes."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        run(con, f'CREATE SCHEMA IF NOT EXISTS "{CATALOG_SCHEMA}"')
        run(
            con,
            f'CREATE TABLE IF NOT EXISTS "{CATALOG_SCHEMA}".models ('
            " name VARCHAR PRIMARY KEY, endpoint VARCHAR NOT NULL, connection VARCHAR,"
            " created_at TIMESTAMPTZ DEFAULT current_timestamp)",
        )
        run(
            con,
            f'CREATE TABLE IF NOT EXISTS "{CATALOG_SCHEMA}".object_tables (name VARCHAR PRIMARY KEY, roots VARCHAR)',
        )
        run(
            con,
            f'CREATE TABLE IF NOT EXISTS "{CATALOG_SCHEMA}".object_files ('
            " uri VARCHAR PRIMARY KEY, generation BIGINT, content_type VARCHAR, size BIGINT, md5_hash VARCHAR)",
        )
        run(
            con,
            f'CREATE TABLE IF NOT EXISTS "{CATALOG_SCHEMA}".layouts ('
            " name VARCHAR PRIMARY KEY, partition_column VARCHAR, cluster_column VARCHAR)",
        )
        run(
            con,
            f'CREATE TABLE IF NOT EXISTS "{CATALOG_SCHEMA}".model_attempts ('
            " uri VARCHAR, generation BIGINT, attempts BIGINT NOT NULL, PRIMARY KEY (uri, generation))",
        )

    # --- models ----------------------------------------------------------------------

    def model_endpoint(self, name: str) -> str | None:
        """The endpoint of model ``name`` (``project.dataset.model``), or None."""
        rows = run(self.con, f'SELECT endpoint FROM "{CATALOG_SCHEMA}".models WHERE name = ?', [name])
        return str(rows[0][0]) if rows else None

    def put_model(self, name: str, endpoint: str, connection: str) -> None:
        """Register (or replace) model ``name``."""
        run(
            self.con,
            f'INSERT OR REPLACE INTO "{CATALOG_SCHEMA}".models (name, endpoint, connection) VALUES (?, ?, ?)',
            [name, endpoint, connection],
        )

    # --- tables ----------------------------------------------------------------------

    def layout(self, name: str) -> Layout:
        """How table ``name`` is partitioned and clustered (column names in lower case)."""
        rows = run(
            self.con, f'SELECT partition_column, cluster_column FROM "{CATALOG_SCHEMA}".layouts WHERE name = ?', [name]
        )
        return Layout(*rows[0]) if rows else Layout()

    def put_layout(self, name: str, layout: Layout) -> None:
        """Record how table ``name`` is partitioned (by day) and clustered."""
        run(
            self.con,
            f'INSERT OR REPLACE INTO "{CATALOG_SCHEMA}".layouts VALUES (?, ?, ?)',
            [name, layout.partition_column, layout.cluster_column],
        )

    # --- attempts --------------------------------------------------------------------

    def next_attempts(self, versions: list[tuple[str, int]]) -> list[int]:
        """How many times each (uri, generation) was sent to a model before; counts this time (one upsert)."""
        import pyarrow as pa

        if not versions:
            return []
        keys = pa.table({"uri": [u for u, _ in versions], "generation": pa.array([g for _, g in versions], pa.int64())})
        self.con.register("__embed_attempt_keys", keys)
        try:
            found = dict(
                ((u, g), n)
                for u, g, n in run(
                    self.con,
                    f'SELECT a.uri, a.generation, a.attempts FROM "{CATALOG_SCHEMA}".model_attempts AS a'
                    " JOIN __embed_attempt_keys AS k"
                    " ON k.uri = a.uri AND k.generation IS NOT DISTINCT FROM a.generation",
                )
            )
            run(
                self.con,
                f'INSERT INTO "{CATALOG_SCHEMA}".model_attempts'
                " SELECT uri, generation, 1 FROM __embed_attempt_keys"
                " ON CONFLICT (uri, generation) DO UPDATE SET attempts = attempts + 1",
            )
        finally:
            self.con.unregister("__embed_attempt_keys")
        return [int(found.get(key, 0)) for key in versions]

    # --- object tables -----------------------------------------------------------------

    def object_tables(self) -> dict[str, list[Path]]:
        """Object tables by name (``project.dataset.table``) with their folders."""
        rows = run(self.con, f'SELECT name, roots FROM "{CATALOG_SCHEMA}".object_tables')
        return {name: [Path(p) for p in json.loads(roots)] for name, roots in rows}

    def put_object_table(self, name: str, roots: list[str]) -> None:
        """Register object table ``name`` over ``roots`` (canonical paths, see ``objects.canonical_roots``)."""
        run(
            self.con,
            f'INSERT OR REPLACE INTO "{CATALOG_SCHEMA}".object_tables (name, roots) VALUES (?, ?)',
            [name, json.dumps([str(r) for r in roots])],
        )

    def cached_files(self) -> dict[str, ObjectFile]:
        """Files read by earlier scans, by uri (``updated_ns`` is not kept: the generation covers it)."""
        rows = run(
            self.con, f'SELECT uri, generation, content_type, size, md5_hash FROM "{CATALOG_SCHEMA}".object_files'
        )
        return {r[0]: ObjectFile(r[0], r[1], r[2], r[3], r[4], 0) for r in rows}

    def cache_files(self, files: list[ObjectFile], known: dict[str, ObjectFile]) -> None:
        """Remember the hashes of ``files`` that ``known`` did not already hold as they are (one bulk upsert).

        Files that could not be read are not remembered: the next scan tries them again.
        """
        import pyarrow as pa

        fresh = [f for f in files if f.content_type is not None and _cached(known.get(f.uri)) != _cached(f)]
        if not fresh:
            return
        rows = pa.table(
            {
                "uri": [f.uri for f in fresh],
                "generation": pa.array([f.generation for f in fresh], pa.int64()),
                "content_type": pa.array([f.content_type for f in fresh], pa.string()),
                "size": pa.array([f.size for f in fresh], pa.int64()),
                "md5_hash": pa.array([f.md5_hash for f in fresh], pa.string()),
            }
        )
        self.con.register("__embed_fresh_files", rows)
        try:
            run(self.con, f'INSERT OR REPLACE INTO "{CATALOG_SCHEMA}".object_files SELECT * FROM __embed_fresh_files')
        finally:
            self.con.unregister("__embed_fresh_files")


def _cached(file: ObjectFile | None) -> tuple | None:
    """What the cache keeps of a file."""
    return None if file is None else (file.generation, file.content_type, file.size, file.md5_hash)
