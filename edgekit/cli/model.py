"""``edgekit train``, ``export`` and ``demo``: making a model and its artifacts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from edgekit.cli.flags import int_list, str_list
from edgekit.errors import CheckFailed

if TYPE_CHECKING:
    from edgekit.formats.run_dir import Run


@click.command()
@click.argument("recipe", required=False, type=click.Path(dir_okay=False))
@click.option(
    "--dataset", help="digits (default), breast_cancer, synthetic, mnist, or a .csv/.npz file."
)
@click.option("--target", help="CSV target column (default: the last column).")
@click.option(
    "--task",
    type=click.Choice(["auto", "binary", "multiclass", "regression"]),
    help="Task; auto (the default) infers it from the labels.",
)
@click.option("--hidden", help="Hidden layer sizes, e.g. 128,64 (default 64, or the recipe's).")
@click.option("--activation", help="Hidden activation: relu (default), tanh, gelu, ...")
@click.option("--dropout", type=float, help="Dropout after each hidden layer (default 0: none).")
@click.option("--epochs", type=int, help="Training epochs (default 30, or the recipe's).")
@click.option("--batch-size", type=int, help="Samples per training step (default 32).")
@click.option("--learning-rate", type=float, help="Optimizer learning rate (default 0.001).")
@click.option(
    "--optimizer", type=click.Choice(["adam", "sgd", "rmsprop"]), help="Optimizer (default adam)."
)
@click.option(
    "--val-split", type=float, help="Fraction of the training data for validation (default 0.1)."
)
@click.option(
    "--test-split",
    type=float,
    help="Fraction held out for testing, unless the dataset has its own (default 0.2).",
)
@click.option(
    "--early-stopping",
    type=int,
    metavar="PATIENCE",
    help="Stop after PATIENCE epochs without val_loss improvement; restores the best weights "
    "(default off: every epoch runs).",
)
@click.option("--seed", type=int, help="Seed for splits, weights and shuffling (default 0).")
@click.option(
    "--distribute",
    type=click.Choice(["none", "mirrored", "multi-worker"]),
    help="tf.distribute strategy (default none); multi-worker reads TF_CONFIG.",
)
@click.option(
    "--out", type=click.Path(file_okay=False), help="Run directory (default runs/<name>-<time>)."
)
@click.option("--force", is_flag=True, help="Overwrite an existing run directory.")
def train(recipe: str | None, hidden: str | None, **options: Any) -> None:
    """Train a feedforward model and write its run directory.

    \b
    Examples:
      edgekit train
      edgekit train models/mnist_mlp.toml --dataset ../shared/datasets/mnist.npz
      edgekit train --dataset data.csv --target species --hidden 32,16 --epochs 50
    """
    from edgekit.trainer import train as train_api

    options["hidden"] = None if hidden is None else int_list("--hidden", hidden)
    run = train_api(recipe, **options)
    if run.path is None:
        test = ", ".join(f"{k}={v:.4f}" for k, v in run.metrics["test"].items())
        click.echo(f"worker finished (the chief writes the run directory); test: {test}")
        return
    click.echo(_run_summary(run))


def _run_summary(run: Run) -> str:
    test = run.metrics.get("test", {})
    parts = [f"{k}={v:.4f}" for k, v in test.items()]
    ds = run.info["dataset"]
    return (
        f"trained {run.name}: {run.task}, {run.info['model']['params']:,} params, "
        f"{run.info['training']['epochs_run']} epochs in {run.info['training']['seconds']:.1f}s; "
        f"test ({ds['n_test']} samples): {', '.join(parts)}\nrun directory: {run.path}"
    )


@click.command(short_help="Export a run or a model to TFLite, ONNX and C.")
@click.argument("source", required=False, type=click.Path())
@click.option(
    "--tflite", is_flag=True, help="Export TensorFlow Lite (the default when nothing is chosen)."
)
@click.option(
    "--quantize",
    help="TFLite variants: float32,float16,dynamic,int8,int16x8 or all; auto (not in all) "
    "searches for the smallest artifact within --max-accuracy-drop.",
)
@click.option(
    "--io-type",
    type=click.Choice(["float", "int8", "uint8"]),
    help="Input/output type of the int8 variant (default int8).",
)
@click.option("--onnx", is_flag=True, help="Export ONNX (onnx-float32).")
@click.option("--onnx-quantize", help="ONNX Runtime quantization: dynamic,static.")
@click.option("--opset", type=int, default=17, show_default=True, help="ONNX opset.")
@click.option("--c-array", is_flag=True, help="Write each .tflite as a C array (.h/.c) too.")
@click.option(
    "--c-source", type=click.Choice(["float32", "int8"]), help="Standalone C inference code."
)
@click.option(
    "--c-prefix", default="edgekit", show_default=True, help="Prefix of the generated C names."
)
@click.option(
    "--c-rounding",
    type=click.Choice(["tflm", "litert"]),
    default="tflm",
    show_default=True,
    help="Whose int8 kernels --c-source int8 reproduces bit for bit: TensorFlow Lite Micro "
    "(ties rounded away from zero, fixed-point softmax/tanh/logistic) or LiteRT's builtin ones.",
)
@click.option(
    "--mcu",
    is_flag=True,
    help="TFLite variants with a fixed batch of 1 and no shape ops (SHAPE, STRIDED_SLICE, "
    "PACK), as TensorFlow Lite Micro wants them.",
)
@click.option(
    "--data",
    type=click.Path(dir_okay=False),
    help="Test data (.npz with x and y, or .csv) to validate on; a bare model needs it for "
    "accuracy, a run uses its own by default.",
)
@click.option("--target", help="The label column of a --data CSV (default: none, or the run's).")
@click.option(
    "--calibration",
    type=click.Path(dir_okay=False),
    help="Representative inputs (.npz x or .csv) for int8, int16x8 and onnx-static "
    "(default: the --data inputs).",
)
@click.option(
    "--calibration-samples",
    type=int,
    default=200,
    show_default=True,
    help="Calibration inputs for int8, int16x8 and onnx-static.",
)
@click.option(
    "--atol",
    type=float,
    default=1e-4,
    show_default=True,
    help="Max |diff| vs Keras allowed for float32 artifacts (times the largest |output| "
    "where that is above 1).",
)
@click.option(
    "--max-accuracy-drop",
    type=float,
    default=1.0,
    show_default=True,
    metavar="PP",
    help="Max accuracy drop (percentage points) allowed for quantized artifacts.",
)
@click.option(
    "--integer-only",
    is_flag=True,
    help="With --quantize auto: only artifacts whose every op is integer (int8/int16 inputs "
    "and outputs), as microcontrollers and NPUs need.",
)
@click.option(
    "--out", type=click.Path(file_okay=False), help="Export directory (default RUN_DIR/export)."
)
@click.option(
    "--force",
    is_flag=True,
    help="Replace variants the export directory already holds (or an export of another "
    "model); the other artifacts are kept.",
)
def export(
    source: str | None, quantize: str | None, onnx_quantize: str | None, **options: Any
) -> None:
    """Export a run (default runs/latest), a .keras/.h5 model or a SavedModel directory to
    TFLite, ONNX and C. Into an existing export directory, the variants asked for are added
    and the others kept.

    \b
    Examples:
      edgekit export --quantize all
      edgekit export runs/latest --tflite --quantize float32,int8 --onnx --onnx-quantize dynamic
      edgekit export model.keras --data test.csv --target label --quantize int8 --out build/
      edgekit export --quantize int8 --mcu --c-array
      edgekit export --quantize auto --integer-only --max-accuracy-drop 1
    """
    from edgekit.exporters import export as export_api

    result = export_api(
        source, quantize=str_list(quantize), onnx_quantize=str_list(onnx_quantize),
        on_step=lambda line: click.echo(line, err=True), **options,
    )  # fmt: skip
    click.echo(result.table())
    click.echo(f"manifest: {result.manifest_path}")
    if not result.passed:
        raise CheckFailed(f"validation failed for {', '.join(result.failed_variants)}")


@click.command(short_help="Train, export and bench the default model.")
def demo() -> None:
    """Train on the built-in digits dataset, export and print the result table.

    \b
    Example:
      edgekit demo
    """
    from edgekit.demo import run_demo

    run_demo(echo=click.echo)
