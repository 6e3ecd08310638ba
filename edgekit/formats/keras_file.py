"""Loading ``.keras`` files safely: safe mode on, every failure a one-line user error."""

from __future__ import annotations

import zipfile
from pathlib import Path

from edgekit._lazy import require
from edgekit.errors import EdgekitError


def load_keras_model(path: str | Path):
    """Load a ``.keras`` model in safe mode (a ``Lambda`` layer's code is never run)."""
    path = Path(path)
    if not path.is_file():
        raise EdgekitError(f"{path}: no such model file")
    if not zipfile.is_zipfile(path):
        raise EdgekitError(f"{path}: not a .keras model file (corrupt or of another format)")
    keras = require("keras")
    try:
        return keras.models.load_model(path, compile=False, safe_mode=True)
    except ValueError as err:
        text = str(err)
        if "Lambda" in text or "safe_mode" in text:
            raise EdgekitError(
                f"{path}: refused: the model contains a Lambda layer, whose Python code "
                "edgekit will not run (safe mode)"
            ) from err
        raise EdgekitError(f"{path}: cannot load the model ({text.splitlines()[0]})") from err
    except Exception as err:
        first = (str(err).splitlines() or [type(err).__name__])[0]
        raise EdgekitError(
            f"{path}: cannot load the model ({type(err).__name__}: {first})"
        ) from err
