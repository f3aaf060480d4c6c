"""The embedded engine's model of BigQuery's on-demand billing, against figures computed by hand."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from embed.engines.base import QueryParameter, Statement
from embed.engines.local.engine import LocalEngine

MB = 2**20
DAY1 = dt.datetime(2026, 8, 1, 12, tzinfo=dt.timezone.utc)
DAY2 = DAY1 + dt.timedelta(days=1)


def run(engine: LocalEngine, text: str, *params: QueryParameter, dry_run: bool = False):
    return engine.execute(Statement("t", text, tuple(params)), dry_run=dry_run)


@pytest.fixture
def engine(tmp_path: Path) -> LocalEngine:
    """Tables of known sizes.

    ``p.d.big``: 2,000,000 rows of (i INT64 = 8 bytes, s STRING 'abcd' = 2 + 4 bytes, b BOOL = 1 byte).
    ``p.d.shapes``: one row with an ARRAY<FLOAT64> of 3, a STRUCT of two STRINGs and a NULL STRING.
    ``p.d.days``: partitioned by day; 1,000,000 rows (INT64 and TIMESTAMP: 16 bytes) on each of two days.
    """
    engine = LocalEngine(tmp_path / "billing.duckdb", default_project="p")
    run(engine, "CREATE TABLE `p.d.big` (i INT64, s STRING, b BOOL)")
    engine.con.execute('INSERT INTO "p__d"."big" SELECT range, \'abcd\', true FROM range(2000000)').fetchall()
    run(engine, "CREATE TABLE `p.d.shapes` (v ARRAY<FLOAT64>, kv STRUCT<name STRING, value STRING>, n STRING)")
    engine.con.execute(
        "INSERT INTO \"p__d\".\"shapes\" VALUES ([1.0, 2.0, 3.0], {'name': 'ab', 'value': 'cde'}, NULL)"
    ).fetchall()
    run(engine, "CREATE TABLE `p.d.days` (i INT64, at TIMESTAMP) PARTITION BY TIMESTAMP_TRUNC(at, DAY)")
    for day in (DAY1, DAY2):
        engine.con.execute('INSERT INTO "p__d"."days" SELECT range, ? FROM range(1000000)', [day]).fetchall()
    yield engine
    engine.close()


def test_ddl_bills_nothing(engine: LocalEngine) -> None:
    assert run(engine, "CREATE TABLE IF NOT EXISTS `p.d.other` (x INT64)").bytes_billed == 0


def test_select_bills_the_referenced_columns_only(engine: LocalEngine) -> None:
    # i: 2,000,000 x 8 = 16,000,000 bytes -> 15.26 MB, rounded up to 16 MB.
    assert run(engine, "SELECT i FROM `p.d.big`").bytes_billed == 16 * MB
    # i and s: 2,000,000 x (8 + 6) = 28,000,000 bytes -> 26.7 MB -> 27 MB; b is not read.
    assert run(engine, "SELECT i FROM `p.d.big` WHERE s = 'x'").bytes_billed == 27 * MB
    # every column: 2,000,000 x 15 = 30,000,000 bytes -> 28.6 MB -> 29 MB.
    assert run(engine, "SELECT * FROM `p.d.big`").bytes_billed == 29 * MB
    # A LIMIT does not lower the bytes read.
    assert run(engine, "SELECT i FROM `p.d.big` LIMIT 1").bytes_billed == 16 * MB


def test_each_table_referenced_bills_at_least_10_mb(engine: LocalEngine) -> None:
    shapes = run(engine, "SELECT v FROM `p.d.shapes`")
    assert shapes.bytes_processed == 3 * 8 and shapes.bytes_billed == 10 * MB
    joined = run(engine, "SELECT s.v FROM `p.d.shapes` AS s JOIN `p.d.days` AS d ON d.i = 1 WHERE d.at IS NULL")
    # shapes: 24 bytes -> 10 MB; days: i and at, 2,000,000 x 16 = 32,000,000 bytes -> 30.5 MB -> 31 MB.
    assert joined.bytes_billed == 10 * MB + 31 * MB


def test_logical_sizes_of_arrays_structs_and_nulls(engine: LocalEngine) -> None:
    # ARRAY<FLOAT64> of 3: 24; STRUCT<name 'ab', value 'cde'>: (2 + 2) + (2 + 3) = 9; NULL STRING: 0.
    assert run(engine, "SELECT v, kv, n FROM `p.d.shapes`").bytes_processed == 24 + 9 + 0


def test_a_filter_on_the_partitioning_column_reads_only_those_days(engine: LocalEngine) -> None:
    since = QueryParameter("since", "TIMESTAMP", DAY2)
    one_day = run(engine, "SELECT i FROM `p.d.days` WHERE at >= @since", since)
    # One partition of 1,000,000 rows: i and at, 16,000,000 bytes -> 16 MB.
    assert one_day.bytes_processed == 16_000_000 and one_day.bytes_billed == 16 * MB
    both = run(engine, "SELECT i FROM `p.d.days` WHERE i >= 0")
    assert both.bytes_processed == 2_000_000 * 8  # no filter on `at`: every day, but only column i
    assert one_day.rows.num_rows == 1_000_000


def test_an_equality_filter_on_the_first_clustering_column_reads_only_its_rows(engine: LocalEngine) -> None:
    run(engine, "CREATE TABLE `p.d.runs` (run_id STRING, v ARRAY<FLOAT64>) CLUSTER BY run_id")
    for run_id in ("a", "b"):
        engine.con.execute(
            'INSERT INTO "p__d"."runs" SELECT ?, list_transform(range(1000), lambda x: 0.5) FROM range(1000)', [run_id]
        ).fetchall()
    one = run(engine, "SELECT v FROM `p.d.runs` WHERE run_id = @r", QueryParameter("r", "STRING", "b"))
    # 1,000 rows of run b: run_id (2 + 1 bytes) and 1,000 FLOAT64 (8,000 bytes).
    assert one.bytes_processed == 1000 * (3 + 8000)
    assert run(engine, "SELECT v FROM `p.d.runs` WHERE v IS NOT NULL").bytes_processed == 2000 * 8000


def test_insert_bills_what_it_reads(engine: LocalEngine) -> None:
    run(engine, "CREATE TABLE `p.d.copy` (i INT64)")
    done = run(engine, "INSERT INTO `p.d.copy` (i) SELECT i FROM `p.d.big`")
    assert done.affected_rows == 2_000_000 and done.bytes_billed == 16 * MB
    # The target's 2,000,000 rows are not billed by a second INSERT: still only q.
    assert (
        run(engine, "INSERT INTO `p.d.copy` (i) SELECT i FROM `p.d.shapes` AS s, UNNEST([1]) AS i").bytes_billed
        == 10 * MB
    )


def test_delete_bills_what_it_reads_plus_the_whole_table(engine: LocalEngine) -> None:
    done = run(engine, "DELETE FROM `p.d.big` WHERE i < 10")
    # q: column i, 16,000,000 bytes -> 16 MB; t: the table before, every column, 30,000,000 bytes -> 29 MB.
    assert done.affected_rows == 10 and done.bytes_billed == 16 * MB + 29 * MB


def test_delete_on_a_partitioned_table_bills_the_partitions_it_modifies(engine: LocalEngine) -> None:
    done = run(
        engine, "DELETE FROM `p.d.days` WHERE at >= @since AND i < 5", QueryParameter("since", "TIMESTAMP", DAY2)
    )
    # q: i and at over the one day the filter keeps: 16,000,000 -> 16 MB; t: that day only, 16 MB.
    assert done.affected_rows == 5 and done.bytes_billed == 16 * MB + 16 * MB


def test_merge_bills_the_target_only_when_it_updates_or_deletes(engine: LocalEngine) -> None:
    run(engine, "CREATE TABLE `p.d.small` (i INT64, s STRING)")
    engine.con.execute('INSERT INTO "p__d"."small" SELECT range, \'x\' FROM range(10)').fetchall()
    insert_only = run(
        engine,
        "MERGE `p.d.big` AS t USING `p.d.small` AS s ON t.i = s.i + 5000000"
        " WHEN NOT MATCHED THEN INSERT (i, s, b) VALUES (s.i, s.s, TRUE)",
    )
    # q: small (i, s: 10 x 11 bytes) -> 10 MB; big.i referenced by ON: 16 MB. No t.
    assert insert_only.affected_rows == 10 and insert_only.bytes_billed == 10 * MB + 16 * MB
    updating = run(
        engine,
        "MERGE `p.d.big` AS t USING `p.d.small` AS s ON t.i = s.i WHEN MATCHED THEN UPDATE SET b = FALSE",
    )
    # big now holds 2,000,010 rows: i 16,000,080 bytes -> 16 MB (b is written, not read); t: 30,000,150 -> 29 MB.
    assert updating.affected_rows == 20 and updating.bytes_billed == 10 * MB + 16 * MB + 29 * MB


def test_a_dry_run_prices_without_running(engine: LocalEngine) -> None:
    checked = run(engine, "DELETE FROM `p.d.big` WHERE i < 10", dry_run=True)
    assert checked.bytes_billed == 16 * MB + 29 * MB and checked.affected_rows is None
    assert engine.con.execute('SELECT count(*) FROM "p__d"."big"').fetchall() == [(2_000_000,)]
