"""What an export's artifacts are compared with: the test data (or seeded random inputs) in
the dtypes the model takes, its labels, the Keras model's outputs, and the calibration
inputs; and how they are stored in the export's ``test.npz``."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.exporters.multi import input_names, is_multi, output_names
from edgekit.formats.ids import check_ids

# Without test data, float parity is checked on this many seeded random inputs.
REFERENCE_SAMPLES_WITHOUT_DATA = 256


def reference(model, task: str, src):
    """What the artifacts are compared with: the test data (or seeded random inputs), its
    labels, and the Keras model's outputs on it (a list for several outputs)."""
    from edgekit.exporters.validate import Reference

    wants = [[int(d) for d in t.shape[1:]] for t in model.inputs]
    dtypes = [str(t.dtype) for t in model.inputs]
    test = src.test
    if test is not None and "x" in test:
        xs = test["x"] if isinstance(test["x"], list) else [test["x"]]
        y = test.get("y") if len(model.outputs) == 1 else None  # labels of one output
        synthetic = False
    else:  # no data: float parity against the Keras model on seeded random inputs
        if any(not d.startswith("float") for d in dtypes):
            raise EdgekitError(
                "the model takes integer inputs (ids), which random inputs cannot stand for; "
                "pass --data FILE"
            )
        rng = np.random.default_rng(0)
        xs = [rng.normal(size=(REFERENCE_SAMPLES_WITHOUT_DATA, *w)) for w in wants]
        y, synthetic = None, True
    for i, (x, want) in enumerate(zip(xs, wants, strict=True)):
        if list(x.shape[1:]) != want:
            which = f" (input {model.inputs[i].name!r})" if len(xs) > 1 else ""
            raise EdgekitError(
                f"{src.test_name}{which} has feature shape {list(x.shape[1:])}, the model "
                f"takes {want}"
            )
    xs = [as_input(x, d) for x, d in zip(xs, dtypes, strict=True)]
    if not synthetic:
        columns = src.features if src.test_name.lower().endswith(".csv") else None
        check_ids(xs, id_records(model), src.test_name, columns=columns)
    x_in = xs if len(xs) > 1 else xs[0]
    predicted = _predict(model, x_in, src.test_name)
    if isinstance(predicted, list | tuple) and len(model.outputs) > 1:
        outputs: Any = [np.asarray(p, np.float32) for p in predicted]
    else:
        outputs = np.asarray(predicted, np.float32)
    if y is not None and not isinstance(outputs, list):
        from edgekit.metrics import check_labels

        try:
            check_labels(y, outputs, task)
        except EdgekitError as err:
            raise EdgekitError(f"{src.test_name}: {err}") from err
    # several inputs, or one input of a several-output model: the artifacts keep the Keras
    # input names (to_onnx, multi.run_multi), so the runners feed them by those names
    names = input_names(model) if is_multi(model) else None
    outs = output_names(model) if is_multi(model) else None
    return Reference(task=task, x=x_in, y=y, outputs=outputs, synthetic=synthetic,
                     input_names=names, output_names=outs)  # fmt: skip


def _predict(model, x: Any, what: str) -> Any:
    """The Keras model's outputs on ``x``; an input it cannot take (an id past an embedding
    that :func:`check_ids` could not see) is the data's fault, said in one line."""
    from edgekit._lazy import require

    tf = require("tensorflow")
    try:
        return model.predict(x, batch_size=1024, verbose=0)
    except tf.errors.InvalidArgumentError as err:
        first = (str(err.message).strip().splitlines() or ["?"])[0]
        raise EdgekitError(f"{what}: the Keras model cannot run on it: {first}") from err


def id_records(model) -> list[dict[str, Any]]:
    """The manifest's ``ids`` (:mod:`edgekit.formats.ids`): for each model input that an
    ``Embedding`` reads directly, its name, the layer and the rows it has."""
    names = input_names(model)
    found: dict[int, dict[str, Any]] = {}
    for layer in model.layers:
        dim = getattr(layer, "input_dim", None)
        if type(layer).__name__ != "Embedding" or not isinstance(dim, int):
            continue
        for i, tensor in enumerate(model.inputs):
            if _reads(layer, tensor) and (i not in found or dim < found[i]["input_dim"]):
                found[i] = {"input": i, "name": names[i], "layer": layer.name, "input_dim": dim}
    return [found[i] for i in sorted(found)]


def _reads(layer, tensor) -> bool:
    for node in getattr(layer, "_inbound_nodes", None) or []:
        if any(t is tensor for t in getattr(node, "input_tensors", None) or []):
            return True
    try:
        return layer.input is tensor
    except (AttributeError, ValueError):  # a layer never called
        return False


def as_input(x: np.ndarray, dtype: str) -> np.ndarray:
    """Samples in the dtype the model's input takes (token ids stay integers)."""
    if dtype.startswith("float"):
        return np.asarray(x, np.float32)
    values = np.asarray(x)
    if not np.all(values == np.round(values)):
        raise EdgekitError(f"the model takes {dtype} inputs, and the data holds fractions")
    return values.astype(dtype)


def calibration_inputs(model, data: Any, samples: int, *, what: str = "calibration data") -> Any:
    """The calibration inputs (the first ``samples``), checked against the model's inputs."""
    parts = data if isinstance(data, list) else [data]
    if len(parts) != len(model.inputs):
        raise EdgekitError(
            f"calibration data has {len(parts)} input(s), the model {len(model.inputs)}"
        )
    out = []
    for t, part in zip(model.inputs, parts, strict=True):
        want = [int(d) for d in t.shape[1:]]
        x = as_input(np.asarray(part[:samples]), str(t.dtype))
        if list(x.shape[1:]) != want:
            raise EdgekitError(
                f"calibration data has feature shape {list(x.shape[1:])}, the model takes {want}"
            )
        out.append(x)
    check_ids(out, id_records(model), what)
    return out if len(out) > 1 else out[0]


def test_arrays(ref) -> dict[str, Any]:
    """``test.npz``: ``x`` and ``reference`` (``x_0``, ``x_1``, ... and ``reference_0``, ...
    for several inputs and outputs), and ``y``."""
    arrays: dict[str, Any] = {}
    for key, value in (("x", ref.x), ("reference", ref.outputs)):
        if isinstance(value, list):
            arrays.update({f"{key}_{i}": v for i, v in enumerate(value)})
        else:
            arrays[key] = value
    return arrays
