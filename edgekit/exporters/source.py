"""What an export starts from: a run directory or a model file, its test and calibration data,
and the checks on the model (supported layers, the task it was trained for)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.formats.npz import load_npz
from edgekit.formats.run_dir import Run

# Layers the exporters (TFLite, ONNX and edgekit's C generator) are built and tested for.
SUPPORTED_LAYERS = (
    "InputLayer",
    "Flatten",
    "Normalization",
    "Dense",
    "Dropout",
    "Activation",
    "ReLU",
    "Softmax",
    "Rescaling",
    "Reshape",
    "TFSMLayer",  # a SavedModel, wrapped (edgekit.formats.keras_file)
)


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


def resolve_source(source: str | Path | Run | None) -> Source:
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
        return resolve_source(path.parent)
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
    for layer in model.layers:
        kind = type(layer).__name__
        if kind not in SUPPORTED_LAYERS:
            raise EdgekitError(
                f"{path}: layer {layer.name!r} ({kind}) is not supported by edgekit's exporters; "
                f"supported layers: {', '.join(SUPPORTED_LAYERS)}"
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
