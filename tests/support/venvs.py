"""Tool virtual environments the tests build once and reuse.

Some tools cannot share the project's environment: checkov's bundled HCL
parser replaces ``hcl2``, and the stand-in provider's framework pins an older
protobuf than google-cloud-bigquery. Each gets its own venv under
``.cache/venvs/<name>``, rebuilt only when its requirements change.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from tests.support import REPO

CACHE = REPO / ".cache"


def venv_bin(name: str) -> Path:
    """The bin directory of tool venv ``name`` (which may not be built yet)."""
    return CACHE / "venvs" / name / "bin"


def _digest(requirements: list[str]) -> str:
    """What a venv was built for: its requirements and this interpreter's version."""
    wanted = "\n".join(sorted(requirements)) + f"\npython {sys.version.split()[0]}\n"
    return hashlib.sha256(wanted.encode()).hexdigest()


def tool_venv_ready(name: str, requirements: list[str]) -> bool:
    """True when venv ``name`` exists and was built for ``requirements`` and this interpreter."""
    stamp = venv_bin(name).parent / ".requirements"
    return stamp.is_file() and stamp.read_text() == _digest(requirements)


def tool_venv(name: str, requirements: list[str]) -> Path:
    """Return the bin directory of venv ``name`` with ``requirements`` installed, building it if needed."""
    root = venv_bin(name).parent
    if tool_venv_ready(name, requirements):
        return root / "bin"
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(root)], check=True, capture_output=True)
    pip = [str(root / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    result = subprocess.run([*pip, *requirements], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(
            f"could not install {' '.join(requirements)} into {root}; pip said:\n{result.stderr[-4000:]}"
        )
    (root / ".requirements").write_text(_digest(requirements))
    return root / "bin"


if __name__ == "__main__":
    # python -m tests.support.venvs NAME REQ... : prebuild a tool venv (used by the Makefile).
    print(tool_venv(sys.argv[1], sys.argv[2:]))
