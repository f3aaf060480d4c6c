"""Plan review: ``terraform show -json`` plans turned into a pull-request summary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from embed.errors import EmbedError
from embed.planreview import UNKNOWN, load_plan, render_markdown, summarize

GOOGLE = "registry.terraform.io/hashicorp/google"
CONNECTION_SA = "module.connection.google_bigquery_connection.this.cloud_resource[0].service_account_id"


def resource_change(
    address: str,
    actions: list[str],
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    after_unknown: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One entry of ``resource_changes`` as ``terraform show -json`` writes it."""
    parts = address.split(".")
    mode = "data" if parts[-3:-2] == ["data"] else "managed"
    rc: dict[str, Any] = {
        "address": address,
        "mode": mode,
        "type": parts[-2],
        "name": parts[-1].split("[")[0],
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
    module = address.rsplit(".", 2)[0] if address.startswith("module.") else None
    if mode == "data" and module:
        module = module.rsplit(".data", 1)[0]
    if module:
        rc["module_address"] = module
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


DATASET = {
    "dataset_id": "embeddings",
    "project": "demo-project",
    "location": "EU",
    "delete_contents_on_destroy": False,
    "labels": {"app": "embed"},
}
TABLE = {
    "dataset_id": "embeddings",
    "table_id": "image_embeddings",
    "project": "demo-project",
    "deletion_protection": False,
}


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m embed ARGS`` in a fresh interpreter, as a user or CI runs it."""
    return subprocess.run(
        [sys.executable, "-m", "embed", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def write_plan(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def dataset_replace() -> dict[str, Any]:
    return resource_change(
        "module.dataset.google_bigquery_dataset.this",
        ["delete", "create"],
        before=DATASET,
        after={**DATASET, "location": "US"},
        after_unknown={"id": True, "self_link": True},
        action_reason="replace_because_cannot_update",
        replace_paths=[["location"]],
    )


# --- counts and the change table -------------------------------------------------


def test_add_and_update_are_counted_and_listed_without_data_loss_warning() -> None:
    doc = plan(
        resource_change(
            "module.bucket.google_storage_bucket.images",
            ["create"],
            after={"name": "demo-images", "location": "EU"},
            after_unknown={"id": True, "url": True},
        ),
        resource_change(
            "module.dataset.google_bigquery_dataset.this",
            ["update"],
            before=DATASET,
            after={**DATASET, "labels": {"app": "embed", "team": "ml"}},
        ),
        resource_change("google_project_service.bigquery", ["no-op"], before={"service": "x"}, after={"service": "x"}),
        resource_change("data.google_project.this", ["read"], after={}, after_unknown={"number": True}),
    )
    summary = summarize(doc)
    assert summary.counts == {"create": 1, "update": 1, "replace": 0, "destroy": 0}
    assert summary.data_loss == []
    markdown = render_markdown(summary)
    assert "1 to add, 1 to change, 0 to replace, 0 to destroy" in markdown
    assert "| create | `module.bucket.google_storage_bucket.images` |" in markdown
    assert "| update | `module.dataset.google_bigquery_dataset.this` |" in markdown
    assert "google_project_service.bigquery" not in markdown
    assert "data.google_project.this" not in markdown
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
    assert summary.data_loss == ["module.dataset.google_bigquery_dataset.this"]
    markdown = render_markdown(summary)
    caution = markdown.split("> [!CAUTION]", 1)[1].split("\n\n", 1)[0]
    assert "DATA LOSS" in markdown.split("> [!CAUTION]", 1)[0]
    assert "`module.dataset.google_bigquery_dataset.this`" in caution
    assert "(`location` changed): deletes every table in it" in caution


def test_table_destroy_is_data_loss() -> None:
    change = resource_change(
        "module.dataset.google_bigquery_table.embeddings",
        ["delete"],
        before=TABLE,
        action_reason="delete_because_no_resource_config",
    )
    summary = summarize(plan(change))
    assert summary.counts == {"create": 0, "update": 0, "replace": 0, "destroy": 1}
    assert summary.data_loss == ["module.dataset.google_bigquery_table.embeddings"]
    markdown = render_markdown(summary)
    assert "> [!CAUTION]" in markdown
    assert "> - **destroy** `module.dataset.google_bigquery_table.embeddings`" in markdown
    assert "removed from configuration" in markdown


@pytest.mark.parametrize(
    ("force_destroy", "says"),
    [(True, "every object in it (force_destroy is on)"), (False, "the delete fails while the bucket holds objects")],
)
def test_bucket_replace_is_data_loss_saying_what_force_destroy_does(force_destroy: bool, says: str) -> None:
    bucket = {"name": "demo-images", "location": "EU", "force_destroy": force_destroy}
    change = resource_change(
        "module.object-table.google_storage_bucket.bucket[0]",
        ["delete", "create"],
        before=bucket,
        after={**bucket, "location": "US"},
        action_reason="replace_because_cannot_update",
        replace_paths=[["location"]],
    )
    summary = summarize(plan(change))
    assert summary.data_loss == ["module.object-table.google_storage_bucket.bucket[0]"]
    caution = render_markdown(summary).split("> [!CAUTION]", 1)[1].split("\n\n", 1)[0]
    assert "**replace** `module.object-table.google_storage_bucket.bucket[0]` (`location` changed)" in caution
    assert says in caution


def test_why_column_says_what_changes_or_forces_the_replacement() -> None:
    doc = plan(
        resource_change("google_storage_bucket.images", ["create"], after={"name": "b"}),
        resource_change(
            "module.object-table.google_bigquery_table.table",
            ["update"],
            before={**TABLE, "max_staleness": "0-0 0 4:0:0", "labels": {"a": "b"}},
            after={**TABLE, "max_staleness": "0-0 0 0:0:0", "labels": {"a": "b"}},
        ),
        resource_change(
            "module.connection.google_bigquery_connection.connection",
            ["delete", "create"],
            before={"connection_id": "a"},
            after={"connection_id": "b"},
            action_reason="replace_because_cannot_update",
            replace_paths=[["connection_id"]],
        ),
        resource_change(
            "module.object-table.google_bigquery_table.nested",
            ["delete", "create"],
            before=TABLE,
            after=TABLE,
            action_reason="replace_because_cannot_update",
            replace_paths=[["external_data_configuration", 0, "schema"]],
        ),
        resource_change("google_project_service.bq", ["delete", "create"], before={}, after={},
                        action_reason="replace_by_request"),
    )
    markdown = render_markdown(summarize(doc))
    assert "| create | `google_storage_bucket.images` | new |" in markdown
    assert "| update | `module.object-table.google_bigquery_table.table` | `max_staleness` changed |" in markdown
    assert "| replace | `module.connection.google_bigquery_connection.connection` | `connection_id` changed |" in markdown
    assert "`external_data_configuration[0].schema` changed |" in markdown
    assert "| replace | `google_project_service.bq` | replacement requested |" in markdown


def test_replaced_grant_gets_a_note_about_the_gap() -> None:
    grant = {"project": "demo-project", "role": "roles/aiplatform.user", "member": "serviceAccount:old@x.com"}
    change = resource_change(
        "module.connection.google_project_iam_member.service_account",
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
    assert "[!NOTE]" not in render_markdown(summarize(plan(resource_change(
        "google_project_iam_member.new", ["create"], after=grant))))


def test_replace_of_other_resources_is_not_data_loss() -> None:
    change = resource_change(
        "module.connection.google_bigquery_connection.this",
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
    change = resource_change(
        "module.iam.google_storage_bucket_iam_member.reader",
        ["create"],
        after={"bucket": "demo-images", "role": "roles/storage.objectViewer", "member": "group:ml@example.com"},
        after_unknown={"etag": True, "id": True},
    )
    summary = summarize(plan(change))
    [grant] = summary.grants
    assert (grant.role, grant.members, grant.authoritative) == (
        "roles/storage.objectViewer",
        ("group:ml@example.com",),
        False,
    )
    markdown = render_markdown(summary)
    assert (
        "| create | `roles/storage.objectViewer` | `group:ml@example.com` | "
        "`module.iam.google_storage_bucket_iam_member.reader` |" in markdown
    )
    assert "[!WARNING]" not in markdown


def connection_plan(member_expression: dict[str, Any], module_address: str = "module.connection") -> dict[str, Any]:
    """A new BigQuery connection whose service account gets a role in the same module."""
    iam = f"{module_address}.google_project_iam_member.vertex_user"
    configuration = {
        "provider_config": {"google": {"name": "google", "full_name": GOOGLE}},
        "root_module": {
            "module_calls": {
                "connection": {
                    "source": "../modules/connection",
                    "module": {
                        "resources": [
                            {
                                "address": "google_bigquery_connection.this",
                                "mode": "managed",
                                "type": "google_bigquery_connection",
                                "name": "this",
                                "provider_config_key": "connection:google",
                                "expressions": {"location": {"references": ["var.location"]}},
                                "schema_version": 0,
                            },
                            {
                                "address": "google_project_iam_member.vertex_user",
                                "mode": "managed",
                                "type": "google_project_iam_member",
                                "name": "vertex_user",
                                "provider_config_key": "connection:google",
                                "expressions": {
                                    "project": {"references": ["var.project_id"]},
                                    "role": {"constant_value": "roles/aiplatform.user"},
                                    "member": member_expression,
                                },
                                "schema_version": 0,
                            },
                        ]
                    },
                }
            }
        },
    }
    return plan(
        resource_change(
            f"{module_address}.google_bigquery_connection.this",
            ["create"],
            after={"location": "EU"},
            after_unknown={"cloud_resource": [{"service_account_id": True}], "id": True},
        ),
        resource_change(
            iam,
            ["create"],
            after={"project": "demo-project", "role": "roles/aiplatform.user"},
            after_unknown={"member": True, "etag": True, "id": True},
        ),
        configuration=configuration,
    )


SA_REFERENCES = {
    "references": [
        "google_bigquery_connection.this.cloud_resource[0].service_account_id",
        "google_bigquery_connection.this.cloud_resource[0]",
        "google_bigquery_connection.this.cloud_resource",
        "google_bigquery_connection.this",
    ]
}


@pytest.mark.parametrize("module_address", ["module.connection", 'module.connection["eu"]'])
def test_unknown_member_is_resolved_to_its_reference(module_address: str) -> None:
    summary = summarize(connection_plan(SA_REFERENCES, module_address))
    [grant] = summary.grants
    assert grant.role == "roles/aiplatform.user"
    assert grant.members == (f"(known after apply: {CONNECTION_SA})",)
    assert f"(known after apply: `{CONNECTION_SA}`)" in render_markdown(summary)


def test_unknown_member_from_several_references_says_known_after_apply() -> None:
    expression = {"references": ["google_bigquery_connection.this.id", "google_bigquery_connection.this", "var.prefix"]}
    summary = summarize(connection_plan(expression))
    [grant] = summary.grants
    assert grant.members == (UNKNOWN,)
    assert f"| create | `roles/aiplatform.user` | {UNKNOWN} |" in render_markdown(summary)


def test_authoritative_binding_is_flagged_and_unknown_member_kept() -> None:
    change = resource_change(
        "module.dataset.google_bigquery_dataset_iam_binding.viewers",
        ["create"],
        after={
            "dataset_id": "embeddings",
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
    assert "`module.dataset.google_bigquery_dataset_iam_binding.viewers`" in warning
    assert "`group:analysts@example.com`<br>(known after apply)" in markdown
    assert "**authoritative**" in markdown


def test_authoritative_policy_lists_its_bindings() -> None:
    policy = {"bindings": [{"role": "roles/bigquery.dataOwner", "members": ["user:owner@example.com"]}]}
    change = resource_change(
        "google_bigquery_dataset_iam_policy.embeddings",
        ["update"],
        before={"dataset_id": "embeddings", "policy_data": "{}"},
        after={"dataset_id": "embeddings", "policy_data": json.dumps(policy)},
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
        "google_project_iam_member.old",
        ["delete"],
        before={"project": "demo-project", "role": "roles/bigquery.admin", "member": "user:old@example.com"},
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
    result = run_cli("plan-review", str(path), "--fail-on-data-loss", cwd=tmp_path)
    assert result.returncode == 1
    assert "> [!CAUTION]" in result.stdout
    assert "module.dataset.google_bigquery_dataset.this" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_without_flag_reports_data_loss_but_exits_0(tmp_path: Path) -> None:
    path = write_plan(tmp_path, plan(dataset_replace()))
    result = run_cli("plan-review", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "> [!CAUTION]" in result.stdout
    assert "stand-in" not in result.stdout
    offline = run_cli("plan-review", str(path), "--offline", cwd=tmp_path)
    assert "Planned offline with the stand-in providers" in offline.stdout.split("### ", 1)[0]


def test_cli_writes_output_file_and_passes_without_data_loss(tmp_path: Path) -> None:
    doc = plan(resource_change("google_storage_bucket.images", ["create"], after={"name": "b"}))
    out = tmp_path / "build" / "plan.md"
    path = write_plan(tmp_path, doc)
    result = run_cli("plan-review", str(path), "--output", str(out), "--fail-on-data-loss", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "| create | `google_storage_bucket.images` |" in out.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "plan JSON not found"), ("{not json", "is not valid JSON"), ("[1, 2]", "is not Terraform JSON")],
)
def test_cli_bad_plan_file_exits_2_with_message(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "plan.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    result = run_cli("plan-review", str(path), cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
