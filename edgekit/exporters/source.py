"""What an export starts from: a run directory or a model file, its test and calibration data,
and the checks on the model (supported layers, the task it was trained for)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.formats.keras_file import SUPPORTED_LAYERS as _SUPPORTED_LAYERS
from edgekit.formats.keras_file import subclassed_model
from edgekit.formats.npz import load_npz
from edgekit.formats.run_dir import Run

# Layers the exporters (TFLite, ONNX and edgekit's C generator) are built and tested for.
SUPPORTED_LAYERS = _SUPPORTED_LAYERS


@dataclass
class Source:
    model_path: Path
    task: str | None
    labels: list[str] | None
    test: dict[str, np.ndarray] | None
    calibration: np.ndarray | None
    default_out: Path
    features: list[str] | None = None  # input feature names, in order (tabular runs)
    target: str | None = None  # the label column they were trained against
    test_name: str = "test data"  # how errors name the test data


def resolve_source(source: str | Path | Run | None) -> Source:
    """What to export: a run directory (default ``runs/latest``), a model file or a
    SavedModel directory, with the test and calibration data that come with it."""
    return _resolve(source)


def data_files(source: str | Path | None) -> list[Path]:
    """The data files an export of ``source`` reads beside the model (a run's
    ``data/test.npz`` and ``data/calibration.npz``, or those in ``data/`` beside a model file),
    named before anything is read so that no output replaces them."""
    from edgekit.formats.keras_file import is_saved_model

    path = Path(source) if source is not None else Path("runs/latest")
    base = path if path.is_dir() and not is_saved_model(path) else path.parent
    return [base / "data" / name for name in ("test.npz", "calibration.npz")]


def attach_data(
    src: Source,
    *,
    data: str | Path | None,
    target: str | None,
    calibration: str | Path | None,
    n_features: int | None,
    input_names: list[str] | None = None,
) -> Source:
    """``--data``/``--calibration`` (``.npz`` or ``.csv``) replace the run's test and
    calibration data, or give a bare model its own; calibration defaults to the inputs of
    ``data``. ``n_features``: how many values one sample of the model has."""
    if target is not None and data is None:
        raise EdgekitError("--target names a column of --data; pass --data FILE.csv")
    if target is not None and data is not None and Path(data).suffix.lower() != ".csv":
        raise EdgekitError(
            f"--target names the label column of a .csv --data; --data {data} is not one (a "
            ".npz holds its labels as the array 'y')"
        )
    if input_names is not None:  # several inputs: one array per input in a .npz
        if data is not None:
            src.test = read_inputs_npz(Path(data), input_names, what="--data")
            src.test_name = f"--data {data}"
            if calibration is None:
                src.calibration = src.test["x"]
        if calibration is not None:
            src.calibration = read_inputs_npz(
                Path(calibration), input_names, what="--calibration", labelled=False
            )["x"]
        return src
    if data is not None:
        x, y, columns, label = read_data(
            Path(data), what="--data", features=src.features, target=target or src.target,
            labels=src.labels, n_features=n_features,
        )  # fmt: skip
        src.test = {"x": x} if y is None else {"x": x, "y": y}
        src.test_name = f"--data {data}"
        if columns is not None:
            src.features, src.target = columns, label
        if calibration is None:
            src.calibration = x
    if calibration is not None:
        src.calibration, _, _, _ = read_data(
            Path(calibration), what="--calibration", features=src.features, target=src.target,
            labels=src.labels, n_features=n_features, labelled=False,
        )  # fmt: skip
    return src


def read_inputs_npz(
    path: Path, names: list[str], *, what: str, labelled: bool = True
) -> dict[str, Any]:
    """A several-input model's data: a ``.npz`` with one array per input, named after the
    model's inputs, and optionally ``y``; ``x`` comes back as a list in the inputs' order."""
    if not path.is_file():
        raise EdgekitError(f"{what} {path}: no such file")
    if path.suffix.lower() != ".npz":
        raise EdgekitError(
            f"{what} {path}: a model with several inputs takes a .npz with one array per input "
            f"({', '.join(names)})"
        )
    arrays = load_npz(path)
    missing = [n for n in names if n not in arrays]
    if missing:
        raise EdgekitError(
            f"{what} {path}: no array {', '.join(map(repr, missing))} (one per model input: "
            f"{', '.join(names)}); it has {', '.join(sorted(arrays)) or 'none'}"
        )
    xs: list[np.ndarray] = []
    for name in names:
        x = read_features(path, f"{what} input {name!r}", {"x": arrays[name]})
        if xs and len(x) != len(xs[0]):
            raise EdgekitError(
                f"{what} {path}: input {name!r} has {len(x)} samples, {names[0]!r} has {len(xs[0])}"
            )
        xs.append(x)
    out: dict[str, Any] = {"x": xs}
    y = arrays.get("y") if labelled else None
    if y is not None:
        if y.dtype.kind not in "iufb" or len(y) != len(xs[0]) or not np.all(np.isfinite(y)):
            raise EdgekitError(
                f"{what} {path}: 'y' must hold one finite number per sample ({len(xs[0])})"
            )
        out["y"] = y
    return out


def read_data(
    path: Path,
    *,
    what: str,
    features: list[str] | None,
    target: str | None,
    labels: list[str] | None,
    n_features: int | None = None,
    labelled: bool = True,
) -> tuple[np.ndarray, np.ndarray | None, list[str] | None, str | None]:
    """``--data``/``--calibration``: (x, y or None, the CSV's feature columns, its label
    column). A ``.npz`` holds ``x`` (and ``y``); a ``.csv`` has a header row, its features
    are the recorded ``features`` or every numeric column but ``target``."""
    if not path.is_file():
        raise EdgekitError(f"{what} {path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        arrays = read_test_data(path)
        return arrays["x"], arrays.get("y") if labelled else None, None, None
    if suffix != ".csv":
        raise EdgekitError(f"{what} {path}: expected a .npz or .csv file")
    from edgekit.formats.csv_table import label_values, read_csv_table, select_columns

    table = read_csv_table(path, what=what)
    if labelled and target is not None and target not in table.header:
        raise EdgekitError(
            f"{what} {path}: no column {target!r} (the label); columns are "
            f"{', '.join(table.header)}"
        )
    cols = select_columns(table, features=features, target=target, n_features=n_features)
    x = np.asarray(table.floats(cols.features), np.float32)
    if not np.all(np.isfinite(x)):
        raise EdgekitError(f"{what} {path}: a feature value is too large for float32")
    y = None
    if labelled and cols.label is not None:
        y = np.asarray(label_values(table, cols.label, labels))
    return x, y, cols.features, cols.label


def _resolve(source: str | Path | Run | None) -> Source:
    from edgekit.formats.keras_file import MODEL_SUFFIXES, is_saved_model
    from edgekit.formats.run_dir import open_run

    if isinstance(source, Run):
        source = source.path
    if source is not None and is_saved_model(source):
        path = Path(source)
        return _model_file_source(
            path, data=path.parent / "data", out=path.parent / f"{path.name}_export"
        )
    if source is None or Path(source).is_dir():
        run = open_run(source)
        return Source(
            model_path=run.model_path,
            task=run.task,
            labels=run.labels,
            test=read_test_data(run.test_data_path) if run.test_data_path.exists() else None,
            calibration=(
                read_features(run.calibration_path, "calibration")
                if run.calibration_path.exists()
                else None
            ),
            default_out=run.directory / "export",
            features=run.info.get("features"),
            target=run.info.get("target"),
        )
    path = Path(source)
    if not path.exists():
        raise EdgekitError(f"{path}: no such file or directory")
    if path.suffix.lower() not in MODEL_SUFFIXES:
        raise EdgekitError(
            f"{path}: export takes a run directory, a .keras or .h5 model file, or a SavedModel "
            "directory"
        )
    if (path.parent / "run.json").is_file() and path.name == "model.keras":
        return _resolve(path.parent)
    return _model_file_source(
        path, data=path.parent / "data", out=path.parent / f"{path.stem}_export"
    )


def _model_file_source(path: Path, *, data: Path, out: Path) -> Source:
    """A bare model file (or SavedModel): test and calibration data from ``data/`` beside it."""
    test = read_test_data(data / "test.npz") if (data / "test.npz").is_file() else None
    calib = (
        read_features(data / "calibration.npz", "calibration")
        if (data / "calibration.npz").is_file()
        else None
    )
    return Source(
        model_path=path,
        task=None,
        labels=None,
        test=test,
        calibration=calib,
        default_out=out,
    )


def read_features(path: Path, what: str, arrays: dict | None = None) -> np.ndarray:
    """``x`` of a test or calibration ``.npz``: finite numbers, one row per sample.

    NaN or inf here would make validation meaningless, and calibrating on them crashes the
    TFLite converter (a segfault, not an exception).
    """
    arrays = load_npz(path) if arrays is None else arrays
    if "x" not in arrays:
        raise EdgekitError(
            f"{path}: no array 'x' (the {what} inputs); it has {', '.join(sorted(arrays)) or 'none'}"
        )
    x = np.asarray(arrays["x"])
    if x.dtype.kind not in "iufb" or x.ndim < 2 or len(x) == 0:
        raise EdgekitError(
            f"{path}: 'x' must be a non-empty numeric array of shape [samples, features...], "
            f"got {x.dtype.name} {list(x.shape)}"
        )
    with np.errstate(over="ignore"):  # what the models take (a float64 of 1e300 is inf)
        x = x.astype(np.float32)
    if not np.all(np.isfinite(x)):
        raise EdgekitError(f"{path}: 'x' contains NaN, inf or values too large for float32")
    return x


def read_test_data(path: Path) -> dict[str, np.ndarray]:
    """``data/test.npz``: ``x`` as :func:`read_features` checks it, and ``y`` (one number each)."""
    arrays = load_npz(path)
    out = {"x": read_features(path, "test", arrays)}
    y = arrays.get("y")
    if y is not None:
        n = len(out["x"])
        if y.dtype.kind not in "iufb" or y.shape != (n,):
            raise EdgekitError(
                f"{path}: 'y' must hold one number per sample of 'x' ({n}), "
                f"got {y.dtype.name} {list(y.shape)}"
            )
        if not np.all(np.isfinite(y)):
            raise EdgekitError(f"{path}: 'y' contains NaN or inf")
        out["y"] = y
    return out


def check_layers(model, path: Path) -> None:
    """Refuse, naming the layer, what is not a feedforward model of the supported layers:
    convolutions, recurrent layers, models nested or subclassed with their own ``call``."""
    kind = type(model).__name__
    if kind not in ("Sequential", "Functional") and "call" in type(model).__dict__:
        raise EdgekitError(f"{path}: {subclassed_model(kind)}")
    for layer in model.layers:
        kind = type(layer).__name__
        if kind not in SUPPORTED_LAYERS:
            raise EdgekitError(
                f"{path}: layer {layer.name!r} ({kind}) is not supported by edgekit's exporters "
                f"(feedforward models only); supported layers: {', '.join(SUPPORTED_LAYERS)}"
            )


def infer_task(model) -> str:
    last = model.layers[-1]
    activation = getattr(getattr(last, "activation", None), "__name__", "")
    units = int(model.outputs[0].shape[-1])
    if units == 1:
        return "binary" if activation == "sigmoid" else "regression"
    return "multiclass"


def model_digest(path: Path) -> str:
    """The sha256 of a model file, or of a SavedModel directory's ``saved_model.pb``."""
    from edgekit.fileio import sha256_file
    from edgekit.formats.keras_file import SAVED_MODEL_FILE, is_saved_model

    return sha256_file(path / SAVED_MODEL_FILE if is_saved_model(path) else path)


def as_float32(model) -> tuple[object, str | None]:
    """A float64 model as the same model in float32 (TFLite has no float64 kernels, and an
    ONNX file named float32 must hold float32), with a note saying so; other models as
    they are."""
    wide = [w for w in model.weights if "float64" in str(w.dtype)]
    inputs64 = [t for t in model.inputs if "float64" in str(t.dtype)]
    if not wide and not inputs64:
        return model, None
    from edgekit._lazy import require

    keras = require("keras")

    def clone(layer):
        config = {**layer.get_config(), "dtype": "float32"}
        return type(layer).from_config(config)

    try:
        inputs = [
            keras.Input(tuple(t.shape[1:]), dtype="float32", name=t.name) for t in model.inputs
        ]
        new = keras.models.clone_model(
            model, input_tensors=inputs if len(inputs) > 1 else inputs[0], clone_function=clone
        )
        new.set_weights([np.asarray(w, np.float32) for w in model.get_weights()])
        for layer in new.layers:
            if type(layer).__name__ == "Normalization" and hasattr(layer, "finalize_state"):
                layer.finalize_state()
    except Exception as err:  # a layer that cannot be rebuilt in float32
        raise EdgekitError(
            f"the model computes in float64, and edgekit could not rebuild it in float32 "
            f"({type(err).__name__}: {(str(err).splitlines() or [''])[0]}); save it with "
            "float32 layers (keras.config.set_floatx('float32'))"
        ) from err
    return new, "the model computes in float64; its artifacts are float32 (validated against it)"
