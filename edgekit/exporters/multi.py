"""Models with several inputs or outputs: running their artifacts and validating them output
by output.

edgekit's runners (and so ``bench``, ``predict`` and the C) take one input and one output; an
export of a model with several is validated here, straight on the runtimes: a ``.tflite``
through its signature runner (inputs and outputs by the Keras names), an ``.onnx`` by its graph's names (the Keras input
and output names). Integer inputs and outputs are quantized and dequantized with each
tensor's own parameters, or with the per-feature parameters the manifest records for an input
whose normalization was folded into them. Each output is judged as a one-output model would be: float32 within
``--atol``, others by agreement with the Keras model (a classification head, more than one
value) or the mean error in % of the Keras output's spread (one value); labels (``y``) are used
when the model has one output.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.exporters.validate import Reference, judge
from edgekit.runtime.base import TensorInfo, override_quantization


def input_names(model: Any) -> list[str]:
    return [str(t.name) for t in model.inputs]


def output_names(model: Any) -> list[str]:
    names = getattr(model, "output_names", None)
    if names and len(names) == len(model.outputs):
        return [str(n) for n in names]
    return [f"output_{i}" for i in range(len(model.outputs))]


def is_multi(model: Any) -> bool:
    return len(model.inputs) != 1 or len(model.outputs) != 1


def _tensor(name: str, detail: dict) -> TensorInfo:
    shape = [int(d) for d in detail.get("shape_signature", detail["shape"])]
    if shape and shape[0] <= 0:
        shape[0] = -1
    dtype = np.dtype(detail["dtype"])
    scale, zero_point = detail.get("quantization", (0.0, 0))
    quant = None
    if scale and dtype.kind != "f":
        quant = {"scale": float(scale), "zero_point": int(zero_point)}
    return TensorInfo(name=name, shape=shape, dtype=dtype.name, quantization=quant)


def _run_tflite(
    path: Path,
    xs: list[np.ndarray],
    names: list[str],
    quantization: list[dict | None] | None,
    output_names: list[str] | None = None,
):
    from edgekit._lazy import require

    interpreter_mod = require("ai_edge_litert.interpreter")
    interpreter = interpreter_mod.Interpreter(
        model_path=str(path),
        experimental_op_resolver_type=interpreter_mod.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    runner = interpreter.get_signature_runner()
    ins = {k: _tensor(k, d) for k, d in runner.get_input_details().items()}
    outs = {k: _tensor(k, d) for k, d in runner.get_output_details().items()}
    missing = [n for n in names if n not in ins]
    if missing:
        raise EdgekitError(f"{path.name}: its signature has no input {', '.join(missing)}")
    for name, q in zip(names, quantization or [None] * len(names), strict=True):
        if q is not None:
            override_quantization(path, ins[name], q, named=True)
    if output_names is not None and set(output_names) == set(outs):
        order = list(output_names)  # the Keras names, in the model's order
    else:  # an older export's output_0, output_1, ..., output_10
        order = sorted(outs, key=lambda k: (len(k), k))
    results: list[list[np.ndarray]] = [[] for _ in order]
    fixed = any(t.shape and t.shape[0] > 0 for t in ins.values())
    step = 1 if fixed else 1024
    for start in range(0, len(xs[0]), step):
        feed = {
            n: ins[n].quantize(np.asarray(x[start : start + step]))
            for n, x in zip(names, xs, strict=True)
        }
        got = runner(**feed)
        for j, key in enumerate(order):
            results[j].append(outs[key].dequantize(got[key]))
    tensors_in = [ins[n].to_json() for n in names]
    tensors_out = [outs[k].to_json() for k in order]
    return [np.concatenate(r) for r in results], tensors_in, tensors_out


def _run_onnx(path: Path, xs: list[np.ndarray], names: list[str]):
    from edgekit._lazy import require
    from edgekit.runtime.onnxruntime import _info

    ort = require("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ins = {a.name: _info(a) for a in session.get_inputs()}
    missing = [n for n in names if n not in ins]
    if missing:
        raise EdgekitError(f"{path.name}: its graph has no input {', '.join(missing)}")
    feed = {n: np.ascontiguousarray(x, dtype=ins[n].dtype) for n, x in zip(names, xs, strict=True)}
    outputs = [np.asarray(o, np.float32) for o in session.run(None, feed)]
    return (
        outputs,
        [ins[n].to_json() for n in names],
        [_info(a).to_json() for a in session.get_outputs()],
    )


def run_multi(
    path: Path,
    xs: list[np.ndarray],
    names: list[str],
    quantization: list[dict | None] | None = None,
    output_names: list[str] | None = None,
):
    """(outputs, input tensors, output tensors) of the artifact at ``path`` on ``xs``.

    ``quantization``: for each input, the manifest's quantization when it is not the file's
    own (None where it is); the inputs of an ``.onnx`` are float. ``output_names``: the Keras
    output names, the ``.tflite`` signature's output keys."""
    try:
        if path.suffix == ".tflite":
            return _run_tflite(path, xs, names, quantization, output_names)
        return _run_onnx(path, xs, names)
    except EdgekitError:
        raise
    except Exception as err:  # the runtimes' own errors, in one line
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise EdgekitError(f"{path.name}: cannot run it ({first})") from err


def _head_task(outputs: np.ndarray, task: str, single: bool) -> str:
    if single:
        return task
    width = int(np.prod(outputs.shape[1:])) if outputs.ndim > 1 else 1
    return "multiclass" if width > 1 else "regression"


def validate_multi(
    path: Path,
    ref: Reference,
    *,
    exact: bool,
    atol: float,
    max_accuracy_drop: float,
    input_quantization: list[dict | None] | None = None,
) -> tuple[dict[str, Any], list[dict], list[dict]]:
    """Validate a several-input or several-output artifact, output by output
    (``input_quantization``: as :func:`run_multi` takes it)."""
    xs = ref.x if isinstance(ref.x, list) else [ref.x]
    refs = ref.outputs if isinstance(ref.outputs, list) else [ref.outputs]
    names = list(ref.input_names or [f"input_{i}" for i in range(len(xs))])
    outputs, ins, outs = run_multi(path, xs, names, input_quantization, ref.output_names)
    if len(outputs) != len(refs):
        raise EdgekitError(f"{path.name}: {len(outputs)} outputs, the model has {len(refs)}")
    single = len(refs) == 1
    per_output = []
    for out, want in zip(outputs, refs, strict=True):
        head = Reference(
            task=_head_task(want, ref.task, single), x=xs[0], y=ref.y if single else None,
            outputs=want, synthetic=ref.synthetic,
        )  # fmt: skip
        per_output.append(
            judge(out.reshape(want.shape), head, exact=exact, atol=atol,
                  max_accuracy_drop=max_accuracy_drop)
        )  # fmt: skip
    verdicts = [r["passed"] for r in per_output]
    passed = False if False in verdicts else (None if None in verdicts else True)
    drops = [float(r["accuracy_drop"]) for r in per_output if r.get("accuracy_drop") is not None]
    result: dict[str, Any] = {
        "max_abs_diff": max(float(r["max_abs_diff"]) for r in per_output),
        "top1_agreement": min(
            (r["top1_agreement"] for r in per_output if r["top1_agreement"] is not None),
            default=None,
        ),
        "metrics": per_output[0]["metrics"] if single else {},
        "accuracy_drop": max(drops) if drops else None,
        "criterion": "every output: "
        + "; ".join(dict.fromkeys(r["criterion"] for r in per_output)),
        "passed": passed,
        "per_output": per_output,
    }
    return result, ins, outs
