"""Heavy injected faults (30 % and 90 % of model calls fail, retryably) converge to the table a clean run makes.

A fault is a pure function of (seed, uri, attempt), and every run sends each object still failing at
least once, so the runs needed are bounded by the attempts the worst object needs, computed here
from the seed before any run. The seed is picked so that this bound keeps the test short; the
pipeline's logic does not depend on it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from embed.engines.local.models.faults import FAULTS_ENV, FaultInjector
from embed.engines.local.objects import uri_of
from tests.local.sample import PHOTOS, LocalRun, local_settings, sample_set

pytestmark = pytest.mark.reliability


def table(local: LocalRun) -> dict[str, tuple[str, list[float], int]]:
    """uri relative to the folder -> (status, embedding, attempts); fails on two rows for one uri."""
    prefix = local.folder.absolute().as_uri() + "/"
    return {
        uri.removeprefix(prefix): (r["ml_generate_embedding_status"], r["ml_generate_embedding_result"], r["attempts"])
        for uri, r in local.results().items()
    }


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> dict[str, tuple[str, list[float], int]]:
    """The table one run without faults makes over the sample set (photos and bad files)."""
    work = tmp_path_factory.mktemp("clean")
    local = LocalRun(sample_set(work / "images", PHOTOS), work / "embed.duckdb")
    assert local.run().ok
    made = table(local)
    local.engine.close()
    return made


def attempts_needed(injector: FaultInjector, uris: list[str]) -> dict[str, int]:
    """How many attempts each uri needs before one is not failed by ``injector``."""
    needed = {}
    for uri in uris:
        attempt = 0
        while injector.fails(uri, attempt):
            attempt += 1
        needed[uri] = attempt + 1
    return needed


def pick_seed(fraction: float, uris: list[str], worst: range) -> tuple[int, dict[str, int]]:
    """A seed whose worst object needs a number of attempts in ``worst``, and every object's attempts."""
    for seed in range(5000):
        needed = attempts_needed(FaultInjector(fraction, seed), uris)
        if max(needed.values()) in worst:
            return seed, needed
    raise AssertionError(f"no seed makes the worst object need {worst} attempts")


@pytest.mark.parametrize(("fraction", "worst"), [(0.3, range(3, 6)), (0.9, range(10, 16))], ids=["30%", "90%"])
def test_injected_faults_converge_with_nothing_dropped(
    clean, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fraction: float, worst: range
) -> None:
    folder = sample_set(tmp_path / "images", PHOTOS)
    uris = sorted(uri_of(p) for p in folder.rglob("*") if p.is_file())
    seed, needed = pick_seed(fraction, uris, worst)
    bound = max(needed.values())
    monkeypatch.setenv(FAULTS_ENV, f"retryable:{fraction},seed:{seed}")
    local = LocalRun(folder, tmp_path / "embed.duckdb", local_settings(max_retries=100, batch_size=4))
    runs = 0
    while True:
        runs += 1
        report = local.run()
        assert report.ok, report.messages
        if report.counts.failed_retryable == 0:
            break
        assert runs < bound, f"retryable rows left after {runs} runs; the faults allow success by {bound}"
    faulted = table(local)
    assert faulted.keys() == clean.keys()  # same uris, each once
    prefix = folder.absolute().as_uri() + "/"
    for uri, (status, embedding, _) in clean.items():
        assert faulted[uri][0] == status, uri
        assert faulted[uri][1] == pytest.approx(embedding, abs=1e-5), uri
        # Every attempt counted, none lost or repeated: the row records the attempt that succeeded.
        assert faulted[uri][2] == needed[prefix + uri], uri
    assert all(faulted[p][0] == "" for p in PHOTOS)  # every photo embedded
    local.engine.close()
