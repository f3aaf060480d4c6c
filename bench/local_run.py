"""`python -m embed run --engine local` against the raw batched forward pass, in one run.

Lays out ROWS image files (scikit-image's photos, copied under distinct names) in a
temporary folder, runs the whole pipeline on the embedded engine through the CLI
(object-table scan, CREATE MODEL, the MERGE with ML.GENERATE_EMBEDDING, retries,
validation), then measures decoding alone and onnxruntime alone over the same images.
Prints images/s of each and their ratios. The endpoint is the default local one
(int8); pass another as the argument, e.g. ``bench/local_run.py local/efficientnet-lite0``.
Needs the local extra.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.pop("EMBED_LOCAL_FAULTS", None)

from local_throughput import decode_rate, forward_rate, rows, skimage_photos  # noqa: E402

from embed.engines.local.models import DEFAULT_ENDPOINT, load_model  # noqa: E402

ROWS = 400


def main() -> None:
    """Run the pipeline once, then the raw forward pass, and print the ratios."""
    endpoint = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_ENDPOINT
    photos = skimage_photos()
    with tempfile.TemporaryDirectory(prefix="embed-run-bench-") as tmp:
        images = Path(tmp) / "images"
        images.mkdir()
        for i in range(ROWS):
            photo = photos[i % len(photos)]
            shutil.copyfile(photo, images / f"{i:04d}-{photo.name}")
        command = [
            sys.executable,
            "-m",
            "embed",
            "run",
            "--engine",
            "local",
            "--images",
            str(images),
            "--db",
            str(Path(tmp) / "bench.duckdb"),
            "--endpoint",
            endpoint,
            "--json",
        ]
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if done.returncode != 0:
            sys.exit(f"run failed ({done.returncode}):\n{done.stderr[-3000:]}")
        report = json.loads(done.stdout)

        model = load_model(endpoint)
        items = rows(sorted(images.iterdir()), ROWS)
        decode, pixels = decode_rate(items, model.threads)
        raw = forward_rate(model, pixels)
    combined = 1 / (1 / decode + 1 / raw)  # decode and inference share the same cores

    embedded = report["counts"]["embedded"]
    statements = report["images_per_second"]
    print(f"endpoint                                {endpoint} (batch {model.batch_size})")
    print(f"images                                  {ROWS} ({embedded} embedded, validation ok: {report['ok']})")
    print(f"run, embedding statements              {statements:8.1f} img/s")
    print(f"run, whole command (start-up included) {embedded / wall:8.1f} img/s  ({wall:.1f} s)")
    print(f"raw batched forward pass (onnxruntime) {raw:8.1f} img/s")
    print(f"combined limit 1/(decode + inference)  {combined:8.1f} img/s")
    print(f"run statements / raw forward            {statements / raw:6.2f}")
    print(f"run statements / combined limit         {statements / combined:6.2f}")
    print(f"whole command / raw forward             {embedded / wall / raw:6.2f}")


if __name__ == "__main__":
    main()
