"""`python -m embed sql` and `--help`, run as a user would: in a subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from embed import sql
from embed.settings import load_settings
from tests.support import REPO
from tests.support.cli import embed as run_embed
from tests.support.outputs import EXAMPLE_OUTPUTS

GOLDEN = Path(__file__).parent / "golden" / "sql_command.txt"
UPDATE = os.environ.get("EMBED_UPDATE_GOLDEN") == "1"


def embed(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m embed ARGS`` from the repository root with no EMBED_* variables."""
    return run_embed(*args, env=env, timeout=120)


def test_sql_with_example_outputs_prints_every_statement() -> None:
    result = embed("sql", "--outputs", "terraform/outputs.example.json")
    assert result.returncode == 0, result.stderr
    if UPDATE:
        GOLDEN.write_text(result.stdout, encoding="utf-8")
    assert result.stdout == GOLDEN.read_text(encoding="utf-8")
    statements = sql.run_statements(load_settings(outputs_file=EXAMPLE_OUTPUTS, environ={}))
    for statement in statements:
        assert f"-- {statement.name}: " in result.stdout
        assert statement.sql + ";" in result.stdout
        for param in statement.params:
            assert f"--   @{param.name} {param.type}\n" in result.stdout
    trees = [t for t in sqlglot.parse(result.stdout, read="bigquery") if t is not None]
    assert len(trees) == len(statements)
    assert not any(t.find(exp.Command) for t in trees)


def test_sql_flags_override_outputs() -> None:
    result = embed(
        "sql",
        "--outputs",
        "terraform/outputs.example.json",
        "--batch-size",
        "42",
        "--no-flatten-json-output",
        "--results-table",
        "my-project.bqml_tutorial.other_results",
    )
    assert result.returncode == 0, result.stderr
    assert "FALSE AS flatten_json_output" in result.stdout
    assert "ml_generate_embedding_result JSON," in result.stdout
    assert "INSERT INTO `my-project.bqml_tutorial.other_results` (" in result.stdout
    assert "-- embed_batch: per batch of 42 pending uris" in result.stdout
    assert "image_embeddings" not in result.stdout


def test_sql_env_overrides_outputs() -> None:
    result = embed("sql", "--outputs", "terraform/outputs.example.json", env={"EMBED_BATCH_SIZE": "7"})
    assert result.returncode == 0, result.stderr
    assert "-- embed_batch: per batch of 7 pending uris" in result.stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--project-id", "my-project`; DROP TABLE x; --"], "--project-id is not a valid project id"),
        (["--connection", "my-project.eu.embed_conn"], "location"),
        (["--batch-size", "0"], "batch_size"),
        (["--output-dimensionality", "512", "--end-second", "30"], "video"),
    ],
)
def test_sql_refuses_bad_settings_without_traceback(args: list[str], says: str) -> None:
    result = embed("sql", "--outputs", "terraform/outputs.example.json", *args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: ") and says in result.stderr
    assert "Traceback" not in result.stderr


def test_sql_missing_outputs_file() -> None:
    result = embed("sql", "--outputs", "no/such/outputs.json")
    assert result.returncode == 2
    assert "not found" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not on PATH")
def test_sql_without_applied_stack_says_what_to_do(tmp_path: Path) -> None:
    result = embed("sql", "--tf-dir", str(tmp_path))
    assert result.returncode == 2
    assert "make apply" in result.stderr and "--outputs" in result.stderr
    assert "Traceback" not in result.stderr


HEAVY = ("google.cloud", "torch", "duckdb")
PROBE = """
import sys
sys.argv = ["embed", *sys.argv[1:]]
from embed.cli import app
try:
    app()
except SystemExit as exc:
    code = exc.code
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "duckdb") or m.startswith("google.cloud"))
print("HEAVY:" + ",".join(heavy))
print("CODE:" + str(code))
"""


@pytest.mark.parametrize("args", [["--help"], ["sql", "--help"]])
def test_help_does_not_import_heavy_modules(args: list[str]) -> None:
    result = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout
    assert "CODE:0" in result.stdout
    assert "HEAVY:\n" in result.stdout, f"--help imported {HEAVY}: {result.stdout.splitlines()[-2]}"


def test_probe_detects_heavy_imports() -> None:
    """The probe above would notice google.cloud if a command imported it at module level."""
    pytest.importorskip("google.cloud.bigquery")
    probe = PROBE.replace("from embed.cli import app", "import google.cloud.bigquery\nfrom embed.cli import app")
    result = subprocess.run(
        [sys.executable, "-c", probe, "--help"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert "HEAVY:google.cloud" in result.stdout
