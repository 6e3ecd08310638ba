"""int8 C from an int8 ``.tflite`` model, reproducing TensorFlow Lite's builtin int8 kernels.

See :mod:`edgekit.exporters.c_source` for what each op does. The graph is lowered to a list
of steps (FULLY_CONNECTED, SOFTMAX, SUB/ADD/MUL, 256-entry tables for elementwise chains);
RESHAPE aliases its input, and the shape computation in front of it is dropped. Every
intermediate tensor gets an offset in one static arena, planned from the steps' lifetimes.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.exporters.c_templates.common import (
    Code,
    c_array,
    c_float,
    c_header,
    c_hexfloat,
    c_int,
    c_int32,
)

_ALIAS_OPS = ("RESHAPE", "SQUEEZE", "EXPAND_DIMS")
# Elementwise ops: with constant operands that are scalars, a chain of them applied to one
# int8 tensor is a function of one int8 value (a 256-entry table).
_ELEMENTWISE = frozenset((
    "TANH", "LOGISTIC", "GELU", "ELU", "HARD_SWISH", "LEAKY_RELU", "RELU", "RELU6",
    "RELU_N1_TO_1", "RELU_0_TO_1", "QUANTIZE", "DEQUANTIZE", "EXP", "LOG", "NEG", "ABS",
    "SQUARE", "SQRT", "RSQRT", "SIN", "COS", "ADD", "SUB", "MUL", "DIV", "MAXIMUM", "MINIMUM",
    "POW", "GREATER", "GREATER_EQUAL", "LESS", "LESS_EQUAL", "EQUAL", "NOT_EQUAL", "SELECT",
    "SELECT_V2", "LOGICAL_AND", "LOGICAL_OR", "LOGICAL_NOT", "CAST", "FLOOR", "CEIL", "ROUND",
    "SIGN", "SQUARED_DIFFERENCE",
))  # fmt: skip
INT8_OPS = ("FULLY_CONNECTED", "SOFTMAX", "SUB", "MUL", "RESHAPE", "elementwise activations")


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite's ``QuantizeMultiplier``: ``real = m * 2**(shift - 31)``, ``m`` in [2**30, 2**31)."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    x = abs(q) * (1 << 31)
    whole = math.floor(x)
    q_fixed = whole + (1 if x - whole >= 0.5 else 0)  # std::round: ties away from zero
    q_fixed = q_fixed if q >= 0 else -q_fixed
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return int(q_fixed), int(shift)


def _round_away(v: float) -> int:
    return int(math.copysign(math.floor(abs(v) + 0.5), v))


def _activation_range(act: str, scale: float, zp: int) -> tuple[int, int]:
    """TFLite's ``CalculateActivationRangeQuantized`` for int8 outputs."""

    def q(f: float) -> int:
        return zp + _round_away(float(np.float32(f) / np.float32(scale)))

    lo, hi = -128, 127
    if act == "RELU":
        return max(lo, q(0.0)), hi
    if act == "RELU6":
        return max(lo, q(0.0)), min(hi, q(6.0))
    if act == "RELU_N1_TO_1":
        return max(lo, q(-1.0)), min(hi, q(1.0))
    if act != "NONE":
        raise EdgekitError(f"fused activation {act} is not supported in int8 C code")
    return lo, hi


def _libm_expf():
    """The C library's ``expf`` (what TFLite's kernels call), or None where it cannot load."""
    import ctypes
    import ctypes.util

    try:
        name = ctypes.util.find_library("m")
        lib = ctypes.CDLL(name) if name else ctypes.CDLL(None)
        fn = lib.expf
    except (OSError, AttributeError):
        return None
    fn.restype = ctypes.c_float
    fn.argtypes = [ctypes.c_float]
    return fn


def softmax_table(input_scale: float, beta: float) -> np.ndarray:
    """TFLite's ``PopulateSoftmaxLookupTable``: ``table[255 - v] = expf(-scale * beta * v)``."""
    scale = np.float32(-np.float32(input_scale) * np.float32(beta))
    expf = _libm_expf()
    table = np.zeros(256, np.float32)
    for v in range(256):
        arg = np.float32(scale * np.float32(v))
        table[255 - v] = expf(float(arg)) if expf else np.float32(math.exp(float(arg)))
    return table


_INT8_HELPERS = {
    "srdhm": """\
/* gemmlowp SaturatingRoundingDoublingHighMul */
static int32_t {p}_srdhm(int32_t a, int32_t b)
{{
    int64_t ab, nudge;
    if (a == b && a == INT32_MIN) {{
        return INT32_MAX;
    }}
    ab = (int64_t)a * (int64_t)b;
    nudge = ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}}
""",
    "rdbpot": """\
/* gemmlowp RoundingDivideByPOT: ties away from zero; arithmetic shift written portably */
static int32_t {p}_rdbpot(int32_t x, int exponent)
{{
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    const int32_t shifted = x >= 0 ? (x >> exponent) : ~(~x >> exponent);
    return shifted + (remainder > threshold ? 1 : 0);
}}
""",
    "mbqm": """\
/* TFLite MultiplyByQuantizedMultiplier (gemmlowp rounding) */
static int32_t {p}_mbqm(int32_t x, int32_t multiplier, int shift)
{{
    const int left = shift > 0 ? shift : 0;
    const int right = shift > 0 ? 0 : -shift;
    return {p}_rdbpot({p}_srdhm((int32_t)((int64_t)x * ((int64_t)1 << left)), multiplier), right);
}}
""",
    "requant": """\
/* TFLite's optimized FULLY_CONNECTED requantization (ruy): doubling high multiply, then a
 * rounding right shift with ties rounded upward */
static int32_t {p}_requant(int32_t x, int32_t multiplier, int shift)
{{
    const int left = shift > 0 ? shift : 0;
    const int right = shift > 0 ? 0 : -shift;
    int64_t v = {p}_srdhm((int32_t)((int64_t)x * ((int64_t)1 << left)), multiplier);
    if (right > 0) {{
        v += (int64_t)1 << (right - 1);
        v = v >= 0 ? (v >> right) : ~(~v >> right);
    }}
    return (int32_t)v;
}}
""",
    "clamp": """\
static int8_t {p}_clamp(int32_t v, int32_t lo, int32_t hi)
{{
    return (int8_t)(v < lo ? lo : (v > hi ? hi : v));
}}
""",
    "fc": """\
/* FULLY_CONNECTED, symmetric weights: bias already holds bias + x_offset * sum(row). The
 * input is widened to int16 once (as CMSIS-NN does), then four rows share each load. */
static int16_t {p}_x16[{x16}];

static int32_t {p}_fc_out(int32_t acc, int32_t mult, int shift, int32_t y_offset, int32_t lo,
    int32_t hi)
{{
    return {p}_clamp({p}_requant(acc, mult, shift) + y_offset, lo, hi);
}}

static void {p}_fc(const int8_t *x, int n_in, const int8_t *w, const int32_t *bias, int n_out,
    int32_t y_offset, const int32_t *mult, const int8_t *shift, int32_t lo,
    int32_t hi, int8_t *y)
{{
    int16_t *const x16 = {p}_x16;
    int o = 0, i;
    for (i = 0; i < n_in; ++i) {{
        x16[i] = x[i];
    }}
    for (; o + 4 <= n_out; o += 4) {{
        const int8_t *r0 = w + (long)o * n_in;
        const int8_t *r1 = r0 + n_in, *r2 = r1 + n_in, *r3 = r2 + n_in;
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        for (i = 0; i < n_in; ++i) {{
            const int32_t xi = x16[i];
            a0 += r0[i] * xi;
            a1 += r1[i] * xi;
            a2 += r2[i] * xi;
            a3 += r3[i] * xi;
        }}
        y[o] = {p}_fc_out(a0 + bias[o], mult[o], shift[o], y_offset, lo, hi);
        y[o + 1] = {p}_fc_out(a1 + bias[o + 1], mult[o + 1], shift[o + 1], y_offset, lo, hi);
        y[o + 2] = {p}_fc_out(a2 + bias[o + 2], mult[o + 2], shift[o + 2], y_offset, lo, hi);
        y[o + 3] = {p}_fc_out(a3 + bias[o + 3], mult[o + 3], shift[o + 3], y_offset, lo, hi);
    }}
    for (; o < n_out; ++o) {{
        const int8_t *row = w + (long)o * n_in;
        int32_t acc = 0;
        for (i = 0; i < n_in; ++i) {{
            acc += row[i] * (int32_t)x16[i];
        }}
        y[o] = {p}_fc_out(acc + bias[o], mult[o], shift[o], y_offset, lo, hi);
    }}
}}
""",
    "fc_offset": """\
/* FULLY_CONNECTED with a weight zero point (per-tensor asymmetric weights) */
static void {p}_fc_offset(const int8_t *x, int n_in, const int8_t *w, const int32_t *bias,
    int n_out, int32_t x_offset, int32_t w_offset, int32_t y_offset,
    const int32_t *mult, const int8_t *shift, int32_t lo, int32_t hi,
    int8_t *y)
{{
    int o, i;
    for (o = 0; o < n_out; ++o) {{
        const int8_t *row = w + (long)o * n_in;
        int32_t acc = 0;
        for (i = 0; i < n_in; ++i) {{
            acc += ((int32_t)row[i] + w_offset) * ((int32_t)x[i] + x_offset);
        }}
        acc = {p}_requant(acc + bias[o], mult[o], shift[o]) + y_offset;
        y[o] = {p}_clamp(acc, lo, hi);
    }}
}}
""",
    "addsub": """\
/* ADD / SUB, TFLite's general 8-bit path (left shift 20); a_step/b_step 0 broadcast a scalar */
static void {p}_addsub(const int8_t *a, int a_step, const int8_t *b, int b_step, int n,
    const int32_t *q, int subtract, int8_t *y)
{{
    /* q: a_offset a_mult a_right b_offset b_mult b_right out_mult out_right out_offset lo hi */
    int i;
    for (i = 0; i < n; ++i) {{
        const int32_t va = ((int32_t)a[i * a_step] + q[0]) * (1 << 20);
        const int32_t vb = ((int32_t)b[i * b_step] + q[3]) * (1 << 20);
        const int32_t sa = {p}_rdbpot({p}_srdhm(va, q[1]), (int)q[2]);
        const int32_t sb = {p}_rdbpot({p}_srdhm(vb, q[4]), (int)q[5]);
        const int32_t raw = subtract ? sa - sb : sa + sb;
        const int32_t out = {p}_rdbpot({p}_srdhm(raw, q[6]), (int)q[7]) + q[8];
        y[i] = {p}_clamp(out, q[9], q[10]);
    }}
}}
""",
    "mul": """\
/* MUL, TFLite's 8-bit path; a_step/b_step 0 broadcast a scalar */
static void {p}_mul(const int8_t *a, int a_step, const int8_t *b, int b_step, int n,
    const int32_t *q, int8_t *y)
{{
    /* q: a_offset b_offset out_mult out_shift out_offset lo hi */
    int i;
    for (i = 0; i < n; ++i) {{
        const int32_t prod = ((int32_t)a[i * a_step] + q[0]) * ((int32_t)b[i * b_step] + q[1]);
        y[i] = {p}_clamp({p}_mbqm(prod, q[2], (int)q[3]) + q[4], q[5], q[6]);
    }}
}}
""",
    "lut": """\
/* an elementwise int8 -> int8 function as a 256-entry table, indexed by x + 128 */
static void {p}_lut(const int8_t *x, int n, const int8_t *table, int8_t *y)
{{
    int i;
    for (i = 0; i < n; ++i) {{
        y[i] = table[(int)x[i] + 128];
    }}
}}
""",
    "round": """\
/* round half away from zero (std::round) without libm */
static int32_t {p}_round(float v)
{{
    int32_t i = (int32_t)v;
    const float r = v - (float)i;
    if (r >= 0.5f) {{
        ++i;
    }} else if (r <= -0.5f) {{
        --i;
    }}
    return i;
}}
""",
    "softmax": """\
/* SOFTMAX, TFLite's int8 kernel: exp table, float sum, round */
static void {p}_softmax(const int8_t *x, int n, const float *table, float out_scale,
    int32_t out_offset, int8_t *y)
{{
    int i;
    int32_t max = -128;
    const float *t;
    float sum = 0.0f, inv;
    for (i = 0; i < n; ++i) {{
        if (x[i] > max) {{
            max = x[i];
        }}
    }}
    t = table + (255 - max);
    for (i = 0; i < n; ++i) {{
        sum += t[x[i]];
    }}
    inv = 1.0f / (sum * out_scale);
    for (i = 0; i < n; ++i) {{
        y[i] = {p}_clamp({p}_round(t[x[i]] * inv) + out_offset, -128, 127);
    }}
}}
""",
    "quantize": """\
/* round(x / scale) + zero_point with ties to even, clamped to int8 (as edgekit's runners) */
static int8_t {p}_quantize(float x, float scale, int32_t zero_point)
{{
    float v = x / scale;
    int32_t i;
    float r;
    if (v != v) {{
        v = 0.0f;
    }}
    v = v > 1e9f ? 1e9f : (v < -1e9f ? -1e9f : v);
    i = (int32_t)v;
    r = v - (float)i;
    if (r > 0.5f || (r == 0.5f && (i & 1))) {{
        ++i;
    }} else if (r < -0.5f || (r == -0.5f && (i & 1))) {{
        --i;
    }}
    return {p}_clamp(i + zero_point, -128, 127);
}}
""",
}
_HELPER_DEPS = {
    "mbqm": ("srdhm", "rdbpot"),
    "requant": ("srdhm",),
    "fc": ("requant", "clamp"),
    "fc_offset": ("requant", "clamp"),
    "addsub": ("srdhm", "rdbpot", "clamp"),
    "mul": ("mbqm", "clamp"),
    "softmax": ("round", "clamp"),
    "quantize": ("clamp",),
}
_HELPER_ORDER = list(_INT8_HELPERS)


@dataclass
class _Step:
    kind: str
    inputs: list[int]
    output: int
    call: str  # C statement with {in0}, {in1}, {out} placeholders
    what: str


class Int8Writer:
    def __init__(self, prefix: str) -> None:
        self.p = prefix
        self.data: list[str] = []
        self.helpers: set[str] = set()
        self.n = 0
        self.fc_inputs: list[int] = []

    def _name(self, what: str) -> str:
        self.n += 1
        return f"{self.p}_{what}{self.n}"

    def _use(self, helper: str) -> None:
        self.helpers.add(helper)
        for dep in _HELPER_DEPS.get(helper, ()):
            self._use(dep)

    def write(self, path: Path, comment: str) -> Code:
        from edgekit.formats.arena import Buffer, greedy_plan
        from edgekit.formats.tflite_graph import read_tflite

        g = read_tflite(path)
        self.g = g
        if len(g.inputs) != 1 or len(g.outputs) != 1:
            raise EdgekitError(f"{path}: --c-source handles models with one input and one output")
        t_in, t_out = g.tensors[g.inputs[0]], g.tensors[g.outputs[0]]
        for t, what in ((t_in, "input"), (t_out, "output")):
            if t.dtype != "int8":
                raise EdgekitError(
                    f"{path}: the model's {what} is {t.dtype}; --c-source int8 needs int8 input "
                    "and output (export with --io-type int8, the default)"
                )
        self.alias: dict[int, int] = {}
        steps = self._lower(path)
        # buffers: every intermediate tensor, planned by lifetime in step order
        first: dict[int, int] = {}
        last: dict[int, int] = {}
        for k, step in enumerate(steps):
            first.setdefault(step.output, k)
            for i in step.inputs:
                last[i] = k
        ext = {self._find(g.inputs[0]), self._find(g.outputs[0])}
        buffers = [
            Buffer(t, g.tensors[t].size, k, max(last.get(t, k), k))
            for t, k in first.items()
            if t not in ext
        ]
        arena = greedy_plan(buffers)
        where = {b.key: f"arena + {b.offset}" for b in buffers}
        where[self._find(g.inputs[0])] = "input"
        where[self._find(g.outputs[0])] = "output"
        if steps and steps[-1].output != self._find(g.outputs[0]):
            raise EdgekitError(f"{path}: the model's output is not computed by its last op")
        lines = []
        for step in steps:
            ins = [where[i] for i in step.inputs]
            lines.append(f"/* {step.what} */")
            lines.append(step.call.format(*ins, out=where[step.output]))
        p = self.p
        n_in, n_out = t_in.size, t_out.size
        self._use("quantize")
        helpers = "\n".join(
            _INT8_HELPERS[h].format(p=p, x16=max(self.fc_inputs, default=1))
            for h in _HELPER_ORDER
            if h in self.helpers
        )
        body = "\n    ".join(lines)
        q = {
            "in_scale": t_in.scale,
            "in_zp": t_in.zero_point,
            "out_scale": t_out.scale,
            "out_zp": t_out.zero_point,
        }
        up = p.upper()
        source = f"""/* Generated by edgekit: int8 inference, C99, no dynamic allocation, no libm. Do not edit.
{comment}
 * Reproduces TensorFlow Lite's builtin int8 kernels (see edgekit.exporters.c_source).
 */
#include "{p}_model.h"

#include <stddef.h>

{"".join(self.data)}
static int8_t {p}_arena[{max(arena, 1)}];

{helpers}
int {p}_predict_int8(const int8_t *input, int8_t *output)
{{
    int8_t *const arena = {p}_arena;
    if (input == NULL || output == NULL) {{
        return -1;
    }}
    (void)arena;
    {body}
    return 0;
}}

int {p}_predict(const float *input, float *output)
{{
    static int8_t q_in[{up}_INPUT_SIZE];
    static int8_t q_out[{up}_OUTPUT_SIZE];
    int i;
    if (input == NULL || output == NULL) {{
        return -1;
    }}
    for (i = 0; i < {up}_INPUT_SIZE; ++i) {{
        q_in[i] = {p}_quantize(input[i], {up}_INPUT_SCALE, {up}_INPUT_ZERO_POINT);
    }}
    if ({p}_predict_int8(q_in, q_out) != 0) {{
        return -1;
    }}
    for (i = 0; i < {up}_OUTPUT_SIZE; ++i) {{
        output[i] = ((float)q_out[i] - (float){up}_OUTPUT_ZERO_POINT) * {up}_OUTPUT_SCALE;
    }}
    return 0;
}}
"""
        header = c_header(p, int8=q, n_in=n_in, n_out=n_out, comment=comment)
        return Code(
            header,
            source,
            n_in,
            n_out,
            input_q={"scale": q["in_scale"], "zero_point": q["in_zp"]},
            output_q={"scale": q["out_scale"], "zero_point": q["out_zp"]},
            ops=[s.what.split(":")[0] for s in steps],
            arena_bytes=arena,
        )

    # graph lowering

    def _find(self, t: int) -> int:
        while t in self.alias:
            t = self.alias[t]
        return t

    def _live_ops(self) -> list:
        g = self.g
        needed = {g.outputs[0]}
        live = []
        for op in reversed(g.ops):
            if not any(o in needed for o in op.outputs):
                continue
            live.append(op)
            data_inputs = op.inputs[:1] if op.name in _ALIAS_OPS else op.inputs
            needed.update(i for i in data_inputs if i >= 0 and not g.tensors[i].is_constant)
        return list(reversed(live))

    def _lower(self, path: Path) -> list[_Step]:
        g = self.g
        ops = self._live_ops()
        steps: list[_Step] = []
        done: set[int] = set()
        for pos, op in enumerate(ops):
            if op.index in done:
                continue
            if op.name in _ALIAS_OPS:
                src, dst = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
                if src.size != dst.size or src.dtype != dst.dtype:
                    raise EdgekitError(f"{path}: {op.name} op {op.index} changes the data")
                self.alias[op.outputs[0]] = self._find(op.inputs[0])
                continue
            region = self._region(ops, pos)
            if region is not None:
                region_ops, seed, exit_ = region
                done.update(o.index for o in region_ops)
                steps.append(self._lut(path, region_ops, seed, exit_))
                continue
            if op.name == "FULLY_CONNECTED":
                steps.append(self._fc(path, op))
            elif op.name == "SOFTMAX":
                steps.append(self._softmax(path, op))
            elif op.name in ("SUB", "ADD", "MUL"):
                steps.append(self._binary(path, op))
            else:
                raise EdgekitError(
                    f"{path}: op {op.index} {op.name} is not supported by --c-source int8; "
                    f"supported: {', '.join(INT8_OPS)} (or use --c-source float32)"
                )
        return steps

    def _is_const_scalar(self, i: int) -> bool:
        t = self.g.tensors[i]
        return t.is_constant and t.size == 1

    def _region(self, ops: list, pos: int):
        """The chain of elementwise ops starting at ``ops[pos]`` on one int8 tensor, if any."""
        g = self.g
        op = ops[pos]
        if op.name not in _ELEMENTWISE:
            return None
        variable = [i for i in op.inputs if i >= 0 and not g.tensors[i].is_constant]
        constants = [i for i in op.inputs if i >= 0 and g.tensors[i].is_constant]
        if len(set(variable)) != 1 or not all(self._is_const_scalar(i) for i in constants):
            return None
        seed = variable[0]
        if g.tensors[seed].dtype != "int8":
            return None
        n = g.tensors[seed].size
        inside = {seed}
        members = []
        for cand in ops[pos:]:
            if cand.name not in _ELEMENTWISE:
                continue
            var = [i for i in cand.inputs if i >= 0 and not g.tensors[i].is_constant]
            const = [i for i in cand.inputs if i >= 0 and g.tensors[i].is_constant]
            if not var or not set(var) <= inside:
                continue
            if not all(self._is_const_scalar(i) for i in const):
                continue
            if any(g.tensors[o].size != n for o in cand.outputs):
                continue
            members.append(cand)
            inside.update(cand.outputs)
        member_ids = {m.index for m in members}
        exits = {
            t
            for m in members
            for t in m.outputs
            if t in g.outputs or any(c.index not in member_ids for c in ops if t in c.inputs)
        }
        if len(exits) != 1:
            raise EdgekitError(
                f"{self.g.path}: the elementwise ops {', '.join(m.name for m in members)} "
                "do not reduce to one int8 tensor; not supported by --c-source int8"
            )
        exit_ = exits.pop()
        if g.tensors[exit_].dtype != "int8":
            raise EdgekitError(
                f"{self.g.path}: elementwise ops end in a {g.tensors[exit_].dtype} tensor; "
                "--c-source int8 needs int8 activations"
            )
        return members, seed, exit_

    def _lut(self, path: Path, members: list, seed: int, exit_: int) -> _Step:
        table = lut_from_tflite(path, members, seed, exit_)
        name = self._name("lut")
        self.data.append(c_array("int8_t", name, table, c_int, 16))
        self._use("lut")
        n = self.g.tensors[seed].size
        what = "+".join(m.name for m in members)
        return _Step(
            "lut",
            [self._find(seed)],
            self._find(exit_),
            f"{self.p}_lut({{0}}, {n}, {name}, {{out}});",
            f"{what} (table): {n} values through a 256-entry table",
        )

    def _fc(self, path: Path, op) -> _Step:
        g = self.g
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
        per_channel = w.scales is not None and len(w.scales) > 1
        x_off = -x.zero_point
        if per_channel:
            if np.any(w.zero_points != 0):
                raise EdgekitError(f"{path}: per-channel weights need zero points of 0")
            reals = [
                float(np.float64(x.scale) * np.float64(s) / np.float64(y.scale)) for s in w.scales
            ]
            w_off = 0
        else:  # TFLite's GetQuantizedConvolutionMultipler: the scale product in float
            prod = np.float32(np.float32(x.scale) * np.float32(w.scale))
            reals = [float(np.float64(prod) / np.float64(y.scale))] * units
            w_off = -w.zero_point
        mult, shift = zip(*(quantize_multiplier(r) for r in reals), strict=True)
        b = np.zeros(units, np.int64) if bias is None else np.asarray(bias.data, np.int64)
        lo, hi = _activation_range(
            op.options.get("fused_activation_function", "NONE"), y.scale, y.zero_point
        )
        wn, bn, mn, sn = (self._name(k) for k in ("w", "b", "m", "s"))
        self.data.append(c_array("int8_t", wn, wq, c_int, 16))
        self.data.append(c_array("int32_t", mn, mult, c_int32, 6))
        self.data.append(c_array("int8_t", sn, shift, c_int, 16))
        act = op.options.get("fused_activation_function", "NONE")
        what = f"FULLY_CONNECTED op {op.index}: {n_in} -> {units}, {act.lower()}"
        if w_off == 0:  # fold the input zero point into the bias: acc = w.x + (b + x_off * sum w)
            folded = b + x_off * wq.sum(axis=1)
            if np.any(np.abs(folded) >= 2**31):
                raise EdgekitError(f"{path}: FULLY_CONNECTED op {op.index} overflows int32")
            self.data.append(c_array("int32_t", bn, folded, c_int32, 6))
            self._use("fc")
            self.fc_inputs.append(n_in)
            call = (
                f"{self.p}_fc({{0}}, {n_in}, {wn}, {bn}, {units}, {y.zero_point}, {mn}, {sn}, "
                f"{lo}, {hi}, {{out}});"
            )
        else:
            self.data.append(c_array("int32_t", bn, b, c_int32, 6))
            self._use("fc_offset")
            call = (
                f"{self.p}_fc_offset({{0}}, {n_in}, {wn}, {bn}, {units}, {x_off}, {w_off}, "
                f"{y.zero_point}, {mn}, {sn}, {lo}, {hi}, {{out}});"
            )
        return _Step("fc", [self._find(op.inputs[0])], self._find(op.outputs[0]), call, what)

    def _softmax(self, path: Path, op) -> _Step:
        g = self.g
        x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
        if x.dtype != "int8" or y.dtype != "int8":
            raise EdgekitError(f"{path}: SOFTMAX op {op.index} is not int8 -> int8")
        if y.zero_point != -128 or abs(y.scale - 1 / 256) > 1e-3 / 256:
            raise EdgekitError(f"{path}: SOFTMAX op {op.index} output is not scale 1/256, zp -128")
        n = x.shape[-1] if x.shape else 1
        if x.size != n:
            raise EdgekitError(f"{path}: SOFTMAX op {op.index} over more than one row")
        beta = float(op.options.get("beta", 1.0))
        table = softmax_table(x.scale, beta)
        tn = self._name("exp")
        self.data.append(c_array("float", tn, table, c_hexfloat, 4))
        self._use("softmax")
        call = f"{self.p}_softmax({{0}}, {n}, {tn}, {c_float(y.scale)}, {y.zero_point}, {{out}});"
        what = f"SOFTMAX op {op.index}: {n} values, beta {beta:g}"
        return _Step("softmax", [self._find(op.inputs[0])], self._find(op.outputs[0]), call, what)

    def _operand(self, path: Path, op, i: int, n: int) -> tuple[str, int, int | None]:
        """(C expression or placeholder, step, tensor id if variable) of a binary operand."""
        t = self.g.tensors[i]
        if t.dtype != "int8":
            raise EdgekitError(f"{path}: {op.name} op {op.index} has a {t.dtype} operand")
        if t.is_constant:
            if t.size not in (1, n):
                raise EdgekitError(f"{path}: {op.name} op {op.index} broadcasts {t.shape}")
            name = self._name("c")
            self.data.append(c_array("int8_t", name, np.asarray(t.data).ravel(), c_int, 16))
            return name, (1 if t.size == n else 0), None
        if t.size != n:
            raise EdgekitError(f"{path}: {op.name} op {op.index} broadcasts {t.shape}")
        return "", 1, self._find(i)

    def _binary(self, path: Path, op) -> _Step:
        g = self.g
        a, b = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]]
        y = g.tensors[op.outputs[0]]
        n = y.size
        if y.dtype != "int8":
            raise EdgekitError(f"{path}: {op.name} op {op.index} output is {y.dtype}")
        act = op.options.get("fused_activation_function", "NONE")
        lo, hi = _activation_range(act, y.scale, y.zero_point)
        ea, sa, va = self._operand(path, op, op.inputs[0], n)
        eb, sb, vb = self._operand(path, op, op.inputs[1], n)
        variables = [v for v in (va, vb) if v is not None]
        slot = iter(range(2))
        ea = ea or f"{{{next(slot)}}}"
        eb = eb or f"{{{next(slot)}}}"
        qn = self._name("q")
        if op.name == "MUL":
            # TFLite computes input1_scale * input2_scale / output_scale in float
            prod = np.float32(np.float32(a.scale) * np.float32(b.scale))
            real = float(np.float32(prod / np.float32(y.scale)))
            m, s = quantize_multiplier(real)
            q = [-a.zero_point, -b.zero_point, m, s, y.zero_point, lo, hi]
            self.data.append(c_array("int32_t", qn, q, c_int32, 7))
            self._use("mul")
            call = f"{self.p}_mul({ea}, {sa}, {eb}, {sb}, {n}, {qn}, {{out}});"
        else:
            twice = 2.0 * float(max(np.float32(a.scale), np.float32(b.scale)))
            ra = float(np.float64(np.float32(a.scale)) / twice)
            rb = float(np.float64(np.float32(b.scale)) / twice)
            ro = twice / float(np.float32(np.float32(1 << 20) * np.float32(y.scale)))
            if ro > 1.0:
                raise EdgekitError(
                    f"{path}: {op.name} op {op.index} needs an output multiplier > 1 (a nearly "
                    "constant output range); not supported by --c-source int8"
                )
            (ma, sha), (mb, shb), (mo, sho) = (quantize_multiplier(r) for r in (ra, rb, ro))
            q = [-a.zero_point, ma, -sha, -b.zero_point, mb, -shb, mo, -sho, y.zero_point, lo, hi]
            self.data.append(c_array("int32_t", qn, q, c_int32, 11))
            self._use("addsub")
            sub = 1 if op.name == "SUB" else 0
            call = f"{self.p}_addsub({ea}, {sa}, {eb}, {sb}, {n}, {qn}, {sub}, {{out}});"
        what = f"{op.name} op {op.index}: {n} values"
        return _Step(op.name.lower(), variables, self._find(op.outputs[0]), call, what)


def lut_from_tflite(path: Path, members: list, seed: int, exit_: int) -> np.ndarray:
    """Run ops ``members`` of ``path`` in ai_edge_litert on all 256 int8 values of ``seed``.

    The ops form a sub-model (same operator codes, tensors and constants, the variable
    tensors reshaped to ``[1, 256]``); the result, indexed by ``value + 128``, is the exact
    table of what the builtin kernels compute for these ops.
    """
    from edgekit._lazy import require

    flatbuffers = require("flatbuffers")
    schema = require("ai_edge_litert.schema_py_generated")
    interp_mod = require("ai_edge_litert.interpreter")
    model = schema.ModelT.InitFromPackedBuf(bytearray(path.read_bytes()), 0)
    sub = model.subgraphs[0]
    used: list[int] = [seed]
    for m in members:
        for i in [*m.inputs, *m.outputs]:
            if i >= 0 and i not in used:
                used.append(i)
    remap = {old: new for new, old in enumerate(used)}
    buffers = [schema.BufferT()]
    tensors = []
    for old in used:
        t = copy.copy(sub.tensors[old])
        if 0 < t.buffer < len(model.buffers) and _has_data(model.buffers[t.buffer]):
            buffers.append(model.buffers[t.buffer])
            t.buffer = len(buffers) - 1
        else:
            t.buffer = 0
            t.shape = [1, 256]
            t.shapeSignature = [1, 256]
        tensors.append(t)
    operators = []
    for m in members:
        op = copy.copy(sub.operators[m.index])
        op.inputs = [remap[i] if i >= 0 else -1 for i in m.inputs]
        op.outputs = [remap[i] for i in m.outputs]
        operators.append(op)
    graph = schema.SubGraphT()
    graph.tensors, graph.operators = tensors, operators
    graph.inputs, graph.outputs = [remap[seed]], [remap[exit_]]
    graph.name = "edgekit_lut"
    small = schema.ModelT()
    small.version = model.version
    small.operatorCodes = model.operatorCodes
    small.subgraphs = [graph]
    small.buffers = buffers
    small.description = "edgekit: one elementwise region, for a lookup table"
    builder = flatbuffers.Builder(1024)
    builder.Finish(small.Pack(builder), file_identifier=b"TFL3")
    interp = interp_mod.Interpreter(
        model_content=bytes(builder.Output()),
        experimental_op_resolver_type=interp_mod.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    interp.allocate_tensors()
    interp.set_tensor(
        interp.get_input_details()[0]["index"], np.arange(-128, 128, dtype=np.int8)[None]
    )
    interp.invoke()
    return np.asarray(interp.get_tensor(interp.get_output_details()[0]["index"])).ravel()


def _has_data(buf) -> bool:
    return (buf.data is not None and len(buf.data) > 0) or bool(buf.offset and buf.offset > 1)
