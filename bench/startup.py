"""Start-up cost of the CLI: `embed --help` against `python -c "import typer"`, paired, in one run.

The CLI imports google.cloud, duckdb, torch and rich only inside the commands that need them,
and prints its help as plain text, so `embed --help` should cost little more than importing typer.
Goal: at most 1.5x. Each round runs every case once, in turn (paired, so a busy machine slows
them alike); the ratio is the median over the rounds of each round's ratio.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

ROUNDS = 10
GOAL = 1.5
BASELINE = "import typer"
CASES = {
    BASELINE: [sys.executable, "-c", "import typer"],
    "embed --help": [sys.executable, "-m", "embed", "--help"],
    "embed run --help": [sys.executable, "-m", "embed", "run", "--help"],
    "embed --version": [sys.executable, "-m", "embed", "--version"],
    "import google.cloud.bigquery": [sys.executable, "-c", "import google.cloud.bigquery"],
}


def seconds(command: list[str]) -> float:
    """Wall time of one run of ``command``."""
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    """Measure every case in paired rounds; print medians and each case's ratio to importing typer."""
    for command in CASES.values():  # warm the file cache and the bytecode
        seconds(command)
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(ROUNDS):
        for name, command in CASES.items():
            times[name].append(seconds(command))
    print(f"median of {ROUNDS} paired rounds")
    for name, values in times.items():
        ratios = [value / base for value, base in zip(values, times[BASELINE])]
        print(f"  {name:30s} {statistics.median(values) * 1000:7.1f} ms  {statistics.median(ratios):5.2f}x {BASELINE}")
    ratio = statistics.median(h / b for h, b in zip(times["embed --help"], times[BASELINE]))
    verdict = "within" if ratio <= GOAL else "OVER"
    print(f"embed --help / import typer: {ratio:.2f} ({verdict} the goal of {GOAL}x)")


if __name__ == "__main__":
    main()
