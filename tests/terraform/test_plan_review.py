"""The pull-request review on real plan JSON from the root stack: a new stack, then a forced dataset replace."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from embed import planreview
from tests.terraform.conftest import REPO, PlanResult, applied_state

EXAMPLE = REPO / "terraform" / "terraform.tfvars.example"


@pytest.fixture(scope="module")
def created(plan_runner) -> PlanResult:
    return plan_runner.plan("root", [EXAMPLE])


def _address(plan: PlanResult, resource_type: str) -> str:
    (address,) = [c["address"] for c in plan.raw["resource_changes"] if c["type"] == resource_type]
    return address


def test_review_of_a_new_stack_lists_every_grant_and_no_data_loss(created: PlanResult) -> None:
    summary = planreview.summarize(created.raw)
    assert summary.counts == {"create": created.counts["resources"], "update": 0, "replace": 0, "destroy": 0}
    assert summary.data_loss == []
    roles = {grant.role for grant in summary.grants}
    assert {"roles/aiplatform.user", "roles/storage.objectViewer"} <= roles
    assert not any(grant.authoritative for grant in summary.grants)
    markdown = planreview.render_markdown(summary)
    assert "CAUTION" not in markdown
    # The connection's service account is unknown at plan time; the review says where it comes from.
    assert "service_account_id" in markdown


def test_review_flags_a_forced_dataset_replace(created: PlanResult, plan_runner, tmp_path: Path) -> None:
    state = applied_state(plan_runner, [EXAMPLE], tmp_path / "existing.tfstate", created)
    dataset = _address(created, "google_bigquery_dataset")
    replaced = plan_runner.plan(
        "root", [EXAMPLE], extra_args=("-refresh=false", f"-state={state}", f"-replace={dataset}")
    )
    summary = planreview.summarize(replaced.raw)
    assert summary.counts["replace"] == 1
    assert summary.data_loss == [dataset]
    assert "CAUTION" in planreview.render_markdown(summary)

    plan_json = tmp_path / "plan.json"
    plan_json.write_text(json.dumps(replaced.raw))
    review = tmp_path / "plan.md"
    done = subprocess.run(
        [sys.executable, "-m", "embed", "plan-review", str(plan_json), "--output", str(review), "--fail-on-data-loss"],
        capture_output=True, text=True,
    )
    assert done.returncode == 1, done.stderr
    assert dataset in done.stderr
    assert dataset in review.read_text()
