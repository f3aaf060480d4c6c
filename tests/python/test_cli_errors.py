"""Bad input through the CLI, as a user meets it: exit 2, one sentence that says what to do, no traceback."""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.support import REPO
from tests.support.cli import embed as run_embed
from tests.support.outputs import EXAMPLE_OUTPUTS

GOLDEN_SQL = Path(__file__).parent / "golden" / "sql_command.txt"


def embed(*args: str, env: dict[str, str] | None = None, stdin: bytes | None = None, cwd: Path = REPO):
    """``python -m embed ARGS`` in a child process, without EMBED_* settings from the environment (bytes out)."""
    return run_embed(*args, env=env, stdin=stdin, cwd=cwd, text=False, timeout=120)


def refused(done: subprocess.CompletedProcess, *says: str, after_terraform: bool = False) -> str:
    """Check ``done`` failed as a configuration problem should; return its message.

    ``after_terraform``: Terraform's own warnings (on this machine, about its CLI configuration) may come first.
    """
    err = done.stderr.decode()
    assert done.returncode == 2, err
    assert done.stdout == b"" and "Traceback" not in err, err
    assert err.startswith("error: ") or (after_terraform and "\nerror: " in err), err
    for text in says:
        assert text in err, err
    return err


def test_outputs_saved_by_powershell_are_read(tmp_path: Path) -> None:
    """PowerShell 5's `>` writes UTF-16 with a byte-order mark: the run sees the same settings."""
    path = tmp_path / "outputs.json"
    path.write_bytes(EXAMPLE_OUTPUTS.read_text(encoding="utf-8").replace("\n", "\r\n").encode("utf-16"))
    done = embed("sql", "--outputs", str(path))
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode() == GOLDEN_SQL.read_text(encoding="utf-8")


def test_outputs_from_stdin() -> None:
    """`terraform output -json | python -m embed sql --outputs -`, as `plan-review -` reads a plan."""
    done = embed("sql", "--outputs", "-", stdin=EXAMPLE_OUTPUTS.read_bytes())
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode() == GOLDEN_SQL.read_text(encoding="utf-8")


@pytest.mark.reliability
@pytest.mark.parametrize(
    ("content", "says"),
    [
        (
            EXAMPLE_OUTPUTS.read_text(encoding="utf-8").replace("my-project", "my-pr\u00f6ject").encode("latin-1"),
            "is not text in UTF-8",
        ),
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "is not text in UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "nests JSON too deeply"),
        (json.dumps({"bucket": {"value": "b"}, "images": {"value": "i"}}).encode(), "it holds `bucket`, `images`"),
    ],
    ids=["latin-1", "binary", "nested-100k", "no-embed-output"],
)
def test_bad_outputs_files(tmp_path: Path, content: bytes, says: str) -> None:
    path = tmp_path / "outputs.json"
    path.write_bytes(content)
    refused(embed("status", "--outputs", str(path)), says, "terraform output -json")


def test_a_bad_variable_is_named() -> None:
    refused(
        embed("sql", "--outputs", str(EXAMPLE_OUTPUTS), env={"EMBED_BATCH_SIZE": "abc"}),
        "EMBED_BATCH_SIZE must be a whole number, got 'abc'",
    )


def test_unknown_engine_is_refused_before_any_settings_are_read(tmp_path: Path) -> None:
    done = embed("run", "--engine", "locl", "--outputs", str(tmp_path / "missing.json"))
    err = done.stderr.decode()
    assert done.returncode == 2 and "'locl' is not one of 'bigquery', 'local'" in err
    assert "missing.json" not in err and "Traceback" not in err


def test_an_empty_image_folder_says_no_files_found(tmp_path: Path) -> None:
    (tmp_path / "photos" / "empty-subfolder").mkdir(parents=True)
    err = refused(
        embed("run", "--engine", "local", "--images", "photos", "--db", "x.duckdb", cwd=tmp_path),
        "no files found under photos",
    )
    assert "nothing new to embed" not in err
    assert not (tmp_path / "x.duckdb").exists()


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not on PATH")
def test_tf_dir_on_a_module_says_so() -> None:
    refused(
        embed("sql", "--tf-dir", "modules/object-table"),
        "is a module, not a root stack",
        "--tf-dir terraform",
        after_terraform=True,
    )


def test_plan_review_of_a_binary_plan_says_to_run_terraform_show(tmp_path: Path) -> None:
    plan = tmp_path / "plan.tfplan"
    with zipfile.ZipFile(plan, "w") as archive:  # what `terraform plan -out` writes
        archive.writestr("tfplan", b"\x00\x01binary plan")
    refused(embed("plan-review", str(plan)), "binary plan file", f"terraform show -json {plan} > plan.json")
