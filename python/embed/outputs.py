"""The Terraform output ``embed``, read where Terraform puts it: the one place Python meets Terraform.

Three sources, as the settings ask (see :mod:`embed.settings`):

- a saved ``terraform output -json`` document (or the bare object ``terraform output -json embed``
  writes), from a file or, with ``-``, from standard input; UTF-8, or UTF-16/32 with a byte-order
  mark, as PowerShell's ``>`` writes it;
- ``terraform output -json`` run in the root stack's folder, with the binary ``$TERRAFORM`` names
  (``tofu`` for OpenTofu), as the Makefile does. Terraform's own message is passed on when it fails.

Nothing here reads ``.tf`` files or state: only what ``terraform output`` prints.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from embed.errors import EmbedError

__all__ = [
    "DEFAULT_TF_DIR",
    "MAX_OUTPUTS_BYTES",
    "OUTPUT_FIELDS",
    "STDIN",
    "TERRAFORM_ENV",
    "embed_value",
    "parse_json",
    "read_outputs_file",
    "read_terraform_outputs",
    "terraform_binary",
]

DEFAULT_TF_DIR = Path("terraform")
STDIN = Path("-")
TERRAFORM_ENV = "TERRAFORM"
# Fields of the Terraform output `embed`, the contract with the root stack.
OUTPUT_FIELDS = (
    "project_id",
    "location",
    "dataset_id",
    "connection",
    "connection_service_account",
    "object_table",
    "model",
    "results_table",
    "endpoint",
)
_SAVE_HINT = "save it with `terraform output -json > FILE`"
# Far above any stack's outputs: a larger file is something else, and is not read whole.
MAX_OUTPUTS_BYTES = 64 * 2**20
_NO_OUTPUTS_HINT = "run `make apply` first, or pass --outputs FILE (saved with `terraform output -json > FILE`)"
# `terraform output` can wait on a remote backend; it never needs longer than this.
_TIMEOUT = 300


def terraform_binary(environ: Mapping[str, str] | None = None) -> str:
    """The Terraform binary to run: ``$TERRAFORM`` (e.g. ``tofu``) or ``terraform``."""
    return (os.environ if environ is None else environ).get(TERRAFORM_ENV) or "terraform"


def _decode(data: bytes, where: str, hint: str) -> str:
    """JSON text from ``data``: UTF-8, or UTF-16/32 (with or without a byte-order mark, as JSON allows)."""
    if not data.strip():
        raise EmbedError(f"{where} is empty; {hint}.")
    encoding = json.detect_encoding(data)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise EmbedError(
            f"{where} is not text in UTF-8 (nor UTF-16 or UTF-32): byte {data[exc.start]:#04x} at offset"
            f" {exc.start} is not {encoding}; {hint} (PowerShell's `>` writes UTF-16, which is read too)."
        ) from None


def parse_json(data: bytes, where: str, hint: str = _SAVE_HINT, limit: int | None = None) -> Any:
    """The JSON document in ``data`` (read from ``where``), or an EmbedError that says what is wrong and ``hint``."""
    if limit is not None and len(data) > limit:
        raise EmbedError(f"{where} is larger than {limit // 2**20} MiB: that is not `terraform output -json`; {hint}.")
    text = _decode(data, where, hint)
    try:
        return json.loads(text)
    except RecursionError:
        raise EmbedError(f"{where} nests JSON too deeply; {hint}.") from None
    except ValueError as exc:
        raise EmbedError(f"{where} is not valid JSON ({exc}); {hint}.") from None


def read_outputs_file(path: Path) -> dict[str, Any]:
    """The ``embed`` output's value from a saved ``terraform output -json`` file, or stdin when ``path`` is ``-``."""
    if Path(path) == STDIN:
        where = "the outputs on standard input (--outputs -)"
        if sys.stdin is None or sys.stdin.isatty():
            raise EmbedError(
                "--outputs - reads the outputs from standard input: pipe them in, e.g."
                " `terraform output -json | python -m embed run --outputs -`."
            )
        return embed_value(
            parse_json(sys.stdin.buffer.read(MAX_OUTPUTS_BYTES + 1), where, limit=MAX_OUTPUTS_BYTES), where
        )
    where = f"outputs file {str(path)!r}"
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_OUTPUTS_BYTES + 1)
    except FileNotFoundError:
        raise EmbedError(f"{where} not found; {_SAVE_HINT}.") from None
    except OSError as exc:
        raise EmbedError(f"cannot read {where}: {exc.strerror or exc}.") from None
    return embed_value(parse_json(data, where, limit=MAX_OUTPUTS_BYTES), where)


def read_terraform_outputs(tf_dir: Path, binary: str) -> dict[str, Any]:
    """The ``embed`` output's value from ``terraform output -json`` in ``tf_dir``.

    The command runs as python-terraform's ``cmd`` would run it, minus its reading of the state
    file: the kit reads only what ``terraform output`` prints. When it fails, Terraform's own
    message is passed on.
    """
    tf_dir = Path(tf_dir)
    where = f"Terraform outputs in {str(tf_dir)!r}"
    if not tf_dir.is_dir():
        raise EmbedError(f"Terraform directory {str(tf_dir)!r} not found: pass --tf-dir DIR, or --outputs FILE.")
    command = [binary, "output", "-json", "-no-color"]
    try:
        done = subprocess.run(
            command, cwd=tf_dir, capture_output=True, stdin=subprocess.DEVNULL, timeout=_TIMEOUT, check=False
        )
    except FileNotFoundError:
        raise EmbedError(
            f"`{binary}` was not found on PATH: install Terraform (or set {TERRAFORM_ENV}=tofu for OpenTofu),"
            " or pass --outputs FILE."
        ) from None
    except PermissionError:
        raise EmbedError(
            f"`{binary}` cannot be run (permission denied): set {TERRAFORM_ENV} to a Terraform binary."
        ) from None
    except subprocess.TimeoutExpired:
        raise EmbedError(
            f"`{binary} output -json` in {str(tf_dir)!r} did not finish in {_TIMEOUT}s (a remote backend that does"
            " not answer?); pass --outputs FILE saved from a working shell."
        ) from None
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip() or done.stdout.decode("utf-8", "replace").strip()
        raise EmbedError(
            f"`{binary} output -json` failed in {str(tf_dir)!r} (exit {done.returncode}). Terraform said:\n"
            + _indent(said or "(nothing)")
            + "\nFix what Terraform reports (`make init` for a backend that needs initialising),"
            " or pass --outputs FILE."
        )
    warnings = done.stderr.decode("utf-8", "replace").strip()
    if warnings:  # Terraform's warnings (a deprecated backend setting ...) are for the user to see
        print(warnings, file=sys.stderr)
    if not done.stdout.strip():
        raise EmbedError(f"{where}: `{binary} output -json` printed nothing; {_NO_OUTPUTS_HINT}.")
    try:
        text = done.stdout.decode("utf-8")
        document = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise EmbedError(
            f"{where}: `{binary} output -json` did not print JSON ({exc}); is {TERRAFORM_ENV}={binary} Terraform?"
            f" Otherwise {_NO_OUTPUTS_HINT}."
        ) from None
    return embed_value(document, where, tf_dir=tf_dir)


def _indent(text: str) -> str:
    """``text`` indented, each line, for quoting another tool's message inside ours."""
    return "\n".join("  " + line for line in text.splitlines())


def _looks_like_module(tf_dir: Path) -> bool:
    """True when ``tf_dir`` is a module's folder (``modules/NAME``, Terraform's layout) rather than a root stack."""
    return Path(tf_dir).resolve().parent.name == "modules"


def _no_embed_output(found: list[str], where: str, tf_dir: Path | None) -> EmbedError:
    """The error for a document without an ``embed`` output: what it did hold, and where ``embed`` comes from."""
    held = f"it holds {', '.join(f'`{name}`' for name in found)}" if found else "it holds no outputs at all"
    if tf_dir is not None and _looks_like_module(tf_dir):
        return EmbedError(
            f"{where}: there is no `embed` output ({held}): {str(tf_dir)!r} is a module, not a root stack."
            " The root stack `terraform/` composes the modules and declares `embed`: pass --tf-dir terraform"
            " (after `make apply`), or --outputs FILE."
        )
    if tf_dir is not None and not found:
        return EmbedError(
            f"{where}: there is no `embed` output ({held}): the stack has not been applied, or {str(tf_dir)!r} is"
            " not the root stack that declares `embed`. Run `make apply` (or pass --tf-dir to the root stack),"
            " or pass --outputs FILE."
        )
    return EmbedError(
        f"{where}: there is no `embed` output ({held}); the kit reads the root stack's `embed` output:"
        f" {_NO_OUTPUTS_HINT}."
    )


def embed_value(data: object, where: str, *, tf_dir: Path | None = None) -> dict[str, Any]:
    """The ``embed`` object of ``terraform output -json`` data; the bare object is accepted too."""
    if not isinstance(data, dict):
        raise EmbedError(
            f"{where}: expected a JSON object as `terraform output -json` writes, got {type(data).__name__}."
        )
    if "embed" not in data:
        # `terraform output -json` gives each output as {"value": ...}; `terraform output -json embed`, the bare value.
        outputs_document = all(isinstance(entry, dict) and "value" in entry for entry in data.values())
        if not outputs_document and any(name in data for name in OUTPUT_FIELDS):
            return data
        raise _no_embed_output(sorted(str(name) for name in data), where, tf_dir)
    entry = data["embed"]
    if not isinstance(entry, dict) or "value" not in entry:
        raise EmbedError(
            f"{where}: output `embed` has no `value`; expected the `terraform output -json` format"
            ' {"embed": {"sensitive": false, "type": [...], "value": {...}}}.'
        )
    value = entry["value"]
    if not isinstance(value, dict):
        raise EmbedError(f"{where}: output `embed` must be an object, got {type(value).__name__} {value!r}.")
    return value
