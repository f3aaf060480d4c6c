"""Reliability: a corpus of bad and awkward inputs through real runs of the embedded engine.

Each kind of input has an expected outcome: embedded, a row with a status that says why, a
warning that names the file with the reason, or never an object (the engine's own files). One
run over the corpus (given as duplicate folders) checks them all; a second run checks that files
rewritten during the first, or rewritten with the same size and mtime after it, are embedded
again. Then: bounded decode memory, and the warnings reaching the CLI's stderr.
See docs/reliability.md.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

Image = pytest.importorskip("PIL.Image", reason="the local extra is not installed: pip install -e '.[local]'")
pytest.importorskip("onnxruntime", reason="the local extra is not installed: pip install -e '.[local]'")
skimage = pytest.importorskip("skimage", reason="scikit-image provides the test photos")

import numpy as np  # noqa: E402

from embed.engines.local.engine import LocalEngine  # noqa: E402
from embed.engines.local.models import images as decoding  # noqa: E402
from embed.engines.local.models import load_model  # noqa: E402
from embed.engines.local.models.efficientnet import SIDE  # noqa: E402
from embed.engines.local.models.images import MAX_IMAGE_BYTES, DecodeGate, decode_image  # noqa: E402
from embed.engines.local.objects import display_path, generation_of, path_of, uri_of  # noqa: E402
from embed.pipeline import Pipeline  # noqa: E402
from embed.statuses import RETRYABLE_PREFIX  # noqa: E402
from tests.local.corpus import deadline, png_bomb_header, sparse_file  # noqa: E402
from tests.local.sample import local_settings, query, stored  # noqa: E402
from tests.support.cli import embed  # noqa: E402

pytestmark = pytest.mark.reliability

DATA = Path(skimage.__file__).parent / "data"
ROOT_READS_ANYWAY = os.geteuid() == 0  # chmod 000 stops no read for root; test_objects checks it as nobody


@dataclass(frozen=True)
class Expect:
    """One kind of input and what must become of it."""

    outcome: str  # "embedded", "status" (a row with this status), "warning" (named with this reason), "absent"
    words: str = ""


def photo(name: str, dest: Path, fmt: str | None = None, size: tuple[int, int] | None = None) -> bytes:
    """Save scikit-image's photo ``name`` at ``dest`` (in ``fmt``, at ``size``); return its bytes."""
    with Image.open(DATA / name) as img:
        img = img.convert("RGB")
        if size is not None:
            img = img.resize(size)
        buffer = io.BytesIO()
        suffix = dest.suffix.lstrip(".").upper()
        img.save(buffer, format=fmt or {"JPG": "JPEG", "JP2": "JPEG2000"}.get(suffix, suffix))
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(buffer.getvalue())
    return buffer.getvalue()


def named(folder: Path, raw: bytes) -> Path:
    """``folder`` / a file name given as raw bytes (not UTF-8, with a newline, …)."""
    return Path(os.fsdecode(os.path.join(os.fsencode(folder), raw)))


def lay_out_corpus(top: Path) -> dict[Path, Expect]:
    """Write one file (or link, or folder) of each kind under ``top``; return what each must become."""
    png = photo("chelsea.png", top / "photo.png")
    jpeg = photo("astronaut.png", top / "sub" / "astronaut.jpg", size=(256, 256))
    expect = {top / "photo.png": Expect("embedded"), top / "sub" / "astronaut.jpg": Expect("embedded")}

    def status(name: str, content: bytes, words: str) -> None:
        (top / name).write_bytes(content)
        expect[top / name] = Expect("status", words)

    status("empty.png", b"", "the object is empty (0 bytes)")
    status("truncated.png", png[: len(png) // 2], "Cannot decode image: image file is truncated")
    status("truncated.jpg", jpeg[: len(jpeg) // 2], "Cannot decode image: image file is truncated")
    status("notes.jpg", b"Shopping list: eggs, milk.\n", "not an image (text/plain)")
    status("drawing.png", b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>\n', "image/svg+xml")
    status("paper.jpg", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", "not an image (application/pdf)")
    status("page.png", b"<!DOCTYPE html>\n<html><body><img src=x></body></html>\n", "not an image (text/html)")
    status("bomb.png", png_bomb_header(), "decompression bomb")
    for name, kind in (
        ("photo.tiff", "image/tiff"),
        ("photo.webp", "image/webp"),
        ("icon.ico", "image/x-icon"),
        ("photo.jp2", "image/jp2"),
    ):
        photo("chelsea.png", top / name, size=(64, 64))
        expect[top / name] = Expect("status", f"Unsupported image format: {kind};")
    sparse_file(top / "huge.png", MAX_IMAGE_BYTES + 1, png[:64])
    expect[top / "huge.png"] = Expect("status", "larger than the 20 MB limit")
    photo("coffee.png", top / "really-a-jpeg.png", fmt="JPEG")
    expect[top / "really-a-jpeg.png"] = Expect("embedded")
    for raw in (b"caf\xe9.png", b"it's.png", b"--help.png", b"line\nbreak.png", b'100% "quoted".png'):
        shutil.copyfile(top / "photo.png", named(top, raw))
        expect[named(top, raw)] = Expect("embedded")
    shutil.copyfile(top / "photo.png", top / "secret.png")
    (top / "secret.png").chmod(0)
    expect[top / "secret.png"] = Expect("embedded") if ROOT_READS_ANYWAY else Expect("status", "Permission denied")
    photo("camera.png", top / "locked" / "inside.png")
    (top / "locked").chmod(0)
    if ROOT_READS_ANYWAY:
        expect[top / "locked" / "inside.png"] = Expect("embedded")
    else:
        expect[top / "locked"] = Expect("warning", "cannot list this folder (Permission denied)")
    os.mkfifo(top / "pipe.png")
    expect[top / "pipe.png"] = Expect("warning", "a FIFO (named pipe), not a regular file")
    (top / "dangling.png").symlink_to("nowhere.png")
    expect[top / "dangling.png"] = Expect("warning", "a dangling symlink")
    (top / "loop.png").symlink_to("loop.png")
    expect[top / "loop.png"] = Expect("warning", "a symlink loop")
    # A regular file of the kernel's that blocks its reader forever (or one that would not, where absent).
    kernel = "/proc/kmsg" if os.path.exists("/proc/kmsg") else "/proc/self/status"
    (top / "kmsg.png").symlink_to(kernel)
    expect[top / "kmsg.png"] = Expect("warning", "on a proc pseudo filesystem")
    (top / "sub" / "up").symlink_to("..")
    expect[top / "sub" / "up"] = Expect("warning", "a symlink to a folder (-> ..), not followed")
    # Changed while the run goes on (see MidRun), and after it (same size, same mtime).
    for name in ("deleted.png", "rewritten.png", "swapped.png"):
        shutil.copyfile(top / "photo.png", top / name)
    expect[top / "deleted.png"] = Expect("status", "Cannot read object: No such file or directory")
    expect[top / "rewritten.png"] = Expect("embedded")
    expect[top / "swapped.png"] = Expect("status", "Cannot read object: not a regular file")
    photo("chelsea.png", top / "same-size.bmp", size=(96, 96))
    expect[top / "same-size.bmp"] = Expect("embedded")
    return expect


class MidRun:
    """The real local model; on its first call it deletes, rewrites and swaps files of the batch it was given."""

    def __init__(self, top: Path) -> None:
        self.inner = load_model(local_settings().endpoint)
        self.endpoint, self.dimension = self.inner.endpoint, self.inner.dimension
        self.top = top
        self.sent: list[list[str]] = []

    def embed_images(self, items: Sequence[Any], output_dimensionality: int | None = None) -> list[Any]:
        if not self.sent:
            (self.top / "deleted.png").unlink()
            photo("coffee.png", self.top / "rewritten.png")
            (self.top / "swapped.png").unlink()
            os.mkfifo(self.top / "swapped.png")  # a reader opening it would wait for a writer forever
        self.sent.append([item.uri for item in items])
        return self.inner.embed_images(items, output_dimensionality=output_dimensionality)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Any]:
    """Two runs over the corpus; what they stored, sent and said."""
    top = tmp_path_factory.mktemp("corpus") / "images"
    expect = lay_out_corpus(top)
    (top.parent / "alias").symlink_to(top)
    settings = local_settings()
    model = MidRun(top)
    heard: list[str] = []
    roots = [top, top, top / "sub", top / "sub" / "..", top.parent / "alias"]
    engine = LocalEngine(
        top / "embed.duckdb",
        roots,
        object_table=settings.object_table,
        load_model=lambda endpoint: model,
        warn=heard.append,
    )
    pipeline = Pipeline(engine, settings, sleep=lambda seconds: None)
    try:
        with deadline(240):
            first = pipeline.run()
            kept = {r["uri"]: r for r in stored(engine, settings)}
            objects = query(engine, f"SELECT * FROM `{settings.object_table}`").to_pylist()
            before = (top / "same-size.bmp").stat()
            photo("coffee.png", top / "same-size.bmp", size=(96, 96))
            os.utime(top / "same-size.bmp", ns=(before.st_atime_ns, before.st_mtime_ns))
            sent_before = len(model.sent)
            second = pipeline.run()
            restored = {r["uri"]: r for r in stored(engine, settings)}
    finally:
        engine.close()
        for locked in (top / "locked", top / "secret.png"):
            locked.chmod(0o755)
    return {
        "top": top,
        "expect": expect,
        "first": first,
        "second": second,
        "stored": kept,
        "objects": objects,
        "restored": restored,
        "warnings": heard,
        "model": model,
        "sent_again": model.sent[sent_before:],
        "same_size_before": before,
    }


def test_the_corpus_has_at_least_twenty_kinds(corpus) -> None:
    assert len(corpus["expect"]) >= 20
    assert {e.outcome for e in corpus["expect"].values()} >= {"embedded", "status", "warning"}


def test_each_object_is_listed_once_despite_duplicate_folders(corpus) -> None:
    stored = {uri_of(p) for p, e in corpus["expect"].items() if e.outcome in ("embedded", "status")}
    assert sorted(corpus["stored"]) == sorted(stored)  # one row each
    # Deleted, and swapped for a FIFO, during the run: no longer objects once it ends.
    listed = stored - {uri_of(corpus["top"] / name) for name in ("deleted.png", "swapped.png")}
    uris = [row["uri"] for row in corpus["objects"]]
    assert sorted(uris) == sorted(listed) and corpus["first"].counts.objects == len(listed)


def test_the_engines_own_files_are_never_objects(corpus) -> None:
    names = {path_of(row["uri"]).name for row in corpus["objects"]}
    assert (corpus["top"] / "embed.duckdb").exists()
    assert not {n for n in names if n.startswith("embed.duckdb")}


def test_each_bad_input_gets_its_status_and_the_run_goes_on(corpus) -> None:
    for path, expect in corpus["expect"].items():
        if expect.outcome != "status":
            continue
        row = corpus["stored"][uri_of(path)]
        status = row["ml_generate_embedding_status"]
        assert expect.words in status, (display_path(path), status)
        assert not status.startswith(RETRYABLE_PREFIX) and row["ml_generate_embedding_result"] == []
    huge = next(r for r in corpus["objects"] if r["uri"] == uri_of(corpus["top"] / "huge.png"))
    assert huge["md5_hash"] is None and huge["size"] == MAX_IMAGE_BYTES + 1  # never read in full


def test_awkward_names_and_valid_images_are_embedded(corpus) -> None:
    for path, expect in corpus["expect"].items():
        if expect.outcome == "embedded":
            row = corpus["restored"][uri_of(path)]
            assert row["ml_generate_embedding_status"] == "", display_path(path)
            assert len(row["ml_generate_embedding_result"]) == 1280
            assert path_of(row["uri"]) == path


def test_what_is_not_listed_is_named_in_a_warning_with_its_reason(corpus) -> None:
    warnings = corpus["warnings"]
    for path, expect in corpus["expect"].items():
        if expect.outcome == "warning":
            said = [w for w in warnings if w.startswith(f"{display_path(path)}: ")]
            assert len(said) == 1 and expect.words in said[0], (display_path(path), warnings)
    assert len(warnings) == len(set(warnings))


def test_nothing_under_the_folder_is_silently_left_out(corpus) -> None:
    top, warnings = corpus["top"], corpus["warnings"]
    listed = {path_of(row["uri"]) for row in corpus["objects"]}
    warned = [w.split(": ")[0] for w in warnings]
    met = []
    for folder, dirs, files in os.walk(top):
        met += [Path(folder, name) for name in files]
        met += [Path(folder, name) for name in dirs if Path(folder, name).is_symlink()]
    for path in met:
        own = path.name.startswith("embed.duckdb")
        assert own or path in listed or display_path(path) in warned, display_path(path)


def test_files_changed_during_or_after_a_run_are_embedded_again(corpus) -> None:
    top, model = corpus["top"], corpus["model"]
    # Rewritten while its batch was embedded: the run's next batch sees the new generation.
    first_run = model.sent[: len(model.sent) - len(corpus["sent_again"])]
    assert [uri for batch in first_run[1:] for uri in batch] == [uri_of(top / "rewritten.png")]
    # Rewritten after the run with the same size and mtime: the next run embeds it again, alone.
    assert [uri for batch in corpus["sent_again"] for uri in batch] == [uri_of(top / "same-size.bmp")]
    after = (top / "same-size.bmp").stat()
    before = corpus["same_size_before"]
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    for name in ("rewritten.png", "same-size.bmp"):
        row = corpus["restored"][uri_of(top / name)]
        assert row["generation"] == generation_of((top / name).stat())
        fresh = model.inner.embed_images([_input(top / name)])[0].embedding
        assert np.allclose(row["ml_generate_embedding_result"], fresh, atol=1e-4), name
    assert corpus["second"].ok and corpus["second"].counts.pending == 0


def _input(path: Path) -> Any:
    from embed.engines.local.models import ImageInput

    return ImageInput(uri_of(path), path, path.stat().st_size, None)


# --- bounded decode memory -----------------------------------------------------------------


def test_large_decodes_hold_their_full_size_pixels_one_at_a_time(tmp_path: Path, monkeypatch) -> None:
    from concurrent.futures import ThreadPoolExecutor

    paths = [tmp_path / f"{i}.png" for i in range(4)]
    for path in paths:
        photo("chelsea.png", path, size=(400, 300))
    gate = DecodeGate(1)
    monkeypatch.setattr(decoding, "large_decodes", gate)
    monkeypatch.setattr(decoding, "LARGE_DECODE_BYTES", 400 * 300 * 4 - 1)  # each of them counts as large
    with ThreadPoolExecutor(3) as pool:
        decoded = list(pool.map(lambda p: decode_image(p, SIDE), paths))
    assert all(d.shape == (SIDE, SIDE, 3) for d in decoded)
    assert gate.peak == 1 and gate.active == 0
    small = DecodeGate(1)
    monkeypatch.setattr(decoding, "large_decodes", small)
    monkeypatch.setattr(decoding, "LARGE_DECODE_BYTES", 400 * 300 * 4)
    decode_image(paths[0], SIDE)
    assert small.peak == 0  # under the threshold, decodes do not wait for each other


@pytest.mark.parametrize("mode", ["RGB", "P", "I;16"])
def test_a_large_image_is_reduced_before_conversion_and_embeds_as_the_full_decode(tmp_path, monkeypatch, mode) -> None:
    with Image.open(DATA / "chelsea.png") as img:
        edge = 2 * decoding.REDUCE_MARGIN * SIDE  # reduced 2x
        big = img.resize((edge + 64, edge), Image.Resampling.BICUBIC)
    if mode == "P":
        big = big.convert("P")
    elif mode == "I;16":
        big = Image.fromarray(np.asarray(big.convert("L"), dtype=np.uint16) * 257)
    big.save(tmp_path / "big.png", compress_level=1)
    reductions: list[int] = []
    original = Image.Image.reduce

    def counted(self, factor, box=None):
        reductions.append(factor)
        return original(self, factor, box)

    monkeypatch.setattr(Image.Image, "reduce", counted)
    reduced = decode_image(tmp_path / "big.png", SIDE)
    assert reductions and set(reductions) == {2}
    monkeypatch.setattr(decoding, "REDUCE_MARGIN", 10**6)
    full = decode_image(tmp_path / "big.png", SIDE)
    model = load_model(local_settings().endpoint)
    a, b = (model.forward(pixels[None])[0] for pixels in (reduced, full))
    distance = 1 - float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    assert distance < 0.005, distance  # bench/decode_memory.py: at most ~0.001 on photos
    assert np.abs(reduced.astype(int) - full.astype(int)).mean() < 3


# --- the CLI ------------------------------------------------------------------------------------


def test_the_cli_prints_listing_warnings_on_stderr_and_lists_duplicates_once(tmp_path: Path) -> None:
    images = tmp_path / "images"
    photo("chelsea.png", images / "photo.png", size=(128, 128))
    (images / "dangling.png").symlink_to("nowhere.png")
    shutil.copyfile(images / "photo.png", named(images, b"caf\xe9.png"))
    folders = ("--images", "images", "--images", "./images/", "--images", "images/../images")
    done = embed("run", "--engine", "local", *folders, "--db", "images/embed.duckdb", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["counts"]["objects"] == report["counts"]["embedded"] == 2
    assert f"warning: {images / 'dangling.png'}: a dangling symlink (-> nowhere.png" in done.stderr
