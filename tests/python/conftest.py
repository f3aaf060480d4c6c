"""Shared fixtures for the Python layer's tests: the example outputs and settings built from them."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from embed.settings import Settings, load_settings
from tests.support.outputs import EXAMPLE_OUTPUTS


@pytest.fixture
def example_document() -> dict[str, Any]:
    """The committed example, as `terraform output -json` writes it."""
    return json.loads(EXAMPLE_OUTPUTS.read_text(encoding="utf-8"))


@pytest.fixture
def example_value(example_document: dict[str, Any]) -> dict[str, Any]:
    """The `embed` output's value from the example."""
    return copy.deepcopy(example_document["embed"]["value"])


@pytest.fixture
def write_outputs(tmp_path: Path) -> Callable[[object], Path]:
    """Write a JSON document to a fresh file and return its path."""
    counter = iter(range(1_000_000))

    def write(document: object) -> Path:
        path = tmp_path / f"outputs-{next(counter)}.json"
        path.write_text(json.dumps(document), encoding="utf-8")
        return path

    return write


@pytest.fixture
def example_settings() -> Callable[..., Settings]:
    """Settings from the example outputs with optional overrides and no environment."""

    def build(**overrides: object) -> Settings:
        return load_settings(overrides, outputs_file=EXAMPLE_OUTPUTS, environ={})

    return build


@pytest.fixture(scope="session")
def googlesql_analyzer() -> Callable[[Settings], Any]:
    """GoogleSQL's analyzer for a Settings (embed.googlesql); one WebAssembly instance serves the session."""
    pytest.importorskip("zetasql", reason="the `check` extra is not installed: pip install 'embed-kit[check]'")
    from embed import googlesql

    return googlesql.analyzer
