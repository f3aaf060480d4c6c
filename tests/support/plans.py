"""Plan Terraform offline with tftest and compare the plans with YAML inventories.

``PlanRunner`` plans folders of a private copy of ``modules/`` and ``terraform/``
(the ``tf_workspace`` fixture makes it), so no ``.terraform`` folder or lock file
lands in the repository and a stale one can never pin an old provider build.
``summarize_plan`` reduces ``terraform show -json`` to planned values, counts and
outputs, and ``check_inventory`` compares that with a case's ``<case>.yaml``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tftest
import yaml

from tests.support import REPO

CASES = REPO / "tests" / "terraform"  # <target>/<case>.tfvars and .yaml, target = root or a module
EXAMPLE_TFVARS = REPO / "terraform" / "terraform.tfvars.example"
TERRAFORM = os.environ.get("TERRAFORM", "terraform")
UNKNOWN = "(known after apply)"


@dataclass
class PlanResult:
    """A plan in the shapes tests compare: planned values by address, counts and outputs."""

    raw: dict[str, Any]
    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)


def _mark_unknown(after: Any, unknown: Any) -> Any:
    """Merge ``after`` with ``after_unknown``, writing UNKNOWN where a value is known only after apply."""
    if unknown is True:
        return UNKNOWN
    if isinstance(after, dict) or isinstance(unknown, dict):
        after = after or {}
        unknown = unknown if isinstance(unknown, dict) else {}
        return {k: _mark_unknown(after.get(k), unknown.get(k)) for k in after.keys() | unknown.keys()}
    if isinstance(after, list) or isinstance(unknown, list):
        after = after or []
        unknown = unknown if isinstance(unknown, list) else []
        size = max(len(after), len(unknown))
        return [
            _mark_unknown(after[i] if i < len(after) else None, unknown[i] if i < len(unknown) else None)
            for i in range(size)
        ]
    return after


def summarize_plan(raw: dict[str, Any]) -> PlanResult:
    """Reduce a ``terraform show -json`` plan to values, counts and outputs."""
    result = PlanResult(raw=raw)
    modules: set[str] = set()
    for change in raw.get("resource_changes", []):
        if change.get("mode") != "managed" or change["change"]["actions"] == ["delete"]:
            continue
        after = _mark_unknown(change["change"].get("after"), change["change"].get("after_unknown"))
        result.values[change["address"]] = after
        result.counts[change["type"]] = result.counts.get(change["type"], 0) + 1
        if change.get("module_address"):
            # module.a.module.b[0] counts module.a and module.a.module.b[0]
            parts = re.findall(r"module\.[^.\[]+(?:\[[^\]]+\])?", change["module_address"])
            modules.update(".".join(parts[: i + 1]) for i in range(len(parts)))
    result.counts["resources"] = len(result.values)
    result.counts["modules"] = len(modules)
    # planned_values leaves out an output that is only partly known; output_changes has all of it.
    for name, change in raw.get("output_changes", {}).items():
        result.outputs[name] = _mark_unknown(change.get("after"), change.get("after_unknown"))
    return result


def assert_subset(expected: Any, actual: Any, path: str = "") -> None:
    """Fail unless every value in ``expected`` is present and equal in ``actual``."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: expected an object, planned {actual!r}"
        for key, value in expected.items():
            assert key in actual, f"{path}.{key}: missing from the plan (planned keys: {sorted(actual)})"
            assert_subset(value, actual[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{path}: expected a list, planned {actual!r}"
        assert len(expected) == len(actual), f"{path}: expected {len(expected)} items, planned {len(actual)}"
        for i, (want, got) in enumerate(zip(expected, actual)):
            assert_subset(want, got, f"{path}[{i}]")
    else:
        assert expected == actual, f"{path}: expected {expected!r}, planned {actual!r}"


def check_inventory(result: PlanResult, inventory: dict[str, Any]) -> None:
    """Compare a plan with an inventory: ``values`` and ``outputs`` are subsets, ``counts`` exact per key."""
    for address, values in (inventory.get("values") or {}).items():
        assert address in result.values, f"{address} is not planned; planned: {sorted(result.values)}"
        assert_subset(values, result.values[address], address)
    for key, count in (inventory.get("counts") or {}).items():
        assert result.counts.get(key, 0) == count, (
            f"count of {key}: inventory says {count}, plan has {result.counts.get(key, 0)}"
        )
    for name, value in (inventory.get("outputs") or {}).items():
        assert name in result.outputs, f"output {name} is not planned; planned: {sorted(result.outputs)}"
        assert_subset(value, result.outputs[name], f"output.{name}")


@dataclass(frozen=True)
class ModuleConfig:
    """One module of a plan's ``configuration``: the prefix of its addresses (``module.x.``; ``""`` for the root),
    its source and its body (resources, variables, outputs, module calls)."""

    prefix: str
    source: str | None
    body: dict[str, Any]


def module_configs(raw: dict[str, Any]) -> list[ModuleConfig]:
    """The root module and every module it calls, from a ``terraform show -json`` plan."""
    found: list[ModuleConfig] = []

    def walk(prefix: str, source: str | None, body: dict[str, Any]) -> None:
        found.append(ModuleConfig(prefix, source, body))
        for name, call in body.get("module_calls", {}).items():
            walk(f"{prefix}module.{name}.", call.get("source"), call.get("module", {}))

    walk("", None, raw.get("configuration", {}).get("root_module", {}))
    return found


def load_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML inventory."""
    return yaml.safe_load(path.read_text()) or {}


def terraform_message(text: str) -> str:
    """Terraform's diagnostics with box-drawing and line wrapping removed, for matching messages."""
    return " ".join(text.replace("│", " ").replace("╷", " ").replace("╵", " ").split())


def use_local_backend(folder: Path) -> None:
    """Override any backend block (e.g. a team's ``backend "gcs"``, which needs credentials) with a local one."""
    (folder / "zz_tests_override.tf").write_text('terraform {\n  backend "local" {}\n}\n')


class PlanRunner:
    """Plans folders of a private copy of the repository's Terraform code with tftest."""

    def __init__(self, workspace: Path, env: dict[str, str]) -> None:
        self.workspace = workspace
        self.env = env
        self._ready: dict[Path, tftest.TerraformTest] = {}

    def folder(self, target: str | Path) -> Path:
        """The working folder for ``root``, a module name, or a folder already inside the workspace."""
        if isinstance(target, Path):
            return target
        if target == "root":
            return self.workspace / "terraform"
        return self.workspace / "modules" / target

    def terraform(self, target: str | Path) -> tftest.TerraformTest:
        """A tftest wrapper for ``target``, initialised once per session."""
        folder = self.folder(target)
        if folder not in self._ready:
            tf = tftest.TerraformTest(folder, binary=TERRAFORM, env=self.env)
            tf.setup(upgrade=True, cleanup_on_exit=False)
            self._ready[folder] = tf
        return self._ready[folder]

    def schemas(self, target: str | Path) -> dict[str, Any]:
        """``terraform providers schema -json`` for ``target``."""
        return json.loads(self.terraform(target).execute_command("providers", "schema", "-json").out)

    def plan(
        self,
        target: str | Path,
        tfvars: list[Path] | tuple[Path, ...] = (),
        tf_vars: dict[str, Any] | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> PlanResult:
        """Plan ``target`` with var files and variables; ``extra_args`` go to ``terraform plan`` as they are."""
        tf = self.terraform(target)
        out = self.folder(target) / "tftest.tfplan"
        args = tftest.parse_args(
            input=False, color=False, tf_vars=tf_vars, tf_var_file=[str(Path(p).resolve()) for p in tfvars]
        )
        tf.execute_command("plan", *args, *extra_args, f"-out={out}")
        shown = tf.execute_command("show", "-no-color", "-json", str(out))
        return summarize_plan(json.loads(shown.out))
