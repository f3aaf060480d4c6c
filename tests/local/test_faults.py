"""The fault knob: retryable failures injected into the embedded engine's model calls, by object attempt."""

from __future__ import annotations

from pathlib import Path

import pytest

from embed import sql
from embed.engines.local.engine import LocalEngine
from embed.engines.local.models.faults import FAULTS_ENV, FaultInjector, parse_faults
from embed.engines.local.objects import uri_of
from embed.errors import EmbedError
from embed.statuses import RESOURCE_EXHAUSTED, RETRYABLE_PREFIX
from tests.local.sample import PHOTOS, LocalRun, local_settings, sample_set


def test_fault_knob_fails_about_the_fraction_deterministically() -> None:
    uris = [f"file:///photos/{i}.png" for i in range(4000)]
    first = [parse_faults("retryable:0.3,seed:7").fails(u, 0) for u in uris]
    injector = parse_faults("retryable:0.3,seed:7")
    assert [injector.fails(u, 0) for u in uris] == first
    assert 0.27 < sum(first) / len(uris) < 0.33
    assert [parse_faults("retryable:0.3,seed:8").fails(u, 0) for u in uris] != first
    assert [injector.fails(u, 1) for u in uris] != first  # a retry gets fresh odds
    assert not any(FaultInjector().fails(u, 0) for u in uris)


def test_retries_of_faulted_rows_converge() -> None:
    injector = parse_faults("retryable:0.5,seed:7")
    failing = [f"file:///photos/{i}.png" for i in range(1000)]
    for attempt in range(40):
        failing = [u for u in failing if injector.fails(u, attempt)]
        if not failing:
            break
    assert not failing, f"{len(failing)} rows still failing after {attempt + 1} attempts"


@pytest.mark.parametrize("spec", ["retryable:1.5", "retryable:1", "retryable:abc", "bogus:1", "seed:3", "retryable"])
def test_bad_fault_knob_values_are_refused(spec: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(EmbedError, match=FAULTS_ENV):
        parse_faults(spec)
    local = LocalRun(sample_set(tmp_path / "images", PHOTOS[:1], bad=False), tmp_path / "embed.duckdb")
    monkeypatch.setenv(FAULTS_ENV, spec)
    with pytest.raises(EmbedError) as raised:
        local.run()
    assert raised.value.exit_code == 2 and FAULTS_ENV in str(raised.value)


def batch(local: LocalRun, *uris: str):
    return sql.embed_batch(local.settings).with_params(uris=list(uris), run_id="t")


def test_an_attempt_belongs_to_the_object_not_the_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second engine on the same database (another process) continues each object's attempts."""
    folder = sample_set(tmp_path / "images", PHOTOS[:1], bad=False)
    photo = uri_of(folder / PHOTOS[0])
    seed = next(
        s for s in range(1000) if FaultInjector(0.5, s).fails(photo, 0) and not FaultInjector(0.5, s).fails(photo, 1)
    )
    monkeypatch.setenv(FAULTS_ENV, f"retryable:0.5,seed:{seed}")
    statuses = []
    for _ in range(2):
        local = LocalRun(folder, tmp_path / "embed.duckdb")
        local.engine.execute(sql.create_model(local.settings))
        local.engine.execute(sql.create_results_table(local.settings))
        assert local.engine.execute(batch(local, photo)).affected_rows == 1
        statuses.append([r["ml_generate_embedding_status"] for r in local.rows()][-1])
        local.engine.close()
    assert statuses == [RESOURCE_EXHAUSTED, ""]
    assert RESOURCE_EXHAUSTED.startswith(RETRYABLE_PREFIX + " RESOURCE_EXHAUSTED")


def test_faulted_rows_never_reach_the_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = sample_set(tmp_path / "images", PHOTOS, bad=False)
    monkeypatch.setenv(FAULTS_ENV, "retryable:0.5,seed:1")
    local = LocalRun(folder, tmp_path / "embed.duckdb")
    local.engine.execute(sql.create_model(local.settings))
    local.engine.execute(sql.create_results_table(local.settings))
    uris = [uri_of(folder / p) for p in PHOTOS]
    result = local.engine.execute(batch(local, *uris))
    failed = {r["uri"] for r in local.rows() if r["ml_generate_embedding_status"] == RESOURCE_EXHAUSTED}
    assert failed and result.model_rows == len(uris)  # every row was sent to the endpoint ...
    assert set(local.model.sent) == set(uris) - failed  # ... which turned the faulted ones away


def test_repeated_runs_with_one_seed_converge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each run a new engine (as a new process would be): the faults still end, in a bounded number of runs."""
    folder = sample_set(tmp_path / "images", PHOTOS[:3], bad=False)
    uris = [uri_of(folder / p) for p in PHOTOS[:3]]
    # A seed where some row fails its first two attempts: one run (a batch and one retry) cannot finish.
    seed = next(s for s in range(1000) if any(all(FaultInjector(0.5, s).fails(u, a) for a in (0, 1)) for u in uris))
    monkeypatch.setenv(FAULTS_ENV, f"retryable:0.5,seed:{seed}")
    settings = local_settings(max_retries=1)
    from embed.pipeline import Pipeline

    runs = 0
    while runs < 30:
        runs += 1
        engine = LocalEngine(tmp_path / "embed.duckdb", [folder], object_table=settings.object_table)
        report = Pipeline(engine, settings, sleep=lambda s: None).run()
        engine.close()
        if report.counts.embedded == 3:
            break
    assert report.counts.embedded == 3 and report.counts.failed_retryable == 0
    assert runs > 1


class Spy:
    """The engine, recording the uris of each batch and where each retry round starts."""

    def __init__(self, engine: LocalEngine) -> None:
        self.engine = engine
        self.rounds: list[list[str]] = [[]]
        self.listed: list[list[str]] = []

    def execute(self, statement, *, dry_run: bool = False):
        result = self.engine.execute(statement, dry_run=dry_run)
        if dry_run:
            return result
        if statement.name == "retryable_objects":
            self.listed.append([r["uri"] for r in result.records()])
            self.rounds.append([])
        elif statement.name == "embed_batch":
            self.rounds[-1].extend({p.name: p.value for p in statement.params}["uris"])
        return result

    def __getattr__(self, name: str):
        return getattr(self.engine, name)


def test_each_retry_round_sends_each_retryable_row_once_oldest_first(tmp_path: Path, monkeypatch) -> None:
    from embed.pipeline import Pipeline

    folder = sample_set(tmp_path / "images", PHOTOS, bad=True)
    uris = [uri_of(p) for p in sorted(folder.rglob("*")) if p.is_file()]

    def rounds_needed(seed: int) -> bool:  # rows fail their first attempt; of those, one its second, one not
        faults = FaultInjector(0.6, seed)
        again = [faults.fails(u, 1) for u in uris if faults.fails(u, 0)]
        return any(again) and not all(again)

    monkeypatch.setenv(FAULTS_ENV, f"retryable:0.6,seed:{next(s for s in range(1000) if rounds_needed(s))}")
    settings = local_settings(max_retries=6, batch_size=2)
    local = LocalRun(folder, tmp_path / "embed.duckdb", settings)
    spy = Spy(local.engine)
    report = Pipeline(spy, settings, sleep=lambda s: None).run()
    first, *retries = spy.rounds
    assert sorted(first) == sorted(set(first)) and len(first) == report.counts.objects
    rounds = [(listed, sent) for listed, sent in zip(spy.listed, retries) if sent]
    assert len(rounds) == report.retries > 1
    for listed, sent in rounds:
        assert len(sent) == len(set(sent)), "a row was sent twice in one round"
        assert sent == listed  # every retryable row, once, in the order listed (oldest attempt first)
    assert sum(len(sent) for _, sent in rounds) == report.retried_objects
