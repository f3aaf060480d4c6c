"""A damaged or full embedded database: every command exits 2 with what to do, no traceback, and the rows kept.

A damaged file is made three ways (truncated, its header flipped, a bit flipped in the block that holds the
results' status column, found with DuckDB's storage_info). A full disk is real: the database's write-ahead
log is a symlink to /dev/full, so DuckDB's writes get ENOSPC from the kernel, as on a full disk.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from embed import cli
from embed.engines.local.catalog import schema_name
from tests.local.sample import PHOTOS, LocalRun, sample_set
from tests.support.cli import embed as run_embed

pytestmark = pytest.mark.reliability

HEADER_BYTES = 3 * 4096  # DuckDB's file header and its two database headers come before the first block


@pytest.fixture(scope="module")
def filled(tmp_path_factory) -> tuple[Path, Path]:
    """(image folder, database) after one run over the sample set; the database is closed (checkpointed)."""
    work = tmp_path_factory.mktemp("db")
    folder = sample_set(work / "images", PHOTOS[:2])
    local = LocalRun(folder, work / "embed.duckdb")
    assert local.run().ok
    local.engine.close()
    return folder, work / "embed.duckdb"


def truncated(path: Path) -> None:
    with open(path, "r+b") as file:
        file.truncate(path.stat().st_size // 2)


def flip(path: Path, offset: int) -> None:
    with open(path, "r+b") as file:
        file.seek(offset)
        byte = file.read(1)
        file.seek(offset)
        file.write(bytes([byte[0] ^ 0xFF]))


def status_block_offset(path: Path) -> int:
    """Where in ``path`` a byte of the results table's status column lies."""
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        block_size = con.execute("SELECT block_size FROM pragma_database_size()").fetchone()[0]
        table = f'"{schema_name("local", "embed")}"."image_embeddings"'
        block, offset = con.execute(
            "SELECT block_id, block_offset FROM pragma_storage_info(?)"
            " WHERE column_name = 'ml_generate_embedding_status' AND segment_type = 'VARCHAR' AND block_id >= 0",
            [table],
        ).fetchone()
    finally:
        con.close()
    return HEADER_BYTES + block * block_size + 8 + offset + 4  # each block starts with an 8-byte checksum


DAMAGE: dict[str, Callable[[Path], None]] = {
    "truncated": truncated,
    "header-flipped": lambda path: flip(path, 100),
    "status-block-flipped": lambda path: flip(path, status_block_offset(path)),
}


def cli_main(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """The CLI's main() in this process: (exit code, stdout, stderr)."""
    for name in [k for k in os.environ if k.startswith("EMBED_") and k != "EMBED_MODEL_CACHE"]:
        monkeypatch.delenv(name)
    monkeypatch.setattr(sys, "argv", ["embed", *args])
    with pytest.raises(SystemExit) as info:
        cli.main()
    out, err = capsys.readouterr()
    return info.value.code, out, err


@pytest.mark.parametrize("damage", DAMAGE)
@pytest.mark.parametrize("command", ["run", "status", "validate", "similar"])
def test_a_damaged_database_says_what_to_do(filled, tmp_path, monkeypatch, capsys, damage: str, command: str) -> None:
    folder, db = filled
    copy = tmp_path / "embed.duckdb"
    shutil.copyfile(db, copy)
    DAMAGE[damage](copy)
    extra = {"run": ["--images", str(folder)], "similar": [str(folder / PHOTOS[0])]}.get(command, [])
    code, out, err = cli_main(monkeypatch, capsys, command, *extra, "--engine", "local", "--db", str(copy))
    assert code == 2 and out == "", err
    assert f"error: the embedded database {str(copy)!r} is damaged" in err
    assert f"mv {copy} {copy}.damaged" in err and "Traceback" not in err


def embed(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``python -m embed ARGS`` in a child process (a full disk must not outlive the command that met it)."""
    return run_embed(*args, cwd=cwd)


def test_disk_full_while_the_catalog_is_created(filled, tmp_path) -> None:
    folder, _ = filled
    (tmp_path / "new.duckdb.wal").symlink_to("/dev/full")
    done = embed("run", "--engine", "local", "--images", str(folder), "--db", "new.duckdb", cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == "", done.stderr
    assert "error: no space left for the embedded database 'new.duckdb'" in done.stderr
    assert "No space left on device" in done.stderr and "--db FILE on another disk" in done.stderr
    assert "Traceback" not in done.stderr


def test_disk_full_keeps_what_was_stored(filled, tmp_path) -> None:
    folder, db = filled
    shutil.copyfile(db, tmp_path / "embed.duckdb")
    before = embed("status", "--engine", "local", "--db", "embed.duckdb", "--json", cwd=tmp_path)
    assert before.returncode == 0, before.stderr
    (tmp_path / "embed.duckdb.wal").symlink_to("/dev/full")
    more = sample_set(tmp_path / "more", PHOTOS[2:3], bad=False)  # something new to write
    done = embed(
        "run", "--engine", "local", "--images", str(folder), "--images", str(more), "--db", "embed.duckdb", cwd=tmp_path
    )
    assert done.returncode == 2 and "no space left for the embedded database" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    (tmp_path / "embed.duckdb.wal").unlink()
    after = embed("status", "--engine", "local", "--db", "embed.duckdb", "--json", cwd=tmp_path)
    assert after.returncode == 0, after.stderr
    assert json.loads(after.stdout)["counts"] == json.loads(before.stdout)["counts"]
