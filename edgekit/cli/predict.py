"""``edgekit predict``: run an artifact on raw features and print what it predicts."""

from __future__ import annotations

import click


@click.command(short_help="Run an artifact on raw features (.npz or .csv).")
@click.argument("artifact", type=click.Path())
@click.argument("inputs", metavar="INPUT.(npz|csv)", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print JSON (schema edgekit.predict/1).")
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    help="Write the predictions to FILE (CSV, or JSON when FILE ends in .json).",
)
@click.option(
    "--runtime",
    default="auto",
    show_default=True,
    help="auto (by file type), tflite, onnxruntime, keras or c.",
)
@click.option("--threads", type=int, default=1, show_default=True, help="Runtime threads.")
def predict(
    artifact: str, inputs: str, as_json: bool, out: str | None, runtime: str, threads: int
) -> None:
    """Run ARTIFACT on the raw features in INPUT: one row per sample, label and scores.

    The label is a class name when the manifest beside the artifact (or the run's run.json)
    has labels, the class index otherwise, and the value for regression. INPUT is a .npz
    (array x) or a .csv with a header row: its feature columns are those the manifest names
    as features, else every numeric column but the label column.

    \b
    Examples:
      edgekit predict runs/latest/export/model.int8.tflite samples.csv
      edgekit predict model.float32.onnx test.npz --json
      edgekit predict model.int8.tflite samples.csv --out predictions.csv
    """
    from edgekit.errors import EdgekitError
    from edgekit.predict import predict as predict_api

    if threads < 1:
        raise EdgekitError(f"--threads takes an integer >= 1, got {threads}")
    if out is not None:  # an --out over an input: refused before anything runs
        from edgekit.fileio import check_output
        from edgekit.predict.api import input_files

        check_output(out, protect=[artifact, inputs, *input_files(artifact)])
    result = predict_api(artifact, inputs, runtime=runtime, threads=threads)
    if out is not None:
        path = result.write(out)
        if not as_json:
            click.echo(f"{len(result.rows)} prediction(s) -> {path}")
    if as_json:
        import json

        click.echo(json.dumps(result.to_json(), indent=2))
    elif out is None:
        click.echo(result.table())
