"""The real local models, built once per test session from scratch into a temporary model cache.

As on a CI machine with an empty cache: the fp32 model is exported with torch, then the int8 model
(the default endpoint) is quantized from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty model cache for this session."""
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="session")
def fp32_model(model_cache: Path) -> Any:
    """``local/efficientnet-lite0``, exported into the session's cache."""
    pytest.importorskip("onnxruntime", reason="the local extra is not installed: pip install -e '.[local]'")
    from embed.engines.local.models.efficientnet import EfficientNetLite0

    return EfficientNetLite0(cache_dir=model_cache)


@pytest.fixture(scope="session")
def model(fp32_model: Any, model_cache: Path) -> Any:
    """The default endpoint's model, ``local/efficientnet-lite0-int8``, quantized from the session's fp32 export."""
    from embed.engines.local.models.int8 import EfficientNetLite0Int8

    return EfficientNetLite0Int8(cache_dir=model_cache)
