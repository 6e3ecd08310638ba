"""The ``edgekit`` command line: thin click commands over the public API.

Each command parses its flags, calls one API function and prints. ``main()`` is the only
place that turns an :class:`~edgekit.errors.EdgekitError` into a one-line message and an exit
code (2 for bad input, 1 for a failed check). Nothing here imports TensorFlow.
"""

from __future__ import annotations

import signal
import sys
from typing import NoReturn

import click

from edgekit._version import __version__
from edgekit.errors import CheckFailed, EdgekitError


def _int_list(flag: str, text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise EdgekitError(f"{flag} takes comma-separated integers, got {text!r}") from None


def _str_list(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [part.strip() for part in text.split(",") if part.strip()]


def _not_built(command: str, issue: str) -> None:
    raise EdgekitError(f"`edgekit {command}` is not built yet ({issue}); see the README's roadmap")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="edgekit")
def cli() -> None:
    """Train small Keras models, export them for devices, benchmark them honestly.

    \b
    Example:
      edgekit train                    # digits MLP -> runs/<name>/, runs/latest
      edgekit export --quantize all    # TFLite variants of runs/latest -> runs/latest/export
      edgekit bench                    # latency and accuracy of every artifact
    """


@cli.command()
@click.argument("recipe", required=False, type=click.Path(dir_okay=False))
@click.option(
    "--dataset", help="digits (default), breast_cancer, synthetic, mnist, or a .csv/.npz file."
)
@click.option("--target", help="CSV target column (default: the last column).")
@click.option(
    "--task",
    type=click.Choice(["auto", "binary", "multiclass", "regression"]),
    help="Task; auto infers it from the labels.",
)
@click.option("--hidden", help="Hidden layer sizes, e.g. 128,64.")
@click.option("--activation", help="Hidden activation (relu, tanh, ...).")
@click.option("--dropout", type=float, help="Dropout after each hidden layer.")
@click.option("--epochs", type=int)
@click.option("--batch-size", type=int)
@click.option("--learning-rate", type=float)
@click.option("--optimizer", type=click.Choice(["adam", "sgd", "rmsprop"]))
@click.option("--val-split", type=float, help="Fraction of the training data for validation.")
@click.option(
    "--test-split",
    type=float,
    help="Fraction held out for testing (unless the dataset has its own).",
)
@click.option(
    "--early-stopping",
    type=int,
    metavar="PATIENCE",
    help="Stop after PATIENCE epochs without val_loss improvement; restores the best weights.",
)
@click.option("--seed", type=int)
@click.option(
    "--distribute",
    type=click.Choice(["none", "mirrored", "multi-worker"]),
    help="tf.distribute strategy; multi-worker reads TF_CONFIG.",
)
@click.option(
    "--out", type=click.Path(file_okay=False), help="Run directory (default runs/<name>-<time>)."
)
@click.option("--force", is_flag=True, help="Overwrite an existing run directory.")
def train(recipe, hidden, **options) -> None:
    """Train a feedforward model and write its run directory.

    \b
    Examples:
      edgekit train
      edgekit train models/mnist_mlp.toml --dataset ../shared/datasets/mnist.npz
      edgekit train --dataset data.csv --target species --hidden 32,16 --epochs 50
    """
    from edgekit.trainer import train as train_api

    options["hidden"] = _int_list("--hidden", hidden)
    run = train_api(recipe, **options)
    if run.path is None:
        test = ", ".join(f"{k}={v:.4f}" for k, v in run.metrics["test"].items())
        click.echo(f"worker finished (the chief writes the run directory); test: {test}")
        return
    click.echo(_run_summary(run))


def _run_summary(run) -> str:
    test = run.metrics.get("test", {})
    parts = [f"{k}={v:.4f}" for k, v in test.items()]
    ds = run.info["dataset"]
    return (
        f"trained {run.name}: {run.task}, {run.info['model']['params']} params, "
        f"{run.info['training']['epochs_run']} epochs in {run.info['training']['seconds']:.1f}s; "
        f"test ({ds['n_test']} samples): {', '.join(parts)}\nrun directory: {run.path}"
    )


@cli.command()
@click.argument("source", required=False, type=click.Path())
@click.option(
    "--tflite", is_flag=True, help="Export TensorFlow Lite (the default when nothing is chosen)."
)
@click.option("--quantize", help="TFLite variants: float32,float16,dynamic,int8,int16x8 or all.")
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
@click.option("--calibration-samples", type=int, default=200, show_default=True)
@click.option(
    "--atol",
    type=float,
    default=1e-4,
    show_default=True,
    help="Max |diff| vs Keras allowed for float32 artifacts.",
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
    "--out", type=click.Path(file_okay=False), help="Export directory (default RUN_DIR/export)."
)
@click.option("--force", is_flag=True, help="Overwrite an existing export directory.")
def export(source, quantize, onnx_quantize, **options) -> None:
    """Export a run (default runs/latest) or a .keras model to TFLite and ONNX.

    \b
    Examples:
      edgekit export --quantize all
      edgekit export runs/latest --tflite --quantize float32,int8 --onnx --onnx-quantize dynamic
      edgekit export model.keras --quantize int8 --c-array --out build/
    """
    from edgekit.exporters import export as export_api

    result = export_api(
        source, quantize=_str_list(quantize), onnx_quantize=_str_list(onnx_quantize), **options
    )
    click.echo(result.table())
    click.echo(f"manifest: {result.manifest_path}")
    if not result.passed:
        raise CheckFailed(f"validation failed for {', '.join(result.failed_variants)}")


@cli.command()
@click.argument("artifacts", nargs=-1, type=click.Path())
@click.option(
    "--runtime",
    default="auto",
    show_default=True,
    help="auto (by file type), tflite, onnxruntime, keras or c; a comma list filters an export "
    "directory (keras: its source model.keras, the reference; c: its --c-source code, "
    "compiled with -O2), e.g. auto,c.",
)
@click.option(
    "--device",
    default="cpu",
    show_default=True,
    help="cpu or gpu (onnxruntime CUDA/TensorRT, Keras on TensorFlow's GPU; comma list "
    "allowed), or a remote board: ssh://[user@]host[:port] or a NAME from edgekit.toml or "
    "~/.config/edgekit/devices.toml.",
)
@click.option(
    "--remote-python",
    metavar="PATH",
    help="Python on the remote device, with edgekit's core install [default: the device's "
    "python, else python3].",
)
@click.option(
    "--ssh-option",
    "ssh_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Passed to ssh as -o KEY=VALUE, on top of your ssh config (repeatable).",
)
@click.option("--threads", default="1", show_default=True, help="Thread counts, e.g. 1,2.")
@click.option("--batch", default="1", show_default=True, help="Batch sizes, e.g. 1,32.")
@click.option("--warmup", type=int, default=10, show_default=True, help="Untimed calls first.")
@click.option("--runs", type=int, default=100, show_default=True, help="Timed calls (at least).")
@click.option(
    "--min-time",
    type=float,
    default=0.5,
    show_default=True,
    help="Keep timing until this many seconds have passed (tiny models get more samples).",
)
@click.option(
    "--repeat",
    type=int,
    default=1,
    show_default=True,
    metavar="N",
    help="Measure each row in N processes, in interleaved rounds; compare and --baseline "
    "then weigh the spread between them. Use 3 or more on shared or noisy machines.",
)
@click.option(
    "--timeout",
    type=float,
    default=300.0,
    show_default=True,
    help="Seconds one measurement may take before its child process is killed.",
)
@click.option("--data", type=click.Path(dir_okay=False), help="Test data .npz (x, y[, reference]).")
@click.option("--json", "json_out", metavar="FILE|-", help="Write results as JSON (- for stdout).")
@click.option("--markdown", type=click.Path(dir_okay=False), help="Write a markdown table.")
@click.option(
    "--budget",
    multiple=True,
    metavar="EXPR",
    help="[VARIANT:]METRIC OP NUMBER, e.g. p95_ms<=2 or int8:accuracy>=0.95 (repeatable).",
)
@click.option(
    "--baseline", type=click.Path(dir_okay=False), help="A previous bench JSON to compare with."
)
@click.option(
    "--max-regression",
    type=float,
    default=10.0,
    show_default=True,
    metavar="PCT",
    help="Slowdown (median latency, beyond the noise) that fails --baseline.",
)
def bench(artifacts, threads, batch, json_out, markdown, budget, **options) -> None:
    """Measure latency, memory and accuracy of exported artifacts.

    Exit code 1 when a measurement fails, a budget is violated or the baseline regresses.
    On a remote device (--device ssh://... or NAME) the files are copied to a temporary
    directory there, measured by the device's edgekit and removed; budgets and the baseline
    are checked here.

    \b
    Examples:
      edgekit bench                                   # runs/latest/export
      edgekit bench model.int8.tflite --threads 1,2 --batch 1,32
      edgekit bench export/ --runtime auto,c          # + the --c-source code, compiled
      edgekit bench export/ --budget "int8:p95_ms<=1" --json bench.json
      edgekit bench export/ --baseline main.json --max-regression 10
      edgekit bench export/ --device ssh://pi@raspberrypi.local --budget "int8:p95_ms<=2"
    """
    from edgekit.bench import run_bench, write_outputs

    to_stdout = json_out == "-"
    err = to_stdout  # stdout carries nothing but the JSON then

    def progress(row, index, total):
        lat = row.latency_ms or {}
        what = f"p50 {lat['p50']:.4g} ms" if row.ok else row.error
        click.echo(
            f"[{index + 1}/{total}] {row.artifact} {row.runtime} {row.device} "
            f"threads={row.threads} batch={row.batch}: {row.status}, {what}",
            err=True,
        )

    result = run_bench(
        artifacts,
        threads=_int_list("--threads", threads),
        batch=_int_list("--batch", batch),
        budgets=budget,
        on_row=progress,
        **options,
    )
    write_outputs(result, json_path=None if to_stdout else json_out, markdown_path=markdown)
    click.echo(result.table(), err=err)
    if to_stdout:
        import json

        click.echo(json.dumps(result.to_json(), indent=2))
    if not result.passed:
        raise CheckFailed(result.problems())


@cli.command()
@click.argument("artifact", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def inspect(artifact, as_json) -> None:
    """Show an artifact's inputs, outputs, ops, parameters, MACs and quantization.

    \b
    Example:
      edgekit inspect runs/latest/export/model.int8.tflite
    """
    from edgekit.inspect import inspect_artifact

    info = inspect_artifact(artifact)
    if as_json:
        import json

        click.echo(json.dumps(info.to_json(), indent=2))
    else:
        click.echo(info.text())


@cli.command()
@click.argument("artifact", required=False, type=click.Path())
@click.option("--target", help="A target from the catalog (see --list-targets).")
@click.option("--list-targets", is_flag=True, help="List the known targets.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def estimate(artifact, target, list_targets, as_json) -> None:
    """Estimate MACs, RAM, flash and latency of a model on a microcontroller or board.

    Computed from the model file and the target catalog (every number in it names its
    source); nothing runs. Exit code 1 when the model does not fit the target's RAM or flash.
    Add targets in ~/.config/edgekit/targets.toml or ./edgekit.toml ([targets.NAME]).

    \b
    Examples:
      edgekit estimate model.int8.tflite --target cortex-m7
      edgekit estimate --list-targets
    """
    import json

    from edgekit.estimate import estimate as estimate_api
    from edgekit.estimate import list_targets as catalog_targets
    from edgekit.estimate import targets_table

    if list_targets:
        if artifact is not None or target is not None:
            raise EdgekitError("--list-targets takes no ARTIFACT and no --target")
        targets = catalog_targets()
        if as_json:
            doc = {"schema": "edgekit.targets/1", "targets": [t.to_json() for t in targets]}
            click.echo(json.dumps(doc, indent=2))
        else:
            click.echo(targets_table(targets))
        return
    if artifact is None:
        raise EdgekitError("estimate needs an ARTIFACT (a .tflite or .onnx file) or --list-targets")
    if target is None:
        names = ", ".join(t.name for t in catalog_targets())
        raise EdgekitError(f"estimate needs --target NAME; choose from {names}")
    result = estimate_api(artifact, target=target)
    click.echo(json.dumps(result.to_json(), indent=2) if as_json else result.text())
    if not result.fits:
        parts = [p for p, ok in (("RAM", result.fits_ram), ("flash", result.fits_flash)) if not ok]
        raise CheckFailed(f"{result.artifact} does not fit {target}: {' and '.join(parts)}")


@cli.command()
@click.argument("base", type=click.Path())
@click.argument("new", type=click.Path())
@click.option("--max-regression", type=float, default=10.0, show_default=True, metavar="PCT")
def compare(base, new, max_regression) -> None:
    """Compare two bench JSON files; exit 1 on a significant regression.

    A row regresses when the bootstrap 95% confidence interval of its median-latency ratio
    lies entirely above 1 + PCT/100 (noise does not flag; a real slowdown does).

    \b
    Example:
      edgekit compare main.json pr.json --max-regression 10
    """
    from edgekit.bench import compare as compare_api

    result = compare_api(base, new, max_regression=max_regression)
    click.echo(result.table())
    if not result.passed:
        raise CheckFailed(result.summary())


@cli.command()
@click.argument("bench_json", type=click.Path())
@click.option("--out", type=click.Path(file_okay=False), help="Output directory for the plots.")
def report(bench_json, out) -> None:
    """Plot a bench JSON file (PNG) and write a markdown report beside the plots.

    Writes report.md, latency.png (latency distribution per artifact) and tradeoff.png
    (accuracy vs size vs p50) into --out (default: BENCH_JSON's directory + /report).

    \b
    Example:
      edgekit report bench.json --out report/
    """
    from edgekit.report import write_report

    written = write_report(bench_json, out=out)
    for path in written:
        click.echo(str(path))


@cli.command()
def demo() -> None:
    """Train on the built-in digits dataset, export and print the result table.

    \b
    Example:
      edgekit demo
    """
    from edgekit.demo import run_demo

    run_demo(echo=click.echo)


@cli.command()
def env() -> None:
    """Print versions, CPU and GPUs, for bug reports.

    \b
    Example:
      edgekit env
    """
    from edgekit.envinfo import environment, nvidia_gpus, onnxruntime_providers

    info = environment()
    for key in ("python", "system", "machine", "cpu", "cores", "memory_mb"):
        click.echo(f"{key:12} {info[key]}")
    click.echo(f"{'gpus':12} {', '.join(nvidia_gpus()) or 'none found (nvidia-smi)'}")
    click.echo(
        f"{'ort EPs':12} {', '.join(onnxruntime_providers()) or 'onnxruntime not installed'}"
    )
    for name, version in info["versions"].items():
        click.echo(f"{name:12} {version}")


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _on_signal(signum, frame):
    """SIGINT, SIGTERM: remember it (a library may swallow the exception), then raise it."""
    from edgekit.fileio import request_interrupt

    request_interrupt()
    raise KeyboardInterrupt


def _run(argv: list[str] | None):
    from edgekit.fileio import interrupt_requested

    try:
        code = cli.main(args=argv, prog_name="edgekit", standalone_mode=False)
    except Exception:
        if interrupt_requested():  # the interrupt came out as another error (TensorFlow)
            raise KeyboardInterrupt from None
        raise
    if interrupt_requested():  # the interrupt was swallowed, and the command went on
        raise KeyboardInterrupt
    return code


def _interrupted() -> NoReturn:
    # An interrupt that lands in a library's constructor leaves a half-built object whose
    # __del__ then fails at exit ("Exception ignored in ...", a traceback): not worth showing.
    sys.unraisablehook = lambda unraisable: None
    click.echo("edgekit: interrupted", err=True)
    sys.exit(130)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and map errors to one line on stderr and an exit code."""
    from edgekit.fileio import clear_interrupt

    clear_interrupt()
    handlers = {signal.SIGTERM: signal.signal(signal.SIGTERM, _on_signal)}
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not when ignored
        handlers[signal.SIGINT] = signal.signal(signal.SIGINT, _on_signal)
    try:
        code = _run(argv)
    except EdgekitError as err:
        click.echo(f"edgekit: error: {_one_line(err)}", err=True)
        sys.exit(err.exit_code)
    except click.exceptions.Exit as err:
        sys.exit(err.exit_code)
    except click.Abort:
        _interrupted()
    except click.ClickException as err:
        click.echo(f"edgekit: error: {_one_line(err.format_message())}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        _interrupted()
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    sys.exit(code if isinstance(code, int) else 0)
