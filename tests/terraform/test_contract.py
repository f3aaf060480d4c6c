"""The root stack's only output, ``embed``, is what terraform/outputs.example.json shows."""

from __future__ import annotations

import json

from tests.terraform.conftest import REPO, UNKNOWN

EXAMPLE_TFVARS = REPO / "terraform" / "terraform.tfvars.example"
EXAMPLE_OUTPUTS = REPO / "terraform" / "outputs.example.json"


def test_planned_embed_output_matches_the_committed_example(plan_runner) -> None:
    planned = plan_runner.plan("root", [EXAMPLE_TFVARS])
    assert list(planned.outputs) == ["embed"], "the root stack must expose exactly one output, embed"
    example = json.loads(EXAMPLE_OUTPUTS.read_text())["embed"]["value"]
    embed = planned.outputs["embed"]
    assert set(embed) == set(example)
    # The service account exists only after apply; everything else is fixed by the tfvars.
    assert embed["connection_service_account"] == UNKNOWN
    assert {k: v for k, v in embed.items() if v != UNKNOWN} == {
        k: v for k, v in example.items() if k != "connection_service_account"
    }
