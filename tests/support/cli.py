"""``python -m embed`` run as a user runs it: a child process, without the caller's EMBED_* settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support import REPO

__all__ = ["clean_env", "embed", "embed_command"]


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment without EMBED_* settings (the model cache kept: exporting it again is slow), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMBED_") or k == "EMBED_MODEL_CACHE"}
    return env | (extra or {})


def embed_command(*args: str) -> list[str]:
    """The command line of ``python -m embed ARGS`` with this interpreter."""
    return [sys.executable, "-m", "embed", *args]


def embed(
    *args: str,
    cwd: Path = REPO,
    env: dict[str, str] | None = None,
    stdin: bytes | None = None,
    text: bool = True,
    timeout: float = 300,
) -> subprocess.CompletedProcess:
    """Run ``python -m embed ARGS`` in ``cwd`` and wait for it; ``env`` adds to the clean environment."""
    return subprocess.run(
        embed_command(*args), cwd=cwd, env=clean_env(env), input=stdin, capture_output=True, text=text, timeout=timeout
    )
