"""Data-driven plan tests: every ``tests/terraform/<target>/<case>.tfvars`` is planned.

A case either has an inventory ``<case>.yaml`` (expected planned values,
resource counts and outputs) or a ``# expect-error: TEXT`` line, in which case
the plan must fail with TEXT in terraform's diagnostics. ``<target>`` is
``root`` for the root stack, otherwise the module folder name.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import tftest

from tests.support.plans import CASES, check_inventory, load_yaml, terraform_message, use_local_backend

EXPECT_ERROR = re.compile(r"^#\s*expect-error:\s*(.+?)\s*$", re.MULTILINE)


def _cases() -> list[pytest.param]:
    params = []
    for tfvars in sorted(CASES.glob("*/*.tfvars")):
        target = tfvars.parent.name
        params.append(pytest.param(target, tfvars, id=f"{target}/{tfvars.stem}"))
    return params


@pytest.mark.parametrize(("target", "tfvars"), _cases())
def test_plan_case(plan_runner, target: str, tfvars: Path) -> None:
    inventory = tfvars.with_suffix(".yaml")
    expected_errors = EXPECT_ERROR.findall(tfvars.read_text())
    assert inventory.is_file() or expected_errors, (
        f"{tfvars.name} needs an inventory {inventory.name} or an '# expect-error:' line"
    )
    if expected_errors:
        with pytest.raises(tftest.TerraformTestError) as failure:
            plan_runner.plan(target, [tfvars])
        said = terraform_message(" ".join(map(str, failure.value.args)))
        for text in expected_errors:
            assert terraform_message(text) in said, f"plan failed, but not with {text!r}:\n{said}"
    else:
        check_inventory(plan_runner.plan(target, [tfvars]), load_yaml(inventory))


def test_every_target_has_cases() -> None:
    targets = {p.parent.name for p in CASES.glob("*/*.tfvars")}
    modules = {p.name for p in (CASES.parents[1] / "modules").iterdir() if (p / "main.tf").is_file()}
    assert modules | {"root"} <= targets, f"no plan cases for {sorted(modules | {'root'} - targets)}"


def test_a_remote_backend_does_not_break_offline_plans(plan_runner, tf_workspace: Path) -> None:
    # The README asks teams to add terraform/backend.tf with a gcs backend; plans must stay offline.
    folder = tf_workspace / "with-backend"
    shutil.copytree(tf_workspace / "terraform", folder)
    (folder / "backend.tf").write_text('terraform {\n  backend "gcs" {\n    bucket = "my-tf-state"\n  }\n}\n')
    use_local_backend(folder)
    result = plan_runner.plan(folder, [CASES / "root" / "basic.tfvars"])
    assert result.counts["google_bigquery_connection"] == 1
