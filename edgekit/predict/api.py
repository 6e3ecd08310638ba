"""``predict``: an artifact run on raw features, one labelled row per sample."""

from __future__ import annotations

import contextlib
import csv
import importlib
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.fileio import atomic_write_text
from edgekit.formats.ids import check_ids
from edgekit.formats.manifest import MANIFEST_NAME
from edgekit.predict.info import ArtifactInfo, artifact_info
from edgekit.predict.inputs import read_inputs

PREDICT_SCHEMA = "edgekit.predict/1"
Label = str | int | float


@dataclass
class Prediction:
    """One sample: what the model predicts (a class name or index, or the value) and its
    raw outputs (class probabilities, the sigmoid's probability, or the value)."""

    label: Label
    scores: list[float]

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "scores": self.scores}


@dataclass
class Predictions:
    """The predictions of one artifact on one input file."""

    artifact: Path
    task: str
    info: ArtifactInfo
    rows: list[Prediction] = field(default_factory=list)
    source: Path | None = None  # the input file

    def inputs(self) -> list[Path]:
        """What ``predict`` read, which ``write`` must not replace: the artifact, the input
        file and the manifest or ``run.json`` the labels came from."""
        return [self.artifact, *([self.source] if self.source else []),
                *input_files(self.artifact)]  # fmt: skip

    def score_names(self) -> list[str]:
        """One name per score column: the class names, or ``score`` / ``value``."""
        width = len(self.rows[0].scores) if self.rows else 0
        if self.task == "regression" or (self.task == "unknown" and width == 1):
            return ["value"] * width if width == 1 else [f"value_{i}" for i in range(width)]
        if width == 1:
            positive = self.info.labels[-1] if self.info.labels else "1"
            return [f"p({positive})"]
        names = self.info.labels if self.info.labels and len(self.info.labels) == width else None
        return [f"p({n})" for n in (names or [str(i) for i in range(width)])]

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": PREDICT_SCHEMA,
            "artifact": str(self.artifact),
            "task": self.task,
            "labels": self.info.labels,
            "predictions": [r.to_json() for r in self.rows],
        }

    def to_csv(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["label", *self.score_names()])
        for r in self.rows:
            writer.writerow([r.label, *(f"{v:.7g}" for v in r.scores)])
        return buf.getvalue()

    def table(self) -> str:
        from edgekit.tables import format_table

        head = ["#", "label", *self.score_names()]
        body = [[str(i), str(r.label), *(f"{v:.4g}" for v in r.scores)]
                for i, r in enumerate(self.rows)]  # fmt: skip
        return format_table(head, body)

    def write(self, path: str | os.PathLike) -> Path:
        """Write the predictions atomically: JSON for a ``.json`` name, CSV otherwise. An
        ``path`` that is one of :meth:`inputs` is refused; a symlink is written through."""
        path = Path(path)
        as_json = path.suffix.lower() == ".json"
        text = json.dumps(self.to_json(), indent=2) + "\n" if as_json else self.to_csv()
        return atomic_write_text(path, text, protect=self.inputs())


def input_files(artifact: str | os.PathLike) -> list[Path]:
    """The metadata files :func:`~edgekit.predict.info.artifact_info` may read beside
    ``artifact``."""
    path = Path(artifact)
    return [path.parent / MANIFEST_NAME, path.parent / "run.json", path.parent.parent / "run.json"]


def _short(v: float) -> float:
    return float(f"{float(v):.7g}")


def _label(scores: np.ndarray, task: str, labels: list[str] | None) -> Label:
    if task == "regression" or (task == "unknown" and scores.size == 1):
        return _short(scores[0]) if scores.size == 1 else _short(float(np.mean(scores)))
    index = int(scores[0] > 0.5) if scores.size == 1 else int(np.argmax(scores))
    return labels[index] if labels and index < len(labels) else index


def _columns(path: str | os.PathLike, info: ArtifactInfo, x: np.ndarray) -> list[str] | None:
    """The feature columns :func:`read_inputs` took from a ``.csv`` (None for a ``.npz``)."""
    if Path(path).suffix.lower() != ".csv":
        return None
    from edgekit.formats.csv_table import read_csv_table, select_columns

    table = read_csv_table(Path(path), what="predict")
    n = int(np.prod(x.shape[1:]))
    return select_columns(table, features=info.features, target=info.target, n_features=n).features


# What predicting may add to the process's memory once its runtime is imported: a floor, a
# multiple of the model's size and of the input file's (a row of results costs a few hundred
# bytes of Python objects, so a file that unpacks to far more rows than it holds is refused).
PREDICT_FLOOR_BYTES = 384 << 20
PREDICT_PER_MODEL_BYTE = 4
PREDICT_PER_INPUT_BYTE = 48
# The module each runtime imports, imported before the allowance starts counting (the
# generated C and TFLM run in processes of their own, which are not bounded here).
_RUNTIME_MODULES = {"tflite": "ai_edge_litert.interpreter", "onnxruntime": "onnxruntime",
                    "keras": "tensorflow"}  # fmt: skip


def predict_allowance(artifact: Path, inputs: Path) -> int:
    """The bytes :func:`predict` may add to the process's memory (see
    :data:`PREDICT_FLOOR_BYTES`)."""
    from edgekit.formats.sizes import artifact_bytes

    try:
        model = artifact_bytes(artifact)
    except (OSError, EdgekitError):
        model = 0  # the runner names what is wrong with the file
    return (
        PREDICT_FLOOR_BYTES
        + PREDICT_PER_MODEL_BYTE * model
        + PREDICT_PER_INPUT_BYTE * inputs.stat().st_size
    )


def _import_runtime(name: str) -> bool:
    """Import ``name``'s module now (its own memory is not the model's); whether predicting
    with it runs under an allowance (False: the C and TFLM runtimes, or an unknown one)."""
    module = _RUNTIME_MODULES.get(name)
    if module is None:
        return False
    with contextlib.suppress(ImportError, EdgekitError):  # the runner says what is missing
        if module == "tensorflow":
            from edgekit._lazy import require

            require(module)
        else:
            importlib.import_module(module)
    return True


def _run(path: Path, inputs: Path, info: ArtifactInfo, *, runtime: str, threads: int, room: int):
    """(the input samples, the model's outputs on them); a runtime that fails on them is a
    one-line :class:`EdgekitError`. A ``.tflite`` runs in batches whose activations take at
    most half of ``room`` (bytes)."""
    from edgekit._lazy import silenced
    from edgekit.isolation import is_out_of_memory
    from edgekit.runtime import open_runner

    # silenced: LiteRT's C++ notes on stderr ("INFO: Created TensorFlow Lite XNNPACK delegate")
    with silenced(2), open_runner(path, runtime=runtime, threads=threads) as runner:
        x = read_inputs(inputs, info, input_shape=runner.input.shape)
        if info.ids:
            check_ids([x], info.ids, str(inputs), columns=_columns(inputs, info, x))
        try:
            x = runner.check_features(x)
        except EdgekitError as err:
            want = ", ".join(str(d) for d in runner.input.shape[1:])
            raise EdgekitError(
                f"{inputs}: samples of shape {list(x.shape[1:])}, {path.name} takes [batch, {want}]"
            ) from err
        batch = 256
        if runner.runtime == "tflite":
            from edgekit.formats.tflite_graph import activation_bytes

            while batch > 1 and activation_bytes(path, batch=batch) > room // 2:
                batch //= 2
        try:
            return x, runner.infer_batched(x, batch=batch)
        except EdgekitError:
            raise
        except Exception as err:  # the runtime's own exception types, on a hostile model
            if is_out_of_memory(err):
                raise MemoryError(str(err)) from err
            text = " ".join(str(err).split())[:300]
            raise EdgekitError(
                f"{path}: the {runner.runtime} runtime failed on {inputs} "
                f"({type(err).__name__}{': ' + text if text else ''})"
            ) from err


def _too_big(path: Path, inputs: Path, allowance: int) -> EdgekitError:
    from edgekit.formats.sizes import human_bytes

    return EdgekitError(
        f"{path}: refused: predicting on {inputs} needed more than the "
        f"{human_bytes(allowance)} of memory edgekit allows for a model and an input of "
        "their size (the model's tensors, or the number of samples, far exceed the files)"
    )


def predict(
    artifact: str | os.PathLike,
    inputs: str | os.PathLike,
    *,
    runtime: str = "auto",
    threads: int = 1,
) -> Predictions:
    """Run ``artifact`` (.tflite, .onnx, .keras, or the generated .c) on the raw features of
    ``inputs`` (.npz or .csv); one :class:`Prediction` per sample.

    ``label`` comes from the manifest's ``labels`` when the manifest beside the artifact (or
    the run's ``run.json``) has them, else it is the class index; for regression it is the
    value.
    """
    from edgekit.isolation import is_out_of_memory, litert_note, litert_silent, memory_allowance
    from edgekit.runtime import runtime_for

    path = Path(artifact)
    if not path.is_file():
        raise EdgekitError(f"{path}: no such file")
    if not Path(inputs).is_file():
        raise EdgekitError(f"{inputs}: no such file")
    info = artifact_info(path)
    name = runtime_for(path) if runtime == "auto" else runtime
    bounded = _import_runtime(name)
    allowance = predict_allowance(path, Path(inputs))
    try:
        with memory_allowance(allowance) if bounded else contextlib.nullcontext():
            x, outputs = _run(
                path, Path(inputs), info, runtime=runtime, threads=threads, room=allowance
            )
            outputs = np.asarray(outputs, np.float64).reshape(len(x), -1)
            task = info.task or ("multiclass" if outputs.shape[1] > 1 else "unknown")
            rows = [
                Prediction(label=_label(o, task, info.labels), scores=[_short(v) for v in o])
                for o in outputs
            ]
    except (MemoryError, EdgekitError) as err:
        if isinstance(err, MemoryError) or (bounded and is_out_of_memory(str(err))):
            raise _too_big(path, Path(inputs), allowance) from err
        if bounded and name == "tflite" and litert_silent(str(err)):
            raise EdgekitError(f"{err}; {litert_note(allowance)}") from err
        raise
    return Predictions(artifact=path, task=task, info=info, rows=rows, source=Path(inputs))
