"""The local model layer with the real EfficientNet-Lite0 on real photos, offline.

``model`` is the default endpoint's (int8) and ``fp32_model`` the fp32 one, both built once per test
session from scratch into a temporary model cache (tests/local/conftest.py). The int8 model's
quality against fp32 is gated in test_int8_quality.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime", reason="the local extra is not installed: pip install -e '.[local]'")
pytest.importorskip("efficientnet_lite_pytorch", reason="the local extra is not installed: pip install -e '.[local]'")
skimage = pytest.importorskip("skimage", reason="scikit-image provides the test photos")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from embed.engines.local import models  # noqa: E402
from embed.engines.local.models import (  # noqa: E402
    DEFAULT_ENDPOINT,
    ENDPOINTS,
    ImageInput,
    endpoint_dimension,
    load_model,
    rejection_status,
)
from embed.engines.local.models.efficientnet import SIDE, EfficientNetLite0, onnx_path, torch_feature_net  # noqa: E402
from embed.engines.local.models.faults import FAULTS_ENV  # noqa: E402
from embed.engines.local.models.images import MAX_IMAGE_BYTES, ImageRejected, decode_image  # noqa: E402
from embed.engines.local.models.int8 import EfficientNetLite0Int8, int8_path  # noqa: E402
from embed.errors import EmbedError  # noqa: E402
from embed.settings import LOCAL_OUTPUTS  # noqa: E402
from embed.statuses import RETRYABLE_PREFIX  # noqa: E402

DATA = Path(skimage.__file__).parent / "data"
PHOTOS = ("astronaut.png", "chelsea.png", "camera.png", "motorcycle_left.png", "motorcycle_right.png")


@pytest.fixture(autouse=True)
def no_faults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(FAULTS_ENV, raising=False)


def row(path: Path, uri: str | None = None) -> ImageInput:
    return ImageInput(uri or f"file://{path}", path, path.stat().st_size, None)


def photo_rows() -> list[ImageInput]:
    return [row(DATA / name) for name in PHOTOS]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# --- real features -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["model", "fp32_model"])
def test_real_photos_get_finite_1280_d_embeddings(name: str, request: pytest.FixtureRequest) -> None:
    model = request.getfixturevalue(name)
    outcomes = model.embed_images(photo_rows())
    assert [o.status for o in outcomes] == [""] * len(PHOTOS)
    vectors = np.array([o.embedding for o in outcomes])
    assert vectors.shape == (len(PHOTOS), 1280) == (len(PHOTOS), model.dimension)
    assert np.isfinite(vectors).all()
    assert (np.linalg.norm(vectors, axis=1) > 0).all()


def test_the_default_endpoint_is_int8_and_fp32_stays_available(
    model: EfficientNetLite0, fp32_model: EfficientNetLite0
) -> None:
    assert DEFAULT_ENDPOINT == LOCAL_OUTPUTS["endpoint"] == model.endpoint == "local/efficientnet-lite0-int8"
    assert fp32_model.endpoint == "local/efficientnet-lite0" and fp32_model.endpoint in ENDPOINTS
    assert (model.batch_size, fp32_model.batch_size) == (8, 4)
    assert model.path == int8_path(model.path.parent) and fp32_model.path == onnx_path(model.path.parent)
    assert fp32_model.path.stat().st_size > 10_000_000  # the 13 MB export, not a stub
    assert 2_000_000 < model.path.stat().st_size < 6_000_000  # int8 weights: a quarter of that


def test_embeddings_are_deterministic(model: EfficientNetLite0) -> None:
    first = [o.embedding for o in model.embed_images(photo_rows())]
    again = [o.embedding for o in model.embed_images(list(reversed(photo_rows())))]
    assert first == list(reversed(again))


def test_two_views_of_a_scene_are_nearest_neighbours(model: EfficientNetLite0) -> None:
    vectors = {name: np.array(o.embedding) for name, o in zip(PHOTOS, model.embed_images(photo_rows()))}
    pair = cosine(vectors["motorcycle_left.png"], vectors["motorcycle_right.png"])
    others = [cosine(vectors["motorcycle_left.png"], vectors[name]) for name in PHOTOS[:3]]
    assert pair > max(others)


def test_onnx_features_match_eager_torch(fp32_model: EfficientNetLite0) -> None:
    import torch

    pixels = np.stack([decode_image(DATA / name, SIDE) for name in PHOTOS])
    with torch.no_grad():
        eager = torch_feature_net()(torch.from_numpy(pixels.copy())).numpy()
    exported = fp32_model.forward(pixels)
    for a, b in zip(eager, exported):
        assert cosine(a, b) > 0.999


def test_torch_is_not_imported_at_inference_once_exported(model: EfficientNetLite0, model_cache: Path) -> None:
    assert int8_path(model_cache).exists()
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from embed.engines.local.models import DEFAULT_ENDPOINT, ImageInput, load_model\n"
        "m = load_model(DEFAULT_ENDPOINT)\n"
        f"p = Path({str(DATA / 'astronaut.png')!r})\n"
        "o = m.embed_images([ImageInput('file://' + str(p), p, p.stat().st_size, 'image/png')])[0]\n"
        "print(json.dumps({'torch': 'torch' in sys.modules, 'status': o.status, 'length': len(o.embedding or [])}))\n"
    )
    env = {**os.environ, "EMBED_MODEL_CACHE": str(model_cache)}
    env.pop(FAULTS_ENV, None)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == {"torch": False, "status": "", "length": 1280}


def test_a_damaged_cache_file_is_exported_again(tmp_path: Path) -> None:
    onnx_path(tmp_path).parent.mkdir(parents=True, exist_ok=True)
    onnx_path(tmp_path).write_bytes(b"not an onnx model")
    fresh = EfficientNetLite0(cache_dir=tmp_path)
    assert fresh.embed_images([row(DATA / "chelsea.png")])[0].status == ""


@pytest.mark.parametrize("mode", ["L", "P", "PA", "RGBA", "I;16", "1", "CMYK"])
def test_every_pixel_mode_decodes_to_224_rgb(tmp_path: Path, mode: str) -> None:
    with Image.open(DATA / "chelsea.png") as img:
        if mode == "PA":
            img = img.convert("P")
            img.info["transparency"] = 0
        elif mode == "I;16":
            img = Image.fromarray(np.asarray(img.convert("L"), dtype=np.uint16) * 257)
        else:
            img = img.convert(mode)
        path = tmp_path / ("image.jpg" if mode == "CMYK" else "image.png")
        img.save(path)
    pixels = decode_image(path, SIDE)
    assert pixels.shape == (SIDE, SIDE, 3) and pixels.dtype == np.uint8
    assert 10 < pixels.mean() < 245  # neither blank nor saturated


def test_gif_bmp_and_large_jpeg_decode(tmp_path: Path) -> None:
    with Image.open(DATA / "astronaut.png") as img:
        img.resize((2000, 1500)).save(tmp_path / "large.jpg", quality=90)
        img.save(tmp_path / "image.bmp")
        img.save(tmp_path / "image.gif")
    for name in ("large.jpg", "image.bmp", "image.gif"):
        assert decode_image(tmp_path / name, SIDE).shape == (SIDE, SIDE, 3)


# --- inputs Vertex AI would refuse ---------------------------------------------------------


def bad_inputs(directory: Path) -> dict[str, tuple[Path, str]]:
    """Each bad-input kind: its file and the start of the status it must get."""
    png = (DATA / "chelsea.png").read_bytes()
    with Image.open(DATA / "chelsea.png") as img:
        img.save(directory / "photo.webp")
        img.save(directory / "photo.tiff")
    (directory / "empty.png").write_bytes(b"")
    (directory / "truncated.png").write_bytes(png[: len(png) // 2])
    (directory / "corrupt.png").write_bytes(png[:64] + bytes(len(png) - 64))
    (directory / "notes.png").write_text("not an image, just text\n")
    with open(directory / "huge.png", "wb") as handle:  # sparse: a PNG header, then a hole
        handle.write(png[:64])
        handle.truncate(MAX_IMAGE_BYTES + 1)
    return {
        "webp": (directory / "photo.webp", "Unsupported image format: image/webp;"),
        "tiff": (directory / "photo.tiff", "Unsupported image format: image/tiff;"),
        "zero bytes": (directory / "empty.png", "Cannot decode image: the object is empty (0 bytes)"),
        "truncated": (directory / "truncated.png", "Cannot decode image:"),
        "corrupt": (directory / "corrupt.png", "Cannot decode image:"),
        "text named .png": (directory / "notes.png", "Unsupported image format: the content is not an image"),
        "over 20 MB": (directory / "huge.png", "Image is larger than the 20 MB limit"),
        "missing": (directory / "gone.png", "Cannot read object:"),
    }


def test_each_bad_input_gets_its_non_retryable_status_and_the_run_goes_on(
    model: EfficientNetLite0, tmp_path: Path
) -> None:
    cases = bad_inputs(tmp_path)
    good = row(DATA / "astronaut.png")
    items = [good] + [ImageInput(f"file://{path}", path, 0, None) for path, _ in cases.values()] + [good]
    outcomes = model.embed_images(items)
    assert outcomes[0].status == outcomes[-1].status == "" and len(outcomes[-1].embedding or []) == 1280
    for (kind, (_, expected)), outcome in zip(cases.items(), outcomes[1:-1]):
        assert outcome.status.startswith(expected), (kind, outcome.status)
        assert not outcome.status.startswith(RETRYABLE_PREFIX), kind
        assert outcome.embedding is None, kind


def test_statuses_name_the_accepted_formats(tmp_path: Path) -> None:
    cases = bad_inputs(tmp_path)
    assert rejection_status(cases["webp"][0]) == (
        "Unsupported image format: image/webp; the multimodal embedding endpoint accepts BMP, GIF, JPEG and PNG."
    )
    assert "text/plain" in (rejection_status(cases["text named .png"][0], "text/plain") or "")
    assert rejection_status(DATA / "astronaut.png") is None
    with pytest.raises(ImageRejected, match="Cannot decode image"):
        decode_image(cases["truncated"][0], SIDE)


def test_a_jpeg_named_png_is_judged_by_its_bytes(model: EfficientNetLite0, tmp_path: Path) -> None:
    with Image.open(DATA / "chelsea.png") as img:
        img.save(tmp_path / "really-a-jpeg.png", format="JPEG")
    assert model.embed_images([row(tmp_path / "really-a-jpeg.png")])[0].status == ""


# --- endpoints and options -----------------------------------------------------------------


def test_unknown_endpoints_are_refused_listing_the_local_ones() -> None:
    for endpoint in ("multimodalembedding@001", "local/nope"):
        with pytest.raises(EmbedError) as raised:
            load_model(endpoint)
        assert raised.value.exit_code == 2
        assert "local/efficientnet-lite0-int8, local/efficientnet-lite0" in str(raised.value)
        with pytest.raises(EmbedError):
            endpoint_dimension(endpoint)
    assert ENDPOINTS == ("local/efficientnet-lite0-int8", "local/efficientnet-lite0")
    assert [endpoint_dimension(endpoint) for endpoint in ENDPOINTS] == [1280, 1280]


def test_each_model_loads_once_per_process(
    model: EfficientNetLite0, model_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMBED_MODEL_CACHE", str(model_cache))
    for endpoint, kind in zip(ENDPOINTS, (EfficientNetLite0Int8, EfficientNetLite0)):
        first = load_model(endpoint)
        assert load_model(endpoint) is first and type(first) is kind
        assert first.endpoint == endpoint and first.dimension == 1280


@pytest.mark.parametrize("requested", [256, 512, 1408, 0, -1, 1280.0, True])
def test_output_dimensionality_the_model_cannot_honour_is_refused(model: EfficientNetLite0, requested: object) -> None:
    with pytest.raises(EmbedError, match="output_dimensionality"):
        model.embed_images(photo_rows()[:1], output_dimensionality=requested)  # type: ignore[arg-type]


def test_output_dimensionality_of_its_own_dimension_is_accepted(model: EfficientNetLite0) -> None:
    outcome = model.embed_images(photo_rows()[:1], output_dimensionality=1280)[0]
    assert outcome.status == "" and len(outcome.embedding or []) == 1280


def test_the_model_satisfies_the_interface_the_engine_calls(model: EfficientNetLite0) -> None:
    interface: models.LocalModel = model
    assert interface.embed_images([], None) == []
