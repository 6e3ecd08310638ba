"""``edgekit demo``: the whole flow on the built-in digits dataset, into ``runs/demo``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgekit.errors import CheckFailed

DEMO_DIR = Path("runs") / "demo"


def run_demo(*, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Train the default digits model, export every variant, bench each, print the tables.

    Replaces an earlier ``runs/demo``. Returns the run, the export and the bench result.
    """
    from edgekit.bench import run_bench
    from edgekit.exporters import export
    from edgekit.trainer import train

    echo("edgekit demo 1/3: training the digits MLP (scikit-learn digits: 1797 8x8 images)...")
    run = train(out=str(DEMO_DIR), force=True)
    test = run.metrics["test"]
    echo(
        f"  test accuracy {test['accuracy']:.4f} on {run.info['dataset']['n_test']} held-out "
        f"images; {run.info['model']['params']:,} parameters; "
        f"{run.info['training']['seconds']:.1f} s -> {run.path}"
    )
    echo("edgekit demo 2/3: exporting TFLite (every quantization) and ONNX, validating each...")
    result = export(run.path, quantize=["all"], onnx=True, onnx_quantize=["dynamic", "static"])
    echo(result.table())
    echo(f"manifest: {result.manifest_path}")
    if not result.passed:
        raise CheckFailed(f"validation failed for {', '.join(result.failed_variants)}")
    echo("edgekit demo 3/3: benchmarking every artifact (CPU, 1 thread, batch 1 and 32)...")
    bench = run_bench([result.path], batch=[1, 32])
    echo(bench.table())
    if not bench.passed:
        raise CheckFailed(bench.problems())
    return {"run": run, "export": result, "bench": bench}
