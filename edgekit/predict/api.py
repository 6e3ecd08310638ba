"""``predict``: an artifact run on raw features, one labelled row per sample."""

from __future__ import annotations

import csv
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
    from edgekit.runtime import open_runner

    path = Path(artifact)
    if not path.is_file():
        raise EdgekitError(f"{path}: no such file")
    if not Path(inputs).is_file():
        raise EdgekitError(f"{inputs}: no such file")
    from edgekit._lazy import silenced

    info = artifact_info(path)
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
        outputs = runner.infer_batched(x)
    outputs = np.asarray(outputs, np.float64).reshape(len(x), -1)
    task = info.task or ("multiclass" if outputs.shape[1] > 1 else "unknown")
    rows = [
        Prediction(label=_label(o, task, info.labels), scores=[_short(v) for v in o])
        for o in outputs
    ]
    return Predictions(artifact=path, task=task, info=info, rows=rows, source=Path(inputs))
