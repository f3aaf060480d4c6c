"""Static checks of the Terraform code: fmt, validate and checkov with no failed check."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.support.venvs import tool_venv
from tests.terraform.conftest import REPO, TERRAFORM, terraform_message

CHECKOV = "checkov==3.3.30"
TARGETS = ["root"] + sorted(p.name for p in (REPO / "modules").iterdir() if (p / "main.tf").is_file())


def test_terraform_fmt() -> None:
    done = subprocess.run(
        [TERRAFORM, "fmt", "-check", "-recursive", "-diff", "modules", "terraform"],
        cwd=REPO, capture_output=True, text=True,
    )
    assert done.returncode == 0, f"run `make fmt`:\n{done.stdout}{done.stderr}"


@pytest.mark.parametrize("target", TARGETS)
def test_terraform_validate(plan_runner, target: str) -> None:
    tf = plan_runner.terraform(target)
    result = json.loads(tf.execute_command("validate", "-json", "-no-color").out)
    problems = [terraform_message(f"{d['summary']}: {d.get('detail', '')}") for d in result["diagnostics"]]
    assert result["valid"], problems
    assert result["warning_count"] == 0, problems


@pytest.mark.parametrize("folder", ["modules", "terraform"])
def test_checkov_has_no_failed_check(folder: str) -> None:
    checkov = os.environ.get("CHECKOV") or str(tool_venv("checkov", [CHECKOV]) / "checkov")
    done = subprocess.run(
        [checkov, "--directory", folder, "--framework", "terraform", "--skip-download",
         "--output", "json", "--quiet", "--compact"],
        cwd=REPO, capture_output=True, text=True,
    )
    assert done.stdout.strip(), f"checkov printed nothing:\n{done.stderr[-3000:]}"
    reports = json.loads(done.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}:{c['file_line_range'][0]})"
        for r in reports if isinstance(r, dict)
        for c in r.get("results", {}).get("failed_checks", [])
    ]
    assert not failed, "checkov failed checks (fix them, or skip with a reason in the HCL):\n" + "\n".join(failed)
    passed = sum(r.get("summary", {}).get("passed", 0) for r in reports if isinstance(r, dict))
    assert passed > 0, f"checkov checked nothing in {folder}: {done.stdout[:2000]}"
