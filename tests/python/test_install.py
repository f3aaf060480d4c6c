"""Install weight: the base install holds what `embed` imports on BigQuery, and each make target installs
only the extras it runs (`make plan` and `make lint` never build torch or scikit-image)."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys

import pytest

from tests.support import REPO

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
PACKAGE = REPO / "python" / "embed"
# Code that runs only with an extra installed: the embedded engine, the GoogleSQL check, the demo's photos.
EXTRA_CODE = ("engines/local/", "googlesql/", "demo.py")
# The module each base distribution provides.
MODULE_OF = {
    "typer": "typer",
    "jinja2": "jinja2",
    "google-cloud-bigquery": "google",
    "google-auth": "google",
    "pyarrow": "pyarrow",
    "requests": "requests",
    "urllib3": "urllib3",
    "rich": "rich",
}
HEAVY = {"torch", "scikit-image"}


def names(requirements: list[str]) -> set[str]:
    """Distribution names of requirement strings, lower case."""
    return {re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].lower() for r in requirements}


def requirements(extras: str) -> set[str]:
    """Every distribution ``pip install '.<extras>'`` asks for by name."""
    wanted = set(names(PROJECT["dependencies"]))
    for extra in filter(None, extras.strip("[]").split(",")):
        wanted |= names(PROJECT["optional-dependencies"][extra])
    return wanted


def imported_modules() -> set[str]:
    """Top-level modules imported by the package's code outside the extras (absolute imports)."""
    found = set()
    for path in PACKAGE.rglob("*.py"):
        if path.relative_to(PACKAGE).as_posix().startswith(EXTRA_CODE):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"embed", "__future__"}


def test_the_base_install_is_what_embed_imports() -> None:
    base = names(PROJECT["dependencies"])
    assert not base & {"pytest", "pyyaml", "sqlglot", "duckdb", "zetasql", *HEAVY}
    assert base <= set(MODULE_OF), f"a base dependency the test does not know: {base - set(MODULE_OF)}"
    assert imported_modules() == {MODULE_OF[name] for name in base}


def test_sqlglot_comes_with_the_embedded_engine_and_the_tests() -> None:
    assert "sqlglot" in requirements("[local]") and "sqlglot" in requirements("[test]")


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize(
    ("target", "extras"),
    [("plan", ""), ("lint", "[test]"), ("demo", "[local,demo]"), ("test", "[test,local,check,demo]")],
)
def test_each_make_target_installs_the_extras_it_runs(tmp_path, target: str, extras: str) -> None:
    done = subprocess.run(
        ["make", "-n", f"VENV={tmp_path / 'venv'}", target, *(["OFFLINE=1"] if target == "plan" else [])],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert re.findall(r"pip install [^\n]* -e '\.([^']*)'", done.stdout) == [extras]
    if target in ("plan", "lint"):
        assert not requirements(extras) & HEAVY
