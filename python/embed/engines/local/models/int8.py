"""``local/efficientnet-lite0-int8``: the same 1280-d features, statically quantized to int8.

Built once into the model cache, from the fp32 export beside it, with onnxruntime's static
quantization: QDQ format, int8 weights per channel, uint8 activations, min/max ranges calibrated on
:data:`CALIBRATION_PHOTOS` from scikit-image's wheel and a mirrored centre crop of each, decoded as
the kit decodes. The stem and the first block (the input's normalisation and the first three
convolutions with their activations) stay fp32: quantized, they cost the most quality and gain no
speed. About 1.8x the fp32 forward pass on 2 cores; mean cosine to fp32 0.9967 (with VNNI).

The build is deterministic: the same fp32 file, photos and onnxruntime give a byte-identical file,
written atomically so processes sharing the cache never read half of one. Quality is measured on
photos the calibration never saw, the ones the demo and the tests embed (astronaut, chelsea, coffee,
rocket, the motorcycle pair, ...): see ``tests/local/test_int8_quality.py``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from embed.engines.local.models import INT8_ENDPOINT
from embed.engines.local.models.efficientnet import (
    SIDE,
    EfficientNetLite0,
    atomic_output,
    onnx_path,
)
from embed.engines.local.models.images import ImageRejected, decode_image
from embed.errors import EmbedError

if TYPE_CHECKING:
    import numpy

__all__ = [
    "BATCH_SIZE",
    "CALIBRATION_PHOTOS",
    "ENDPOINT",
    "EfficientNetLite0Int8",
    "build_int8",
    "calibration_pixels",
    "fp32_nodes",
    "int8_path",
    "saturating_cpu",
]

ENDPOINT = INT8_ENDPOINT
# Images per onnxruntime call: int8 kernels gain from a batch of 8 where fp32 prefers 4.
BATCH_SIZE = 8
# scikit-image photos whose activations set the quantization ranges: textures, text, micrographs,
# a retina, coins, a colour wheel. Held out: every photo the demo and the tests embed.
CALIBRATION_PHOTOS = (
    "brick.png",
    "cell.png",
    "clock_motion.png",
    "coins.png",
    "color.png",
    "grass.png",
    "gravel.png",
    "horse.png",
    "ihc.png",
    "logo.png",
    "moon.png",
    "page.png",
    "phantom.png",
    "retina.jpg",
    "text.png",
)
# The stem's convolution and the first block's two stay fp32, with their activations: quantized,
# they take the mean cosine to fp32 from 0.9967 down to 0.993, for no gain in speed.
_FP32_CONVOLUTIONS = 3
# Bump when the recipe changes (photos, views, quantization options): it keys the cache file.
_RECIPE_VERSION = 1
_INSTALL_HINT = (
    "install the local extra (pip install -e '.[local]'), or use the fp32 model: --endpoint local/efficientnet-lite0"
)


def int8_path(cache_dir: Path | None = None) -> Path:
    """The int8 file for the fp32 export it comes from, onnxruntime's and scikit-image's versions, and the recipe."""
    fp32 = onnx_path(cache_dir)
    versions = "-".join(f"{short}{_version(name)}" for short, name in (("ort", "onnxruntime"), ("ski", "scikit-image")))
    return fp32.with_name(f"{fp32.stem}-int8-{versions}-recipe{_RECIPE_VERSION}.onnx")


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "none"


def saturating_cpu(machine: str | None = None, cpuinfo: str | None = None) -> bool:
    """True on an x86 CPU without VNNI, where onnxruntime's uint8 x int8 kernels can saturate.

    Without VNNI, onnxruntime multiplies uint8 activations by int8 weights with VPMADDUBSW, whose
    16-bit sums of two products saturate; the int8 vectors then drift further from fp32's (mean
    cosine 0.989 instead of 0.9967 on the quality gate's photos, measured with QEMU's Haswell CPU).
    ARM CPUs and x86 CPUs with VNNI (AVX512-VNNI or AVX-VNNI) compute them exactly. ``machine``
    and ``cpuinfo`` default to this machine's (``platform.machine()``, ``/proc/cpuinfo``).
    """
    import platform

    if (machine or platform.machine()).lower() not in ("x86_64", "amd64", "i686", "x86"):
        return False
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False  # not Linux: unknown, so assume a recent CPU
    flags = next((line for line in cpuinfo.splitlines() if line.startswith("flags")), "").split()
    return not {"avx512_vnni", "avx_vnni"} & set(flags)


def _photo_folder() -> Path:
    try:
        import skimage
    except ImportError:
        raise EmbedError(f"The int8 local model is calibrated on scikit-image's photos; {_INSTALL_HINT}.") from None
    return Path(skimage.__file__).parent / "data"


def _views(pixels: numpy.ndarray) -> Iterator[numpy.ndarray]:
    """A decoded photo, and its centre 3/4 mirrored and scaled back up (deterministic: no randomness)."""
    import numpy as np
    from PIL import Image

    yield pixels
    margin = SIDE // 8
    centre = Image.fromarray(np.ascontiguousarray(pixels[margin : SIDE - margin, margin : SIDE - margin, :][:, ::-1]))
    yield np.asarray(centre.resize((SIDE, SIDE), Image.Resampling.BILINEAR), dtype=np.uint8)


def calibration_pixels() -> numpy.ndarray:
    """The calibration set, (N, 224, 224, 3) uint8: each calibration photo, decoded as the kit does, and its views."""
    import numpy as np

    folder = _photo_folder()
    photos = []
    for name in CALIBRATION_PHOTOS:
        try:
            photos.append(decode_image(folder / name, SIDE))
        except ImageRejected as rejected:
            raise EmbedError(
                f"The int8 local model is calibrated on scikit-image's photo {name}, which this scikit-image"
                f" ({_version('scikit-image')}) cannot provide: {rejected.status} Install scikit-image>=0.22 with"
                " the local extra (pip install -e '.[local]'), or use --endpoint local/efficientnet-lite0."
            ) from None
    return np.stack([view for photo in photos for view in _views(photo)])


def fp32_nodes(model: Any) -> list[str]:
    """Names of the nodes that stay fp32: the first convolutions, all that feeds them, and their activations."""
    producers = {output: node for node in model.graph.node for output in node.output}
    convolutions = [node for node in model.graph.node if node.op_type == "Conv"][:_FP32_CONVOLUTIONS]
    names: set[str] = set()
    stack = list(convolutions)
    while stack:
        node = stack.pop()
        if node.name not in names:
            names.add(node.name)
            stack.extend(producers[name] for name in node.input if name in producers)
    outputs = {node.output[0] for node in convolutions}
    names.update(node.name for node in model.graph.node if node.op_type == "Clip" and node.input[0] in outputs)
    return sorted(names)


def build_int8(fp32: Path, dest: Path) -> Path:
    """Quantize the fp32 export ``fp32`` into ``dest``, atomically and deterministically; returns dest."""
    try:
        import onnx
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as exc:
        raise EmbedError(f"The int8 local model needs {exc.name}, which is not installed; {_INSTALL_HINT}.") from None

    pixels = calibration_pixels()
    with tempfile.TemporaryDirectory(prefix="embed-int8-") as work:
        # Constant folding and shape inference first, so that every convolution can be quantized.
        prepared = os.path.join(work, "prepared.onnx")
        quant_pre_process(str(fp32), prepared, skip_symbolic_shape=True)
        with atomic_output(dest) as temporary:
            quantize_static(
                prepared,
                temporary,
                _CalibrationBatches(pixels),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                nodes_to_exclude=fp32_nodes(onnx.load(prepared)),
                calibrate_method=CalibrationMethod.MinMax,
            )
    return dest


class _CalibrationBatches:
    """The calibration pixels in batches, as onnxruntime's calibration data reader hands them out."""

    def __init__(self, pixels: numpy.ndarray) -> None:
        self._batches = iter(range(0, len(pixels), BATCH_SIZE))
        self._pixels = pixels

    def get_next(self) -> dict[str, numpy.ndarray] | None:
        start = next(self._batches, None)
        return None if start is None else {"pixels": self._pixels[start : start + BATCH_SIZE]}


class EfficientNetLite0Int8(EfficientNetLite0):
    """EfficientNet-Lite0 features, statically quantized to int8; built into the cache on first use."""

    endpoint = ENDPOINT
    default_batch_size = BATCH_SIZE

    @staticmethod
    def model_path(cache_dir: Path | None = None) -> Path:
        """The int8 cache file."""
        return int8_path(cache_dir)

    def build(self) -> None:
        """Quantize the fp32 export (exported first, or again when damaged) into ``self.path``."""
        fp32 = EfficientNetLite0(cache_dir=self.cache_dir, threads=self.threads)
        build_int8(fp32.path, self.path)
