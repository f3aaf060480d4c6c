"""The run's logic, driven by a scripted engine: model, space, batches, retries, IAM propagation, cost, dry run."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from embed import sql
from embed.engines.base import QueryResult, StatementError
from embed.errors import EmbedError
from embed.pipeline import FIXED_COST_SHARE, MIN_BILLED_BYTES, Pipeline, auto_batch_size, row_bytes
from embed.schema import expected_schema
from embed.settings import MAX_BATCH_SIZE
from tests.python.scripted import (
    PERMANENT,
    ScriptedEngine,
    columns_of,
    counts,
    retryable_rows,
    uris,
    validation_row,
)

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


def engine_for(settings, **kwargs) -> ScriptedEngine:
    script = {
        "create_model": [None],
        "replace_model": [None],
        "create_results_table": [None],
        "status_counts": [counts(objects=2, embedded=2)],
        "pending_objects": [[]],
        "retryable_objects": [[]],
        "failure_summary": [[]],
        "validate_run": [validation_row(result_rows=2, successful_rows=2)],
        "compact_results": [0],
        "prune_deleted": [0],
        "embedding_spaces": [[]],
    }
    script.update(kwargs.pop("script", {}))
    return ScriptedEngine(settings, script=script, **kwargs)


def existing(settings, **kwargs) -> ScriptedEngine:
    """An engine where the model and the results table exist already."""
    return engine_for(settings, endpoint=settings.endpoint, table=columns_of(expected_schema(settings)), **kwargs)


def pipeline(engine, settings, clock=None, **kwargs) -> Pipeline:
    clock = clock or Clock()
    events = []
    p = Pipeline(engine, settings, sleep=clock.sleep, clock=clock, progress=events.append, run_id="r-1", **kwargs)
    p.events = events  # type: ignore[attr-defined]
    return p


def sent(engine: ScriptedEngine) -> list[list[str]]:
    """The uris of each embed_batch, in order."""
    return [call.param("uris") for call in engine.named("embed_batch")]


# --- model and results table ---------------------------------------------------------------


def test_the_validation_reads_every_row_of_a_long_run(example_settings) -> None:
    """A run of 28 hours validates the rows of its first hour too: the window opens at the run's start."""
    settings = example_settings()
    engine = engine_for(
        settings,
        script={
            "status_counts": [counts(objects=2, pending=2), counts(objects=2, embedded=2)],
            "pending_objects": [uris("a", "b")],
        },
    )
    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    # the embedding takes 28 hours
    pipeline(engine, settings, now=lambda: start + dt.timedelta(hours=28 * len(engine.named("embed_batch")))).run()
    (validation,) = engine.named("validate_run")
    assert validation.param("since") <= start and validation.param("run_id") == "r-1"


def test_first_run_creates_table_and_model_then_embeds_what_is_pending(example_settings) -> None:
    settings = example_settings()
    engine = engine_for(
        settings,
        script={
            "status_counts": [counts(objects=2, pending=2), counts(objects=2, embedded=2)],
            "pending_objects": [uris("a", "b")],
        },
    )
    report = pipeline(engine, settings).run()
    assert report.model_action == "created"
    assert engine.sequence == [
        "create_results_table",
        "status_counts",
        "create_model",
        "pending_objects",
        "embed_batch",
        "retryable_objects",
        "status_counts",
        "validate_run",  # no failure_summary: the counts found no failed object
    ]
    assert sent(engine) == [["gs://b/a", "gs://b/b"]]
    batch = engine.named("embed_batch")[0]
    assert batch.param("run_id") == "r-1" and batch.param("prior_attempts") == []
    assert batch.param("endpoint") == settings.endpoint and batch.param("dimension") == 1408
    assert report.ok and report.rows_written == 2 and report.objects_sent == 2
    assert engine.named("validate_run")[0].param("run_id") == "r-1"


def test_model_replaced_when_endpoint_differs(example_settings) -> None:
    settings = example_settings()
    engine = engine_for(settings, endpoint="multimodalembedding@000", table=columns_of(expected_schema(settings)))
    p = pipeline(engine, settings)
    report = p.run()
    assert report.model_action == "replaced"
    assert len(engine.named("replace_model")) == 1
    assert engine.named("create_model") == [] and engine.named("create_results_table") == []
    assert any("replaced model" in m and "multimodalembedding@000" in m for m in report.messages)
    assert any(e.kind == "message" and "replaced model" in e.message for e in p.events)


@pytest.mark.parametrize(
    "endpoint",
    [
        "multimodalembedding@001",
        "https://us-aiplatform.googleapis.com/v1/publishers/google/models/multimodalembedding@001",
    ],
)
def test_model_kept_when_endpoint_same(example_settings, endpoint: str) -> None:
    settings = example_settings()
    engine = engine_for(settings, endpoint=endpoint, table=columns_of(expected_schema(settings)))
    report = pipeline(engine, settings).run()
    assert report.model_action == "kept"
    assert engine.named("create_model") == [] and engine.named("replace_model") == []


def test_existing_results_table_with_another_schema_is_refused_before_embedding(example_settings) -> None:
    settings = example_settings()
    wrong = (columns_of(expected_schema(settings))[0],)  # only uri
    engine = engine_for(settings, endpoint=settings.endpoint, table=wrong)
    with pytest.raises(EmbedError, match="does not have the schema the kit writes") as info:
        pipeline(engine, settings).run()
    assert "generation" in str(info.value) and "embed validate" in str(info.value)
    assert engine.calls == []


def test_existing_json_results_refused_when_settings_flatten(example_settings) -> None:
    settings = example_settings()
    json_table = columns_of(expected_schema(settings, flatten_json_output=False))
    engine = engine_for(settings, endpoint=settings.endpoint, table=json_table)
    with pytest.raises(EmbedError, match="ml_generate_embedding_result"):
        pipeline(engine, settings).run()
    assert engine.calls == []


def test_existing_model_that_is_not_remote_is_not_replaced(example_settings) -> None:
    settings = example_settings()
    engine = engine_for(settings, endpoint="", table=columns_of(expected_schema(settings)))
    with pytest.raises(EmbedError, match="not a remote model"):
        pipeline(engine, settings).run()
    assert engine.named("replace_model") == [] and engine.named("embed_batch") == []


# --- what a run issues -----------------------------------------------------------------------


def test_a_run_with_nothing_to_do_issues_one_key_scan(example_settings) -> None:
    settings = example_settings()
    engine = existing(settings, script={"status_counts": [counts(objects=5, embedded=4, permanent=1)]})
    report = pipeline(engine, settings).run()
    assert engine.sequence == ["status_counts"]
    assert report.validation is None and report.ok and report.objects_sent == 0
    assert report.counts.failed_permanent == 1
    assert any("nothing new to embed" in m for m in report.messages)
    assert any("embed failures" in m for m in report.messages)


def test_pending_objects_are_sent_once_in_batches_of_batch_size(example_settings) -> None:
    settings = example_settings(batch_size=2)
    engine = existing(
        settings,
        script={
            "status_counts": [counts(objects=5, pending=5), counts(objects=5, embedded=5)],
            "pending_objects": [uris("a", "b", "c", "d", "e")],
        },
    )
    p = pipeline(engine, settings)
    report = p.run()
    assert sent(engine) == [["gs://b/a", "gs://b/b"], ["gs://b/c", "gs://b/d"], ["gs://b/e"]]
    assert report.batches == 3 and report.rows_written == 5 and report.embedded == 5
    assert [e.total for e in p.events if e.kind == "start"] == [5]
    assert sum(e.advance for e in p.events if e.kind == "advance") == 5
    assert engine.named("compact_results") == []


def test_batch_size_is_sized_from_a_dry_run_of_one_batch(example_settings) -> None:
    settings = example_settings()
    fixed = 130 * 2**20  # a million objects' metadata
    pending = [f"o{i}" for i in range(10)]
    engine = existing(
        settings,
        script={
            "status_counts": [counts(objects=10, pending=10), counts(objects=10, embedded=10)],
            "pending_objects": [uris(*pending)],
            "dry:embed_batch": [QueryResult(bytes_processed=fixed)],
        },
    )
    report = pipeline(engine, settings).run()
    dry = [c for c in engine.calls if c.dry_run]
    assert [c.name for c in dry] == ["embed_batch"]
    assert report.batch_size == auto_batch_size(10, fixed, row_bytes(settings)) == 10
    assert sent(engine) == [[f"gs://b/{u}" for u in pending]]


def test_auto_batch_size_keeps_the_fixed_cost_under_its_share() -> None:
    row = 1408 * 8 + 256
    for pending, fixed in ((1_000_000, 130 * 2**20), (50_000, 0), (3_000_000, 400 * 2**20)):
        size = auto_batch_size(pending, fixed, row)
        batches = math.ceil(pending / size)
        assert max(fixed, MIN_BILLED_BYTES) <= FIXED_COST_SHARE * row * size * 1.0001
        assert size * (batches - 1) < pending <= size * batches  # evened out: no tiny last batch
    assert auto_batch_size(5, 0, row) == 5  # fewer objects than one batch: one batch
    capped = auto_batch_size(10**7, 10**15, row)  # the fixed cost asks for more than a job may hold
    assert capped <= MAX_BATCH_SIZE and math.ceil(10**7 / capped) == math.ceil(10**7 / MAX_BATCH_SIZE)


def test_superseded_rows_are_compacted_once_at_the_end(example_settings) -> None:
    settings = example_settings()
    engine = existing(
        settings,
        script={
            "status_counts": [counts(objects=2, pending=1, embedded=1), counts(objects=2, embedded=2, superseded=1)],
            "pending_objects": [uris("changed")],
            "compact_results": [1],
        },
    )
    report = pipeline(engine, settings).run()
    assert engine.named("compact_results") and len(engine.named("compact_results")) == 1
    assert engine.sequence.index("compact_results") < engine.sequence.index("validate_run")
    assert report.compacted_rows == 1 and report.counts.superseded_rows == 0


def test_rows_left_superseded_by_a_stopped_run_are_compacted_by_the_next(example_settings) -> None:
    settings = example_settings()
    engine = existing(
        settings, script={"status_counts": [counts(objects=2, embedded=2, superseded=2)], "compact_results": [2]}
    )
    report = pipeline(engine, settings).run()
    assert engine.sequence == ["status_counts", "compact_results"]
    assert report.compacted_rows == 2


def test_deleted_objects_are_counted_and_pruned_only_when_asked(example_settings) -> None:
    settings = example_settings()
    kept = existing(settings, script={"status_counts": [counts(objects=2, embedded=2, deleted=3)]})
    report = pipeline(kept, settings).run()
    assert kept.named("prune_deleted") == [] and report.counts.deleted == 3
    assert any("--prune-deleted" in m for m in report.messages)
    pruned = existing(
        settings, script={"status_counts": [counts(objects=2, embedded=2, deleted=3)], "prune_deleted": [4]}
    )
    report = pipeline(pruned, settings, prune_deleted=True).run()
    assert len(pruned.named("prune_deleted")) == 1 and report.pruned_rows == 4 and report.counts.deleted == 0


# --- one embedding space per table -----------------------------------------------------------


def test_another_embedding_space_is_refused_before_any_model_call(example_settings) -> None:
    settings = example_settings(output_dimensionality=512)
    engine = existing(
        settings,
        script={
            "status_counts": [counts(objects=3, pending=3, other_space=3)],
            "embedding_spaces": [[{"endpoint": "multimodalembedding@001", "dimension": 1408, "result_rows": 3}]],
        },
    )
    with pytest.raises(EmbedError) as info:
        pipeline(engine, settings).run()
    message = str(info.value)
    assert info.value.exit_code == 2
    assert "3 row(s) of multimodalembedding@001 (1408-d)" in message and "(512-d)" in message
    assert "--results-table" in message and "--re-embed" in message
    assert engine.sequence == ["status_counts", "embedding_spaces"]


def test_re_embed_replaces_another_space_and_compacts_the_old_rows(example_settings) -> None:
    settings = example_settings(output_dimensionality=512)
    engine = existing(
        settings,
        script={
            "status_counts": [counts(objects=1, pending=1, other_space=1), counts(objects=1, embedded=1, superseded=1)],
            "embedding_spaces": [[{"endpoint": "multimodalembedding@001", "dimension": 1408, "result_rows": 1}]],
            "pending_objects": [uris("a")],
            "compact_results": [1],
        },
    )
    report = pipeline(engine, settings, re_embed=True).run()
    assert sent(engine) == [["gs://b/a"]] and report.compacted_rows == 1
    assert engine.named("embed_batch")[0].param("dimension") == 512
    assert any("--re-embed" in m for m in report.messages)


def test_another_run_on_the_same_table_is_refused(example_settings) -> None:
    settings = example_settings()
    engine = existing(settings, running=("job_a", "job_b"))
    with pytest.raises(EmbedError, match="another embed run is writing") as info:
        pipeline(engine, settings).run()
    assert "job_a" in str(info.value) and "bq cancel" in str(info.value)
    assert engine.calls == []


# --- retries ---------------------------------------------------------------------------------


def test_each_retry_round_sends_each_retryable_object_once_oldest_first(example_settings) -> None:
    settings = example_settings(max_retries=3, batch_size=2)
    clock = Clock()
    engine = existing(
        settings,
        script={
            "status_counts": [counts(objects=4, pending=4), counts(objects=4, embedded=4)],
            "pending_objects": [uris("a", "b", "c", "d")],
            "retryable_objects": [
                retryable_rows("c", "a", "d"),
                retryable_rows("d", "c", attempts=2),
                retryable_rows("c", attempts=3),
                [],
            ],
        },
    )
    report = pipeline(engine, settings, clock).run()
    assert sent(engine) == [
        ["gs://b/a", "gs://b/b"],
        ["gs://b/c", "gs://b/d"],
        ["gs://b/c", "gs://b/a"],  # round 1: in the order given, oldest attempt first
        ["gs://b/d"],
        ["gs://b/d", "gs://b/c"],  # round 2
        ["gs://b/c"],  # round 3
    ]
    prior = engine.named("embed_batch")[2].param("prior_attempts")
    assert prior == [
        {"uri": "gs://b/c", "generation": 7, "attempts": 1},
        {"uri": "gs://b/a", "generation": 7, "attempts": 1},
    ]
    assert report.retries == 3 and report.retried_objects == 6
    assert len(clock.sleeps) == 3 and clock.sleeps[0] < clock.sleeps[1] < clock.sleeps[2]


def test_retries_stop_at_max_retries(example_settings) -> None:
    settings = example_settings(max_retries=2)
    clock = Clock()
    engine = existing(
        settings,
        script={
            "status_counts": [counts(pending=3), counts(retryable=1)],
            "pending_objects": [uris("a", "b", "c")],
            "retryable_objects": [retryable_rows("a", "b", "c"), retryable_rows("a", "b"), retryable_rows("a")],
        },
    )
    report = pipeline(engine, settings, clock).run()
    assert report.retries == 2 and len(clock.sleeps) == 2
    assert any("--max-retries" in m for m in report.messages)


def test_retry_without_progress_stops(example_settings) -> None:
    settings = example_settings(max_retries=5)
    clock = Clock()
    engine = existing(
        settings,
        script={
            "status_counts": [counts(pending=2), counts(retryable=2)],
            "pending_objects": [uris("a", "b")],
            "retryable_objects": [retryable_rows("a", "b")],
        },
    )
    report = pipeline(engine, settings, clock).run()
    assert report.retries == 1 and len(clock.sleeps) == 1
    assert any("no progress" in m for m in report.messages)


def test_retryable_rows_of_earlier_runs_are_retried_without_waiting(example_settings) -> None:
    settings = example_settings()
    clock = Clock()
    engine = existing(
        settings,
        script={
            "status_counts": [counts(objects=1, retryable=1), counts(objects=1, embedded=1)],
            "retryable_objects": [retryable_rows("old", attempts=4), []],
        },
    )
    report = pipeline(engine, settings, clock).run()
    assert sent(engine) == [["gs://b/old"]] and clock.sleeps == []
    assert engine.named("embed_batch")[0].param("prior_attempts")[0]["attempts"] == 4
    assert report.retries == 1


def test_non_retryable_rows_are_kept_and_reported(example_settings) -> None:
    settings = example_settings()
    engine = existing(
        settings,
        script={
            "status_counts": [counts(pending=2), counts(objects=2, embedded=1, permanent=1)],
            "pending_objects": [uris("a", "b")],
            "failure_summary": [[{"status": PERMANENT, "retryable": False, "result_rows": 1}]],
            "validate_run": [validation_row(result_rows=2, successful_rows=1)],
        },
    )
    report = pipeline(engine, settings).run()
    assert len(engine.named("embed_batch")) == 1
    assert [(f.status, f.retryable, f.rows) for f in report.failures] == [(PERMANENT, False, 1)]
    assert report.counts.failed_permanent == 1 and report.ok
    assert any("kept" in m for m in report.messages)
    assert engine.named("compact_results") == []


# --- IAM propagation and errors ----------------------------------------------------------------


def test_iam_propagation_on_the_first_read_of_the_object_table_is_waited_out(example_settings) -> None:
    settings = example_settings()
    clock = Clock()
    engine = existing(settings, script={"status_counts": [PROPAGATING, PROPAGATING, counts(objects=1, embedded=1)]})
    report = pipeline(engine, settings, clock).run()
    assert engine.sequence == ["status_counts"] * 3
    assert len(clock.sleeps) == 2 and clock.sleeps[0] < clock.sleeps[1]
    assert any("IAM" in m and "retrying" in m for m in report.messages)


def test_iam_propagation_on_the_embedding_statement(example_settings) -> None:
    settings = example_settings()
    clock = Clock()
    engine = existing(
        settings,
        script={
            "status_counts": [counts(pending=1), counts(embedded=1)],
            "pending_objects": [uris("a")],
            "embed_batch": [PROPAGATING, 1],
        },
    )
    report = pipeline(engine, settings, clock).run()
    assert len(engine.named("embed_batch")) == 2 and report.rows_written == 1 and len(clock.sleeps) == 1


def test_iam_wait_exhausted_names_the_grant(example_settings) -> None:
    settings = example_settings()
    clock = Clock()
    engine = existing(settings, script={"status_counts": [PROPAGATING]})
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


def test_a_failed_embedding_job_is_not_run_again(example_settings) -> None:
    settings = example_settings()
    engine = existing(
        settings,
        script={
            "status_counts": [counts(pending=1)],
            "pending_objects": [uris("a")],
            "embed_batch": [StatementError("Job exceeded rate limits"), 1],
        },
    )
    with pytest.raises(EmbedError, match="embed_batch failed"):
        pipeline(engine, settings).run()
    assert len(engine.named("embed_batch")) == 1


def test_validation_failure_makes_run_not_ok(example_settings) -> None:
    settings = example_settings()
    engine = existing(
        settings,
        script={
            "status_counts": [counts(pending=1), counts(embedded=1)],
            "pending_objects": [uris("a")],
            "validate_run": [
                validation_row(
                    result_rows=1,
                    successful_rows=1,
                    wrong_length_rows=1,
                    examples=[{"uri": "gs://b/a", "problem": "wrong length"}],
                )
            ],
        },
    )
    report = pipeline(engine, settings).run()
    assert not report.ok and report.validation.wrong_length_rows == 1
    assert report.validation.examples[0].uri == "gs://b/a"
    assert report.to_dict()["validation"]["ok"] is False


def test_bytes_billed_are_summed_over_the_run_with_job_ids(example_settings) -> None:
    settings = example_settings()
    engine = existing(
        settings,
        script={
            "status_counts": [QueryResult(rows=None, bytes_billed=20 << 20, job_id="j1")],
        },
    )
    report = pipeline(engine, settings).run()
    assert report.bytes_billed == 20 << 20 and report.job_ids == ["j1"]
    assert report.to_dict()["jobs"] == [
        {"name": "status_counts", "job_id": "j1", "bytes_billed": 20 << 20, "model_rows": 0}
    ]


# --- dry run ---------------------------------------------------------------------------------


def test_dry_run_executes_nothing_for_real(example_settings) -> None:
    settings = example_settings()
    engine = existing(settings)
    report = pipeline(engine, settings, prune_deleted=True).dry_run()
    assert engine.calls and all(c.dry_run for c in engine.calls)
    expected = [s.name for s in sql.run_statements(settings) if not s.creates == "model"]  # the model is there
    assert [c.name for c in engine.calls] == expected
    assert report.ok and all(c.bytes_billed for c in report.dry_run if c.skipped is None)
    assert report.bytes_billed == sum(c.bytes_billed or 0 for c in report.dry_run)


def test_dry_run_skips_statements_needing_missing_objects(example_settings) -> None:
    settings = example_settings()
    engine = engine_for(
        settings, script={"dry:create_model": [StatementError("Access Denied: bigquery.models.create")]}
    )
    report = pipeline(engine, settings).dry_run()
    assert [c.name for c in engine.calls] == ["create_results_table", "create_model"]
    assert not report.ok
    assert [c.name for c in report.dry_run if c.error] == ["create_model"]
    assert {c.name for c in report.dry_run if c.skipped} >= {"embed_batch", "status_counts", "validate_run"}


def test_objects_that_arrive_during_the_run_are_embedded_by_one_more_pass(example_settings) -> None:
    settings = example_settings()
    engine = existing(
        settings,
        script={
            "status_counts": [
                counts(objects=2, pending=2),
                counts(objects=3, embedded=2, pending=1),
                counts(objects=3, embedded=3),
            ],
            "pending_objects": [uris("a", "b"), uris("late")],
        },
    )
    report = pipeline(engine, settings).run()
    assert sent(engine) == [["gs://b/a", "gs://b/b"], ["gs://b/late"]]
    assert report.counts.embedded == 3 and report.counts.pending == 0
    assert any("arrived or changed during the run" in m for m in report.messages)


@pytest.mark.parametrize(
    ("endpoint", "checked"), [(None, "create_model"), ("multimodalembedding@000", "replace_model")]
)
def test_dry_run_checks_the_model_statement_the_run_would_issue(example_settings, endpoint, checked) -> None:
    settings = example_settings()
    engine = engine_for(settings, endpoint=endpoint, table=columns_of(expected_schema(settings)))
    report = pipeline(engine, settings).dry_run()
    models = [c.name for c in engine.calls if c.name in ("create_model", "replace_model")]
    assert models == [checked]
    assert [c.name for c in report.dry_run if c.skipped and c.name.endswith("_model")] == [
        other for other in ("create_model", "replace_model") if other != checked
    ]
    assert "prune_deleted" not in [c.name for c in report.dry_run]  # only with --prune-deleted


def test_a_batch_is_cut_before_its_uris_pass_the_request_size_limit() -> None:
    from embed.pipeline import batches

    uris = [f"gs://b/{i:04d}-" + "x" * 80 for i in range(10)]  # 100 bytes each with quoting
    assert [len(b) for b in batches(uris, 4)] == [4, 4, 2]
    cut = list(batches(uris, 4, max_bytes=350))
    assert [len(b) for b in cut] == [3, 3, 3, 1] and [u for b in cut for u in b] == uris
    assert list(batches(["gs://b/" + "y" * 500], 4, max_bytes=100)) == [["gs://b/" + "y" * 500]]  # never empty
