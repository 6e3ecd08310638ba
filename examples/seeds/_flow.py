"""What the three seed examples share: flags for small test runs, and the printout."""

from __future__ import annotations

import argparse
from pathlib import Path

RECIPES = Path(__file__).resolve().parents[2] / "models"


def options(doc: str, *, dataset: str | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    if dataset is not None:
        parser.add_argument("--dataset", default=dataset, help="MNIST copy (.npz)")
    parser.add_argument("--epochs", type=int, help="override the recipe (tests use 1)")
    parser.add_argument("--out", default="runs/example", help="run directory")
    return parser.parse_args()


def report(run, result, bench) -> None:
    print(f"run: {run.path}  test metrics: {run.metrics['test']}")
    print(result.table())
    print(bench.table())
