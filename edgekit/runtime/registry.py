"""Runtime registry: name -> runner class, and the default runtime for a file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.errors import EdgekitError
from edgekit.runtime.base import Runner


def _tflite():
    from edgekit.runtime.tflite import TFLiteRunner

    return TFLiteRunner


def _onnxruntime():
    from edgekit.runtime.onnxruntime import OnnxRuntimeRunner

    return OnnxRuntimeRunner


def _keras():
    from edgekit.runtime.keras import KerasRunner

    return KerasRunner


def _tflm():
    from edgekit.runtime.tflm import TFLMRunner

    return TFLMRunner


def _c():
    from edgekit.runtime.c import CRunner

    return CRunner


RUNTIMES = {
    "tflite": _tflite,
    "onnxruntime": _onnxruntime,
    "keras": _keras,
    "c": _c,
    "tflm": _tflm,
}
_BY_SUFFIX = {".tflite": "tflite", ".onnx": "onnxruntime", ".keras": "keras", ".c": "c"}


def runtime_for(path: str | Path) -> str:
    """The runtime that runs a file, from its suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in _BY_SUFFIX:
        raise EdgekitError(
            f"{path}: unknown artifact type {suffix or '(no suffix)'!r}; "
            f"edgekit runs {', '.join(_BY_SUFFIX)} files"
        )
    return _BY_SUFFIX[suffix]


def open_runner(
    path: str | Path,
    *,
    runtime: str = "auto",
    threads: int = 1,
    device: str = "cpu",
    input_quantization: dict[str, Any] | None = None,
) -> Runner:
    """A runner for ``path`` (use it as a context manager).

    ``input_quantization`` is the manifest's quantization of the input when it is not the
    file's own (per-feature parameters of an integer model:
    :func:`edgekit.formats.manifest.input_quantization`).
    """
    name = runtime_for(path) if runtime == "auto" else runtime
    if name not in RUNTIMES:
        raise EdgekitError(f"unknown runtime {name!r}; choose from auto, {', '.join(RUNTIMES)}")
    return RUNTIMES[name]()(
        path, threads=threads, device=device, input_quantization=input_quantization
    )
