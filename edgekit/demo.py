"""``edgekit demo``: the whole flow on the built-in digits dataset, in a fresh demo/ folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

DEMO_DIR = Path("runs") / "demo"


def run_demo(*, echo: Callable[[str], None] = print) -> dict:
    """Train the default digits model into ``runs/demo`` (replacing an earlier demo)."""
    from edgekit.trainer import train

    echo("edgekit demo: training the digits MLP (scikit-learn digits, 1797 images of 8x8)...")
    run = train(out=str(DEMO_DIR), force=True)
    test = run.metrics["test"]
    echo(
        f"trained: test accuracy {test['accuracy']:.4f} on {run.info['dataset']['n_test']} "
        f"held-out images, {run.info['model']['params']} parameters, "
        f"{run.info['training']['seconds']:.1f}s"
    )
    echo(f"run directory: {run.path}")
    return {"run": run}
