"""Throughput of the embedded engine's local models, int8 beside fp32, against their limits, in one run.

On real photos from scikit-image's wheel (its PNGs, and the colour ones upscaled to 2000x1500
JPEGs in a temporary directory), measures images/s of:

- naive: open one image, run eager torch (fp32) on it, next image;
- eager batched: eager torch over batches of 32 pre-decoded images (for context);
- decode: Pillow decode + resize alone, on the same thread pool the kit uses;
- raw forward: onnxruntime over batches of pre-decoded 224x224 pixels (inference alone), as many
  calls at once as the kit makes;
- combined limit: 1 / (decode time + inference time), what 2 cores can do when both compete;
- kit: ``embed_images`` end to end (each worker decodes a batch, then runs the model on it);

the last three for each local endpoint (``local/efficientnet-lite0-int8``, the default, and
``local/efficientnet-lite0``), and prints for each: kit / naive; combined limit / naive, the most
any scheduling of decode and inference could reach on these cores; kit / combined limit; kit / raw
forward. Each rate is the best of REPEATS runs, all runs of a workload interleaved (naive loop,
decode, each endpoint), so a moment of noise from elsewhere on the machine neither decides a ratio
nor favours one endpoint. The load average is printed before and after: rerun when the machine was
busy. Needs the local extra.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

os.environ.pop("EMBED_LOCAL_FAULTS", None)

from embed.engines.local.models import ENDPOINTS, ImageInput, load_model  # noqa: E402
from embed.engines.local.models.efficientnet import SIDE, torch_feature_net  # noqa: E402
from embed.engines.local.models.images import decode_image  # noqa: E402

NAIVE_IMAGES = 24
EAGER_BATCH = 32
REPEATS = 5
ROWS = 192  # rows per end-to-end workload: the photos repeated
LARGE_SIZE = (2000, 1500)


def skimage_photos() -> list[Path]:
    """The PNG photos in scikit-image's data directory."""
    import skimage

    return sorted((Path(skimage.__file__).parent / "data").glob("*.png"))


def large_jpegs(photos: list[Path], directory: Path) -> list[Path]:
    """The colour photos upscaled to 2000x1500 JPEGs (quality 90) in ``directory``."""
    made = []
    for photo in photos:
        with Image.open(photo) as img:
            if img.mode != "RGB":
                continue
            target = directory / f"{photo.stem}-2000x1500.jpg"
            img.resize(LARGE_SIZE, Image.Resampling.BICUBIC).save(target, quality=90)
            made.append(target)
    return made


def rows(paths: list[Path], count: int) -> list[ImageInput]:
    """``count`` object-table rows cycling over ``paths`` (distinct uris)."""
    chosen = [paths[i % len(paths)] for i in range(count)]
    return [ImageInput(f"file://{path}#{i}", path, path.stat().st_size, None) for i, path in enumerate(chosen)]


Run = tuple[int, Callable[[], object]]  # images per call, and the call


def best_rates(runs: dict[str, Run]) -> dict[str, float]:
    """Images/s of the fastest of REPEATS calls of each run, the runs interleaved."""
    fastest = dict.fromkeys(runs, float("inf"))
    for _ in range(REPEATS):
        for name, (_, call) in runs.items():
            start = time.perf_counter()
            call()
            fastest[name] = min(fastest[name], time.perf_counter() - start)
    return {name: runs[name][0] / seconds for name, seconds in fastest.items()}


def best_rate(count: int, call: Callable[[], object]) -> float:
    """Images/s of the fastest of REPEATS calls of ``call`` over ``count`` images."""
    return best_rates({"": (count, call)})[""]


def naive_run(paths: list[Path], net) -> Run:  # type: ignore[no-untyped-def]
    """Open one image, eager torch, one at a time."""
    import torch

    chosen = [paths[i % len(paths)] for i in range(NAIVE_IMAGES)]

    def call() -> None:
        with torch.no_grad():
            for path in chosen:
                net(torch.from_numpy(decode_image(path, SIDE)[None]))

    return len(chosen), call


def eager_batched_run(net, pixels: np.ndarray) -> Run:  # type: ignore[no-untyped-def]
    """Eager torch over batches of EAGER_BATCH pre-decoded images."""
    import torch

    batches = [torch.from_numpy(pixels[i : i + EAGER_BATCH]) for i in range(0, 2 * EAGER_BATCH, EAGER_BATCH)]

    def call() -> None:
        with torch.no_grad():
            for batch in batches:
                net(batch)

    return 2 * EAGER_BATCH, call


def forward_run(model, pixels: np.ndarray, pool: ThreadPoolExecutor) -> Run:  # type: ignore[no-untyped-def]
    """onnxruntime alone over the model's batches of pre-decoded pixels, as many calls at once as ``pool`` runs."""
    size = model.batch_size
    batches = [pixels[i : i + size] for i in range(0, len(pixels), size)]
    return len(pixels), lambda: list(pool.map(model.forward, batches))


def forward_rate(model, pixels: np.ndarray) -> float:  # type: ignore[no-untyped-def]
    """onnxruntime alone over the model's batches of pre-decoded pixels, ``model.threads`` calls at once."""
    with ThreadPoolExecutor(model.threads) as pool:
        return best_rate(*forward_run(model, pixels, pool))


def decode_run(items: list[ImageInput], pool: ThreadPoolExecutor) -> Run:
    """Decode + resize alone, on ``pool`` (the kit's number of threads)."""
    return len(items), lambda: list(pool.map(lambda item: decode_image(item.path, SIDE), items))


def decode_rate(items: list[ImageInput], workers: int) -> tuple[float, np.ndarray]:
    """Decode + resize alone on the kit's number of threads; also returns the decoded pixels."""
    with ThreadPoolExecutor(workers) as pool:
        count, call = decode_run(items, pool)
        decoded: list[list[np.ndarray]] = []
        rate = best_rate(count, lambda: decoded.append(call()))
        return rate, np.stack(decoded[-1])


def kit_run(model, items: list[ImageInput]) -> Run:  # type: ignore[no-untyped-def]
    """``embed_images`` end to end; every row must embed."""
    failed = [o.status for o in model.embed_images(items[:32]) if o.status]
    if failed:
        sys.exit(f"{len(failed)} rows failed, e.g. {failed[0]}")
    return len(items), lambda: model.embed_images(items)


def measure(name: str, paths: list[Path], models: list, net) -> None:  # type: ignore[no-untyped-def,type-arg]
    """Print every rate and ratio for one workload, each endpoint beside the others, all runs interleaved."""
    items = rows(paths, ROWS)
    with ThreadPoolExecutor(models[0].threads) as pool:
        pixels = np.stack(decode_run(items, pool)[1]())
        runs = {
            "naive": naive_run(paths, net),
            "eager": eager_batched_run(net, pixels),
            "decode": decode_run(items, pool),
        }
        for model in models:
            runs[f"forward {model.endpoint}"] = forward_run(model, pixels, pool)
            runs[f"kit {model.endpoint}"] = kit_run(model, items)
        for _, call in runs.values():
            call()  # warm-up
        rate = best_rates(runs)
    naive, decode, eager = rate["naive"], rate["decode"], rate["eager"]
    forward = {m.endpoint: rate[f"forward {m.endpoint}"] for m in models}
    kit = {m.endpoint: rate[f"kit {m.endpoint}"] for m in models}
    limit = {e: 1.0 / (1.0 / decode + 1.0 / forward[e]) for e in forward}
    print(f"\n{name}: {len(paths)} files, {ROWS} rows, {models[0].threads} threads, best of {REPEATS}")
    print(f"  naive loop (open, eager torch, one at a time) {naive:8.1f} img/s")
    print(f"  eager torch, batch {EAGER_BATCH}, pre-decoded          {eager:8.1f} img/s")
    print(f"  decode + resize only                          {decode:8.1f} img/s")
    columns = [m.endpoint for m in models]
    print(f"  {'':46}" + "".join(f"{column:>31}" for column in columns))
    print(f"  {'(batch size)':46}" + "".join(f"{m.batch_size:>31}" for m in models))

    def line(label: str, values: dict[str, float], unit: str = " img/s", digits: int = 1) -> None:
        print(f"  {label:46}" + "".join(f"{f'{values[column]:.{digits}f}{unit}':>31}" for column in columns))

    line(f"raw forward (pre-decoded, {models[0].threads} calls at once)", forward)
    line("combined limit 1/(decode + inference)", limit)
    line("kit embed_images end to end", kit)
    line("kit / naive", {e: kit[e] / naive for e in kit}, "x")
    line("combined limit / naive (the most overlap gives)", {e: limit[e] / naive for e in kit}, "x")
    line("kit / combined limit", {e: kit[e] / limit[e] for e in kit}, "", 2)
    line("kit / raw forward", {e: kit[e] / forward[e] for e in kit}, "", 2)
    line("kit / eager batched", {e: kit[e] / eager for e in kit}, "x")


def main() -> None:
    """Measure both workloads with every local endpoint loaded once."""
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores)")
    models = []
    for endpoint in ENDPOINTS:
        start = time.perf_counter()
        models.append(load_model(endpoint))
        print(f"{endpoint} loaded in {time.perf_counter() - start:.2f}s from {models[-1].path}")
    net = torch_feature_net()
    import torch

    torch.set_num_threads(models[0].threads)
    photos = skimage_photos()
    with tempfile.TemporaryDirectory(prefix="embed-bench-") as tmp:
        jpegs = large_jpegs(photos, Path(tmp))
        measure("scikit-image PNGs (mostly 512x512)", photos, models, net)
        measure(f"large JPEGs ({LARGE_SIZE[0]}x{LARGE_SIZE[1]})", jpegs, models, net)
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
