"""``edgekit diagnose``: each quantized artifact against its Keras model, layer by layer."""

from __future__ import annotations

import click


@click.command(short_help="Compare quantized artifacts with Keras, layer by layer.")
@click.argument("target", metavar="EXPORT_DIR|ARTIFACT", type=click.Path())
@click.option("--variant", help="Diagnose only this variant (int8, int16x8, onnx-static, ...).")
@click.option(
    "--data",
    type=click.Path(dir_okay=False),
    help="Inputs: a .npz with x, or a .csv (label last); default: the export's test.npz.",
)
@click.option(
    "--model",
    type=click.Path(),
    help="The Keras model the export came from (default: its source beside the export).",
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False),
    help="Error-per-layer PNG (default: diagnose.png in the export directory).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def diagnose(
    target: str,
    variant: str | None,
    data: str | None,
    model: str | None,
    plot: str | None,
    as_json: bool,
) -> None:
    """Find the layers where quantized artifacts lose accuracy, worst first.

    Runs each artifact with its intermediate tensors kept, matches them to the Keras layers
    and reports per layer the error it adds, scale, range used, clipping and top-1 agreement,
    with one sentence on the cause. Exit 0 when it ran, whatever it found.

    \b
    Examples:
      edgekit diagnose runs/latest/export
      edgekit diagnose runs/latest/export/model.int8.tflite --json
      edgekit diagnose build/export --model model.keras --variant int8
    """
    from edgekit.diagnose import diagnose as diagnose_api

    if plot is not None:  # a --plot over an input: refused before anything runs
        from pathlib import Path

        from edgekit.bench.write import bench_inputs
        from edgekit.fileio import check_output

        export_dir = Path(target) if Path(target).is_dir() else Path(target).parent
        inputs: list[str | Path] = [*bench_inputs([target, export_dir], data=data)]
        inputs += [*([model] if model else []), export_dir.parent / "model.keras"]
        check_output(plot, protect=inputs)
    result = diagnose_api(target, variant=variant, data=data, model=model)
    path = result.save_plot(plot)
    if as_json:
        import json

        click.echo(json.dumps(result.to_json(plot=path), indent=2))
    else:
        click.echo(result.text())
        click.echo(f"plot: {path}")
