"""The committed example of ``terraform output -json`` and documents shaped like it."""

from __future__ import annotations

from typing import Any

from tests.support import REPO

EXAMPLE_OUTPUTS = REPO / "terraform" / "outputs.example.json"


def wrap(value: object) -> dict[str, Any]:
    """Wrap an `embed` value in the `terraform output -json` document format."""
    return {"embed": {"sensitive": False, "type": ["object", {}], "value": value}}
