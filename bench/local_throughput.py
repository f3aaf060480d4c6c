"""Throughput of the embedded engine's local model, against its limits, in one run.

On real photos from scikit-image's wheel (its PNGs, and the colour ones upscaled to 2000x1500
JPEGs in a temporary directory), measures images/s of:

- naive: open one image, run eager torch on it, next image;
- eager batched: eager torch over batches of 32 pre-decoded images (for context);
- raw forward: onnxruntime over batches of pre-decoded 224x224 pixels (inference alone);
- decode: Pillow decode + resize alone, on the same thread pool the kit uses;
- combined limit: 1 / (decode time + inference time), what 2 cores can do when both compete;
- kit: ``embed_images`` end to end (decode overlapped with inference, in batches);

and prints kit / combined limit, kit / naive and kit / raw forward. Each rate is the best of
REPEATS runs, so a moment of noise from elsewhere on the machine does not decide a ratio.
Needs the local extra.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

os.environ.pop("EMBED_LOCAL_FAULTS", None)

from embed.engines.local.models import ImageInput, load_model  # noqa: E402
from embed.engines.local.models.efficientnet import SIDE, torch_feature_net  # noqa: E402
from embed.engines.local.models.images import decode_image  # noqa: E402

NAIVE_IMAGES = 24
EAGER_BATCH = 32
REPEATS = 3
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


def best_rate(count: int, run) -> float:  # type: ignore[no-untyped-def]
    """Images/s of the fastest of REPEATS calls of ``run`` over ``count`` images."""
    fastest = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        run()
        fastest = min(fastest, time.perf_counter() - start)
    return count / fastest


def naive_rate(paths: list[Path], net) -> float:  # type: ignore[no-untyped-def]
    """Open one image, eager torch, one at a time."""
    import torch

    chosen = [paths[i % len(paths)] for i in range(NAIVE_IMAGES)]

    def run() -> None:
        for path in chosen:
            net(torch.from_numpy(decode_image(path, SIDE)[None]))

    with torch.no_grad():
        net(torch.from_numpy(decode_image(chosen[0], SIDE)[None]))  # warm-up
        return best_rate(len(chosen), run)


def eager_batched_rate(net, pixels: np.ndarray) -> float:  # type: ignore[no-untyped-def]
    """Eager torch over batches of EAGER_BATCH pre-decoded images."""
    import torch

    batches = [torch.from_numpy(pixels[i : i + EAGER_BATCH]) for i in range(0, 2 * EAGER_BATCH, EAGER_BATCH)]
    with torch.no_grad():
        net(batches[0])  # warm-up
        return best_rate(2 * EAGER_BATCH, lambda: [net(batch) for batch in batches])


def forward_rate(model, pixels: np.ndarray) -> float:  # type: ignore[no-untyped-def]
    """onnxruntime alone, over the kit's batches of pre-decoded pixels."""
    size = model.batch_size
    model.forward(pixels[:size])  # warm-up
    return best_rate(len(pixels), lambda: [model.forward(pixels[i : i + size]) for i in range(0, len(pixels), size)])


def decode_rate(items: list[ImageInput], workers: int) -> tuple[float, np.ndarray]:
    """Decode + resize alone on the kit's number of threads; also returns the decoded pixels."""
    decoded: list[np.ndarray] = []
    with ThreadPoolExecutor(workers) as pool:

        def run() -> None:
            decoded[:] = pool.map(lambda item: decode_image(item.path, SIDE), items)

        return best_rate(len(items), run), np.stack(decoded)


def kit_rate(model, items: list[ImageInput]) -> float:  # type: ignore[no-untyped-def]
    """``embed_images`` end to end."""
    failed = [o.status for o in model.embed_images(items[:32]) if o.status]  # warm-up
    if failed:
        sys.exit(f"{len(failed)} rows failed, e.g. {failed[0]}")
    return best_rate(len(items), lambda: model.embed_images(items))


def measure(name: str, paths: list[Path], model, net) -> None:  # type: ignore[no-untyped-def]
    """Print every rate and ratio for one workload."""
    items = rows(paths, ROWS)
    naive = naive_rate(paths, net)
    decode, pixels = decode_rate(items, model.threads)
    forward = forward_rate(model, pixels)
    limit = 1.0 / (1.0 / decode + 1.0 / forward)
    eager = eager_batched_rate(net, pixels)
    kit = kit_rate(model, items)
    print(f"\n{name}: {len(paths)} files, {ROWS} rows, {model.threads} threads, batch {model.batch_size}")
    print(f"  naive loop (open, eager torch, one at a time) {naive:8.1f} img/s")
    print(f"  eager torch, batch {EAGER_BATCH}, pre-decoded          {eager:8.1f} img/s")
    print(f"  raw forward (onnxruntime, pre-decoded)        {forward:8.1f} img/s")
    print(f"  decode + resize only                          {decode:8.1f} img/s")
    print(f"  combined limit 1/(decode + inference)         {limit:8.1f} img/s")
    print(f"  kit embed_images end to end                   {kit:8.1f} img/s")
    print(
        f"  kit / combined limit {kit / limit:5.2f}   kit / naive {kit / naive:5.1f}x"
        f"   kit / raw forward {kit / forward:5.2f}   kit / eager batched {kit / eager:5.1f}x"
    )


def main() -> None:
    """Measure both workloads with one loaded model."""
    start = time.perf_counter()
    model = load_model("local/efficientnet-lite0")
    print(f"model loaded in {time.perf_counter() - start:.2f}s from {model.path}")
    net = torch_feature_net()
    import torch

    torch.set_num_threads(model.threads)
    photos = skimage_photos()
    with tempfile.TemporaryDirectory(prefix="embed-bench-") as tmp:
        jpegs = large_jpegs(photos, Path(tmp))
        measure("scikit-image PNGs (mostly 512x512)", photos, model, net)
        measure(f"large JPEGs ({LARGE_SIZE[0]}x{LARGE_SIZE[1]})", jpegs, model, net)


if __name__ == "__main__":
    main()
