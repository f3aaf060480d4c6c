"""python -m tests.standin [--mode standin|registry] [--print-env]

Builds (or reuses) the offline google provider stand-in and, with --print-env,
prints ``export K=V`` lines for the terraform environment::

    eval "$(.venv/bin/python -m tests.standin --print-env)"
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time

from . import MODES, build_standin, terraform_env


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.standin", description=__doc__.splitlines()[0])
    ap.add_argument(
        "--mode", choices=MODES, default=None, help="provider to use (default: $EMBED_TF_PROVIDER, else standin)"
    )
    ap.add_argument("--print-env", action="store_true", help="print export lines for the environment")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    try:
        env = terraform_env(args.mode)
    except (RuntimeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        if args.print_env:
            print("false")  # so that `eval "$(... --print-env)" && terraform ...` stops here
        return 1
    if args.print_env:
        for key, value in env.items():
            print(f"export {key}={shlex.quote(value)}")
        return 0
    mode = env["EMBED_TF_PROVIDER"]
    print(f"mode: {mode} ({time.monotonic() - t0:.2f}s)")
    if mode == "standin":
        build = build_standin()
        print(f"build: {build.key}\nschema: {build.schema}\nprovider: {build.executable}")
    for key, value in env.items():
        print(f"{key}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
