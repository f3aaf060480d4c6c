"""Runs under hostile conditions end in the table a clean run makes: kill -9 at any moment, heavy faults."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from embed.engines.local.models.faults import FaultInjector
from tests.local.sample import PHOTOS, LocalRun, sample_set
from tests.support.cli import clean_env, embed_command

pytestmark = pytest.mark.reliability

ARGS = ("--batch-size", "2", "--max-retries", "12", "--retry-delay", "0")


def faults(images: Path) -> str:
    """The fault knob: 30 % of first attempts fail, with a seed that fails at least two of these files."""
    uris = [p.absolute().as_uri() for p in sorted(images.rglob("*")) if p.is_file()]
    seed = next(s for s in range(1000) if sum(FaultInjector(0.3, s).fails(u, 0) for u in uris) >= 2)
    return f"retryable:0.3,seed:{seed}"


def start(images: Path, db: Path) -> subprocess.Popen:
    """``embed run --engine local`` in a child process, with injected faults."""
    command = embed_command("run", "--engine", "local", "--images", str(images), "--db", str(db), "--json", *ARGS)
    env = clean_env({"EMBED_LOCAL_FAULTS": faults(images)})
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(images: Path, db: Path) -> None:
    """Run to the end, again while retryable rows are left (a round without progress stops a run)."""
    for _ in range(5):
        child = start(images, db)
        out, err = child.communicate(timeout=300)
        assert child.returncode == 0, err[-3000:]
        if json.loads(out)["counts"]["failed_retryable"] == 0:
            return
    raise AssertionError("retryable rows left after 5 runs")


def table(images: Path, db: Path) -> dict[str, tuple[str, list[float]]]:
    """uri (relative to ``images``) -> (status, embedding), read once the runs are over."""
    local = LocalRun(images, db)
    rows = local.results()  # fails on two rows for one uri
    prefix = images.absolute().as_uri() + "/"
    out = {
        uri.removeprefix(prefix): (r["ml_generate_embedding_status"], r["ml_generate_embedding_result"])
        for uri, r in rows.items()
    }
    local.engine.close()
    return out


# Moments to kill at: while the first batches run, and during a retry round (rows written, not yet compacted).
MOMENTS = ("created model", "retry 1 of")


def kill_after(child: subprocess.Popen, marker: str) -> bool:
    """Read the child's progress until ``marker``, then kill -9 it; False if it ended first."""
    assert child.stderr is not None
    for line in child.stderr:
        if marker in line:
            child.send_signal(signal.SIGKILL)
            child.communicate(timeout=60)
            return True
    child.communicate(timeout=60)
    return False


def test_kill_9_then_a_rerun_equals_a_clean_run(tmp_path: Path) -> None:
    clean_images = sample_set(tmp_path / "clean" / "images", PHOTOS)
    finish(clean_images, tmp_path / "clean" / "embed.duckdb")
    clean = table(clean_images, tmp_path / "clean" / "embed.duckdb")
    assert len(clean) == len(PHOTOS) + 4 and all(clean[p][0] == "" for p in PHOTOS)
    for moment in MOMENTS:
        images = sample_set(tmp_path / moment.replace(" ", "-") / "images", PHOTOS)
        db = images.parent / "embed.duckdb"
        assert kill_after(start(images, db), moment), f"the run ended before {moment!r}"
        finish(images, db)
        again = table(images, db)
        assert again.keys() == clean.keys(), moment
        for uri, (status, embedding) in clean.items():
            assert again[uri][0] == status, (moment, uri)
            assert again[uri][1] == pytest.approx(embedding, abs=1e-5), (moment, uri)
