"""Plan fixtures: one private copy of the Terraform code and one plan runner per session.

The helpers they are built from (``PlanRunner``, ``check_inventory``, ...) are in
``tests/support/plans.py``. The provider is the offline stand-in unless
``EMBED_TF_PROVIDER=registry``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.standin import terraform_env
from tests.support import REPO
from tests.support.plans import EXAMPLE_TFVARS, PlanResult, PlanRunner, use_local_backend


@pytest.fixture(scope="session")
def tf_env() -> dict[str, str]:
    """Environment for terraform: the offline stand-in provider, or the registry's with EMBED_TF_PROVIDER=registry."""
    return terraform_env()


@pytest.fixture(scope="session")
def tf_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of ``modules/`` and ``terraform/`` without any local terraform state."""
    root = tmp_path_factory.mktemp("tf")
    ignore = shutil.ignore_patterns(".terraform", ".terraform.lock.hcl", "*.tfstate*", "*.tfplan", "terraform.tfvars")
    for name in ("modules", "terraform"):
        shutil.copytree(REPO / name, root / name, ignore=ignore)
    use_local_backend(root / "terraform")
    return root


@pytest.fixture(scope="session")
def plan_runner(tf_workspace: Path, tf_env: dict[str, str]) -> PlanRunner:
    """Session-wide plan runner; each folder is initialised once."""
    return PlanRunner(tf_workspace, tf_env)


@pytest.fixture(scope="session")
def example_plan(plan_runner: PlanRunner) -> PlanResult:
    """The root stack planned with ``terraform/terraform.tfvars.example``, shared by the tests that only read it."""
    return plan_runner.plan("root", [EXAMPLE_TFVARS])
