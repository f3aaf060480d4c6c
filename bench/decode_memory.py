"""Decode memory of the embedded engine's image decoding, bounded against unbounded, in one run.

1. Peak memory: four 13,000 x 13,000 PNGs (just under Pillow's decompression-bomb limit, ~1 MB
   each on disk), RGB and then palette, decoded to 224 x 224 on as many threads as the local
   model uses, in a fresh child process per configuration:

   - unbounded: every decode at once, the full image converted as a whole (the gate and the
     reduction switched off, as before they existed);
   - kit: ``decode_image`` as the kit runs it (large decodes one at a time, reduced band by band).

   Prints each child's peak resident memory above its start, the ratio, and the time ratio.

2. Embedding drift of the reduction: scikit-image's colour photos upscaled (bicubic) to a shorter
   edge of 1,800, 2,700 and 4,500 px, embedded with the reduction on and off; prints the largest and
   mean cosine distance between the two, beside the distance between two different photos.

Needs the local extra. ``--skip-memory`` runs part 2 only.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

os.environ.pop("EMBED_LOCAL_FAULTS", None)

from embed.engines.local.models import images, load_model  # noqa: E402
from embed.engines.local.models.efficientnet import SIDE  # noqa: E402

EDGE = 13_000
COPIES = 4
DRIFT_EDGES = (1_800, 2_700, 4_500)


def skimage_photos() -> list[Path]:
    """scikit-image's colour photos."""
    import skimage

    found = []
    for path in sorted((Path(skimage.__file__).parent / "data").glob("*.png")):
        with Image.open(path) as img:
            if img.mode == "RGB":
                found.append(path)
    return found


def large_pngs(directory: Path, mode: str) -> list[Path]:
    """COPIES PNGs of EDGE x EDGE pixels in ``mode`` (a photo upscaled, nearest neighbour: small on disk)."""
    Image.MAX_IMAGE_PIXELS = None
    first = directory / f"large-{mode}-0.png"
    with Image.open(skimage_photos()[0]) as img:
        img.convert(mode).resize((EDGE, EDGE), Image.Resampling.NEAREST).save(first, compress_level=6)
    paths = [first]
    for index in range(1, COPIES):
        paths.append(directory / f"large-{mode}-{index}.png")
        shutil.copyfile(first, paths[-1])
    return paths


def peak_rss() -> int:
    """This process's peak resident memory in bytes (VmHWM: ru_maxrss would carry the parent's over exec)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)


def child(paths: list[str], bounded: bool, threads: int) -> None:
    """In a child process: decode ``paths`` on ``threads`` threads; print peak RSS growth (bytes) and seconds."""
    from concurrent.futures import ThreadPoolExecutor

    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
    if not bounded:
        images.LARGE_DECODE_BYTES = 1 << 62
        images.REDUCE_MARGIN = 1 << 30
    images.decode_image(Path(paths[0]).with_name("tiny.png"), SIDE)  # imports and allocator warm-up
    start_rss = peak_rss()
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        decoded = list(pool.map(lambda p: images.decode_image(Path(p), SIDE), paths))
    seconds = time.perf_counter() - started
    assert all(d.shape == (SIDE, SIDE, 3) for d in decoded)
    peak = peak_rss()
    print(json.dumps({"growth": peak - start_rss, "seconds": seconds}))


def measure(paths: list[Path], bounded: bool, threads: int) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--child", "bounded" if bounded else "unbounded", str(threads), *map(str, paths)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def memory() -> None:
    threads = os.cpu_count() or 1
    gib = 1024**3
    for mode, what in (("RGB", "RGB"), ("P", "palette (converted to RGB to be embedded)")):
        with tempfile.TemporaryDirectory() as scratch:
            directory = Path(scratch)
            Image.new("RGB", (8, 8)).save(directory / "tiny.png")
            paths = large_pngs(directory, mode)
            unbounded = measure(paths, False, threads)
            kit = measure(paths, True, threads)
        print(f"{COPIES} {what} PNGs of {EDGE:,} x {EDGE:,} px on {threads} threads, peak memory above the start:")
        print(f"  unbounded: {unbounded['growth'] / gib:.2f} GiB in {unbounded['seconds']:.1f}s")
        print(f"  kit:       {kit['growth'] / gib:.2f} GiB in {kit['seconds']:.1f}s")
        print(f"  memory kit / unbounded: {kit['growth'] / unbounded['growth']:.2f}")
        print(f"  time   kit / unbounded: {kit['seconds'] / unbounded['seconds']:.2f}")


def drift() -> None:
    model = load_model("local/efficientnet-lite0")

    def embedding(path: Path, margin: int) -> np.ndarray:
        images.REDUCE_MARGIN = margin
        return model.forward(images.decode_image(path, SIDE)[None])[0]

    def distance(a: np.ndarray, b: np.ndarray) -> float:
        return 1.0 - float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))

    kept = images.REDUCE_MARGIN
    photos = skimage_photos()
    with tempfile.TemporaryDirectory() as scratch:
        for edge in DRIFT_EDGES:
            distances = []
            for photo in photos:
                target = Path(scratch) / f"{photo.stem}-{edge}.png"
                with Image.open(photo) as img:
                    scale = edge / min(img.size)
                    size = (round(img.width * scale), round(img.height * scale))
                    img.resize(size, Image.Resampling.BICUBIC).save(target, compress_level=1)
                distances.append(distance(embedding(target, kept), embedding(target, 1 << 30)))
            factor = edge // (kept * SIDE)
            print(
                f"shorter edge {edge:,} px (reduced {factor}x): cosine distance reduced vs full,"
                f" max {max(distances):.5f}, mean {np.mean(distances):.5f} over {len(photos)} photos"
            )
    apart = distance(embedding(photos[0], 1 << 30), embedding(photos[1], 1 << 30))
    print(f"for scale, two different photos: {apart:.3f}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[4:], sys.argv[2] == "bounded", int(sys.argv[3]))
    else:
        if "--skip-memory" not in sys.argv:
            memory()
        drift()
