"""``edgekit inspect``, ``estimate`` and ``env``: reading model files and the machine."""

from __future__ import annotations

import click

from edgekit.errors import CheckFailed, EdgekitError


@click.command(short_help="Show an artifact's tensors, ops, parameters and MACs.")
@click.argument("artifact", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def inspect(artifact: str, as_json: bool) -> None:
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


@click.command(short_help="Estimate MACs, RAM, flash and latency on a device.")
@click.argument("artifact", required=False, type=click.Path())
@click.option("--target", help="A target from the catalog (see --list-targets).")
@click.option("--list-targets", is_flag=True, help="List the known targets.")
@click.option(
    "--runtime",
    help="Which of the target's runtimes the totals are for (cortex-m4: tflm, TensorFlow Lite "
    "Micro with CMSIS-NN, or c, edgekit's generated C; default: the catalog's first).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def estimate(
    artifact: str | None,
    target: str | None,
    list_targets: bool,
    runtime: str | None,
    as_json: bool,
) -> None:
    """Estimate MACs, RAM, flash and latency of a model on a microcontroller or board.

    Computed from the model file and the target catalog (every number in it names its
    source); nothing runs. Exit code 1 when the model does not fit the target's RAM or flash.
    Add targets in ~/.config/edgekit/targets.toml or ./edgekit.toml ([targets.NAME]).

    \b
    Examples:
      edgekit estimate model.int8.tflite --target cortex-m7
      edgekit estimate model.int8.tflite --target cortex-m4 --runtime c
      edgekit estimate --list-targets
    """
    from edgekit.estimate import estimate as estimate_api
    from edgekit.estimate import list_targets as catalog_targets
    from edgekit.estimate import targets_table
    from edgekit.estimate.result import json_text

    if list_targets:
        if artifact is not None or target is not None:
            raise EdgekitError("--list-targets takes no ARTIFACT and no --target")
        targets = catalog_targets()
        if as_json:
            doc = {"schema": "edgekit.targets/1", "targets": [t.to_json() for t in targets]}
            click.echo(json_text(doc, what="the target catalog"))
        else:
            click.echo(targets_table(targets))
        return
    if artifact is None:
        raise EdgekitError("estimate needs an ARTIFACT (a .tflite or .onnx file) or --list-targets")
    if target is None:
        names = ", ".join(t.name for t in catalog_targets())
        raise EdgekitError(f"estimate needs --target NAME; choose from {names}")
    result = estimate_api(artifact, target=target, runtime=runtime)
    click.echo(result.json_text() if as_json else result.text())
    if not result.fits:
        parts = [p for p, ok in (("RAM", result.fits_ram), ("flash", result.fits_flash)) if not ok]
        raise CheckFailed(f"{result.artifact} does not fit {target}: {' and '.join(parts)}")


@click.command(short_help="Print versions, CPU and GPUs, for bug reports.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (schema edgekit.env/1).")
def env(as_json: bool) -> None:
    """Print versions, CPU and GPUs, for bug reports.

    \b
    Examples:
      edgekit env
      edgekit env --json
    """
    from edgekit.envinfo import environment, nvidia_gpus, onnxruntime_providers

    info = environment()
    gpus, providers = nvidia_gpus(), onnxruntime_providers()
    if as_json:
        import json

        doc = {"schema": "edgekit.env/1", **info, "gpus": gpus, "onnxruntime_providers": providers}
        click.echo(json.dumps(doc, indent=2))
        return
    for key in ("python", "system", "machine", "cpu", "cores", "memory_mb"):
        click.echo(f"{key:12} {info[key]}")
    click.echo(f"{'gpus':12} {', '.join(gpus) or 'none found (nvidia-smi)'}")
    click.echo(f"{'ort EPs':12} {', '.join(providers) or 'onnxruntime not installed'}")
    for name, version in info["versions"].items():
        click.echo(f"{name:12} {version}")
