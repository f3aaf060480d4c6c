"""The Python code is formatted and linted by ruff, as pyproject.toml configures it ([tool.ruff])."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support import REPO

TREES = ("python", "tests", "bench")


@pytest.mark.parametrize("command", [["format", "--check", "--diff"], ["check"]], ids=["format", "lint"])
def test_ruff_is_clean(command: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ruff", *command, *TREES], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"ruff {' '.join(command)} (fix: make fmt):\n{done.stdout}{done.stderr}"
