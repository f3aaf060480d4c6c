"""The run's logic, driven by a scripted engine: model, batches, retries, IAM propagation, dry run."""

from __future__ import annotations

import pytest

from embed import sql
from embed.engines.base import StatementError
from embed.errors import EmbedError
from embed.pipeline import Pipeline
from embed.schema import expected_schema
from tests.python.scripted import OK, PERMANENT, RETRYABLE, ScriptedEngine, columns_of, counts, result_rows

PROPAGATING = StatementError(
    "bqcx-123456789012-abcd@gcp-sa-bigquery-condel.iam.gserviceaccount.com does not have the permission to access"
    " or use the endpoint",
    propagating=True,
)


class Clock:
    """A clock that advances only when the pipeline sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def good_results(settings, n: int = 2):
    expected = expected_schema(settings)
    return result_rows(expected, [(f"gs://b/{i}.jpg", [0.1] * expected.dimension, OK) for i in range(n)])


def engine_for(settings, **kwargs) -> ScriptedEngine:
    script = {
        "create_model": [None],
        "replace_model": [None],
        "create_results_table": [None],
        "embed_batch": [0],
        "status_counts": [counts(objects=2, embedded=2)],
        "failure_summary": [[]],
    }
    script.update(kwargs.pop("script", {}))
    kwargs.setdefault("results", good_results(settings))
    return ScriptedEngine(settings, script=script, **kwargs)


def pipeline(engine, settings, clock=None, **kwargs) -> Pipeline:
    clock = clock or Clock()
    events = []
    p = Pipeline(engine, settings, sleep=clock.sleep, clock=clock, progress=events.append, **kwargs)
    p.events = events  # type: ignore[attr-defined]
    return p


def test_model_created_when_absent(example_settings) -> None:
    settings = example_settings()
    engine = engine_for(settings)
    report = pipeline(engine, settings).run()
    assert report.model_action == "created"
    assert engine.named("create_model") == [sql.create_model(settings)]
    assert engine.named("replace_model") == []
    assert engine.named("create_results_table") == [sql.create_results_table(settings)]
    assert report.ok and report.validation.rows == 2
    assert engine.sequence[-1] == "read_results"


def test_model_replaced_when_endpoint_differs(example_settings) -> None:
    settings = example_settings()
    engine = engine_for(settings, endpoint="multimodalembedding@000", table=columns_of(expected_schema(settings)))
    p = pipeline(engine, settings)
    report = p.run()
    assert report.model_action == "replaced"
    assert engine.named("replace_model") == [sql.replace_model(settings)]
    assert engine.named("create_model") == [] and engine.named("create_results_table") == []
    assert any("replaced model" in m and "multimodalembedding@000" in m for m in report.messages)
    assert any(e.kind == "message" and "replaced model" in e.message for e in p.events)


@pytest.mark.parametrize(
    "existing",
    [
        "multimodalembedding@001",
        "https://us-aiplatform.googleapis.com/v1/publishers/google/models/multimodalembedding@001",
    ],
)
def test_model_kept_when_endpoint_same(example_settings, existing: str) -> None:
    settings = example_settings()
    engine = engine_for(settings, endpoint=existing)
    report = pipeline(engine, settings).run()
    assert report.model_action == "kept"
    assert engine.named("create_model") == [] and engine.named("replace_model") == []


def test_batches_loop_until_zero(example_settings) -> None:
    settings = example_settings(batch_size=2)
    engine = engine_for(
        settings,
        script={
            "embed_batch": [2, 2, 1, 0],
            "status_counts": [counts(objects=5, pending=5), counts(objects=5, embedded=5)],
        },
    )
    p = pipeline(engine, settings)
    report = p.run()
    assert engine.named("embed_batch") == [sql.embed_batch(settings)] * 4
    assert report.batches == 4 and report.rows_merged == 5 and report.embedded == 5
    assert [e.total for e in p.events if e.kind == "start"] == [5]
    assert sum(e.advance for e in p.events if e.kind == "advance") == 5
    assert engine.named("retry_batch") == []


def test_video_prunes_after_each_merging_batch(example_settings) -> None:
    settings = example_settings(start_second=0, end_second=60, interval_seconds=8.5)
    engine = engine_for(settings, script={"embed_batch": [8, 0], "prune_superseded": [0]})
    pipeline(engine, settings).run()
    assert engine.named("prune_superseded") == [sql.prune_superseded(settings)]
    assert engine.sequence.index("prune_superseded") == engine.sequence.index("embed_batch") + 1


def test_retry_with_growing_backoff(example_settings) -> None:
    settings = example_settings(max_retries=3)
    clock = Clock()
    engine = engine_for(
        settings,
        script={
            "embed_batch": [4, 0],
            "status_counts": [
                counts(objects=4, pending=4),
                counts(objects=4, embedded=1, retryable=3),
                counts(objects=4, embedded=2, retryable=2),
                counts(objects=4, embedded=3, retryable=1),
                counts(objects=4, embedded=4),
            ],
            "retry_batch": [3, 0, 2, 0, 1, 0],
        },
    )
    report = pipeline(engine, settings, clock).run()
    assert report.retries == 3 and report.counts.failed_retryable == 0 and report.embedded == 4
    assert set(engine.named("retry_batch")) == {sql.retry_batch(settings)}
    assert len(clock.sleeps) == 3 and clock.sleeps[0] < clock.sleeps[1] < clock.sleeps[2]


def test_retries_stop_at_max_retries(example_settings) -> None:
    settings = example_settings(max_retries=2)
    clock = Clock()
    engine = engine_for(
        settings,
        script={
            "embed_batch": [5, 0],
            "status_counts": [counts(pending=5), counts(retryable=5), counts(retryable=4), counts(retryable=3)],
            "retry_batch": [5],
            "failure_summary": [[{"status": RETRYABLE, "retryable": True, "result_rows": 3}]],
        },
    )
    report = pipeline(engine, settings, clock).run()
    assert report.retries == 2 and len(clock.sleeps) == 2
    assert report.counts.failed_retryable == 3
    assert any("--max-retries" in m for m in report.messages)


def test_retry_without_progress_stops(example_settings) -> None:
    settings = example_settings(max_retries=5)
    clock = Clock()
    engine = engine_for(
        settings,
        script={
            "embed_batch": [3, 0],
            "status_counts": [counts(pending=3), counts(embedded=1, retryable=2)],
            "retry_batch": [2],
        },
    )
    report = pipeline(engine, settings, clock).run()
    assert report.retries == 1 and len(clock.sleeps) == 1
    assert any("no progress" in m for m in report.messages)


def test_non_retryable_rows_are_kept_and_reported(example_settings) -> None:
    settings = example_settings()
    expected = expected_schema(settings)
    results = result_rows(expected, [("gs://b/a.jpg", [0.2] * 1408, OK), ("gs://b/b.jpg", [], PERMANENT)])
    engine = engine_for(
        settings,
        results=results,
        script={
            "embed_batch": [2, 0],
            "status_counts": [counts(pending=2), counts(objects=2, embedded=1, permanent=1)],
            "failure_summary": [[{"status": PERMANENT, "retryable": False, "result_rows": 1}]],
        },
    )
    report = pipeline(engine, settings).run()
    assert engine.named("retry_batch") == []
    assert [(f.status, f.retryable, f.rows) for f in report.failures] == [(PERMANENT, False, 1)]
    assert report.counts.failed_permanent == 1
    assert report.validation.failures[0].status == PERMANENT and report.ok
    assert any("kept" in m for m in report.messages)
    assert not any("DELETE" in text for _, text, _ in engine.calls)


def test_iam_propagation_retried_then_success(example_settings) -> None:
    settings = example_settings()
    clock = Clock()
    engine = engine_for(settings, script={"create_model": [PROPAGATING, PROPAGATING, None]})
    p = pipeline(engine, settings, clock)
    report = p.run()
    assert engine.named("create_model") == [sql.create_model(settings)] * 3
    assert len(clock.sleeps) == 2 and clock.sleeps[0] < clock.sleeps[1]
    assert any("IAM" in m and "retrying" in m for m in report.messages) and report.ok


def test_iam_propagation_on_embedding_statement(example_settings) -> None:
    settings = example_settings()
    clock = Clock()
    engine = engine_for(settings, endpoint=settings.endpoint, script={"embed_batch": [PROPAGATING, 2, 0]})
    report = pipeline(engine, settings, clock).run()
    assert len(engine.named("embed_batch")) == 3 and report.rows_merged == 2 and len(clock.sleeps) == 1


def test_iam_wait_exhausted_names_the_grant(example_settings) -> None:
    settings = example_settings()
    clock = Clock()
    engine = engine_for(settings, script={"create_model": [PROPAGATING]})
    with pytest.raises(EmbedError) as info:
        pipeline(engine, settings, clock, iam_wait=120).run()
    message = str(info.value)
    assert f"roles/aiplatform.user to serviceAccount:{settings.connection_service_account}" in message
    assert settings.project_id in message and "7 minutes" in message
    assert info.value.exit_code == 2
    assert sum(clock.sleeps) == pytest.approx(120)
    assert engine.named("embed_batch") == []


def test_other_statement_error_fails_at_once(example_settings) -> None:
    settings = example_settings()
    clock = Clock()
    engine = engine_for(settings, script={"create_model": [StatementError("Not found: Connection my-project.us.x")]})
    with pytest.raises(EmbedError, match="Not found: Connection") as info:
        pipeline(engine, settings, clock).run()
    assert info.value.exit_code == 2
    assert clock.sleeps == [] and len(engine.named("create_model")) == 1


def test_validation_failure_makes_run_not_ok(example_settings) -> None:
    settings = example_settings()
    expected = expected_schema(settings)
    engine = engine_for(settings, results=result_rows(expected, [("gs://b/a.jpg", [0.1] * 10, OK)]))
    report = pipeline(engine, settings).run()
    assert not report.ok and report.validation.wrong_length_rows == 1
    assert report.to_dict()["validation"]["ok"] is False


def test_dry_run_executes_nothing_for_real(example_settings) -> None:
    settings = example_settings()
    engine = engine_for(settings, endpoint=settings.endpoint, table=columns_of(expected_schema(settings)))
    report = pipeline(engine, settings).dry_run()
    executed = [(name, dry) for name, _, dry in engine.calls]
    assert executed and all(dry for _, dry in executed)
    assert [name for name, _ in executed] == [s.name for s in sql.run_statements(settings)]
    assert {text for _, text, _ in engine.calls} == {s.sql for s in sql.run_statements(settings)}
    assert report.ok and all(c.bytes_processed for c in report.dry_run)


def test_dry_run_skips_statements_needing_missing_objects(example_settings) -> None:
    settings = example_settings()
    engine = engine_for(
        settings, script={"dry:create_model": [StatementError("Access Denied: bigquery.models.create")]}
    )
    report = pipeline(engine, settings).dry_run()
    checked = [name for name, _, dry in engine.calls]
    assert checked == ["create_model", "replace_model", "create_results_table"]
    assert not report.ok
    assert [c.name for c in report.dry_run if c.error] == ["create_model"]
    assert {c.name for c in report.dry_run if c.skipped} >= {"embed_batch", "status_counts", "read_results"}


def test_existing_results_table_with_another_schema_is_refused_before_embedding(example_settings) -> None:
    settings = example_settings()
    wrong = (columns_of(expected_schema(settings))[0],)  # only uri
    engine = engine_for(settings, endpoint=settings.endpoint, table=wrong)
    with pytest.raises(EmbedError, match="does not have the schema the kit writes") as info:
        pipeline(engine, settings).run()
    assert "generation" in str(info.value) and "embed validate" in str(info.value)
    assert engine.named("embed_batch") == [] and engine.named("create_results_table") == []


def test_existing_json_results_refused_when_settings_flatten(example_settings) -> None:
    settings = example_settings()
    json_table = columns_of(expected_schema(settings, flatten_json_output=False))
    engine = engine_for(settings, endpoint=settings.endpoint, table=json_table)
    with pytest.raises(EmbedError, match="ml_generate_embedding_result"):
        pipeline(engine, settings).run()
    assert engine.named("embed_batch") == []


def test_existing_model_that_is_not_remote_is_not_replaced(example_settings) -> None:
    settings = example_settings()
    engine = engine_for(settings, endpoint="")  # a model there, but not a remote one
    with pytest.raises(EmbedError, match="not a remote model"):
        pipeline(engine, settings).run()
    assert engine.named("replace_model") == [] and engine.named("create_model") == []
