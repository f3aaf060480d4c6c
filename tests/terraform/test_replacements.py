"""Changes to a stack that exists: planned against a state built from the stack's own plan.

The stand-in replaces what the provider's source marks ForceNew (tests/standin/forcenew.json),
so these plans show the replacements a real apply would make, and the review says what they lose.
All cases share one initialised root stack and one state.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from embed import planreview
from tests.support.plans import CASES, PlanResult
from tests.support.stack import AI_GRANT, BUCKET, BUCKET_GRANT, CONNECTION, CONNECTION_SA, DATASET, TABLE, WAIT
from tests.support.state import applied_state

BASE = CASES / "root" / "full.tfvars"  # EU, a created bucket, metadata cache on
URIS = '["gs://my-images-bucket/photos/*"]'


@pytest.fixture(scope="module")
def existing(plan_runner, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state file in which the BASE stack has been applied."""
    return applied_state(plan_runner, [BASE], tmp_path_factory.mktemp("existing") / "terraform.tfstate")


def plan_change(plan_runner, existing: Path, tmp_path: Path, tfvars: str) -> PlanResult:
    """Plan BASE with ``tfvars`` on top, against the existing state."""
    change = tmp_path / "change.tfvars"
    change.write_text(tfvars)
    return plan_runner.plan("root", [BASE, change], extra_args=("-refresh=false", f"-state={existing}"))


def actions(result: PlanResult) -> dict[str, str]:
    """Address -> create / update / replace / destroy, for what the plan changes."""
    return {c.address: c.action for c in planreview.summarize(result.raw).changes}


def replaced(result: PlanResult) -> dict[str, list[list[Any]]]:
    """Address -> replace_paths of every replaced resource."""
    return {
        rc["address"]: rc["change"].get("replace_paths", [])
        for rc in result.raw["resource_changes"]
        if set(rc["change"]["actions"]) == {"create", "delete"}
    }


def test_an_unchanged_stack_plans_no_change(plan_runner, existing: Path, tmp_path: Path) -> None:
    assert actions(plan_change(plan_runner, existing, tmp_path, "")) == {}


def test_location_change_replaces_dataset_connection_and_bucket_and_is_data_loss(
    plan_runner, existing: Path, tmp_path: Path
) -> None:
    result = plan_change(plan_runner, existing, tmp_path, 'location = "US"\n')
    paths = replaced(result)
    assert paths[DATASET] == [["location"]]
    assert paths[CONNECTION] == [["location"]]
    assert paths[BUCKET] == [["location"]]  # the created bucket follows the dataset's location
    summary = planreview.summarize(result.raw)
    assert set(summary.data_loss) == {DATASET, BUCKET}
    markdown = planreview.render_markdown(summary)
    caution = markdown.split("> [!CAUTION]", 1)[1].split("\n\n", 1)[0]
    assert f"**replace** `{DATASET}` (`location` changed): deletes every table in it" in caution
    assert f"**replace** `{BUCKET}` (`location` changed)" in caution
    assert f"| replace | `{CONNECTION}` | `location` changed |" in markdown


def test_dataset_id_change_replaces_the_dataset_and_the_object_table(
    plan_runner, existing: Path, tmp_path: Path
) -> None:
    result = plan_change(plan_runner, existing, tmp_path, 'dataset_id = "embeddings_v2"\n')
    paths = replaced(result)
    assert paths == {DATASET: [["dataset_id"]], TABLE: [["dataset_id"]]}
    assert set(planreview.summarize(result.raw).data_loss) == {DATASET, TABLE}


def test_bucket_location_change_replaces_only_the_bucket(plan_runner, existing: Path, tmp_path: Path) -> None:
    result = plan_change(
        plan_runner, existing, tmp_path, 'bucket_create = { name = "my-images-bucket", location = "US" }\n'
    )
    assert replaced(result) == {BUCKET: [["location"]]}
    summary = planreview.summarize(result.raw)
    assert summary.data_loss == [BUCKET]
    assert "the delete fails while the bucket holds objects" in planreview.render_markdown(summary)


def test_connection_rename_waits_again_and_replaces_its_grants(plan_runner, existing: Path, tmp_path: Path) -> None:
    result = plan_change(plan_runner, existing, tmp_path, 'connection_id = "embed_conn_v2"\n')
    paths = replaced(result)
    assert paths[CONNECTION] == [["connection_id"]]
    # A new connection has a new service account: the wait runs again, then both grants are replaced.
    assert paths[WAIT] == [["triggers"]]
    assert paths[AI_GRANT] == [["member"]]
    assert paths[BUCKET_GRANT] == [["member"]]
    changes = actions(result)
    assert changes[TABLE] == "update"  # the table's connection_id is not ForceNew
    summary = planreview.summarize(result.raw)
    assert summary.data_loss == []
    grants = {g.address: g for g in summary.grants}
    assert grants[AI_GRANT].action == "replace"
    assert grants[AI_GRANT].members == (f"(known after apply: {CONNECTION_SA})",)
    assert "removed, then added again" in planreview.render_markdown(summary)


def test_turning_the_metadata_cache_off_sends_a_zero_staleness(plan_runner, existing: Path, tmp_path: Path) -> None:
    result = plan_change(plan_runner, existing, tmp_path, f'object_table = {{ id = "photos", source_uris = {URIS} }}\n')
    assert actions(result) == {TABLE: "update"}
    (table,) = [rc["change"] for rc in result.raw["resource_changes"] if rc["address"] == TABLE]
    assert table["before"]["max_staleness"] == "0-0 0 4:0:0"
    assert table["before"]["external_data_configuration"][0]["metadata_cache_mode"] == "AUTOMATIC"
    # Left null, max_staleness (Optional+Computed) would keep 4 hours, sent without a cache mode.
    assert table["after"]["max_staleness"] == "0-0 0 0:0:0"
    assert table["after"]["external_data_configuration"][0]["metadata_cache_mode"] is None


def test_every_grant_to_the_service_account_waits_for_it(plan_runner) -> None:
    graph = plan_runner.terraform("root").execute_command("graph").out
    edges: dict[str, set[str]] = {}
    for source, target in re.findall(r'^\s*"([^"]+)" -> "([^"]+)"', graph, re.M):
        edges.setdefault(source, set()).add(target)

    def after(node: str) -> set[str]:
        """Every resource ``node`` waits for, directly or not."""
        seen, todo = set(), [node]
        while todo:
            for target in edges.get(todo.pop(), ()):
                if target not in seen:
                    seen.add(target)
                    todo.append(target)
        return seen

    assert CONNECTION in after(WAIT)
    for grant in (
        "module.connection.google_project_iam_member.service_account",
        "module.object-table.google_storage_bucket_iam_member.object_viewer",
    ):
        assert WAIT in after(grant), f"{grant} does not wait for {WAIT}:\n{graph}"
    assert WAIT not in after(DATASET)
