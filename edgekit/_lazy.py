"""Lazy imports of the heavy optional frameworks.

``edgekit --help`` and ``edgekit bench model.tflite`` never import TensorFlow: every module
that needs it calls :func:`require` inside the function that uses it, and a missing package
becomes an :class:`~edgekit.errors.MissingExtraError` naming the extra to install.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

from edgekit.errors import MissingExtraError

# module -> (pip package, edgekit extra)
_EXTRAS = {
    "tensorflow": ("tensorflow", "train"),
    "keras": ("tensorflow", "train"),
    "tf2onnx": ("tf2onnx", "train"),
    "onnx": ("onnx", "train"),
    "sklearn": ("scikit-learn", "train"),
    "matplotlib": ("matplotlib", "train"),
    "onnxruntime": ("onnxruntime", "core"),
    "ai_edge_litert": ("ai-edge-litert", "core"),
}


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


def require(name: str) -> ModuleType:
    """Import ``name`` or raise a one-line error naming the extra that provides it."""
    top = name.split(".")[0]
    if top in ("tensorflow", "keras", "tf2onnx"):
        _quiet_tensorflow()
    try:
        return importlib.import_module(name)
    except ImportError as err:
        package, extra = _EXTRAS.get(top, (top, "dev"))
        hint = f"pip install {package}" if extra == "core" else f"pip install 'edgekit[{extra}]'"
        raise MissingExtraError(f"this needs {package}, which is not installed: {hint}") from err
