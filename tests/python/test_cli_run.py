"""`embed run`, `status` and `validate` through the CLI's entry point, with a scripted engine."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import pytest

from embed import cli, engines, sql
from embed.engines.base import StatementError
from embed.schema import expected_schema
from embed.settings import load_settings
from tests.python.scripted import PERMANENT, RETRYABLE, ScriptedEngine, columns_of, counts, uris, validation_row
from tests.support.outputs import EXAMPLE_OUTPUTS

SETTINGS = load_settings(outputs_file=EXAMPLE_OUTPUTS, environ={})


def good_engine(settings=SETTINGS, **script) -> ScriptedEngine:
    base = {
        "create_model": [None],
        "create_results_table": [None],
        "status_counts": [counts(objects=2, pending=2), counts(objects=2, embedded=1, permanent=1)],
        "pending_objects": [uris("a.jpg", "b.jpg")],
        "retryable_objects": [[]],
        "failure_summary": [[{"status": PERMANENT, "retryable": False, "result_rows": 1}]],
        "validate_run": [validation_row(result_rows=2, successful_rows=1)],
        "validate_results": [validation_row(result_rows=2, successful_rows=1)],
    }
    base.update(script)
    return ScriptedEngine(settings, script=base)


@pytest.fixture
def cli_run(monkeypatch, capsys):
    """Run the CLI's main() with ARGS and the given engine; return (exit code, stdout, stderr, factory calls)."""
    monkeypatch.delenv("EMBED_BATCH_SIZE", raising=False)

    real = engines.open_engine

    def run(engine, *args: str):
        made = []

        def factory(name, settings, run_id, **options):
            made.append((name, settings, run_id))
            if name != "bigquery":
                return real(name, settings, run_id, **options)
            return engine

        monkeypatch.setattr(engines, "open_engine", factory)
        monkeypatch.setattr(sys, "argv", ["embed", *args])
        with pytest.raises(SystemExit) as info:
            cli.main()
        out, err = capsys.readouterr()
        return info.value.code, out, err, made

    return run


def test_run_json_is_pure_and_exit_zero(cli_run) -> None:
    engine = good_engine()
    code, out, err, made = cli_run(engine, "run", "--outputs", str(EXAMPLE_OUTPUTS), "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["ok"] is True and data["model"] == "created" and data["rows_written"] == 2
    assert data["failures"] == [{"status": PERMANENT, "retryable": False, "rows": 1}]
    assert data["validation"]["ok"] is True
    assert [c.param("uris") for c in engine.named("embed_batch")] == [["gs://b/a.jpg", "gs://b/b.jpg"]]
    assert made[0][0] == "bigquery" and made[0][1] == SETTINGS and made[0][2] == data["run_id"]
    assert engine.named("embed_batch")[0].param("run_id") == data["run_id"]
    assert [j["name"] for j in data["jobs"]][:2] == ["create_results_table", "status_counts"]
    assert data["billing"] == "reported by BigQuery" and data["bytes_billed"] > 0


def test_run_prints_summary_tables(cli_run) -> None:
    code, out, err, _ = cli_run(good_engine(), "run", "--outputs", str(EXAMPLE_OUTPUTS))
    assert code == 0, err
    assert "Run " in out and "rows written" in out and "Validation of" in out and "bytes billed" in out
    assert "created model" in err and err.startswith("run ")


def test_run_exits_one_when_validation_fails(cli_run) -> None:
    engine = good_engine(validate_run=[validation_row(result_rows=1, successful_rows=1, wrong_length_rows=1)])
    code, out, err, _ = cli_run(engine, "run", "--outputs", str(EXAMPLE_OUTPUTS), "--json")
    assert code == 1
    assert json.loads(out)["validation"]["wrong_length_rows"] == 1


def test_run_statement_error_exits_two_without_traceback(cli_run) -> None:
    engine = good_engine(create_model=[StatementError("Not found: Connection my-project.us.embed_conn")])
    code, out, err, _ = cli_run(engine, "run", "--outputs", str(EXAMPLE_OUTPUTS), "--json")
    assert code == 2 and out == ""
    assert "Not found: Connection" in err and "Traceback" not in err


def test_run_refuses_unknown_engine_before_reading_settings(cli_run, tmp_path) -> None:
    # --outputs names a file that does not exist: reading the settings would fail first if they were read.
    missing = str(tmp_path / "missing.json")
    code, out, err, made = cli_run(good_engine(), "run", "--outputs", missing, "--engine", "locl")
    assert code == 2 and out == "" and made == []
    assert "'locl' is not one of 'bigquery', 'local'" in err and "--engine" in err
    assert "missing.json" not in err and "Traceback" not in err


def test_local_run_needs_images(cli_run, tmp_path) -> None:
    code, out, err, _ = cli_run(good_engine(), "run", "--engine", "local", "--db", str(tmp_path / "x.duckdb"))
    assert code == 2 and "--images DIR" in err and out == ""


def test_run_dry_run_runs_nothing(cli_run) -> None:
    engine = good_engine()
    code, out, err, _ = cli_run(engine, "run", "--outputs", str(EXAMPLE_OUTPUTS), "--dry-run", "--json")
    assert code == 0, err
    assert engine.calls and all(c.dry_run for c in engine.calls)
    names = [c["name"] for c in json.loads(out)["dry_run"]]
    assert names == [s.name for s in sql.run_statements(SETTINGS, pruning=False)]


def test_run_iam_wait_flag_bounds_the_wait(cli_run) -> None:
    propagating = StatementError("does not have the permission to access", propagating=True)
    engine = good_engine(create_model=[propagating])
    code, out, err, _ = cli_run(engine, "run", "--outputs", str(EXAMPLE_OUTPUTS), "--iam-wait", "0", "--json")
    assert code == 2 and out == ""
    assert "after waiting 0s for IAM" in err and "roles/aiplatform.user" in err
    assert len(engine.named("create_model")) == 1


def test_status_json(cli_run) -> None:
    engine = good_engine(status_counts=[counts(objects=5, embedded=3, retryable=1, pending=1)])
    engine.table = columns_of(expected_schema(SETTINGS))
    code, out, err, _ = cli_run(engine, "status", "--outputs", str(EXAMPLE_OUTPUTS), "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["counts"] == {
        "objects": 5,
        "embedded": 3,
        "failed_retryable": 1,
        "failed_permanent": 0,
        "pending": 1,
        "deleted": 0,
        "superseded_rows": 0,
        "other_space_rows": 0,
    }
    assert [c.statement for c in engine.named("status_counts")] == [sql.status_counts(SETTINGS)]


def test_status_without_results_table(cli_run) -> None:
    code, out, err, _ = cli_run(good_engine(), "status", "--outputs", str(EXAMPLE_OUTPUTS), "--json")
    assert code == 0 and json.loads(out)["results_table_exists"] is False


def test_validate_ok_and_broken(cli_run) -> None:
    engine = good_engine()
    engine.table = columns_of(expected_schema(SETTINGS))
    code, out, err, _ = cli_run(engine, "validate", "--outputs", str(EXAMPLE_OUTPUTS), "--json")
    assert code == 0, err
    assert json.loads(out)["ok"] is True
    assert [c.statement for c in engine.named("validate_results")] == [sql.validate_results(SETTINGS)]
    engine.table = tuple(c for c in engine.table if c.name != "attempts")
    code, out, err, _ = cli_run(engine, "validate", "--outputs", str(EXAMPLE_OUTPUTS), "--json")
    assert code == 1 and json.loads(out)["missing_columns"] == ["attempts"]
    code, out, err, _ = cli_run(engine, "validate", "--outputs", str(EXAMPLE_OUTPUTS))
    assert code == 1 and "missing column(s): attempts" in out


def test_status_and_run_point_to_the_failures_command(cli_run) -> None:
    outputs = str(EXAMPLE_OUTPUTS)
    code, out, err, _ = cli_run(good_engine(), "run", "--outputs", outputs)
    assert code == 0, err
    assert f"1 object(s) failed: `python -m embed failures --outputs {outputs}` lists each" in err
    engine = good_engine(status_counts=[counts(objects=5, embedded=2, retryable=1, permanent=2)])
    engine.table = columns_of(expected_schema(SETTINGS))
    code, out, err, _ = cli_run(engine, "status", "--outputs", outputs)
    assert code == 0, err
    assert f"3 object(s) failed: `python -m embed failures --outputs {outputs}` lists each" in out
    engine = good_engine(status_counts=[counts(objects=5, embedded=5)])
    engine.table = columns_of(expected_schema(SETTINGS))
    code, out, err, _ = cli_run(engine, "status", "--outputs", outputs)
    assert code == 0 and "embed failures" not in out + err


def test_the_failures_hint_keeps_the_flags_that_chose_the_table(cli_run, tmp_path: Path) -> None:
    """`failures` run as the hint says reads the same results table: overrides and odd paths survive the copy."""
    outputs = tmp_path / "saved outputs.json"  # a path the shell must see quoted
    outputs.write_bytes(EXAMPLE_OUTPUTS.read_bytes())
    table = "my-project.bqml_tutorial.other_embeddings"
    engine = good_engine(load_settings({"results_table": table}, outputs_file=EXAMPLE_OUTPUTS, environ={}))
    code, out, err, _ = cli_run(engine, "run", "--outputs", str(outputs), "--results-table", table, "--batch-size", "7")
    assert code == 0, err
    assert f"`python -m embed failures --outputs '{outputs}' --results-table {table}` lists each" in err, err


FAILED_ROWS = [
    {
        "uri": "gs://b/a.jpg",
        "status": RETRYABLE,
        "retryable": True,
        "attempts": 4,
        "last_attempt": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
        "failed_total": 3,
    },
    {
        "uri": "gs://b/b.jpg",
        "status": PERMANENT,
        "retryable": False,
        "attempts": 1,
        "last_attempt": dt.datetime(2026, 1, 1, 0, 0, 0, tzinfo=dt.timezone.utc),
        "failed_total": 3,
    },
]


def test_failures_json_lists_uri_status_attempts_and_last_attempt(cli_run) -> None:
    engine = good_engine(failed_objects=[FAILED_ROWS])
    engine.table = columns_of(expected_schema(SETTINGS))
    code, out, err, _ = cli_run(engine, "failures", "--outputs", str(EXAMPLE_OUTPUTS), "--limit", "2", "--json")
    assert code == 0, err
    assert json.loads(out) == {
        "total": 3,
        "shown": 2,
        "limit": 2,
        "failures": [
            {
                "uri": "gs://b/a.jpg",
                "status": RETRYABLE,
                "retryable": True,
                "attempts": 4,
                "last_attempt": "2026-01-02T03:04:05+00:00",
            },
            {
                "uri": "gs://b/b.jpg",
                "status": PERMANENT,
                "retryable": False,
                "attempts": 1,
                "last_attempt": "2026-01-01T00:00:00+00:00",
            },
        ],
    }
    (call,) = engine.named("failed_objects")
    assert call.param("limit") == 2 and call.statement.sql == sql.failed_objects(SETTINGS, 2).sql


def test_failures_table(cli_run) -> None:
    engine = good_engine(failed_objects=[FAILED_ROWS])
    engine.table = columns_of(expected_schema(SETTINGS))
    code, out, err, _ = cli_run(engine, "failures", "--outputs", str(EXAMPLE_OUTPUTS), "--limit", "2")
    assert code == 0, err
    assert "Failed objects: 3; the 2 most recent (--limit 2)" in out
    assert "gs://b/a.jpg" in out and "2026-01-02 03:04:05" in out and "RESOURCE_EXHAUSTED" in out


def test_failures_refuses_a_limit_below_one_and_a_missing_table(cli_run) -> None:
    code, out, err, made = cli_run(good_engine(), "failures", "--outputs", str(EXAMPLE_OUTPUTS), "--limit", "0")
    assert code == 2 and "--limit" in err and made == []
    code, out, err, _ = cli_run(good_engine(), "failures", "--outputs", str(EXAMPLE_OUTPUTS))
    assert code == 2 and "does not exist yet" in err and "Traceback" not in err
