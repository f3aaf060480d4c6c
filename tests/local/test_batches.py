"""run_batches: every worker decodes and runs the model on its own batches, all at once, in order."""

from __future__ import annotations

import threading

import pytest

np = pytest.importorskip("numpy")

from embed.engines.local.models.batches import Failed, run_batches  # noqa: E402


def prepare(item: int) -> np.ndarray | Failed:
    return Failed(f"bad {item}") if item % 5 == 3 else np.full((2,), item, dtype=np.int64)


def test_each_item_gets_its_own_row_or_its_failure_in_order() -> None:
    calls: list[list[int]] = []

    def forward(batch: np.ndarray) -> np.ndarray:
        calls.append([int(row[0]) for row in batch])
        return batch * 10

    results = run_batches(list(range(23)), prepare, forward, batch_size=4, workers=2)
    for item, result in enumerate(results):
        if item % 5 == 3:
            assert isinstance(result, Failed) and result.status == f"bad {item}"
        else:
            assert list(result) == [item * 10, item * 10]
    assert all(len(call) <= 4 for call in calls)
    assert sorted(i for call in calls for i in call) == [i for i in range(23) if i % 5 != 3]  # each row once


def test_workers_run_the_model_at_the_same_time() -> None:
    both = threading.Barrier(2, timeout=10)
    first_call: set[int] = set()

    def forward(batch: np.ndarray) -> np.ndarray:
        if threading.get_ident() not in first_call:
            first_call.add(threading.get_ident())
            both.wait()  # times out (BrokenBarrierError) unless the other worker is in forward too
        return batch

    run_batches(list(range(16)), prepare, forward, batch_size=4, workers=2)
    assert len(first_call) == 2


def test_a_small_call_still_uses_every_worker() -> None:
    sizes: list[int] = []
    threads: set[int] = set()
    lock = threading.Lock()

    def forward(batch: np.ndarray) -> np.ndarray:
        with lock:
            sizes.append(len(batch))
            threads.add(threading.get_ident())
        return batch

    both = threading.Barrier(2, timeout=10)

    def slow_prepare(item: int) -> np.ndarray:
        if item in (0, 2):
            both.wait()  # the first item of each worker's share: both shares are taken at once
        return np.zeros(1)

    run_batches([0, 1, 2], slow_prepare, forward, batch_size=8, workers=2)
    assert sorted(sizes) == [1, 2] and len(threads) == 2


def test_an_error_stops_the_workers_and_is_raised() -> None:
    prepared: list[int] = []

    def failing(item: int) -> np.ndarray:
        prepared.append(item)
        if item == 5:
            raise RuntimeError("decoder bug")
        return np.zeros(1)

    with pytest.raises(RuntimeError, match="decoder bug"):
        run_batches(list(range(400)), failing, lambda batch: batch, batch_size=4, workers=2)
    assert len(prepared) < 40  # the others stopped after their batch in hand


def test_no_items_no_calls() -> None:
    assert run_batches([], prepare, lambda batch: pytest.fail("forward called"), batch_size=4, workers=2) == []
