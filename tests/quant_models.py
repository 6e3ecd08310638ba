"""Models with a known quantization problem planted in them, for tests of diagnosis.

:func:`outlier_channel_model` trains a small seeded MLP and then rescales one hidden unit so
that the float function is unchanged but the unit's activations span ``k`` times the others':
per-tensor int8 activations then give every other unit of that layer one or two levels.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

OUTLIER_LAYER = "dense_0"
OUTLIER_UNIT = 0


def train_small(base: Path, name: str = "normal", *, hidden: tuple[int, ...] = (16, 8)) -> Path:
    """A seeded breast_cancer MLP (default hidden 16, 8) in ``base / name``; returns the run
    directory."""
    import edgekit

    out = base / name
    if not (out / "run.json").is_file():
        edgekit.train(dataset="breast_cancer", hidden=list(hidden), epochs=30, seed=0, out=str(out))
    return out


def _suffix(hidden: tuple[int, ...]) -> str:
    return "" if tuple(hidden) == (16, 8) else "_" + "x".join(str(h) for h in hidden)


def _unit_ranges(model, x: np.ndarray, layer: str) -> np.ndarray:
    import keras

    probe = keras.Model(model.inputs, model.get_layer(layer).output)
    h = np.asarray(probe.predict(x, verbose=0), np.float64)
    return h.max(axis=0) - h.min(axis=0)


def outlier_channel_model(
    base: Path, *, k: float = 300.0, hidden: tuple[int, ...] = (16, 8)
) -> Path:
    """A run directory whose ``model.keras`` has one outlier unit in ``dense_0``.

    Unit ``OUTLIER_UNIT`` of ``dense_0`` gets its incoming weights and bias multiplied by ``k``
    and its outgoing weights in ``dense_1`` divided by ``k``. ReLU is positively homogeneous
    (``relu(k*z) = k*relu(z)``), so the model computes the same function (checked to 1e-4 on
    the test data); only the ranges of its activations change. ``run.json`` and ``data/`` are
    copied, so ``edgekit export RUN`` works on the result. ``hidden`` sets the MLP's hidden
    layers (two at least); the source model is ``train_small(base, ...)``'s.
    """
    from edgekit.formats.keras_file import load_keras_model
    from edgekit.formats.npz import load_npz

    source = train_small(base, "normal" + _suffix(hidden), hidden=hidden)
    out = base / f"outlier_k{k:g}{_suffix(hidden)}"
    if (out / "model.keras").is_file():
        return out
    model = load_keras_model(source / "model.keras")
    x = np.asarray(load_npz(source / "data" / "test.npz")["x"], np.float32)
    before = np.asarray(model.predict(x, verbose=0), np.float64)
    first, second = model.get_layer(OUTLIER_LAYER), model.get_layer("dense_1")
    kernel, bias = (np.array(w) for w in first.get_weights())
    kernel[:, OUTLIER_UNIT] *= k
    bias[OUTLIER_UNIT] *= k
    first.set_weights([kernel, bias])
    kernel2, bias2 = (np.array(w) for w in second.get_weights())
    kernel2[OUTLIER_UNIT, :] /= k
    second.set_weights([kernel2, bias2])
    after = np.asarray(model.predict(x, verbose=0), np.float64)
    diff = float(np.max(np.abs(after - before)))
    assert diff < 1e-4, f"rescaling changed the float model by {diff}"
    ranges = _unit_ranges(model, x, OUTLIER_LAYER)
    others = np.delete(ranges, OUTLIER_UNIT)
    assert ranges[OUTLIER_UNIT] > 20 * np.median(others[others > 0]), ranges
    out.mkdir(parents=True)
    shutil.copytree(source / "data", out / "data")
    info = json.loads((source / "run.json").read_text(encoding="utf-8"))
    info["name"] = out.name
    (out / "run.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    model.save(out / "model.keras")
    return out
