"""What a run would bill on BigQuery, measured on the embedded engine's billing model, and its growth with N.

For N = 1k, 2k, 4k and 8k objects (small generated PNGs, so decoding and inference stay cheap),
runs the real pipeline on the embedded engine three times: a first run, a re-run with nothing
new, and a re-run after adding 1 % new objects. Every statement is priced by the engine's model
of BigQuery's on-demand rules (``embed/engines/local/billing.py``): referenced columns, *q* or
*q + t* for DML, the 10 MB minimum per table referenced, partitions pruned. It prints bytes billed
per object for each run, the growth exponent (the log-log slope of a first run's bytes against N),
and a projection for 1M images at 1408 dimensions built from the same rules and the per-object
sizes measured here.

The last two lines read ``growth exponent: <number>`` and ``no-op re-run / first run: <number>``
(at the largest N), for scripts. Usage: ``.venv/bin/python bench/cloud_cost.py [--price-per-tib 6.25]``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

os.environ.pop("EMBED_LOCAL_FAULTS", None)

from embed.engines.base import Statement  # noqa: E402
from embed.engines.local.billing import MIN_BILLED_PER_TABLE  # noqa: E402
from embed.engines.local.engine import LocalEngine  # noqa: E402
from embed.pipeline import Pipeline, auto_batch_size, row_bytes  # noqa: E402
from embed.settings import load_settings  # noqa: E402

SIZES = (1000, 2000, 4000, 8000)
TIB = 2**40
MB = 2**20
PROJECTED = 1_000_000
REQUESTS_PER_MINUTE = 600


class Metered:
    """An engine that records, per statement name, the bytes billed and the bytes read before the minimums."""

    def __init__(self, engine: LocalEngine) -> None:
        self.engine = engine
        self.billed: dict[str, int] = defaultdict(int)
        self.read: dict[str, int] = defaultdict(int)
        self.count: dict[str, int] = defaultdict(int)

    def execute(self, statement: Statement, *, dry_run: bool = False) -> Any:
        result = self.engine.execute(statement, dry_run=dry_run)
        if not dry_run:
            self.billed[statement.name] += result.bytes_billed or 0
            self.read[statement.name] += result.bytes_processed or 0
            self.count[statement.name] += 1
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)


def make_images(folder: Path, start: int, count: int) -> None:
    """``count`` distinct 24 x 24 PNGs, numbered from ``start``."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + count):
        colour = ((i * 37) % 256, (i * 91) % 256, (i * 173) % 256)
        image = Image.new("RGB", (24, 24), colour)
        image.putpixel((i % 24, (i // 24) % 24), (255 - colour[0], 0, 0))
        image.save(folder / f"{i:07d}.png")


def one_run(db: Path, folder: Path) -> Metered:
    """A whole run of the pipeline over ``folder``, metered."""
    settings = load_settings({}, local=True, environ={})
    engine = Metered(LocalEngine(db, [folder], object_table=settings.object_table))
    report = Pipeline(engine, settings, sleep=lambda s: None).run()
    if not report.ok:
        sys.exit(f"the run did not validate: {report.validation and report.validation.problems()}")
    engine.engine.close()
    return engine


def total(metered: Metered) -> int:
    """Bytes billed by every statement of a run."""
    return sum(metered.billed.values())


def read(metered: Metered) -> int:
    """Bytes read by every statement of a run, before the 10 MB minimums."""
    return sum(metered.read.values())


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of log(ys) against log(xs)."""
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


def projection(largest: Metered, n: int, price: float) -> None:
    """Bytes of a first run over 1M images at 1408 dimensions, by the run's statements and the sizes measured."""
    settings = load_settings({"output_dimensionality": None}, local=True, environ={})
    local_row = row_bytes(settings)
    vertex = load_settings(
        {}, outputs_file=Path(__file__).resolve().parents[1] / "terraform" / "outputs.example.json", environ={}
    )
    row = row_bytes(vertex)  # 1408 FLOAT64 and the other columns
    per_object = {name: largest.read[name] / n for name in largest.read}
    # Key scans (uri, generation, status ...) grow with N; the embedding in validation is scaled to 1408-d.
    keys = (
        sum(
            per_object.get(name, 0)
            for name in ("status_counts", "pending_objects", "retryable_objects", "failure_summary")
        )
        * PROJECTED
    )
    # One batch reads every column of the whole object table (its metadata): per object, one batch's read / N.
    metadata = largest.read["embed_batch"] / largest.count["embed_batch"] / n * PROJECTED
    batch = auto_batch_size(PROJECTED, int(metadata), row)
    batches = math.ceil(PROJECTED / batch)
    scans = batches * max(metadata, MIN_BILLED_PER_TABLE)
    validation = (per_object["validate_run"] - local_row + row) * PROJECTED
    billed = keys + scans + validation
    table = PROJECTED * row
    print()
    print(f"projection: first run over {PROJECTED:,} images, 1408-d embeddings ({row:,} bytes a row)")
    print(f"  results table                         {table / 2**30:10.1f} GiB")
    print(f"  key scans (4 statements)              {keys / 2**30:10.2f} GiB")
    print(
        f"  batches: {batches} jobs of {batch:,}, each reading the object table's metadata"
        f" ({metadata / MB:,.0f} MB): {scans / 2**30:.2f} GiB"
    )
    print(f"  validation of the rows written        {validation / 2**30:10.2f} GiB")
    print(
        f"  total billed                          {billed / 2**30:10.2f} GiB"
        f"  = ${billed / TIB * price:,.2f} at ${price}/TiB"
    )
    print(f"  (billed - key scans) / table size     {(billed - keys) / table:10.2f}  (goal: at most 1.5)")
    print(f"  Vertex AI calls                       {PROJECTED:10,}  (plus one per retried row)")
    print(f"  jobs                                  {batches + 6:10,}  ({batches} batches, 6 other statements)")
    hours = PROJECTED / REQUESTS_PER_MINUTE / 60
    print(f"  minimum wall time at {REQUESTS_PER_MINUTE} requests/min   {hours:10.1f} h")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--price-per-tib", type=float, default=6.25, help="on-demand $ per TiB billed")
    args = parser.parse_args()
    firsts, noops, firsts_read, noops_read = [], [], [], []
    print(
        f"{'N':>6} {'first run':>14} {'/object':>10} {'no-op re-run':>14} {'/object':>9}"
        f" {'+1 % new':>12} {'/new object':>12}"
    )
    largest = None
    with tempfile.TemporaryDirectory(prefix="embed-cost-") as tmp:
        for n in SIZES:
            folder = Path(tmp) / f"n{n}" / "images"
            db = Path(tmp) / f"n{n}" / "embed.duckdb"
            make_images(folder, 0, n)
            first = one_run(db, folder)
            noop = one_run(db, folder)
            added = max(1, n // 100)
            make_images(folder, n, added)
            more = one_run(db, folder)
            firsts.append(total(first))
            noops.append(total(noop))
            firsts_read.append(read(first))
            noops_read.append(read(noop))
            largest = first
            print(
                f"{n:>6} {total(first) / MB:>11,.0f} MB {total(first) / n / 1024:>7,.1f} KB"
                f" {total(noop) / MB:>11,.0f} MB {total(noop) / n:>7,.0f} B"
                f" {total(more) / MB:>9,.0f} MB {total(more) / added / 1024:>9,.0f} KB"
            )
        print()
        print(f"statements of the first run at N = {SIZES[-1]:,} (billed, read before the 10 MB minimums):")
        for name in largest.billed:
            print(
                f"  {name:<22} x{largest.count[name]:<3} {largest.billed[name] / MB:9,.0f} MB"
                f" {largest.read[name] / MB:9,.2f} MB"
            )
        projection(largest, SIZES[-1], args.price_per_tib)
    print()
    print("bytes are estimated by BigQuery's documented on-demand rules; a model, not a bill")
    sizes = [float(n) for n in SIZES]
    print(
        f"growth exponent of bytes read before the 10 MB minimums: {slope(sizes, [float(b) for b in firsts_read]):.3f}"
    )
    print(f"no-op re-run / first run, bytes read before the minimums: {noops_read[-1] / firsts_read[-1]:.4f}")
    print(f"growth exponent: {slope(sizes, [float(b) for b in firsts]):.3f}")
    print(f"no-op re-run / first run: {noops[-1] / firsts[-1]:.4f}")


if __name__ == "__main__":
    main()
