"""The root stack's only output, ``embed``, is what terraform/outputs.example.json shows."""

from __future__ import annotations

import json

from tests.support.outputs import EXAMPLE_OUTPUTS
from tests.support.plans import UNKNOWN, PlanResult


def test_planned_embed_output_matches_the_committed_example(example_plan: PlanResult) -> None:
    planned = example_plan
    assert list(planned.outputs) == ["embed"], "the root stack must expose exactly one output, embed"
    example = json.loads(EXAMPLE_OUTPUTS.read_text())["embed"]["value"]
    embed = planned.outputs["embed"]
    assert set(embed) == set(example)
    # The service account exists only after apply; everything else is fixed by the tfvars.
    assert embed["connection_service_account"] == UNKNOWN
    assert {k: v for k, v in embed.items() if v != UNKNOWN} == {
        k: v for k, v in example.items() if k != "connection_service_account"
    }
