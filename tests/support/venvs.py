"""Tool virtual environments the tests build once and reuse.

Some tools cannot share the project's environment: checkov's bundled HCL
parser replaces ``hcl2``, and the stand-in provider's framework pins an older
protobuf than google-cloud-bigquery. Each gets its own venv under
``.cache/venvs/<name>``, rebuilt only when its requirements change.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("EMBED_CACHE_DIR", REPO / ".cache"))


def tool_venv(name: str, requirements: list[str]) -> Path:
    """Return the bin directory of venv ``name`` with ``requirements`` installed, building it if needed."""
    root = CACHE / "venvs" / name
    stamp = root / ".requirements"
    wanted = "\n".join(sorted(requirements)) + "\n"
    digest = hashlib.sha256(wanted.encode()).hexdigest()
    if stamp.is_file() and stamp.read_text() == digest:
        return root / "bin"
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(root)], check=True)
    pip = [str(root / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    result = subprocess.run([*pip, *requirements], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(
            f"could not install {' '.join(requirements)} into {root}; pip said:\n{result.stderr[-4000:]}"
        )
    stamp.write_text(digest)
    return root / "bin"


if __name__ == "__main__":
    # python -m tests.support.venvs NAME REQ... : prebuild a tool venv (used by the Makefile).
    print(tool_venv(sys.argv[1], sys.argv[2:]))
