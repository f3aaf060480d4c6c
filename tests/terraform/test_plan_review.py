"""The pull-request review of a plan (``embed plan-review``, python/embed/planreview.py).

Most tests feed it plan documents shaped as ``terraform show -json`` writes them, with
the root stack's own addresses (tests/support/stack.py); the last ones feed it real
plans of the root stack, and check that the hand-made documents still look like them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from embed.errors import EmbedError
from embed.planreview import UNKNOWN, load_plan, render_markdown, summarize
from tests.support.cli import embed
from tests.support.plans import EXAMPLE_TFVARS, PlanResult, module_configs
from tests.support.stack import AI_GRANT, BUCKET, BUCKET_GRANT, CONNECTION, CONNECTION_SA, DATASET, SERVICE, TABLE, WAIT
from tests.support.state import applied_state

GOOGLE = "registry.terraform.io/hashicorp/google"
ADDRESS = re.compile(
    r"^(?P<module>(?:module\.[\w-]+(?:\[[^\]]*\])?\.)*)(?P<data>data\.)?(?P<type>\w+)\.(?P<name>[\w-]+)"
    r"(?:\[(?P<index>[^\]]*)\])?$"
)
# A role granted through var.additional_roles, then removed from it.
ADMIN_GRANT = 'module.connection.google_project_iam_member.service_account["roles/bigquery.admin"]'
# What a user may declare beside the kit's modules: the kit itself has no data source and no authoritative IAM.
USER_DATA = "data.google_project.project"
USER_BINDING = "google_bigquery_dataset_iam_binding.viewers"
USER_POLICY = "google_bigquery_dataset_iam_policy.embeddings"
# The bigquery-connection module's expressions: the wait carries the account, the grants read it from the wait.
SA_REFERENCES = {
    "references": [
        "google_bigquery_connection.connection.cloud_resource[0].service_account_id",
        "google_bigquery_connection.connection.cloud_resource[0]",
        "google_bigquery_connection.connection.cloud_resource",
        "google_bigquery_connection.connection",
    ]
}
VIA_WAIT = {
    "references": [
        'time_sleep.service_account.triggers["service_account"]',
        "time_sleep.service_account.triggers",
        "time_sleep.service_account",
    ]
}


def resource_change(
    address: str,
    actions: list[str],
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    after_unknown: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One entry of ``resource_changes`` as ``terraform show -json`` writes it."""
    parts = ADDRESS.match(address)
    assert parts, f"not a resource address: {address}"
    rc: dict[str, Any] = {
        "address": address,
        "mode": "data" if parts["data"] else "managed",
        "type": parts["type"],
        "name": parts["name"],
        "provider_name": GOOGLE,
        "change": {
            "actions": actions,
            "before": before,
            "after": after,
            "after_unknown": after_unknown or {},
            "before_sensitive": {} if before is not None else False,
            "after_sensitive": {} if after is not None else False,
        },
    }
    if parts["module"]:
        rc["module_address"] = parts["module"][:-1]
    if parts["index"] is not None:
        rc["index"] = json.loads(parts["index"])
    if "replace_paths" in extra:
        rc["change"]["replace_paths"] = extra.pop("replace_paths")
    rc.update(extra)
    return rc


def plan(*changes: dict[str, Any], configuration: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """A plan document with the top-level keys Terraform writes."""
    doc: dict[str, Any] = {
        "format_version": "1.2",
        "terraform_version": "1.9.8",
        "planned_values": {"root_module": {}},
        "resource_changes": list(changes),
        "configuration": configuration or {"provider_config": {"google": {"name": "google"}}, "root_module": {}},
        "timestamp": "2025-01-01T00:00:00Z",
        "applyable": True,
        "complete": True,
        "errored": False,
    }
    doc.update(extra)
    return doc


DATASET_VALUES = {
    "dataset_id": "bqml_tutorial",
    "project": "my-project",
    "location": "EU",
    "delete_contents_on_destroy": False,
    "labels": {"app": "embed-kit"},
}
TABLE_VALUES = {
    "dataset_id": "bqml_tutorial",
    "table_id": "images",
    "project": "my-project",
    "deletion_protection": False,
}


def write_plan(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def dataset_replace() -> dict[str, Any]:
    return resource_change(
        DATASET,
        ["delete", "create"],
        before=DATASET_VALUES,
        after={**DATASET_VALUES, "location": "US"},
        after_unknown={"id": True, "self_link": True},
        action_reason="replace_because_cannot_update",
        replace_paths=[["location"]],
    )


# --- counts and the change table -------------------------------------------------


def test_add_and_update_are_counted_and_listed_without_data_loss_warning() -> None:
    doc = plan(
        resource_change(
            BUCKET,
            ["create"],
            after={"name": "my-images-bucket", "location": "EU"},
            after_unknown={"id": True, "url": True},
        ),
        resource_change(
            DATASET,
            ["update"],
            before=DATASET_VALUES,
            after={**DATASET_VALUES, "labels": {"app": "embed-kit", "team": "ml"}},
        ),
        resource_change(SERVICE, ["no-op"], before={"service": "x"}, after={"service": "x"}),
        resource_change(USER_DATA, ["read"], after={}, after_unknown={"number": True}),
    )
    summary = summarize(doc)
    assert summary.counts == {"create": 1, "update": 1, "replace": 0, "destroy": 0}
    assert summary.data_loss == []
    markdown = render_markdown(summary)
    assert "1 to add, 1 to change, 0 to replace, 0 to destroy" in markdown
    assert f"| create | `{BUCKET}` |" in markdown
    assert f"| update | `{DATASET}` |" in markdown
    assert SERVICE not in markdown
    assert USER_DATA not in markdown
    assert "[!CAUTION]" not in markdown


def test_empty_plan_says_no_changes() -> None:
    markdown = render_markdown(summarize(plan()))
    assert "No changes" in markdown
    assert "| Action |" not in markdown


def test_output_changes_are_listed_and_no_op_outputs_are_not() -> None:
    doc = plan(
        output_changes={
            "embed": {"actions": ["update"], "before": {"a": 1}, "after_unknown": True},
            "project": {"actions": ["no-op"], "before": "p", "after": "p", "after_unknown": False},
        }
    )
    markdown = render_markdown(summarize(doc))
    assert "- `embed`: update" in markdown
    assert "`project`" not in markdown


# --- data loss --------------------------------------------------------------------


@pytest.mark.parametrize("actions", [["delete", "create"], ["create", "delete"]])
def test_dataset_replace_is_data_loss_with_loud_warning(actions: list[str]) -> None:
    change = dataset_replace()
    change["change"]["actions"] = actions
    summary = summarize(plan(change))
    assert summary.counts["replace"] == 1
    assert summary.data_loss == [DATASET]
    markdown = render_markdown(summary)
    caution = markdown.split("> [!CAUTION]", 1)[1].split("\n\n", 1)[0]
    assert "DATA LOSS" in markdown.split("> [!CAUTION]", 1)[0]
    assert f"`{DATASET}`" in caution
    assert "(`location` changed): deletes every table in it" in caution


def test_table_destroy_is_data_loss() -> None:
    # The module's table renamed without a moved block: its old address has no configuration.
    change = resource_change(TABLE, ["delete"], before=TABLE_VALUES, action_reason="delete_because_no_resource_config")
    summary = summarize(plan(change))
    assert summary.counts == {"create": 0, "update": 0, "replace": 0, "destroy": 1}
    assert summary.data_loss == [TABLE]
    markdown = render_markdown(summary)
    assert "> [!CAUTION]" in markdown
    assert f"> - **destroy** `{TABLE}`" in markdown
    assert "removed from configuration" in markdown


@pytest.mark.parametrize(
    ("force_destroy", "says"),
    [(True, "every object in it (force_destroy is on)"), (False, "the delete fails while the bucket holds objects")],
)
def test_bucket_replace_is_data_loss_saying_what_force_destroy_does(force_destroy: bool, says: str) -> None:
    bucket = {"name": "my-images-bucket", "location": "EU", "force_destroy": force_destroy}
    change = resource_change(
        BUCKET,
        ["delete", "create"],
        before=bucket,
        after={**bucket, "location": "US"},
        action_reason="replace_because_cannot_update",
        replace_paths=[["location"]],
    )
    summary = summarize(plan(change))
    assert summary.data_loss == [BUCKET]
    caution = render_markdown(summary).split("> [!CAUTION]", 1)[1].split("\n\n", 1)[0]
    assert f"**replace** `{BUCKET}` (`location` changed)" in caution
    assert says in caution


def test_why_column_says_what_changes_or_forces_the_replacement() -> None:
    doc = plan(
        resource_change(BUCKET, ["create"], after={"name": "my-images-bucket"}),
        resource_change(
            TABLE,
            ["update"],
            before={**TABLE_VALUES, "max_staleness": "0-0 0 4:0:0", "labels": {"a": "b"}},
            after={**TABLE_VALUES, "max_staleness": "0-0 0 0:0:0", "labels": {"a": "b"}},
        ),
        resource_change(
            CONNECTION,
            ["delete", "create"],
            before={"connection_id": "a"},
            after={"connection_id": "b"},
            action_reason="replace_because_cannot_update",
            replace_paths=[["connection_id"]],
        ),
        resource_change(SERVICE, ["delete", "create"], before={}, after={}, action_reason="replace_by_request"),
    )
    markdown = render_markdown(summarize(doc))
    assert f"| create | `{BUCKET}` | new |" in markdown
    assert f"| update | `{TABLE}` | `max_staleness` changed |" in markdown
    assert f"| replace | `{CONNECTION}` | `connection_id` changed |" in markdown
    assert f"| replace | `{SERVICE}` | replacement requested |" in markdown
    schema_change = resource_change(
        TABLE,
        ["delete", "create"],
        before=TABLE_VALUES,
        after=TABLE_VALUES,
        action_reason="replace_because_cannot_update",
        replace_paths=[["external_data_configuration", 0, "schema"]],
    )
    assert f"| replace | `{TABLE}` | `external_data_configuration[0].schema` changed |" in render_markdown(
        summarize(plan(schema_change))
    )


def test_replaced_grant_gets_a_note_about_the_gap() -> None:
    grant = {"project": "my-project", "role": "roles/aiplatform.user", "member": "serviceAccount:old@x.com"}
    change = resource_change(
        AI_GRANT,
        ["delete", "create"],
        before=grant,
        after={**grant, "member": None},
        after_unknown={"member": True},
        action_reason="replace_because_cannot_update",
        replace_paths=[["member"]],
    )
    markdown = render_markdown(summarize(plan(change)))
    note = markdown.split("### IAM grants", 1)[1].split("> [!NOTE]", 1)[1].split("\n\n", 1)[0]
    assert "removed, then added again" in note and "lacks" in note
    assert "| replace | `roles/aiplatform.user` |" in markdown
    assert "[!NOTE]" not in render_markdown(summarize(plan(resource_change(AI_GRANT, ["create"], after=grant))))


def test_replace_of_other_resources_is_not_data_loss() -> None:
    change = resource_change(
        CONNECTION,
        ["delete", "create"],
        before={"location": "EU"},
        after={"location": "US"},
        replace_paths=[["location"]],
    )
    summary = summarize(plan(change))
    assert summary.counts["replace"] == 1
    assert summary.data_loss == []
    assert "[!CAUTION]" not in render_markdown(summary)


# --- IAM --------------------------------------------------------------------------


def test_iam_member_is_listed_with_role_and_member() -> None:
    member = "serviceAccount:bqcx-123456789012-abcd@gcp-sa-bigquery-condel.iam.gserviceaccount.com"
    change = resource_change(
        BUCKET_GRANT,
        ["create"],
        after={"bucket": "my-images-bucket", "role": "roles/storage.objectViewer", "member": member},
        after_unknown={"etag": True, "id": True},
    )
    summary = summarize(plan(change))
    [grant] = summary.grants
    assert (grant.role, grant.members, grant.authoritative) == ("roles/storage.objectViewer", (member,), False)
    markdown = render_markdown(summary)
    assert f"| create | `roles/storage.objectViewer` | `{member}` | `{BUCKET_GRANT}` |" in markdown
    assert "[!WARNING]" not in markdown


def declared(address: str, expressions: dict[str, Any]) -> dict[str, Any]:
    """A managed resource of a module's configuration, as the plan's ``configuration`` lists it."""
    resource_type, name = address.split(".")
    return {
        "address": address,
        "mode": "managed",
        "type": resource_type,
        "name": name,
        "provider_config_key": "time" if resource_type == "time_sleep" else "google",
        "expressions": expressions,
        "schema_version": 0,
    }


def connection_plan(member_expression: dict[str, Any], module_address: str = "module.connection") -> dict[str, Any]:
    """A new connection, the wait for its service account and the account's Vertex AI grant."""
    resources = [
        declared("google_bigquery_connection.connection", {"location": {"references": ["var.location"]}}),
        declared("time_sleep.service_account", {"triggers": SA_REFERENCES}),
        declared(
            "google_project_iam_member.service_account",
            {
                "project": {"references": ["var.project_id"]},
                "role": {"references": ["each.value"]},
                "member": member_expression,
            },
        ),
    ]
    configuration = {
        "provider_config": {"google": {"name": "google", "full_name": GOOGLE}},
        "root_module": {
            "module_calls": {
                "connection": {"source": "../modules/bigquery-connection", "module": {"resources": resources}}
            }
        },
    }
    return plan(
        resource_change(
            CONNECTION.replace("module.connection", module_address),
            ["create"],
            after={"location": "EU"},
            after_unknown={"cloud_resource": [{"service_account_id": True}], "id": True},
        ),
        resource_change(
            WAIT.replace("module.connection", module_address),
            ["create"],
            after={"create_duration": "120s", "triggers": {}},
            after_unknown={"id": True, "triggers": {"service_account": True}},
        ),
        resource_change(
            AI_GRANT.replace("module.connection", module_address),
            ["create"],
            after={"project": "my-project", "role": "roles/aiplatform.user"},
            after_unknown={"member": True, "etag": True, "id": True},
        ),
        configuration=configuration,
    )


@pytest.mark.parametrize("member_expression", [VIA_WAIT, SA_REFERENCES], ids=["through-the-wait", "direct"])
@pytest.mark.parametrize("module_address", ["module.connection", 'module.connection["eu"]'])
def test_unknown_member_is_resolved_to_its_reference(member_expression: dict[str, Any], module_address: str) -> None:
    summary = summarize(connection_plan(member_expression, module_address))
    [grant] = summary.grants
    assert grant.role == "roles/aiplatform.user"
    assert grant.members == (f"(known after apply: {CONNECTION_SA})",)
    assert f"(known after apply: `{CONNECTION_SA}`)" in render_markdown(summary)


def test_unknown_member_from_several_references_says_known_after_apply() -> None:
    connection = "google_bigquery_connection.connection"
    expression = {"references": [f"{connection}.id", connection, "var.prefix"]}
    summary = summarize(connection_plan(expression))
    [grant] = summary.grants
    assert grant.members == (UNKNOWN,)
    assert f"| create | `roles/aiplatform.user` | {UNKNOWN} |" in render_markdown(summary)


def test_authoritative_binding_is_flagged_and_unknown_member_kept() -> None:
    change = resource_change(
        USER_BINDING,
        ["create"],
        after={
            "dataset_id": "bqml_tutorial",
            "role": "roles/bigquery.dataViewer",
            "members": ["group:analysts@example.com", None],
        },
        after_unknown={"members": [False, True], "etag": True, "id": True},
    )
    summary = summarize(plan(change))
    [grant] = summary.grants
    assert grant.authoritative
    assert grant.members == ("group:analysts@example.com", UNKNOWN)
    markdown = render_markdown(summary)
    warning = markdown.split("> [!WARNING]", 1)[1].split("\n\n", 1)[0]
    assert "remove any member not listed" in warning
    assert f"`{USER_BINDING}`" in warning
    assert "`group:analysts@example.com`<br>(known after apply)" in markdown
    assert "**authoritative**" in markdown


def test_authoritative_policy_lists_its_bindings() -> None:
    policy = {"bindings": [{"role": "roles/bigquery.dataOwner", "members": ["user:owner@example.com"]}]}
    change = resource_change(
        USER_POLICY,
        ["update"],
        before={"dataset_id": "bqml_tutorial", "policy_data": "{}"},
        after={"dataset_id": "bqml_tutorial", "policy_data": json.dumps(policy)},
    )
    summary = summarize(plan(change))
    [grant] = summary.grants
    assert (grant.role, grant.members, grant.authoritative) == (
        "roles/bigquery.dataOwner",
        ("user:owner@example.com",),
        True,
    )
    assert "> [!WARNING]" in render_markdown(summary)


def test_destroyed_grant_shows_what_is_revoked() -> None:
    change = resource_change(
        ADMIN_GRANT,
        ["delete"],
        before={"project": "my-project", "role": "roles/bigquery.admin", "member": "user:old@example.com"},
        action_reason="delete_because_each_key",
    )
    [grant] = summarize(plan(change)).grants
    assert (grant.action, grant.role, grant.members) == ("destroy", "roles/bigquery.admin", ("user:old@example.com",))


# --- input errors -----------------------------------------------------------------


def test_state_json_is_refused_with_a_hint() -> None:
    state = {"format_version": "1.0", "terraform_version": "1.9.8", "values": {"root_module": {}}}
    with pytest.raises(EmbedError, match="state, not a plan") as info:
        summarize(state)
    assert info.value.exit_code == 2


def test_load_plan_reads_a_plan_file(tmp_path: Path) -> None:
    doc = plan(dataset_replace())
    assert load_plan(write_plan(tmp_path, doc)) == doc


# --- CLI --------------------------------------------------------------------------


def test_cli_fail_on_data_loss_writes_summary_then_exits_1(tmp_path: Path) -> None:
    path = write_plan(tmp_path, plan(dataset_replace()))
    result = embed("plan-review", str(path), "--fail-on-data-loss", cwd=tmp_path)
    assert result.returncode == 1
    assert "> [!CAUTION]" in result.stdout
    assert DATASET in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_without_flag_reports_data_loss_but_exits_0(tmp_path: Path) -> None:
    path = write_plan(tmp_path, plan(dataset_replace()))
    result = embed("plan-review", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "> [!CAUTION]" in result.stdout
    assert "stand-in" not in result.stdout
    offline = embed("plan-review", str(path), "--offline", cwd=tmp_path)
    assert "Planned offline with the stand-in providers" in offline.stdout.split("### ", 1)[0]


def test_cli_writes_output_file_and_passes_without_data_loss(tmp_path: Path) -> None:
    doc = plan(resource_change(BUCKET, ["create"], after={"name": "my-images-bucket"}))
    out = tmp_path / "build" / "plan.md"
    path = write_plan(tmp_path, doc)
    result = embed("plan-review", str(path), "--output", str(out), "--fail-on-data-loss", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert f"| create | `{BUCKET}` |" in out.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "plan JSON not found"),
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "is not Terraform JSON"),
        ("", "is empty; write it with: terraform show -json"),
    ],
)
def test_cli_bad_plan_file_exits_2_with_message(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "plan.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    result = embed("plan-review", str(path), cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


# --- real plans of the root stack -------------------------------------------------


def test_hand_made_plans_use_the_stacks_addresses_and_expressions(example_plan: PlanResult) -> None:
    resources = {
        module.prefix + resource["address"]: resource
        for module in module_configs(example_plan.raw)
        for resource in module.body.get("resources", [])
    }
    used = [DATASET, CONNECTION, WAIT, AI_GRANT, ADMIN_GRANT, BUCKET, BUCKET_GRANT, TABLE, SERVICE]
    undeclared = [a for a in used if re.sub(r"\[[^\]]*\]$", "", a) not in resources]
    assert not undeclared, f"the stack declares no {undeclared}; declared: {sorted(resources)}"
    assert not {USER_DATA, USER_BINDING, USER_POLICY} & set(resources), "the kit declares these now: use its addresses"
    assert resources[WAIT]["expressions"]["triggers"] == SA_REFERENCES
    assert resources[re.sub(r"\[[^\]]*\]$", "", AI_GRANT)]["expressions"]["member"] == VIA_WAIT


def _address(plan: PlanResult, resource_type: str) -> str:
    (address,) = [c["address"] for c in plan.raw["resource_changes"] if c["type"] == resource_type]
    return address


def test_review_of_a_new_stack_lists_every_grant_and_no_data_loss(example_plan: PlanResult) -> None:
    summary = summarize(example_plan.raw)
    assert summary.counts == {"create": example_plan.counts["resources"], "update": 0, "replace": 0, "destroy": 0}
    assert summary.data_loss == []
    roles = {grant.role for grant in summary.grants}
    assert {"roles/aiplatform.user", "roles/storage.objectViewer"} <= roles
    assert not any(grant.authoritative for grant in summary.grants)
    markdown = render_markdown(summary)
    assert "CAUTION" not in markdown
    # The connection's service account is unknown at plan time; the review says where it comes from.
    assert "service_account_id" in markdown


def test_review_flags_a_forced_dataset_replace(example_plan: PlanResult, plan_runner, tmp_path: Path) -> None:
    state = applied_state(plan_runner, [EXAMPLE_TFVARS], tmp_path / "existing.tfstate", example_plan)
    dataset = _address(example_plan, "google_bigquery_dataset")
    replaced = plan_runner.plan(
        "root", [EXAMPLE_TFVARS], extra_args=("-refresh=false", f"-state={state}", f"-replace={dataset}")
    )
    summary = summarize(replaced.raw)
    assert summary.counts["replace"] == 1
    assert summary.data_loss == [dataset]
    assert "CAUTION" in render_markdown(summary)

    plan_json = tmp_path / "plan.json"
    plan_json.write_text(json.dumps(replaced.raw))
    review = tmp_path / "plan.md"
    done = embed("plan-review", str(plan_json), "--output", str(review), "--fail-on-data-loss")
    assert done.returncode == 1, done.stderr
    assert dataset in done.stderr
    assert dataset in review.read_text()
