"""Overlap image decoding with model inference, in batches.

Pillow releases the GIL while it decodes and resizes, and onnxruntime while it runs, so a small
thread pool decodes the next images while the calling thread runs the current batch. On a
2-core machine the two compete for the same CPU; the aim is that neither ever waits idle.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    import numpy

__all__ = ["Failed", "run_batches"]

Item = TypeVar("Item")


class Failed:
    """A row that will not reach the model, with its status."""

    __slots__ = ("status",)

    def __init__(self, status: str) -> None:
        self.status = status


def run_batches(
    items: Sequence[Item],
    prepare: Callable[[Item], numpy.ndarray | Failed],
    forward: Callable[[numpy.ndarray], numpy.ndarray],
    *,
    batch_size: int = 32,
    workers: int = 2,
) -> list[numpy.ndarray | Failed]:
    """Per item, its output row from ``forward`` or the Failed that ``prepare`` returned.

    ``prepare`` runs on ``workers`` threads, a little ahead of ``forward`` (two batches or four
    images per worker, whichever is more), which
    runs on the calling thread over stacked batches of up to ``batch_size`` prepared arrays.
    """
    import numpy as np

    results: list[numpy.ndarray | Failed | None] = [None] * len(items)
    window = max(2 * batch_size, 4 * workers)
    indices = iter(range(len(items)))
    pending: deque[tuple[int, Future]] = deque()
    batch: list[tuple[int, numpy.ndarray]] = []

    def run(batch: list[tuple[int, numpy.ndarray]]) -> None:
        outputs = forward(np.stack([array for _, array in batch]))
        for (index, _), row in zip(batch, outputs):
            results[index] = row

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="embed-decode") as pool:

        def top_up() -> None:
            while len(pending) < window:
                index = next(indices, None)
                if index is None:
                    return
                pending.append((index, pool.submit(prepare, items[index])))

        top_up()
        try:
            while pending:
                index, future = pending.popleft()
                top_up()
                prepared = future.result()
                if isinstance(prepared, Failed):
                    results[index] = prepared
                else:
                    batch.append((index, prepared))
                if len(batch) == batch_size:
                    run(batch)
                    batch = []
            if batch:
                run(batch)
        finally:
            for _, future in pending:
                future.cancel()
    return results  # type: ignore[return-value]
