"""Build a Terraform state in which a plan's resources already exist.

The stand-in provider never applies, yet tests need plans against existing
infrastructure (a forced replace, an in-place update). This turns a plan's
``resource_changes`` into a version 4 state file: known values are kept and
values known only after apply get a placeholder of the schema's type.
``applied_state`` writes such a state for the root stack, with the values an
apply would agree on (the connection's id and service account).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.support.plans import PlanResult, PlanRunner


def placeholder(cty_type: Any, name: str) -> Any:
    """A value of ``cty_type`` (terraform's JSON type notation) standing in for an unknown ``name``."""
    if cty_type == "string":
        return f"offline-{name}"
    if cty_type == "number":
        return 0
    if cty_type == "bool":
        return False
    kind = cty_type[0]
    if kind in ("list", "set", "tuple"):
        return []
    if kind == "map":
        return {}
    if kind == "object":
        return {k: placeholder(t, k) for k, t in cty_type[1].items()}
    raise ValueError(f"no placeholder for type {cty_type!r}")


def _fill_block(value: dict | None, unknown: Any, block: dict[str, Any]) -> dict[str, Any]:
    value = dict(value or {})
    unknown = unknown if isinstance(unknown, dict) else {}
    for name, attribute in block.get("attributes", {}).items():
        if unknown.get(name) is True:
            value[name] = placeholder(attribute["type"], name)
        else:
            value.setdefault(name, None)
    for name, nested in block.get("block_types", {}).items():
        mode, inner, got, hole = nested["nesting_mode"], nested["block"], value.get(name), unknown.get(name)
        if mode == "single":
            value[name] = None if got is None and hole is None else _fill_block(got, hole, inner)
        else:
            items = list(got or [])
            holes = hole if isinstance(hole, list) else []
            value[name] = [
                _fill_block(item, holes[i] if i < len(holes) else None, inner) for i, item in enumerate(items)
            ]
    return value


def state_from_plan(
    plan: dict[str, Any], schemas: dict[str, Any], known: dict[str, dict[str, str]] | None = None
) -> dict[str, Any]:
    """A state (format 4) holding every resource ``plan`` creates; ``schemas`` is ``terraform providers schema -json``.

    ``known`` gives realistic values for top-level attributes only known after apply, by resource type:
    ``{"google_bigquery_connection": {"id": "projects/{project}/locations/{location}/connections/{connection_id}"}}``
    is formatted with the resource's planned values.
    """
    resources: dict[tuple, dict[str, Any]] = {}
    for change in plan.get("resource_changes", []):
        if change.get("mode") != "managed" or "create" not in change["change"]["actions"]:
            continue
        provider = schemas["provider_schemas"][change["provider_name"]]
        schema = provider["resource_schemas"][change["type"]]
        key = (change.get("module_address"), change["type"], change["name"])
        resource = resources.setdefault(
            key,
            {
                "mode": "managed",
                "type": change["type"],
                "name": change["name"],
                "provider": f'provider["{change["provider_name"]}"]',
                "instances": [],
            },
        )
        if change.get("module_address"):
            resource["module"] = change["module_address"]
        attributes = _fill_block(change["change"].get("after"), change["change"].get("after_unknown"), schema["block"])
        for name, template in (known or {}).get(change["type"], {}).items():
            attributes[name] = template.format(**change["change"]["after"])
        instance = {"schema_version": schema.get("version", 0), "attributes": attributes, "sensitive_attributes": []}
        if "index" in change:
            instance["index_key"] = change["index"]
        resource["instances"].append(instance)
    return {
        "version": 4,
        "terraform_version": plan.get("terraform_version", "1.5.0"),
        "serial": 1,
        "lineage": "00000000-0000-4000-8000-000000000000",
        "outputs": {},
        "resources": list(resources.values()),
        "check_results": None,
    }


# Values only known after apply, as the tests' states hold them.
CONNECTION_ID = "projects/{project}/locations/{location}/connections/{connection_id}"
SERVICE_ACCOUNT = placeholder("string", "service_account_id")


def _settle(state: dict[str, Any]) -> dict[str, Any]:
    """Give values only known after apply the ones a real apply would agree on.

    The connection's service account flows into the wait's triggers and every grant's member,
    and the connection's id into the object table, as they do after an apply.
    """
    connections = [
        i["attributes"] for r in state["resources"] if r["type"] == "google_bigquery_connection" for i in r["instances"]
    ]
    for resource in state["resources"]:
        for instance in resource["instances"]:
            attributes = instance["attributes"]
            if resource["type"] == "time_sleep":
                attributes["triggers"] = {"service_account": SERVICE_ACCOUNT}
            elif resource["type"].endswith("_iam_member"):
                attributes["member"] = f"serviceAccount:{SERVICE_ACCOUNT}"
            elif resource["type"] == "google_bigquery_table" and len(connections) == 1:
                attributes["external_data_configuration"][0]["connection_id"] = connections[0]["id"]
    return state


def applied_state(runner: PlanRunner, tfvars: list[Path], path: Path, created: PlanResult | None = None) -> Path:
    """Write to ``path`` a state in which the root stack planned with ``tfvars`` (plan: ``created``) is applied."""
    created = created or runner.plan("root", tfvars)
    known = {"google_bigquery_connection": {"id": CONNECTION_ID}}
    path.write_text(json.dumps(_settle(state_from_plan(created.raw, runner.schemas("root"), known))))
    return path
