"""The int8 model against fp32: retrieval agreement on held-out photos, and a deterministic build.

The gate measures what a user of ``similar`` would notice, not only vector cosine: the same top-5
neighbours, each altered copy of a photo still finding its photo first, and the motorcycle stereo
pair still each other's nearest. It runs on photos the calibration never saw (the ones the demo and
the tests embed), each with eight altered copies saved as JPEGs and embedded through
``embed_images``, as a run embeds them. Thresholds sit just under what was measured when int8 was
made the default (mean cosine 0.9967, min 0.993, top-5 overlap 0.978, same photo first as often
as fp32); everything quantized, stem included, fails them (mean 0.989, top-5 0.953). On an x86
CPU without VNNI onnxruntime's int8 kernels saturate (see ``saturating_cpu``): there the cosine
and top-5 thresholds sit just under what was measured on such a CPU (QEMU's Haswell: mean 0.989,
min 0.978, top-5 0.956; same photo first and the stereo pair as with fp32).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("onnxruntime", reason="the local extra is not installed: pip install -e '.[local]'")
skimage = pytest.importorskip("skimage", reason="scikit-image provides the test photos")

import numpy as np  # noqa: E402
from PIL import Image, ImageEnhance, ImageOps  # noqa: E402

from embed.engines.local.models import ImageInput, int8  # noqa: E402
from embed.engines.local.models.efficientnet import onnx_path  # noqa: E402
from embed.engines.local.models.int8 import (  # noqa: E402
    CALIBRATION_PHOTOS,
    EfficientNetLite0Int8,
    fp32_nodes,
    int8_path,
    saturating_cpu,
)
from embed.errors import EmbedError  # noqa: E402

DATA = Path(skimage.__file__).parent / "data"
HELD_OUT = (
    "astronaut.png",
    "camera.png",
    "chelsea.png",
    "coffee.png",
    "hubble_deep_field.jpg",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "rocket.jpg",
)
STEREO_PAIR = ("motorcycle_left.png", "motorcycle_right.png")
# Required mean cosine to fp32, lowest cosine, and top-5 neighbour overlap.
MEAN_COSINE, LOWEST_COSINE, TOP_5 = (0.985, 0.95, 0.94) if saturating_cpu() else (0.99, 0.95, 0.97)


def altered_copies(img: Image.Image) -> dict[str, Image.Image]:
    """Eight deterministic alterations of a photo: mirrored, cropped, rotated, grey, small, dark."""
    img = img.convert("RGB")
    w, h = img.size
    return {
        "mirrored": ImageOps.mirror(img),
        "centre": img.crop((w // 8, h // 8, w - w // 8, h - h // 8)),
        "corner-mirrored": ImageOps.mirror(img.crop((0, 0, w * 3 // 5, h * 3 // 5))),
        "corner": img.crop((w * 2 // 5, h * 2 // 5, w, h)),
        "rotated": img.rotate(10, resample=Image.Resampling.BILINEAR),
        "grey": ImageOps.grayscale(img),
        "small": img.resize((w // 4, h // 4), Image.Resampling.BILINEAR),
        "dark": ImageEnhance.Brightness(img).enhance(0.6),
    }


class HeldOut:
    """The held-out images embedded by both models: unit vectors, and which photo each shows."""

    def __init__(self, folder: Path, fp32_model: Any, int8_model: Any) -> None:
        paths, photo = [], []
        for index, name in enumerate(HELD_OUT):
            paths.append(DATA / name)
            photo.append(index)
            with Image.open(DATA / name) as img:
                for kind, copy in altered_copies(img).items():
                    paths.append(folder / f"{Path(name).stem}-{kind}.jpg")
                    copy.save(paths[-1], quality=90)
                    photo.append(index)
        items = [ImageInput(f"file://{path}", path, path.stat().st_size, None) for path in paths]
        self.photo = np.array(photo)
        self.original = np.array([path.parent == DATA for path in paths])
        self.fp32 = self._unit(fp32_model.embed_images(items))
        self.int8 = self._unit(int8_model.embed_images(items))

    @staticmethod
    def _unit(outcomes: list) -> np.ndarray:
        assert all(o.status == "" for o in outcomes), [o.status for o in outcomes if o.status]
        vectors = np.array([o.embedding for o in outcomes])
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def held_out(tmp_path_factory: pytest.TempPathFactory, fp32_model: Any, model: Any) -> HeldOut:
    return HeldOut(tmp_path_factory.mktemp("held-out"), fp32_model, model)


def top_k(vectors: np.ndarray, k: int) -> np.ndarray:
    """Each row's k nearest other rows by cosine, nearest first."""
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -2.0)
    return np.argsort(-similarity, axis=1, kind="stable")[:, :k]


def own_photo_first(held: HeldOut, vectors: np.ndarray) -> float:
    """Share of altered copies whose nearest original is the photo they were made from."""
    originals, copies = np.flatnonzero(held.original), np.flatnonzero(~held.original)
    nearest = originals[np.argmax(vectors[copies] @ vectors[originals].T, axis=1)]
    return float(np.mean(held.photo[nearest] == held.photo[copies]))


def test_the_gate_runs_on_photos_the_calibration_never_saw(held_out: HeldOut) -> None:
    assert not set(HELD_OUT) & set(CALIBRATION_PHOTOS)
    assert len(held_out.photo) == len(HELD_OUT) * 9 and held_out.original.sum() == len(HELD_OUT)


def test_int8_vectors_stay_close_to_fp32(held_out: HeldOut) -> None:
    cosine = np.sum(held_out.fp32 * held_out.int8, axis=1)
    assert cosine.mean() > MEAN_COSINE and cosine.min() > LOWEST_COSINE, (cosine.mean(), cosine.min())
    assert not np.array_equal(held_out.fp32, held_out.int8)  # really two models


def test_int8_finds_fp32s_top_5_neighbours(held_out: HeldOut) -> None:
    pairs = zip(top_k(held_out.fp32, 5), top_k(held_out.int8, 5))
    overlap = np.mean([len(set(a) & set(b)) / 5 for a, b in pairs])
    assert overlap >= TOP_5, overlap


def test_altered_copies_find_their_photo_first_as_with_fp32(held_out: HeldOut) -> None:
    fp32, int8 = own_photo_first(held_out, held_out.fp32), own_photo_first(held_out, held_out.int8)
    one_copy = 1 / np.count_nonzero(~held_out.original)
    assert int8 >= 0.9 and int8 >= fp32 - one_copy, (int8, fp32)


def test_the_stereo_pair_stays_mutual_first(held_out: HeldOut) -> None:
    originals = np.flatnonzero(held_out.original)
    left, right = (HELD_OUT.index(name) for name in STEREO_PAIR)
    for vectors in (held_out.fp32, held_out.int8):
        nearest = top_k(vectors[originals], 1)[:, 0]
        assert (nearest[left], nearest[right]) == (right, left)


def test_cpus_whose_int8_kernels_saturate_are_recognised() -> None:
    haswell = "processor\t: 0\nflags\t\t: fpu sse4_2 avx avx2 fma bmi2\n"
    ice_lake = "flags\t\t: fpu avx2 avx512f avx512bw avx512_vnni\n"
    alder_lake = "flags\t\t: fpu avx2 avx_vnni\n"
    assert saturating_cpu("x86_64", haswell) and saturating_cpu("AMD64", haswell)
    assert not saturating_cpu("x86_64", ice_lake) and not saturating_cpu("x86_64", alder_lake)
    assert not saturating_cpu("aarch64", "") and not saturating_cpu("arm64", haswell)


# --- the build -----------------------------------------------------------------------------


def test_the_int8_file_keeps_the_stem_fp32_and_quantizes_the_rest(model: Any) -> None:
    import onnx

    graph = onnx.load(str(model.path)).graph
    dequantized = {node.output[0] for node in graph.node if node.op_type == "DequantizeLinear"}
    convolutions = [node for node in graph.node if node.op_type == "Conv"]
    int8_weights = [node.input[1] in dequantized for node in convolutions]
    assert int8_weights == [False] * 3 + [True] * (len(convolutions) - 3)
    assert set(fp32_nodes(onnx.load(str(onnx_path(model.path.parent)))))  # found in the fp32 export too


def test_the_build_is_deterministic_and_a_damaged_file_is_built_again(model: Any, tmp_path: Path) -> None:
    shutil.copyfile(onnx_path(model.path.parent), onnx_path(tmp_path))  # the same fp32 input
    int8_path(tmp_path).write_bytes(b"not an onnx model")
    rebuilt = EfficientNetLite0Int8(cache_dir=tmp_path)
    assert rebuilt.path.read_bytes() == model.path.read_bytes()
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([onnx_path(tmp_path).name, rebuilt.path.name])


def test_a_missing_calibration_photo_is_a_clear_error(
    model: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copyfile(onnx_path(model.path.parent), onnx_path(tmp_path))
    monkeypatch.setattr(int8, "CALIBRATION_PHOTOS", ("brick.png", "gone.png"))
    with pytest.raises(EmbedError, match="gone.png.*--endpoint local/efficientnet-lite0") as raised:
        EfficientNetLite0Int8(cache_dir=tmp_path)
    assert raised.value.exit_code == 2 and not int8_path(tmp_path).exists()
