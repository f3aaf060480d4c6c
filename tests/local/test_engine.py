"""The embedded engine end to end, offline, with the real local model on real photos from scikit-image."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from embed import sql
from embed.engines.base import Statement, StatementError
from embed.engines.local.engine import LocalEngine
from embed.engines.local.models import DEFAULT_ENDPOINT
from embed.engines.local.models.faults import FaultInjector
from embed.engines.local.objects import generation_of, uri_of
from embed.pipeline import validate_results
from embed.settings import load_settings
from embed.statuses import RETRYABLE_PREFIX
from tests.local.sample import MORE_PHOTOS, PHOTOS, LocalRun, copy_photo, local_settings, sample_set

GOLDEN = Path(__file__).resolve().parents[1] / "python" / "golden"
EXAMPLE_OUTPUTS = Path(__file__).resolve().parents[2] / "terraform" / "outputs.example.json"
BAD = {  # file -> (sniffed content type, a word its status must hold)
    "bad/empty.png": ("application/octet-stream", "empty"),
    "bad/truncated.png": ("image/png", "truncated"),
    "bad/notes.jpg": ("text/plain", "not an image"),
    "bad/photo.webp": ("image/webp", "webp"),
}


@pytest.fixture(scope="module")
def first(tmp_path_factory) -> tuple[LocalRun, object, list[str]]:
    """One full run over the sample set: (the run, its report, the uris sent to the model)."""
    base = tmp_path_factory.mktemp("full")
    local = LocalRun(sample_set(base / "images"), base / "embed.duckdb")
    report, sent = local.sent_during()
    return local, report, sent


def uri(local: LocalRun, name: str) -> str:
    return (local.folder / name).absolute().as_uri()


def test_full_run_embeds_every_photo_and_keeps_every_bad_file(first) -> None:
    local, report, sent = first
    assert report.ok, report.validation and report.validation.problems()
    assert report.model_action == "created"
    assert sorted(sent) == sorted(uri(local, n) for n in (*PHOTOS, *BAD))
    assert report.counts.to_dict() == {
        "objects": len(PHOTOS) + len(BAD),
        "embedded": len(PHOTOS),
        "failed_retryable": 0,
        "failed_permanent": len(BAD),
        "pending": 0,
        "deleted": 0,
        "superseded_rows": 0,
        "other_space_rows": 0,
    }
    results = local.results()
    for name in PHOTOS:
        row = results[uri(local, name)]
        assert row["ml_generate_embedding_status"] == ""
        assert len(row["ml_generate_embedding_result"]) == 1280
        assert row["attempts"] == 1 and row["content_type"].startswith("image/")
        assert (row["embedding_endpoint"], row["embedding_dimension"]) == (DEFAULT_ENDPOINT, 1280)
        assert row["run_id"] == report.run_id
    assert report.images_per_second is not None and report.images_per_second > 0
    assert report.validation.scope == f"the {len(PHOTOS) + len(BAD)} row(s) this run wrote"


def test_every_bad_input_kind_gets_its_status_and_is_kept(first) -> None:
    local, _, _ = first
    results = local.results()
    for name, (content_type, word) in BAD.items():
        row = results[uri(local, name)]
        status = row["ml_generate_embedding_status"]
        assert content_type == row["content_type"], name
        assert status and not status.startswith(RETRYABLE_PREFIX), (name, status)
        assert word in status.lower(), (name, status)
        assert row["ml_generate_embedding_result"] == []
    assert len({results[uri(local, n)]["ml_generate_embedding_status"] for n in BAD}) == len(BAD)


def test_object_table_has_bigquerys_columns(first) -> None:
    local, _, _ = first
    columns = {c.name: (c.type, c.mode) for c in local.engine.schema(local.settings.object_table)}
    assert columns == {
        "uri": ("STRING", "NULLABLE"),
        "generation": ("INT64", "NULLABLE"),
        "content_type": ("STRING", "NULLABLE"),
        "size": ("INT64", "NULLABLE"),
        "md5_hash": ("STRING", "NULLABLE"),
        "updated": ("TIMESTAMP", "NULLABLE"),
        "metadata": ("RECORD", "REPEATED"),
    }
    import base64
    import hashlib

    photo = local.folder / "astronaut.png"
    row = local.results()[uri(local, "astronaut.png")]
    assert row["md5_hash"] == base64.b64encode(hashlib.md5(photo.read_bytes()).digest()).decode()
    assert row["generation"] == generation_of(photo.stat()) and row["size"] == photo.stat().st_size


def test_schema_validation_passes_on_the_local_results(first) -> None:
    local, _, _ = first
    report = validate_results(local.engine, local.settings)
    assert report.ok and report.schema_ok, report.problems()
    assert report.dimension == 1280 and report.successful_rows == len(PHOTOS)
    assert report.failed_rows == len(BAD) and not report.extra_columns


def test_rerun_sends_no_row_to_the_model(first) -> None:
    local, _, _ = first
    report, sent = local.sent_during()
    assert sent == []
    assert report.model_action == "kept" and report.rows_written == 0 and report.ok
    assert any("0 embedded" in m for m in report.messages)
    assert [s.name for s in report.statements] == ["status_counts"]


def test_similar_ranks_the_two_views_of_a_scene_first(first) -> None:
    local, _, _ = first
    left, right = uri(local, "motorcycle_left.png"), uri(local, "motorcycle_right.png")
    for query, other in ((left, right), (right, left)):
        rows = local.engine.execute(sql.vector_search(local.settings, query, 3)).records()
        assert [r["uri"] for r in rows][0] == other
        assert len(rows) == 3 and query not in [r["uri"] for r in rows]
        distances = [r["distance"] for r in rows]
        assert distances == sorted(distances) and distances[0] < distances[1]


def test_similar_for_an_image_without_embedding_returns_nothing(first) -> None:
    local, _, _ = first
    assert local.engine.execute(sql.vector_search(local.settings, uri(local, "bad/notes.jpg"), 3)).records() == []


def test_adding_three_images_sends_exactly_three(tmp_path) -> None:
    local = LocalRun(sample_set(tmp_path / "images", PHOTOS[:2], bad=False), tmp_path / "embed.duckdb")
    _, sent = local.sent_during()
    assert len(sent) == 2
    added = [copy_photo(name, tmp_path / "images" / "new" / name) for name in MORE_PHOTOS]
    report, sent = local.sent_during()
    assert sorted(sent) == sorted(p.absolute().as_uri() for p in added)
    assert report.rows_written == 3 and report.counts.embedded == 5 and report.ok


def test_a_changed_file_is_embedded_again(tmp_path) -> None:
    local = LocalRun(sample_set(tmp_path / "images", PHOTOS[:2], bad=False), tmp_path / "embed.duckdb")
    local.run()
    target = tmp_path / "images" / PHOTOS[0]
    before = local.results()[target.as_uri()]
    copy_photo("coffee.png", target)  # same name, other picture
    stat = target.stat()
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    report, sent = local.sent_during()
    assert sent == [target.as_uri()]
    after = local.results()[target.as_uri()]
    assert after["generation"] == generation_of(target.stat()) and after["md5_hash"] != before["md5_hash"]
    assert after["ml_generate_embedding_result"] != before["ml_generate_embedding_result"]
    assert after["attempts"] == 1 and report.ok and report.counts.embedded == 2


def _seed_with_faults(folder: Path, fraction: float, at_least: int) -> int:
    """A seed whose first attempt fails at least ``at_least`` of the files under ``folder``.

    Fault decisions depend on each file's uri, which holds the test's temporary path; picking
    the seed with the injector's own rule keeps the test from depending on where it runs.
    """
    uris = [uri_of(p) for p in sorted(folder.rglob("*")) if p.is_file()]
    return next(s for s in range(1000) if sum(FaultInjector(fraction, s).fails(u, 0) for u in uris) >= at_least)


def test_injected_retryable_faults_are_all_retried_to_success(tmp_path, monkeypatch) -> None:
    photos = (*PHOTOS, *MORE_PHOTOS)
    folder = sample_set(tmp_path / "images", photos, bad=False)
    monkeypatch.setenv("EMBED_LOCAL_FAULTS", f"retryable:0.3,seed:{_seed_with_faults(folder, 0.3, 2)}")
    settings = local_settings(max_retries=8)
    local = LocalRun(folder, tmp_path / "embed.duckdb", settings)
    report, sent = local.sent_during(retry_delay=0.0)
    assert 1 <= report.retries <= settings.max_retries
    assert report.retried_objects == len(sent) - len(photos) > 0  # every row sent again was a retry
    # The pipeline stops a run's retries at a round without progress (a lone row failing again has odds
    # 0.3), keeping the row for the next run, which retries it: a bounded number of runs ends the faults.
    runs = 1
    while report.counts.failed_retryable and runs < 10:
        report, again = local.sent_during(retry_delay=0.0)
        assert report.counts.pending == 0 and 1 <= report.retries <= settings.max_retries
        assert set(again) <= set(sent)
        runs += 1
    assert report.counts.failed_retryable == 0 and report.counts.embedded == len(photos)
    assert report.failures == () and report.ok
    rows = local.results()  # one row per object: the failed attempts were compacted away
    attempts = [row["attempts"] for row in rows.values()]
    assert min(attempts) >= 1 and max(attempts) > 1 and sum(attempts) == len(local.engine.stats.sent)


# --- the Python layer's golden statements, unchanged -------------------------------------


@pytest.fixture(scope="module")
def golden_engine(tmp_path_factory) -> tuple[LocalEngine, list[str]]:
    """A db for the example settings (my-project.bqml_tutorial.*) over two photos, with a local model created."""
    base = tmp_path_factory.mktemp("golden")
    settings = load_settings({"endpoint": "local/efficientnet-lite0"}, outputs_file=EXAMPLE_OUTPUTS, environ={})
    folder = sample_set(base / "images", PHOTOS[:2], bad=False)
    engine = LocalEngine(
        base / "embed.duckdb", [folder], object_table=settings.object_table, default_project=settings.project_id
    )
    engine.execute(sql.create_model(settings))
    return engine, [uri_of(folder / p) for p in PHOTOS[:2]]


# Goldens the engine refuses on purpose, and why.
REFUSED = {
    "replace_model.sql": "multimodalembedding@001",  # local vectors are never presented as Vertex AI's
    "embed_batch.video.sql": "images only",
    "embed_batch.json_512.sql": "output_dimensionality 512",
    "text_search.sql": "uri column",  # the local model embeds images, not text
}
# In the order a run issues them; the JSON variant's table is another table (tested below).
ORDER = [
    "create_results_table.sql",
    "embedding_spaces.sql",
    "create_model.sql",
    "replace_model.sql",
    "pending_objects.sql",
    "embed_batch.sql",
    "embed_batch.video.sql",
    "retryable_objects.sql",
    "status_counts.sql",
    "compact_results.sql",
    "prune_deleted.sql",
    "failure_summary.sql",
    "failed_objects.sql",
    "validate_run.sql",
    "validate_results.sql",
    "vector_search.sql",
    "text_search.sql",
]
JSON_ORDER = ["create_results_table.json_512.sql", "embed_batch.json_512.sql", "validate_results.json_512.sql"]


def golden_statement(filename: str, **values) -> Statement:
    """The golden file's text as the statement the kit renders for it, with the local model's space."""
    from tests.python.test_sql import VARIANTS, golden_cases

    [(variant, name)] = [(v, n) for v, n, f in golden_cases() if f == filename]
    settings = load_settings(VARIANTS[variant], outputs_file=EXAMPLE_OUTPUTS, environ={})
    [rendered] = [s for s in sql.every_statement(settings) if s.name == name]
    text = (GOLDEN / filename).read_text(encoding="utf-8").rstrip("\n")
    assert text == rendered.sql
    space = {"endpoint": "local/efficientnet-lite0", "dimension": 1280}
    declared = {p.name for p in rendered.params}
    return rendered.with_params(**{k: v for k, v in {**space, **values}.items() if k in declared})


def test_every_golden_statement_is_covered() -> None:
    assert sorted(p.name for p in GOLDEN.glob("*.sql")) == sorted(ORDER + JSON_ORDER)


def test_golden_statements_execute_unchanged(golden_engine) -> None:
    """Every statement the kit issues passes the engine's BigQuery rules and runs, text unchanged."""
    engine, photos = golden_engine
    since = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
    values = {"uris": photos, "run_id": "golden", "since": since, "image_uri": photos[0]}
    done = {}
    for name in ORDER:
        statement = golden_statement(name, **values)
        if name in REFUSED:
            with pytest.raises(StatementError, match=REFUSED[name]):
                engine.execute(statement)
            continue
        engine.execute(statement, dry_run=True)
        done[name] = engine.execute(statement)
    assert sorted(r["uri"] for r in done["pending_objects.sql"].records()) == sorted(photos)
    assert done["embed_batch.sql"].affected_rows == 2 and done["embed_batch.sql"].model_rows == 2
    assert done["retryable_objects.sql"].records() == []
    assert done["failed_objects.sql"].records() == []  # both photos embedded
    assert done["status_counts.sql"].records() == [
        {
            "objects": 2,
            "embedded": 2,
            "failed_retryable": 0,
            "failed_permanent": 0,
            "pending": 0,
            "deleted": 0,
            "superseded_rows": 0,
            "other_space_rows": 0,
        }
    ]
    for name in ("validate_run.sql", "validate_results.sql"):
        row = done[name].records()[0]
        assert (row["result_rows"], row["successful_rows"], row["duplicate_rows"]) == (2, 2, 0), name
    [neighbour] = done["vector_search.sql"].records()
    assert neighbour["uri"] == photos[1]


def test_golden_json_variant_executes_unchanged(tmp_path) -> None:
    settings = load_settings({"endpoint": "local/efficientnet-lite0"}, outputs_file=EXAMPLE_OUTPUTS, environ={})
    engine = LocalEngine(tmp_path / "json.duckdb", default_project=settings.project_id)
    engine.execute(golden_statement("create_results_table.json_512.sql"))
    row = engine.execute(golden_statement("validate_results.json_512.sql")).records()[0]
    assert row["result_rows"] == 0
    engine.execute(sql.create_model(settings))


def test_dry_run_does_not_call_the_model(tmp_path) -> None:
    local = LocalRun(sample_set(tmp_path / "images", PHOTOS[:1], bad=False), tmp_path / "embed.duckdb")
    local.engine.execute(sql.create_model(local.settings))
    local.engine.execute(sql.create_results_table(local.settings))
    batch = sql.embed_batch(local.settings).with_params(uris=[uri_of(local.folder / PHOTOS[0])])
    checked = local.engine.execute(batch, dry_run=True)
    assert checked.affected_rows is None and checked.bytes_billed == 10 * 2**20  # the object table's minimum
    assert local.model.sent == [] and local.results() == {}


def test_image_folders_are_never_registered_over_a_regular_table(tmp_path) -> None:
    import duckdb

    from embed.errors import EmbedError
    from embed.identifiers import TableRef

    db = tmp_path / "embed.duckdb"
    con = duckdb.connect(str(db))
    con.execute('CREATE SCHEMA "local__embed"')
    con.execute('CREATE TABLE "local__embed".image_embeddings (uri VARCHAR, attempts BIGINT)')
    con.execute("INSERT INTO \"local__embed\".image_embeddings VALUES ('file:///kept.png', 1)")
    con.close()
    (tmp_path / "images").mkdir()
    with pytest.raises(EmbedError, match="not an object table"):
        LocalEngine(db, [tmp_path / "images"], object_table=TableRef("local", "embed", "image_embeddings"))
    con = duckdb.connect(str(db))
    assert con.execute('SELECT uri FROM "local__embed".image_embeddings').fetchall() == [("file:///kept.png",)]
    con.close()
