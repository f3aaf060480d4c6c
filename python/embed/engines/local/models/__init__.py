"""Local image models that evaluate ML.GENERATE_EMBEDDING for the embedded engine.

An endpoint name says plainly that it is local and what it runs, and has its own dimension: local
vectors are never presented as multimodalembedding@001 vectors. ``local/efficientnet-lite0-int8``
(the default) and ``local/efficientnet-lite0`` (fp32) are the same network; int8 is about twice as
fast and its vectors are close to fp32's but not equal, so they are two endpoints. Models load once
per process (:func:`load_model`). Inputs Vertex AI would refuse get a non-retryable row status
(:func:`rejection_status` and the statuses in :mod:`.images`), never an exception.

The engine, not the model, applies the testing knob ``EMBED_LOCAL_FAULTS`` (:mod:`.faults`): rows
it fails never reach a model. ``EMBED_MODEL_CACHE`` moves the exported-model cache (default
``~/.cache/embed-kit/models``).

More endpoints go in ``_REGISTRY``: a name, its dimension, and the ``module:class`` that loads
it (constructed with no arguments, and implementing :class:`LocalModel`).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path
from typing import Protocol

from embed.engines.local.models.images import rejection_status
from embed.errors import EmbedError

__all__ = [
    "DEFAULT_ENDPOINT",
    "ENDPOINTS",
    "FP32_ENDPOINT",
    "INT8_ENDPOINT",
    "EmbeddingOutcome",
    "ImageInput",
    "LocalModel",
    "check_output_dimensionality",
    "endpoint_dimension",
    "load_model",
    "rejection_status",
]


@dataclass(frozen=True)
class ImageInput:
    """One object-table row the model must embed."""

    uri: str  # file://...
    path: Path  # the local file
    size: int
    content_type: str | None  # sniffed by the engine; may be None


@dataclass(frozen=True)
class EmbeddingOutcome:
    """A row's embedding, or why there is none: status is "" on success, like BigQuery."""

    embedding: list[float] | None
    status: str


class LocalModel(Protocol):
    """What the embedded engine calls to evaluate ML.GENERATE_EMBEDDING on images."""

    endpoint: str
    dimension: int

    def embed_images(
        self, items: Sequence[ImageInput], output_dimensionality: int | None = None
    ) -> list[EmbeddingOutcome]:
        """One outcome per item, in order."""
        ...


@dataclass(frozen=True)
class _Endpoint:
    dimension: int
    loader: str  # "module:attribute", imported only when the model loads


# A CLIP endpoint (text and image in one space, e.g. "local/open-clip-vit-b-32") belongs here once
# open_clip_torch installs beside torch==2.13.0 without pulling another torch; today it does not.
INT8_ENDPOINT = "local/efficientnet-lite0-int8"
FP32_ENDPOINT = "local/efficientnet-lite0"
_REGISTRY: dict[str, _Endpoint] = {
    INT8_ENDPOINT: _Endpoint(1280, "embed.engines.local.models.int8:EfficientNetLite0Int8"),
    FP32_ENDPOINT: _Endpoint(1280, "embed.engines.local.models.efficientnet:EfficientNetLite0"),
}
ENDPOINTS: tuple[str, ...] = tuple(_REGISTRY)
# int8 by default: about twice fp32's speed, with the same nearest neighbours (tests/local/test_int8_quality.py).
# Its vectors are close to fp32's, not equal, hence its own name: a results table holds one of the two.
DEFAULT_ENDPOINT = INT8_ENDPOINT

_loaded: dict[str, LocalModel] = {}
_lock = threading.Lock()


def _endpoint(endpoint: str) -> _Endpoint:
    try:
        return _REGISTRY[endpoint]
    except KeyError:
        known = ", ".join(ENDPOINTS)
        raise EmbedError(
            f"The embedded engine has no model for endpoint {endpoint!r}; it runs local models only."
            f" Use one of: {known} (set the model endpoint to one of these for --engine local)."
        ) from None


def endpoint_dimension(endpoint: str) -> int:
    """The embedding length a local endpoint produces."""
    return _endpoint(endpoint).dimension


def load_model(endpoint: str) -> LocalModel:
    """The model for a local endpoint, loaded once per process."""
    spec = _endpoint(endpoint)
    with _lock:
        model = _loaded.get(endpoint)
        if model is None:
            module, _, attribute = spec.loader.partition(":")
            model = getattr(importlib.import_module(module), attribute)()
            _loaded[endpoint] = model
    return model


def check_output_dimensionality(endpoint: str, dimension: int, requested: int | None) -> None:
    """Refuse an output_dimensionality the model cannot honour (anything but None or its own)."""
    if requested is None:
        return
    if isinstance(requested, Integral) and not isinstance(requested, bool) and requested == dimension:
        return
    raise EmbedError(
        f"output_dimensionality {requested!r} cannot be honoured by {endpoint}: its embeddings have"
        f" {dimension} dimensions. Omit output_dimensionality or set it to {dimension}."
    )
