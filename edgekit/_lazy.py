"""Lazy imports of the heavy optional frameworks.

``edgekit --help`` and ``edgekit bench model.tflite`` never import TensorFlow: every module
that needs it calls :func:`require` inside the function that uses it, and a missing package
becomes an :class:`~edgekit.errors.MissingExtraError` naming the extra to install.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import os
import sys
import warnings
from collections.abc import Iterator
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


_NOISY = ("tensorflow", "keras", "tf2onnx")


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    for name in ("tensorflow", "tf2onnx", "absl"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"(tensorflow|keras|tf2onnx)(\.|$)")


@contextlib.contextmanager
def silenced(*fds: int) -> Iterator[None]:
    """Hide what libraries print to the given file descriptors (default: stdout and stderr).

    TensorFlow's C++ code, the TFLite converter and ONNX Runtime's quantizer print notes
    that would drown edgekit's own output. Python exceptions are unaffected: a failure still
    raises with its message. ``EDGEKIT_DEBUG=1`` shows everything.
    """
    fds = fds or (1, 2)
    if os.environ.get("EDGEKIT_DEBUG"):
        yield
        return
    saved: list[tuple[int, int]] = []
    try:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        with open(os.devnull, "w") as null:
            for fd in fds:
                saved.append((fd, os.dup(fd)))
                os.dup2(null.fileno(), fd)
        with contextlib.redirect_stdout(io.StringIO()) if 1 in fds else contextlib.nullcontext():
            yield
    finally:
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)


def require(name: str) -> ModuleType:
    """Import ``name`` or raise a one-line error naming the extra that provides it."""
    top = name.split(".")[0]
    noisy = top in _NOISY
    if noisy:
        _quiet_tensorflow()
    try:
        quiet = noisy and top not in sys.modules
        with silenced(2) if quiet else contextlib.nullcontext():
            return importlib.import_module(name)
    except ImportError as err:
        package, extra = _EXTRAS.get(top, (top, "dev"))
        # edgekit's extras by path: the package index's "edgekit" is an unrelated project
        hint = (
            f"pip install {package}"
            if extra == "core"
            else f"pip install '.[{extra}]' in edgekit's source tree"
        )
        raise MissingExtraError(f"this needs {package}, which is not installed: {hint}") from err


def lazy_exports(package: str, names: dict[str, str]):
    """PEP 562 ``__getattr__``/``__dir__`` for a package whose public names live in submodules.

    ``names`` maps each public name to the module defining it: a submodule of ``package``, or
    an absolute ``edgekit.`` module. It is imported on first access, so importing the package
    itself imports nothing::

        __getattr__, __dir__ = lazy_exports(__name__, {"Run": "run_dir"})
    """

    def __getattr__(name: str):
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        full = module if module.startswith("edgekit.") else f"{package}.{module}"
        value = getattr(importlib.import_module(full), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(names))

    return __getattr__, __dir__
