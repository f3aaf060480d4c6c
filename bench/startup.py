"""Start-up cost of the CLI: `python -m embed --help` against a bare interpreter, in one run.

The CLI imports google.cloud, duckdb and torch only inside the commands that need
them, so `--help` should cost a small multiple of a bare interpreter, far below
what importing google.cloud.bigquery alone costs. Prints medians and ratios.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

RUNS = 7
CASES = {
    "bare interpreter": [sys.executable, "-c", "pass"],
    "embed --help": [sys.executable, "-m", "embed", "--help"],
    "import google.cloud.bigquery": [sys.executable, "-c", "import google.cloud.bigquery"],
}


def median_seconds(command: list[str]) -> float:
    """Median wall time of ``command`` over RUNS runs, after one warm-up run."""
    subprocess.run(command, check=True, capture_output=True)
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    """Measure every case and print each against the bare interpreter."""
    results = {name: median_seconds(cmd) for name, cmd in CASES.items()}
    base = results["bare interpreter"]
    for name, seconds in results.items():
        print(f"{name:30s} {seconds * 1000:8.1f} ms  {seconds / base:5.1f}x bare")
    ratio = results["import google.cloud.bigquery"] / results["embed --help"]
    print(f"importing google.cloud.bigquery costs {ratio:.1f}x what `embed --help` costs")


if __name__ == "__main__":
    main()
