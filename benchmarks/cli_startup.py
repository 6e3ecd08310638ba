"""CLI cold start: `edgekit --help` and `edgekit bench --help` vs `python -c pass`.

Each command runs REPEATS times as a fresh process; the table shows median wall times.
Target: `edgekit --help` <= 0.3 s.

    python benchmarks/cli_startup.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import spread, table, write_result

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "edgekit --help": [sys.executable, "-m", "edgekit", "--help"],
    "edgekit bench --help": [sys.executable, "-m", "edgekit", "bench", "--help"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.repeats):
        for name, argv in COMMANDS.items():
            start = time.perf_counter()
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
            times[name].append(time.perf_counter() - start)
    base = spread(times["python -c pass"])["median"]
    rows = []
    for name, values in times.items():
        s = spread(values)
        rows.append(
            [
                name,
                f"{s['median'] * 1000:.0f} ms",
                f"{s['min'] * 1000:.0f}-{s['max'] * 1000:.0f}",
                f"{s['median'] / base:.1f}x",
            ]
        )
    print(table(["command", "median", "range", "vs python"], rows))
    print("target: edgekit --help <= 300 ms")
    write_result("cli_startup", {name: spread(v) for name, v in times.items()})


if __name__ == "__main__":
    main()
