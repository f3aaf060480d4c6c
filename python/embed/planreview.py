"""Summarize ``terraform show -json PLANFILE`` as Markdown for a pull-request comment.

The summary counts what the plan adds, changes, replaces and destroys, says why
for each resource (the attributes that change, or force the replacement), lists
every IAM grant (authoritative ones flagged, replaced ones noted for the moment
they are missing), and warns loudly when a BigQuery dataset or table, or a Cloud
Storage bucket, would be destroyed or replaced, because that loses embeddings or
images.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embed.errors import VALIDATION, EmbedError
from embed.outputs import parse_json

DATA_TYPES = ("google_bigquery_dataset", "google_bigquery_table", "google_storage_bucket")
BUCKET = "google_storage_bucket"
IAM_SUFFIXES = ("_iam_member", "_iam_binding", "_iam_policy")
AUTHORITATIVE_SUFFIXES = ("_iam_binding", "_iam_policy")
UNKNOWN = "(known after apply)"
MAX_TABLE_ROWS = 200  # keeps the comment well under GitHub's 65,536-character limit

_ACTIONS: dict[tuple[str, ...], str] = {
    ("create",): "create",
    ("update",): "update",
    ("delete", "create"): "replace",
    ("create", "delete"): "replace",
    ("delete",): "destroy",
}
_IGNORED_ACTIONS = {("no-op",), ("read",)}
_COUNTED = {"create": "to add", "update": "to change", "replace": "to replace", "destroy": "to destroy"}
_REASONS = {
    "replace_because_cannot_update": "cannot be updated in place",
    "replace_because_tainted": "tainted",
    "replace_by_request": "replacement requested",
    "replace_by_triggers": "replace_triggered_by",
    "delete_because_no_resource_config": "removed from configuration",
    "delete_because_no_module": "its module was removed",
    "delete_because_count_index": "count index no longer exists",
    "delete_because_each_key": "for_each key no longer exists",
    "delete_because_wrong_repetition": "count/for_each changed",
    "delete_because_no_move_target": "moved block has no target",
}
Expressions = dict[tuple[tuple[str, ...], str, str], dict[str, Any]]  # by (module path, type, name)
_NOT_RESOURCE_PREFIXES = ("var.", "local.", "each.", "count.", "path.", "self.", "terraform.")


@dataclass(frozen=True)
class ResourceChange:
    """One managed resource the plan creates, updates, replaces or destroys."""

    address: str
    type: str
    action: str
    reason: str | None = None
    replace_paths: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()  # top-level attributes whose value changes
    force_destroy: bool = False  # a bucket whose deletion also deletes its objects

    @property
    def loses_data(self) -> bool:
        """True when a BigQuery dataset or table, or a Cloud Storage bucket, is destroyed or replaced."""
        return self.type in DATA_TYPES and self.action in ("replace", "destroy")

    @property
    def why(self) -> str:
        """Why the plan does this: ``location changed`` for a replacement it forces, the attributes an
        update changes, or Terraform's reason (tainted, requested, removed from the configuration)."""
        paths = self.replace_paths if self.action == "replace" else self.changed
        parts = [", ".join(f"`{_cell(p)}`" for p in paths) + " changed"] if paths else []
        if self.action == "create" and not self.reason:
            parts.append("new")
        elif self.reason and not (paths and self.reason == "replace_because_cannot_update"):
            parts.append(_REASONS.get(self.reason, self.reason))
        return "; ".join(parts)

    @property
    def loss(self) -> str:
        """What a destroyed or replaced data resource takes with it."""
        if self.type == "google_bigquery_dataset":
            return "every table in it, with the stored embeddings"
        if self.type != BUCKET:
            return "the table and its rows"
        if self.force_destroy:
            return "every object in it (force_destroy is on): the images"
        return (
            "nothing yet: with force_destroy off the delete fails while the bucket holds objects, and the apply stops"
        )


@dataclass(frozen=True)
class IamGrant:
    """A role and its members as one IAM resource in the plan sets them."""

    address: str
    action: str
    role: str
    members: tuple[str, ...]
    authoritative: bool


@dataclass(frozen=True)
class OutputChange:
    """A root output whose value the plan changes."""

    name: str
    action: str


@dataclass(frozen=True)
class PlanSummary:
    """What a plan does, in the terms a pull-request reviewer needs."""

    changes: tuple[ResourceChange, ...]
    grants: tuple[IamGrant, ...]
    outputs: tuple[OutputChange, ...]

    @property
    def counts(self) -> dict[str, int]:
        """Number of resources per action: create, update, replace, destroy."""
        counts = dict.fromkeys(_COUNTED, 0)
        for change in self.changes:
            if change.action in counts:
                counts[change.action] += 1
        return counts

    @property
    def data_loss(self) -> list[str]:
        """Addresses of BigQuery datasets and tables the plan destroys or replaces."""
        return [c.address for c in self.changes if c.loses_data]


def load_plan(path: str | Path) -> dict[str, Any]:
    """Read plan JSON from a file, or from stdin when path is ``-``."""
    hint = "write it with: terraform show -json PLANFILE > plan.json"
    try:
        data = sys.stdin.buffer.read() if str(path) == "-" else Path(path).read_bytes()
    except FileNotFoundError:
        raise EmbedError(f"plan JSON not found: {path}; {hint}") from None
    except OSError as exc:
        raise EmbedError(f"cannot read plan JSON {path}: {exc}") from None
    if data.startswith(b"PK\x03\x04"):  # a plan saved by `terraform plan -out` is a zip archive
        plan_file = "PLANFILE" if str(path) == "-" else path
        raise EmbedError(
            f"{'standard input' if str(path) == '-' else path} is a binary plan file (`terraform plan -out`),"
            f" not its JSON: run `terraform show -json {plan_file} > plan.json` and pass plan.json."
        )
    plan = parse_json(data, "standard input" if str(path) == "-" else str(path), hint)
    _require_plan(plan, str(path))
    return plan


def summarize(plan: dict[str, Any]) -> PlanSummary:
    """Summarize the JSON of ``terraform show -json PLANFILE``."""
    _require_plan(plan, "the input")
    expressions = _config_expressions(plan.get("configuration", {}))
    changes: list[ResourceChange] = []
    grants: list[IamGrant] = []
    for rc in plan.get("resource_changes", []):
        actions = tuple(rc.get("change", {}).get("actions", ()))
        if rc.get("mode", "managed") != "managed" or actions in _IGNORED_ACTIONS or not actions:
            continue
        action = _ACTIONS.get(actions, "+".join(actions))
        change = rc["change"]
        before = change.get("before") or {}
        changes.append(
            ResourceChange(
                address=rc["address"],
                type=rc["type"],
                action=action,
                reason=rc.get("action_reason"),
                replace_paths=tuple(_path_text(p) for p in change.get("replace_paths") or ()),
                changed=_changed(change) if action == "update" else (),
                force_destroy=bool(before.get("force_destroy")) if isinstance(before, dict) else False,
            )
        )
        if rc["type"].endswith(IAM_SUFFIXES):
            key = (_module_names(rc.get("module_address", "")), rc["type"], rc["name"])
            grants.extend(_iam_grants(rc, action, expressions.get(key, {}), expressions))
    outputs = tuple(
        OutputChange(name, _ACTIONS.get(tuple(oc.get("actions", ())), "+".join(oc.get("actions", ()))))
        for name, oc in sorted(plan.get("output_changes", {}).items())
        if tuple(oc.get("actions", ())) not in _IGNORED_ACTIONS
    )
    return PlanSummary(tuple(changes), tuple(grants), outputs)


OFFLINE_NOTE = [
    "> [!NOTE]",
    "> Planned offline with the stand-in providers (`make plan OFFLINE=1`): no credentials, no real state,",
    "> and values Google computes are unknown. Replacements follow the provider's ForceNew rules, but",
    "> the stand-in cannot apply: plan against the real provider before `make apply`.",
    "",
]


def data_loss_error(summary: PlanSummary) -> EmbedError:
    """The error for --fail-on-data-loss: what the plan would destroy, and what to do (exit 1)."""
    return EmbedError(
        "the plan destroys or replaces stored data (embeddings or images would be lost): "
        + ", ".join(summary.data_loss)
        + ". Change the configuration so these are updated in place, or, if the loss is intended,"
        " back the data up and run without --fail-on-data-loss.",
        VALIDATION,
    )


def write_markdown(markdown: str, output: Path | None = None) -> None:
    """Write the review to ``output`` (its folder made if needed), or to stdout when None."""
    if output is None:
        sys.stdout.write(markdown)
        return
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(markdown, encoding="utf-8")
    except OSError as exc:
        raise EmbedError(f"cannot write {output}: {exc}") from None


def render_markdown(summary: PlanSummary, offline: bool = False) -> str:
    """Render a summary as GitHub-flavoured Markdown; ``offline`` says it was planned with the stand-in."""
    lines = ["## Terraform plan review", ""] + (OFFLINE_NOTE if offline else [])
    lost = [c for c in summary.changes if c.loses_data]
    if lost:
        lines += [
            "### :warning: DATA LOSS: datasets, tables or buckets destroyed or replaced",
            "",
            "> [!CAUTION]",
            "> Applying this plan deletes these resources, and what they hold:",
            ">",
        ]
        lines += [
            f"> - **{c.action}** {_code(c.address)}" + (f" ({c.why})" if c.why else "") + f": deletes {c.loss}"
            for c in lost
        ]
        lines += [
            ">",
            "> If that is not intended, change the configuration so they are kept or updated in place;",
            "> otherwise back the data up before applying.",
            "",
        ]
    if not summary.changes and not summary.outputs:
        return "\n".join(lines + ["No changes. The infrastructure matches the configuration.", ""])
    counts = summary.counts
    lines += ["**Plan:** " + ", ".join(f"{counts[a]} {label}" for a, label in _COUNTED.items()) + ".", ""]
    if summary.changes:
        lines += ["### Resource changes", "", "| Action | Address | Why |", "| --- | --- | --- |"]
        lines += [f"| {c.action} | {_code(c.address)} | {c.why} |" for c in summary.changes[:MAX_TABLE_ROWS]]
        if len(summary.changes) > MAX_TABLE_ROWS:
            lines.append(f"| | _and {len(summary.changes) - MAX_TABLE_ROWS} more_ | |")
        lines.append("")
    if summary.grants:
        lines += _render_grants(summary.grants)
    if summary.outputs:
        lines += ["### Outputs", ""] + [f"- {_code(o.name)}: {o.action}" for o in summary.outputs] + [""]
    return "\n".join(lines)


def _render_grants(grants: tuple[IamGrant, ...]) -> list[str]:
    lines = ["### IAM grants", ""]
    authoritative = [g for g in grants if g.authoritative]
    if authoritative:
        lines += [
            "> [!WARNING]",
            "> Authoritative IAM: these resources set the complete member list of their role"
            " (binding) or the whole policy, and remove any member not listed here:",
            ">",
        ]
        lines += [f"> - {_code(g.address)} ({_code(g.role)})" for g in authoritative]
        lines.append("")
    replaced = [g for g in grants if g.action == "replace"]
    if replaced:
        lines += [
            "> [!NOTE]",
            "> Replaced grants are removed, then added again: for a moment during the apply the member lacks",
            "> the role, and a job that runs then can fail with a permission error. IAM can take minutes more",
            "> to propagate the new grant.",
            "",
        ]
    lines += ["| Action | Role | Member(s) | Address |", "| --- | --- | --- | --- |"]
    for g in grants:
        members = "<br>".join(_member_cell(m) for m in g.members)
        flag = " **authoritative**" if g.authoritative else ""
        lines.append(f"| {g.action} | {_code(g.role)} | {members} | {_code(g.address)}{flag} |")
    return lines + [""]


def _iam_grants(rc: dict[str, Any], action: str, expressions: dict[str, Any], every: Expressions) -> list[IamGrant]:
    """The grants one IAM resource change makes (or, for a destroy, takes away); ``every`` resolves references."""
    change = rc["change"]
    destroyed = action == "destroy"
    values = (change.get("before") if destroyed else change.get("after")) or {}
    unknown = {} if destroyed else (change.get("after_unknown") or {})
    module = _module_names(rc.get("module_address", ""))
    authoritative = rc["type"].endswith(AUTHORITATIVE_SUFFIXES)

    def attribute(name: str) -> Any:
        return _resolve(values.get(name), unknown.get(name, False), expressions.get(name), module, every)

    if rc["type"].endswith("_iam_policy"):
        policy = str(attribute("policy_data"))
        try:
            bindings = json.loads(policy)["bindings"]
        except (ValueError, TypeError, KeyError):
            return [IamGrant(rc["address"], action, "(whole policy)", (policy,), True)]
        return [
            IamGrant(rc["address"], action, b.get("role", "?"), tuple(b.get("members", ())), True) for b in bindings
        ]
    members = attribute("members") if rc["type"].endswith("_iam_binding") else attribute("member")
    members = tuple(members) if isinstance(members, list) else (str(members),)
    return [IamGrant(rc["address"], action, str(attribute("role")), members, authoritative)]


def _resolve(value: Any, unknown: Any, expression: Any, module: tuple[str, ...], every: Expressions) -> Any:
    """The known value, or a note naming the reference it will come from."""
    if unknown is True:
        return _unknown_note(expression, module, every)
    if isinstance(unknown, list) and isinstance(value, list):
        return [
            _unknown_note(expression, module, every) if i < len(unknown) and unknown[i] is True else v
            for i, v in enumerate(value)
        ]
    return value if value is not None else ""


def _single_reference(expression: Any) -> str | None:
    """The reference an expression is made of, when it is one plain reference (with its own prefixes)."""
    refs = expression.get("references", []) if isinstance(expression, dict) else []
    if not refs or not all(refs[0] == r or refs[0].startswith(r + ".") or refs[0].startswith(r + "[") for r in refs):
        return None
    return refs[0]


def _unknown_note(expression: Any, module: tuple[str, ...], every: Expressions) -> str:
    """``(known after apply: <ref>)`` when the expression is one plain reference.

    A reference to an attribute that only carries another reference (a ``time_sleep``'s
    ``triggers``, say) is followed to where the value comes from.
    """
    ref = _single_reference(expression)
    if ref is None:
        return UNKNOWN
    for _ in range(5):
        hop = re.match(r"(\w+)\.(\w+)\.(\w+)", ref)
        carried = every.get((module, hop.group(1), hop.group(2)), {}).get(hop.group(3)) if hop else None
        origin = _single_reference(carried)
        if origin is None:
            break
        ref = origin
    prefix = "".join(f"module.{m}." for m in module)
    if prefix and ref.startswith(_NOT_RESOURCE_PREFIXES):
        return f"(known after apply: {ref} in {prefix[:-1]})"
    return f"(known after apply: {prefix}{ref})"


def _config_expressions(configuration: dict[str, Any]) -> Expressions:
    """Expressions of every managed resource in the configuration, by (module path, type, name)."""
    found: dict[tuple[tuple[str, ...], str, str], dict[str, Any]] = {}

    def walk(module: dict[str, Any], path: tuple[str, ...]) -> None:
        for resource in module.get("resources", []):
            if resource.get("mode") == "managed":
                found[(path, resource["type"], resource["name"])] = resource.get("expressions", {})
        for name, call in module.get("module_calls", {}).items():
            walk(call.get("module", {}), (*path, name))

    walk(configuration.get("root_module", {}), ())
    return found


def _module_names(module_address: str) -> tuple[str, ...]:
    """``module.a["k"].module.b[0]`` -> ``("a", "b")``: the configuration path, without instance keys."""
    return tuple(re.findall(r'module\.([A-Za-z0-9_-]+)(?:\[(?:"(?:[^"\\]|\\.)*"|\d+)\])?', module_address))


def _changed(change: dict[str, Any]) -> tuple[str, ...]:
    """Top-level attributes whose planned value differs from the prior one, or becomes unknown."""
    before, after = change.get("before") or {}, change.get("after") or {}
    unknown = change.get("after_unknown") or {}
    if not isinstance(before, dict) or not isinstance(after, dict):
        return ()
    return tuple(n for n in sorted(set(before) | set(after)) if before.get(n) != after.get(n) or unknown.get(n) is True)


def _path_text(path: list[Any]) -> str:
    """``["cloud_resource", 0, "x"]`` -> ``cloud_resource[0].x``."""
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    return text


def _require_plan(plan: Any, source: str) -> None:
    if not isinstance(plan, dict) or "format_version" not in plan:
        raise EmbedError(f"{source} is not Terraform JSON; write it with: terraform show -json PLANFILE")
    if "planned_values" not in plan and "resource_changes" not in plan:
        raise EmbedError(
            f"{source} is Terraform state, not a plan; run terraform plan -out PLANFILE,"
            " then terraform show -json PLANFILE"
        )


def _member_cell(member: str) -> str:
    """A member as inline code; an unknown one as a note with its reference in code."""
    match = re.fullmatch(r"\(known after apply: (.+)\)", member)
    if match:
        return f"(known after apply: {_code(match.group(1))})"
    return _cell(member) if member == UNKNOWN else _code(member)


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    """Text as inline code, safe inside a Markdown table cell."""
    return f"`{_cell(text).replace('`', chr(39))}`"
