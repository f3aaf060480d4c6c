"""GoogleSQL analysis cost, in one run: the one-off compile of the analyzer against starting it from
the cache, the catalog, each statement, and `embed sql --check` against `embed sql`.

The analyzer is ZetaSQL compiled to a 28 MB WebAssembly module. Compiling it takes tens of seconds,
so embed.googlesql keeps the compiled module in the user's cache and later processes load it.
`--no-compile` skips the compile (and uses the user's cache as it is).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from embed import googlesql, sql
from embed.settings import load_settings

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_OUTPUTS = REPO / "terraform" / "outputs.example.json"

VARIANTS = {
    "default": {},
    "json_512": {"flatten_json_output": False, "output_dimensionality": 512},
    "video": {"start_second": 0, "end_second": 60, "interval_seconds": 8.5},
}
ROUNDS = 5


def seconds(action) -> float:
    """Wall time of one call of ``action``."""
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def compile_and_load(cache: Path) -> tuple[float, float]:
    """Seconds to compile the module (and save it in ``cache``), then to load it from there."""
    import wasmtime
    from zetasql.wasi import get_wasm_path

    config = wasmtime.Config()
    config.shared_memory = True  # as the package configures its engine
    engine = wasmtime.Engine(config)
    wasm = get_wasm_path()
    compiled = seconds(lambda: googlesql.load_module(engine, wasm, cache))
    loaded = seconds(lambda: googlesql.load_module(engine, wasm, cache))
    return compiled, loaded


def cli(*args: str) -> float:
    """Median wall time of `python -m embed sql ARGS` over three runs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMBED_")}
    command = [sys.executable, "-m", "embed", "sql", "--outputs", str(EXAMPLE_OUTPUTS), *args]
    times = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run(command, cwd=REPO, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    """Measure and print each cost, and the ratios that matter."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-compile", action="store_true", help="skip the one-off compile (tens of seconds)")
    args = parser.parse_args()
    googlesql.require()
    with tempfile.TemporaryDirectory() as scratch:
        if not args.no_compile:
            compiled, loaded = compile_and_load(Path(scratch) / "embed-kit")
            os.environ["XDG_CACHE_HOME"] = scratch  # the instance below loads what was just compiled
            print(f"compile the module (once per machine)     {compiled:8.2f} s")
            print(
                f"load it from the cache                    {loaded:8.3f} s   compile / load: {compiled / loaded:.0f}x"
            )
        start = seconds(googlesql.runtime.instance)
        print(f"start an instance (import, load, start)   {start:8.3f} s")

        settings = load_settings(outputs_file=EXAMPLE_OUTPUTS, environ={})
        analyzer = googlesql.analyzer(settings)
        first = seconds(lambda: analyzer.analyze("SELECT 1"))
        print(f"build and register a catalog              {first:8.3f} s")

        per_statement: dict[str, list[float]] = {}
        for _ in range(ROUNDS):
            for overrides in VARIANTS.values():
                variant = load_settings(overrides, outputs_file=EXAMPLE_OUTPUTS, environ={})
                checker = googlesql.analyzer(variant)
                for statement in sql.every_statement(variant):
                    took = seconds(
                        lambda c=checker, s=statement: c.analyze(s.sql, {p.name: p.type for p in s.params}, s.name)
                    )
                    per_statement.setdefault(statement.name, []).append(took)
        medians = {name: statistics.median(times) for name, times in per_statement.items()}
        for name, median in sorted(medians.items(), key=lambda item: -item[1]):
            print(f"  analyze {name:32s} {median * 1000:8.1f} ms")
        typical = statistics.median(medians.values())
        print(
            f"per statement (median of the medians)     {typical * 1000:8.1f} ms   start / statement: "
            f"{start / typical:.0f}x"
        )

        plain, checked = cli(), cli("--check")  # inside: the subprocesses share the cache just written
        print(f"`embed sql`                               {plain:8.2f} s")
        print(f"`embed sql --check` (cached module)       {checked:8.2f} s   checked / plain: {checked / plain:.1f}x")


if __name__ == "__main__":
    main()
