"""Static checks of the Terraform code: fmt, validate and checkov with no failed check."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import REPO
from tests.support.docs import one_line, parse_body
from tests.support.plans import EXAMPLE_TFVARS, TERRAFORM, terraform_message
from tests.support.venvs import tool_venv

CHECKOV = "checkov==3.3.30"
TARGETS = ["root"] + sorted(p.name for p in (REPO / "modules").iterdir() if (p / "main.tf").is_file())


def test_terraform_fmt() -> None:
    done = subprocess.run(
        [TERRAFORM, "fmt", "-check", "-recursive", "-diff", "modules", "terraform"],
        cwd=REPO,
        capture_output=True,
        text=True,
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
def test_checkov_has_no_failed_check(folder: str, tmp_path: Path) -> None:
    checkov = os.environ.get("CHECKOV") or str(tool_venv("checkov", [CHECKOV]) / "checkov")
    # The root stack is checked as the README sets it up, with the example values copied to
    # terraform.tfvars: checkov then evaluates them (and not a developer's own copy).
    for name in ("modules", "terraform"):
        shutil.copytree(REPO / name, tmp_path / name, ignore=shutil.ignore_patterns(".terraform*", "*.tfvars"))
    shutil.copy(EXAMPLE_TFVARS, tmp_path / "terraform" / "terraform.tfvars")
    done = subprocess.run(
        [
            checkov,
            "--directory",
            folder,
            "--framework",
            "terraform",
            "--skip-download",
            "--output",
            "json",
            "--quiet",
            "--compact",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.stdout.strip(), f"checkov printed nothing:\n{done.stderr[-3000:]}"
    reports = json.loads(done.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}:{c['file_line_range'][0]})"
        for r in reports
        if isinstance(r, dict)
        for c in r.get("results", {}).get("failed_checks", [])
    ]
    assert not failed, "checkov failed checks (fix them, or skip with a reason in the HCL):\n" + "\n".join(failed)
    passed = sum(r.get("summary", {}).get("passed", 0) for r in reports if isinstance(r, dict))
    assert passed > 0, f"checkov checked nothing in {folder}: {done.stdout[:2000]}"


def _conditions(folder: Path) -> dict[str, list[str]]:
    """Validation conditions by variable name, on one line each, with ``var.NAME`` written ``var.X``."""
    found = {}
    for block in parse_body((folder / "variables.tf").read_text(encoding="utf-8")).blocks:
        if block.type == "variable":
            name = block.labels[0]
            found[name] = [
                one_line(rule.attributes["condition"]).replace(f"var.{name}", "var.X")
                for rule in block.blocks
                if rule.type == "validation"
            ]
    return found


def test_each_validation_rule_has_one_definition() -> None:
    modules = {p.name: _conditions(p) for p in (REPO / "modules").iterdir() if (p / "variables.tf").is_file()}
    names = {n for conditions in modules.values() for n in conditions}
    for name in sorted(names):
        rules = {m: c[name] for m, c in modules.items() if c.get(name)}
        assert len({tuple(r) for r in rules.values()}) <= 1, f"var.{name} is validated differently: {rules}"
    # The root stack leaves what it passes to a module to that module's validation.
    root = _conditions(REPO / "terraform")
    passed = set(re.findall(r"=\s*var\.(\w+)", (REPO / "terraform" / "main.tf").read_text()))
    revalidated = sorted(n for n in passed if root.get(n))
    assert not revalidated, f"the root stack validates what its modules validate: {revalidated}"
    assert "project_id" in passed and len(modules) == 4
