"""Each module README opens with an example; plan it so the documentation cannot rot.

An example is a ```hcl block holding a ``# tftest modules=M resources=N``
line (and optionally ``inventory=FILE.yaml``, a file beside the README's
plan cases in ``tests/terraform/<module>/``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support import REPO
from tests.support.plans import CASES, check_inventory, load_yaml

BLOCK = re.compile(r"```hcl\n(.*?)```", re.DOTALL)
DIRECTIVE = re.compile(r"^\s*#\s*tftest\s+(.*)$", re.MULTILINE)


def _examples() -> list[pytest.param]:
    params = []
    for readme in sorted(REPO.glob("modules/*/README.md")):
        blocks = [b for b in BLOCK.findall(readme.read_text()) if DIRECTIVE.search(b)]
        for i, block in enumerate(blocks):
            params.append(pytest.param(readme.parent.name, i, block, id=f"{readme.parent.name}-{i}"))
    return params


def test_every_module_readme_opens_with_a_tested_example() -> None:
    for module in sorted(p for p in (REPO / "modules").iterdir() if (p / "main.tf").is_file()):
        readme = module / "README.md"
        assert readme.is_file(), f"{module.name} has no README.md"
        blocks = BLOCK.findall(readme.read_text())
        assert blocks and DIRECTIVE.search(blocks[0]), (
            f"{module.name}/README.md must open with an hcl example carrying a '# tftest' line"
        )


@pytest.mark.parametrize(("module", "index", "code"), _examples())
def test_readme_example_plans(plan_runner, tf_workspace: Path, module: str, index: int, code: str) -> None:
    directive = dict(item.split("=", 1) for item in DIRECTIVE.search(code).group(1).split())
    folder = tf_workspace / "examples" / f"{module}-{index}"
    folder.mkdir(parents=True, exist_ok=True)
    # Examples use ./modules/<name>, as a user's root module beside the kit would.
    (folder / "main.tf").write_text(code.replace('"./modules/', '"../../modules/'))
    result = plan_runner.plan(folder)
    assert result.counts["modules"] == int(directive["modules"]), result.counts
    assert result.counts["resources"] == int(directive["resources"]), result.counts
    if "inventory" in directive:
        check_inventory(result, load_yaml(CASES / module / directive["inventory"]))
