"""Shared helpers for the benchmark scripts: tables, results files, the machine."""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "mnist.npz"


def mnist_path() -> Path:
    """The MNIST copy to use: $EDGEKIT_DATA_DIR/mnist.npz or ../shared/datasets/mnist.npz."""
    env = os.environ.get("EDGEKIT_DATA_DIR")
    path = Path(env) / "mnist.npz" if env else SHARED_MNIST
    if not path.is_file():
        raise SystemExit(f"MNIST not found at {path}; set EDGEKIT_DATA_DIR")
    return path


def mnist_run(run: Path | None, work: Path) -> Path:
    """The MNIST run to measure: ``run`` if given, else train models/mnist_mlp.toml in ``work``."""
    if run is not None:
        return run
    import edgekit

    recipe = Path(__file__).resolve().parents[1] / "models" / "mnist_mlp.toml"
    return edgekit.train(str(recipe), dataset=str(mnist_path()), out=str(work / "mnist")).path


def table(header: list[str], rows: list[list]) -> str:
    cells = [[str(c) for c in row] for row in [header, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def spread(values: list[float]) -> dict:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "runs": values,
    }


def write_result(name: str, data: dict) -> Path:
    from edgekit.envinfo import environment

    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"benchmark": name, "environment": environment(), **data}
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return path


def fmt(value, spec: str, suffix: str = "") -> str:
    return "-" if value is None else f"{format(value, spec)}{suffix}"


VARIANT_HEADER = [
    "variant",
    "runtime",
    "size",
    "accuracy",
    "drop",
    "max abs diff",
    "p50, batch 1",
    "samples/s, batch 256",
]


def variant_rows(entries: list[dict]) -> list[list[str]]:
    """The rows of the variant table (variant_table.py prints them, render_readme.py renders)."""
    from edgekit.tables import latency, percent, size

    return [
        [
            e["variant"],
            e["runtime"],
            size(e["size_bytes"]),
            percent((e["metrics"] or {}).get("accuracy")),
            fmt(e["accuracy_drop"], "+.2f", " pp"),
            fmt(e["max_abs_diff"], ".1e"),
            latency(e.get("p50_ms_batch1")),
            fmt(e.get("throughput_batch256"), ",.0f"),
        ]
        for e in entries
    ]
