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


DOMAIN_PROJECT = "example.com:my-project"


@pytest.fixture
def domain_scoped_value(example_value: dict[str, Any]) -> dict[str, Any]:
    """The example `embed` value in a domain-scoped project (``example.com:my-project``)."""
    p = DOMAIN_PROJECT
    return example_value | {
        "project_id": p,
        "connection": f"{p}.us.embed_conn",
        "object_table": f"{p}.bqml_tutorial.images",
        "model": f"{p}.bqml_tutorial.embedding_model",
        "results_table": f"{p}.bqml_tutorial.image_embeddings",
    }


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
