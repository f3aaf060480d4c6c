"""The Makefile's Terraform targets as a user runs them: offline plans, refusals and hints."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO

PY = Path(sys.executable)


def make(*args: str, cwd: Path = REPO, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("target", ["apply", "destroy"])
def test_offline_apply_is_refused_before_anything_runs(target: str, tmp_path: Path) -> None:
    kept = tmp_path / "offline" / "plan.tfplan"
    kept.parent.mkdir()
    kept.write_text("an offline plan")
    done = make(target, "OFFLINE=1", f"BUILD={tmp_path}")
    assert done.returncode == 2
    assert f"run `make {target}` without OFFLINE=1" in done.stderr
    assert kept.read_text() == "an offline plan", "build/offline was wiped before the refusal"


def test_plan_without_the_registry_suggests_offline(tmp_path: Path) -> None:
    for name in ("Makefile", "modules", "terraform"):
        (shutil.copytree if (REPO / name).is_dir() else shutil.copy)(REPO / name, tmp_path / name)
    rc = tmp_path / "terraformrc"
    rc.write_text("provider_installation {\n  direct {}\n}\n")
    unreachable = "http://127.0.0.1:9"  # nothing listens on the discard port: the registry cannot be reached
    env = {
        "TF_CLI_CONFIG_FILE": str(rc),
        "HTTPS_PROXY": unreachable,
        "HTTP_PROXY": unreachable,
        "CHECKPOINT_DISABLE": "1",
        "TF_PLUGIN_CACHE_DIR": "",
    }
    # STAMP_BASE= : this interpreter already has the kit; make installs nothing
    done = make("plan", "TFVARS=terraform/terraform.tfvars.example", f"PY={PY}", "STAMP_BASE=", cwd=tmp_path, env=env)
    assert done.returncode != 0
    assert "could not connect to registry.terraform.io" in done.stderr
    assert "make plan OFFLINE=1" in done.stderr


def test_offline_plan_says_so_and_gives_no_apply_hint(tmp_path: Path) -> None:
    done = make("plan", "OFFLINE=1", f"BUILD={tmp_path}", f"PY={PY}", "STAMP_BASE=")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "terraform apply" not in done.stdout
    review = (tmp_path / "offline" / "plan.md").read_text()
    assert "Planned offline with the stand-in providers" in review
    assert "time_sleep.service_account" in review
