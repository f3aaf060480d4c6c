"""The CLI on the embedded engine, as a user runs it: stdout holds only JSON with --json."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.local.sample import PHOTOS, sample_set
from tests.support.cli import embed as run_embed

REPO = Path(__file__).resolve().parents[2]


def embed(*args: str, cwd: Path, columns: int = 80) -> subprocess.CompletedProcess:
    """``python -m embed ARGS`` in a child process, in a terminal ``columns`` wide."""
    return run_embed(*args, cwd=cwd, env={"COLUMNS": str(columns)})


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """A first `run --engine local --json` over the sample set; (working folder, the finished process)."""
    work = tmp_path_factory.mktemp("cli")
    sample_set(work / "images", PHOTOS)
    done = embed("run", "--engine", "local", "--images", "images", "--db", "embed.duckdb", "--json", cwd=work)
    return work, done


def test_run_json_stdout_is_only_json(ran) -> None:
    work, done = ran
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)  # the whole of stdout, nothing else
    assert report["ok"] is True and report["model"] == "created"
    assert report["counts"]["embedded"] == len(PHOTOS) and report["counts"]["failed_permanent"] == 4
    assert report["images_per_second"] > 0
    assert "created model local.embed.embedding_model" in done.stderr


def test_rerun_says_it_embedded_nothing(ran) -> None:
    work, _ = ran
    done = embed("run", "--engine", "local", "--images", "images", "--db", "embed.duckdb", "--json", cwd=work)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["objects_sent"] == 0 and report["model"] == "kept"
    assert "nothing new to embed" in done.stderr


def test_similar_json_lists_uri_and_distance_nearest_first(ran) -> None:
    work, _ = ran
    done = embed(
        "similar",
        "images/motorcycle_left.png",
        "--engine",
        "local",
        "--db",
        "embed.duckdb",
        "--top-k",
        "3",
        "--json",
        cwd=work,
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert [sorted(item) for item in found] == [["distance", "uri"]] * 3
    assert found[0]["uri"] == (work / "images" / "motorcycle_right.png").as_uri()
    assert [f["distance"] for f in found] == sorted(f["distance"] for f in found)


def test_similar_refuses_an_image_without_embedding(ran) -> None:
    work, _ = ran
    done = embed("similar", "images/bad/notes.jpg", "--engine", "local", "--db", "embed.duckdb", "--json", cwd=work)
    assert done.returncode == 2 and done.stdout == ""
    assert "has no embedding" in done.stderr and "embed run" in done.stderr and "Traceback" not in done.stderr


def test_validate_and_status_json_on_the_database(ran) -> None:
    work, _ = ran
    done = embed("validate", "--engine", "local", "--db", "embed.duckdb", "--json", cwd=work)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is True and report["dimension"] == 1280 and report["successful_rows"] == len(PHOTOS)
    done = embed("status", "--engine", "local", "--db", "embed.duckdb", "--json", cwd=work)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["counts"]["pending"] == 0


def test_commands_refuse_a_missing_database(tmp_path) -> None:
    done = embed("validate", "--engine", "local", "--db", "nowhere.duckdb", "--json", cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == "" and "no embedded database" in done.stderr
    assert not (tmp_path / "nowhere.duckdb").exists()


def test_db_below_a_file_is_an_error_not_a_traceback(tmp_path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "photo.png").write_bytes(b"")
    (tmp_path / "afile").write_text("x")
    done = embed("run", "--engine", "local", "--images", "images", "--db", "afile/embed.duckdb", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "error: cannot open the embedded database" in done.stderr


def test_another_dimension_is_refused_before_any_model_call(ran) -> None:
    """The table holds 1280-d vectors: a run asking for 512-d stops, says why, and changes nothing."""
    work, _ = ran
    done = embed(
        "run",
        "--engine",
        "local",
        "--images",
        "images",
        "--db",
        "embed.duckdb",
        "--output-dimensionality",
        "512",
        "--json",
        cwd=work,
    )
    assert done.returncode == 2 and done.stdout == "" and "Traceback" not in done.stderr
    assert "row(s) of local/efficientnet-lite0-int8 (1280-d)" in done.stderr and "(512-d)" in done.stderr
    assert "--results-table" in done.stderr and "--re-embed" in done.stderr
    status = embed("status", "--engine", "local", "--db", "embed.duckdb", "--json", cwd=work)
    assert json.loads(status.stdout)["counts"]["embedded"] == len(PHOTOS)


def test_another_endpoint_is_refused_before_any_model_call(ran) -> None:
    """int8 and fp32 vectors are two embedding spaces: switching endpoint needs another table or --re-embed."""
    work, _ = ran
    args = ("run", "--engine", "local", "--images", "images", "--db", "embed.duckdb", "--json")
    done = embed(*args, "--endpoint", "local/efficientnet-lite0", cwd=work)
    assert done.returncode == 2 and done.stdout == "" and "Traceback" not in done.stderr
    assert "row(s) of local/efficientnet-lite0-int8 (1280-d)" in done.stderr
    assert "local/efficientnet-lite0 (1280-d)" in done.stderr and "--re-embed" in done.stderr
    assert "keep the table's space (--endpoint local/efficientnet-lite0-int8)" in done.stderr
    other = embed(*args, "--endpoint", "local/efficientnet-lite0", "--results-table", "local.embed.fp32", cwd=work)
    assert other.returncode == 0, other.stderr
    assert json.loads(other.stdout)["counts"]["embedded"] == len(PHOTOS)


def test_similar_takes_names_sql_would_need_quoted(tmp_path) -> None:
    from tests.local.sample import copy_photo

    for name in ("2024--summer.png", "bob's cat.png"):
        copy_photo("motorcycle_left.png" if "bob" in name else "motorcycle_right.png", tmp_path / "images" / name)
    done = embed("run", "--engine", "local", "--images", "images", "--db", "embed.duckdb", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for query, other in (("2024--summer.png", "bob's cat.png"), ("bob's cat.png", "2024--summer.png")):
        found = embed("similar", f"images/{query}", "--engine", "local", "--db", "embed.duckdb", "--json", cwd=tmp_path)
        assert found.returncode == 0, found.stderr
        assert [f["uri"] for f in json.loads(found.stdout)] == [(tmp_path / "images" / other).as_uri()]


def test_similar_text_is_refused_by_the_image_only_local_model(ran) -> None:
    work, _ = ran
    done = embed("similar", "--text", "a motorcycle", "--engine", "local", "--db", "embed.duckdb", cwd=work)
    assert done.returncode == 2 and "embeds images only" in done.stderr and "Traceback" not in done.stderr


def test_failures_lists_the_files_that_failed(ran) -> None:
    work, _ = ran
    done = embed("failures", "--engine", "local", "--db", "embed.duckdb", "--limit", "3", "--json", cwd=work)
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    assert (listed["total"], listed["shown"], listed["limit"]) == (4, 3, 3)
    bad = (work / "images" / "bad").as_uri() + "/"
    for item in listed["failures"]:
        assert item["uri"].startswith(bad) and item["status"] and item["retryable"] is False
        assert item["attempts"] == 1 and item["last_attempt"].endswith("+00:00")
    done = embed("failures", "--engine", "local", "--db", "embed.duckdb", cwd=work, columns=200)
    assert done.returncode == 0, done.stderr
    assert "Failed objects: 4" in done.stdout and "notes.jpg" in done.stdout
    done = embed("status", "--engine", "local", "--db", "embed.duckdb", cwd=work, columns=200)
    assert done.returncode == 0, done.stderr
    assert "4 object(s) failed: `python -m embed failures --engine local --db embed.duckdb` lists each" in done.stdout
