"""Lowering one int8 op to a :class:`~edgekit.exporters.c.int8_steps.Step`, per op type.

:data:`LOWER` maps a TFLite builtin op to its lowering (onnxruntime quantization's registry
style). Each checks what the kernel handles, computes TFLite's constants with
:mod:`~edgekit.exporters.c.tflite_math` and writes them as arrays.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.exporters.c.int8_steps import Lowering, Ref, Step
from edgekit.exporters.c.literals import c_float, c_hexfloat, c_int, c_int32
from edgekit.exporters.c.tflite_math import (
    activation_range,
    add_multipliers,
    conv_multiplier,
    mul_multiplier,
    per_channel_multipliers,
    quantize_multiplier,
    softmax_table,
    softmax_tflm_table,
)
from edgekit.formats.tflite_graph import Op


def lower_fc(lw: Lowering, op: Op) -> Step:
    """FULLY_CONNECTED: ``ek_fc`` (input zero point folded into the bias) or ``ek_fc_offset``."""
    g, path = lw.g, lw.g.path
    x, w = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]]
    bias = g.tensors[op.inputs[2]] if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    y = g.tensors[op.outputs[0]]
    if x.dtype != "int8" or w.dtype != "int8" or y.dtype != "int8" or w.data is None:
        raise EdgekitError(
            f"{path}: FULLY_CONNECTED op {op.index} is {x.dtype} x {w.dtype} -> {y.dtype}; "
            "--c-source int8 needs int8 activations and constant int8 weights"
        )
    if bias is not None and (bias.dtype != "int32" or bias.data is None):
        raise EdgekitError(f"{path}: FULLY_CONNECTED op {op.index} has a non-int32 bias")
    units = w.shape[0]
    n_in = int(np.prod(w.shape[1:]))
    if x.size != n_in or y.size != units:
        raise EdgekitError(
            f"{path}: FULLY_CONNECTED op {op.index} on {x.size} values with {n_in}-wide "
            "weights; --c-source handles one sample of flat features"
        )
    wq = np.asarray(w.data, np.int64).reshape(units, n_in)
    x_off = -x.zero_point
    if w.scales is not None and len(w.scales) > 1:  # per channel
        if np.any(w.zero_points != 0):
            raise EdgekitError(f"{path}: per-channel weights need zero points of 0")
        reals = per_channel_multipliers(x.scale, list(w.scales), y.scale)
        w_off = 0
    else:
        reals = [conv_multiplier(x.scale, w.scale, y.scale)] * units
        w_off = -w.zero_point
    mult, shift = zip(*(quantize_multiplier(r) for r in reals), strict=True)
    b = np.zeros(units, np.int64) if bias is None else np.asarray(bias.data, np.int64)
    act = op.options.get("fused_activation_function", "NONE")
    lo, hi = activation_range(act, y.scale, y.zero_point)
    wn, bn, mn, sn = (lw.name(k) for k in ("w", "b", "m", "s"))
    lw.array("int8_t", wn, wq, c_int, 16)
    lw.array("int32_t", mn, mult, c_int32, 6)
    lw.array("int8_t", sn, shift, c_int, 16)
    what = f"FULLY_CONNECTED op {op.index}: {n_in} -> {units}, {act.lower()}"
    head: list[str | Ref] = [lw.ref(op.inputs[0]), str(n_in), wn, bn, str(units)]
    tail: list[str | Ref] = [mn, sn, str(lo), str(hi), lw.ref(op.outputs[0])]
    if w_off == 0:
        # ek_fc sums u * w with u = x + 128 (unsigned): the input zero point and that shift
        # go into the bias, acc = sum(u * w) + (b + (x_off - 128) * sum(w))
        folded = b + (x_off - 128) * wq.sum(axis=1)
        reach = np.abs(folded) + 255 * np.abs(wq).sum(axis=1)
        if np.any(reach >= 2**31):
            raise EdgekitError(f"{path}: FULLY_CONNECTED op {op.index} overflows int32")
        lw.array("int32_t", bn, folded, c_int32, 6)
        lw.fc_inputs.append(n_in)
        kernel, args = "fc", [*head, str(y.zero_point), *tail]
    else:
        lw.array("int32_t", bn, b, c_int32, 6)
        kernel, args = "fc_offset", [*head, str(x_off), str(w_off), str(y.zero_point), *tail]
    return Step(kernel, args, [lw.find(op.inputs[0])], lw.find(op.outputs[0]), what)


def lower_softmax(lw: Lowering, op: Op) -> Step:
    """SOFTMAX over one row: TFLM's fixed-point kernel (``ek_softmax_tflm``, its exponentials
    as a 256-entry int32 table) or LiteRT's (``ek_softmax``, a 256-entry ``expf`` table)."""
    g, path = lw.g, lw.g.path
    x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    if x.dtype != "int8" or y.dtype != "int8":
        raise EdgekitError(f"{path}: SOFTMAX op {op.index} is not int8 -> int8")
    if y.zero_point != -128 or abs(y.scale - 1 / 256) > 1e-3 / 256:
        raise EdgekitError(f"{path}: SOFTMAX op {op.index} output is not scale 1/256, zp -128")
    n = x.shape[-1] if x.shape else 1
    if x.size != n:
        raise EdgekitError(f"{path}: SOFTMAX op {op.index} over more than one row")
    beta = float(op.options.get("beta", 1.0))
    what = f"SOFTMAX op {op.index}: {n} values, beta {beta:g}"
    if lw.rounding == "tflm":
        exp = softmax_tflm_table(x.scale, beta)
        tn = lw.array("int32_t", lw.name("exp"), exp, c_int32, 6)
        args: list[str | Ref] = [lw.ref(op.inputs[0]), str(n), tn, lw.ref(op.outputs[0])]
        return Step("softmax_tflm", args, [lw.find(op.inputs[0])], lw.find(op.outputs[0]), what)
    table = softmax_table(x.scale, beta)
    tn = lw.array("float", lw.name("exp"), table, c_hexfloat, 4)
    args = [lw.ref(op.inputs[0]), str(n), tn, c_float(y.scale)]
    args += [str(y.zero_point), lw.ref(op.outputs[0])]
    return Step("softmax", args, [lw.find(op.inputs[0])], lw.find(op.outputs[0]), what)


def _operand(lw: Lowering, op: Op, i: int, n: int) -> tuple[str | Ref, str]:
    """(the array name or tensor, its step: "0" broadcasts a scalar) of a binary operand."""
    t = lw.g.tensors[i]
    path = lw.g.path
    if t.dtype != "int8":
        raise EdgekitError(f"{path}: {op.name} op {op.index} has a {t.dtype} operand")
    if t.is_constant:
        if t.size not in (1, n):
            raise EdgekitError(f"{path}: {op.name} op {op.index} broadcasts {t.shape}")
        name = lw.array("int8_t", lw.name("c"), np.asarray(t.data).ravel(), c_int, 16)
        return name, ("1" if t.size == n else "0")
    if t.size != n:
        raise EdgekitError(f"{path}: {op.name} op {op.index} broadcasts {t.shape}")
    return lw.ref(i), "1"


def lower_binary(lw: Lowering, op: Op) -> Step:
    """ADD / SUB (``ek_addsub``) and MUL (``ek_mul``) on two int8 tensors or a constant."""
    g, path = lw.g, lw.g.path
    a, b = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]]
    y = g.tensors[op.outputs[0]]
    n = y.size
    if y.dtype != "int8":
        raise EdgekitError(f"{path}: {op.name} op {op.index} output is {y.dtype}")
    lo, hi = activation_range(
        op.options.get("fused_activation_function", "NONE"), y.scale, y.zero_point
    )
    ea, sa = _operand(lw, op, op.inputs[0], n)
    eb, sb = _operand(lw, op, op.inputs[1], n)
    qn = lw.name("q")
    if op.name == "MUL":
        m, s = quantize_multiplier(mul_multiplier(a.scale, b.scale, y.scale))
        q = [-a.zero_point, -b.zero_point, m, s, y.zero_point, lo, hi]
        lw.array("int32_t", qn, q, c_int32, 7)
        kernel, flags = "mul", list[str]()
    else:
        ra, rb, ro = add_multipliers(a.scale, b.scale, y.scale)
        if ro > 1.0:
            raise EdgekitError(
                f"{path}: {op.name} op {op.index} needs an output multiplier > 1 (a nearly "
                "constant output range); not supported by --c-source int8"
            )
        (ma, sha), (mb, shb), (mo, sho) = (quantize_multiplier(r) for r in (ra, rb, ro))
        q = [-a.zero_point, ma, -sha, -b.zero_point, mb, -shb, mo, -sho, y.zero_point, lo, hi]
        lw.array("int32_t", qn, q, c_int32, 11)
        kernel, flags = "addsub", ["1" if op.name == "SUB" else "0"]
    args = [ea, sa, eb, sb, str(n), qn, *flags, lw.ref(op.outputs[0])]
    variables = [e.tensor for e in (ea, eb) if isinstance(e, Ref)]
    what = f"{op.name} op {op.index}: {n} values"
    return Step(kernel, args, variables, lw.find(op.outputs[0]), what)


# TFLite builtin op -> its lowering (elementwise chains and RESHAPE are handled before this)
LOWER: dict[str, Callable[[Lowering, Op], Step]] = {
    "FULLY_CONNECTED": lower_fc,
    "SOFTMAX": lower_softmax,
    "ADD": lower_binary,
    "SUB": lower_binary,
    "MUL": lower_binary,
}
