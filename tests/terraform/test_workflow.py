"""The example pull-request workflow: a comment for every plan, failed or not, with the full plan collapsed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.support import REPO

WORKFLOW = REPO / ".github" / "workflows" / "terraform-plan.yml"
SCRIPT = REPO / ".github" / "scripts" / "plan-comment.sh"


def comment(build: Path, outcome: str) -> str:
    done = subprocess.run(["bash", str(SCRIPT), str(build), outcome], capture_output=True, text=True, check=True)
    return done.stdout


def test_the_comment_is_posted_whatever_the_plan_did() -> None:
    steps = {s.get("name", s.get("uses")): s for s in yaml.safe_load(WORKFLOW.read_text())["jobs"]["plan"]["steps"]}
    plan = next(s for s in steps.values() if s.get("id") == "plan")
    assert plan["continue-on-error"] is True and "tee build/plan.log" in plan["run"]
    assert "set -o pipefail" in plan["run"]
    write = steps["Write the comment"]
    assert write["if"] == "${{ !cancelled() }}"
    assert '.github/scripts/plan-comment.sh build "${{ steps.plan.outcome }}"' in write["run"]
    post = steps["Post the comment"]
    assert post["if"] == "${{ !cancelled() }}" and post["with"]["path"] == "build/comment.md"
    assert steps["Fail if the plan failed"]["if"] == "${{ steps.plan.outcome == 'failure' }}"
    names = list(steps)
    assert names.index("Post the comment") < names.index("Fail if the plan failed")


def test_a_plan_that_worked_gets_its_review_and_the_full_plan(tmp_path: Path) -> None:
    (tmp_path / "plan.md").write_text("## Terraform plan review\n\n**Plan:** 1 to add.\n")
    (tmp_path / "plan.txt").write_text("  # google_bigquery_dataset.dataset will be created\n")
    text = comment(tmp_path, "success")
    assert text.startswith("## Terraform plan review")
    details = text.split("<details><summary>Full plan</summary>", 1)[1]
    assert "google_bigquery_dataset.dataset will be created" in details and details.rstrip().endswith("</details>")


def test_a_failed_plan_gets_a_comment_with_its_log(tmp_path: Path) -> None:
    (tmp_path / "plan.log").write_text("x" * 60_000 + "\n\x1b[31mError:\x1b[0m Invalid value for variable\n")
    text = comment(tmp_path, "failure")
    assert text.startswith("## Terraform plan failed")
    assert "Error: Invalid value for variable" in text and "\x1b[" not in text
    assert "characters are cut" in text and len(text) < 60_000
    assert "No output was captured" in comment(tmp_path / "missing", "failure")
