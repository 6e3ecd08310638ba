"""float32 C from a Keras model: the layers edgekit builds, in float, like Keras computes them.

Normalization is ``(x - mean) / max(sqrt(variance), epsilon)`` with the layer's float32
constants, Dense is a row-by-row dot product plus bias (``ek_dense``), Rescaling is
``x * scale + offset``, BatchNormalization its inference affine per channel,
LayerNormalization the mean and variance of the flat features; LeakyReLU, ELU and PReLU are
elementwise. The activations' exp, expm1, tanh, erf (and LayerNormalization's square root)
are edgekit's own static functions from ``ek_float.c`` (``ek_expf``, ``ek_expm1f``,
``ek_tanhf``, ``ek_erff``, ``ek_sqrtf``, each within about 1.5 ulp over all float32 inputs),
pasted only where the model uses them: the code calls no libm function and never touches
errno, so it links without ``-lm`` and, on newlib, without its reentrancy data. Flatten,
Reshape and the training-only layers (Dropout, GaussianNoise, ...) are no-ops on the flat,
C-ordered input. Values move between two static buffers ``a`` and ``b``; in-place steps work
on whichever holds them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.exporters.c.code import Code
from edgekit.exporters.c.header import c_header
from edgekit.exporters.c.literals import c_array, c_float
from edgekit.exporters.c.templates import fill, read, select

FLOAT_ACTIVATIONS = (
    "relu", "relu6", "tanh", "sigmoid", "elu", "selu", "gelu", "silu", "linear", "softmax",
)  # fmt: skip

# activation -> C expression of v (applied elementwise, in place); None: no-op. ek_*f: the
# math functions of ek_float.c (the section of ek_NAMEf is NAME), prefixed where written.
_FLOAT_ACT = {
    "linear": None,
    "relu": "v > 0.0f ? v : 0.0f",
    "relu6": "v < 0.0f ? 0.0f : (v > 6.0f ? 6.0f : v)",
    "tanh": "ek_tanhf(v)",
    "sigmoid": "1.0f / (1.0f + ek_expf(-v))",
    "elu": "v > 0.0f ? v : ek_expm1f(v)",
    "selu": "1.05070098f * (v > 0.0f ? v : 1.67326324f * ek_expm1f(v))",
    "gelu": "0.5f * v * (1.0f + ek_erff(v * 0.707106781f))",
    "silu": "v * (1.0f / (1.0f + ek_expf(-v)))",
}
_MATH = re.compile(r"\bek_(exp|expm1|tanh|erf|sqrt)f\(")


def _loop(n: int, *statements: str) -> str:
    """``for (i = 0; i < n; ++i) { statements }``, indented for the body of predict."""
    body = "".join(f"\n        {s}" for s in statements)
    return f"for (i = 0; i < {n}; ++i) " + "{" + body + "\n    }"


class FloatWriter:
    """Writes one model: walks its layers, keeping the steps, arrays and kernels they need."""

    def __init__(self, prefix: str) -> None:
        self.p = prefix
        self.data: list[str] = []
        self.steps: list[str] = []
        self.kernels: set[str] = set()
        self.ops: list[str] = []
        self.math: set[str] = set()  # ek_float.c math functions the code calls
        self.width = 0  # current number of values
        self.widest = 0
        self.cur = "input"  # buffer holding the current values
        self.n = 0

    def write(self, model: Any, comment: str) -> Code:
        from edgekit._lazy import require

        keras = require("keras")
        shape = [int(d) for d in model.inputs[0].shape[1:]]
        self.width = n_in = int(np.prod(shape))
        for layer in model.layers:
            self._layer(keras, layer)
        n_out = self.width
        out_shape = [int(d) for d in model.outputs[0].shape[1:]]
        if int(np.prod(out_shape)) != n_out:
            raise EdgekitError(
                f"--c-source float32: computed {n_out} outputs, the model has {out_shape}"
            )
        kernels = [fill(s.text, self.p) for s in select("ek_float.c", self.kernels)]
        own = ", ".join(f"{self.p}_{name}f" for name in sorted(self.math))
        math = (
            f"Calls no libm function (link without -lm): {own} are its own."
            if self.math
            else "Calls no libm function (link without -lm)."
        )
        slots = {
            "COMMENT": comment,
            "MATH": math,
            "DATA": "".join(self.data),
            "BUFFER_SIZE": str(max(self.widest, 1)),
            "HELPERS": "\n".join(kernels),
            "BODY": "\n    ".join(self.steps),
            "OUTPUT_SIZE": str(n_out),
            "RESULT": self.cur,
        }
        source = fill(read("model_float.c.in"), self.p, slots=slots)
        header = c_header(self.p, n_in=n_in, n_out=n_out, comment=comment)
        return Code(header, source, n_in, n_out, ops=self.ops, needs_libm=False)

    def _uses_math(self, expr: str) -> str:
        """``expr`` with its ``ek_*f`` math functions prefixed; their sections are kept."""
        names = set(_MATH.findall(expr))
        self.math.update(names)
        self.kernels.update(names)
        return _MATH.sub(lambda m: f"{self.p}_{m.group(1)}f(", expr)

    def _next(self) -> str:
        return "b" if self.cur == "a" else "a"

    def _name(self, what: str) -> str:
        self.n += 1
        return f"{self.p}_{what}{self.n}"

    def _act(self, name: str, where: str) -> None:
        if name not in FLOAT_ACTIVATIONS:
            raise EdgekitError(
                f"activation {name!r} ({where}) is not supported by --c-source float32; "
                f"supported: {', '.join(FLOAT_ACTIVATIONS)}"
            )
        if name == "softmax":
            self._ensure_writable()
            self.kernels.add("softmax")
            self.math.add("exp")
            self.steps.append(f"{self.p}_softmax({self.cur}, {self.width});")
            self.ops.append("softmax")
            return
        expr = _FLOAT_ACT[name]
        if expr is None:
            return
        self._ensure_writable()
        expr = self._uses_math(expr)
        self.steps.append(
            _loop(self.width, f"const float v = {self.cur}[i];", f"{self.cur}[i] = {expr};")
        )
        self.ops.append(name)

    def _ensure_writable(self) -> None:
        """In-place steps need the values in a work buffer, not the caller's input."""
        if self.cur == "input":
            dst = self._next()
            self.steps.append(_loop(self.width, f"{dst}[i] = input[i];"))
            self.cur = dst
            self.widest = max(self.widest, self.width)

    def _layer(self, keras: Any, layer: Any) -> None:
        kind = type(layer).__name__
        if kind == "TFSMLayer":  # a SavedModel, wrapped: a TensorFlow graph, not layers
            raise EdgekitError(
                "--c-source float32 is written from Keras layers, and a SavedModel holds a "
                "TensorFlow graph; export the model's .keras or .h5 file, or use --c-source int8"
            )
        if kind not in _LAYERS:
            raise EdgekitError(
                f"layer {layer.name!r} ({kind}) is not supported by --c-source; supported: "
                f"{', '.join(_LAYERS)}"
            )
        _LAYERS[kind](self, keras, layer)

    def _nothing(self, keras: Any, layer: Any) -> None:
        """Flatten, Reshape, Dropout: the values are flat and C-ordered already."""

    def _normalization(self, keras: Any, layer: Any) -> None:
        if getattr(layer, "invert", False):
            raise EdgekitError(f"layer {layer.name!r}: an inverted Normalization is not supported")
        ops = keras.ops
        mean = np.asarray(ops.convert_to_numpy(layer.mean), np.float32)
        var = np.asarray(ops.convert_to_numpy(layer.variance), np.float32)
        eps = np.float32(keras.config.epsilon())
        std = np.maximum(np.sqrt(var), eps).astype(np.float32)
        shape = np.broadcast_shapes(mean.shape, std.shape)
        mean = np.broadcast_to(mean, shape).ravel()
        std = np.broadcast_to(std, shape).ravel()
        if mean.size not in (1, self.width):
            raise EdgekitError(
                f"layer {layer.name!r}: normalization over {mean.size} values does not "
                f"match the {self.width} features"
            )
        m, s = self._name("mean"), self._name("std")
        self.data.append(c_array("float", m, mean, c_float, 8))
        self.data.append(c_array("float", s, std, c_float, 8))
        idx = "i" if mean.size > 1 else "0"
        dst = self._next()
        self.steps.append(
            _loop(self.width, f"{dst}[i] = ({self.cur}[i] - {m}[{idx}]) / {s}[{idx}];")
        )
        self.cur = dst
        self.widest = max(self.widest, self.width)
        self.ops.append("normalization")

    def _dense(self, keras: Any, layer: Any) -> None:
        ops = keras.ops
        kernel = np.asarray(ops.convert_to_numpy(layer.kernel), np.float32)
        if kernel.ndim != 2 or kernel.shape[0] != self.width:
            raise EdgekitError(
                f"layer {layer.name!r}: Dense on {kernel.shape[0]} inputs after "
                f"{self.width} values; --c-source supports Dense on flat inputs"
            )
        units = kernel.shape[1]
        w = self._name("w")
        self.data.append(c_array("float", w, kernel.T, c_float, 8))
        b = "NULL"
        if layer.use_bias:
            b = self._name("b")
            bias = np.asarray(ops.convert_to_numpy(layer.bias), np.float32)
            self.data.append(c_array("float", b, bias, c_float, 8))
        dst = self._next()
        self.kernels.add("dense")
        self.steps.append(f"{self.p}_dense({self.cur}, {self.width}, {w}, {b}, {units}, {dst});")
        self.cur = dst
        self.width = units
        self.widest = max(self.widest, units)
        self.ops.append(f"dense {kernel.shape[0]}x{units}")
        self._act(layer.activation.__name__, f"layer {layer.name!r}")

    def _activation(self, keras: Any, layer: Any) -> None:
        self._act(layer.activation.__name__, f"layer {layer.name!r}")

    def _softmax(self, keras: Any, layer: Any) -> None:
        axis = layer.axis if isinstance(layer.axis, int) else None
        if axis not in (-1, len(layer.output.shape) - 1):
            raise EdgekitError(f"layer {layer.name!r}: only softmax over the last axis")
        self._act("softmax", f"layer {layer.name!r}")

    def _relu(self, keras: Any, layer: Any) -> None:
        if float(layer.negative_slope or 0) != 0 or float(layer.threshold or 0) != 0:
            raise EdgekitError(
                f"layer {layer.name!r}: ReLU with negative_slope or threshold is not "
                "supported by --c-source"
            )
        top = layer.max_value
        if top is None:
            self._act("relu", f"layer {layer.name!r}")
            return
        self._ensure_writable()
        t = c_float(top)
        self.steps.append(
            _loop(
                self.width,
                f"const float v = {self.cur}[i];",
                f"{self.cur}[i] = v < 0.0f ? 0.0f : (v > {t} ? {t} : v);",
            )
        )
        self.ops.append(f"relu (max {float(top):g})")

    def _elementwise(self, layer: Any, expr: str, op: str) -> None:
        """``cur[i] = expr`` of ``v`` (the value) in place."""
        self._ensure_writable()
        expr = self._uses_math(expr)
        self.steps.append(_loop(self.width, f"const float v = {self.cur}[i];",
                                f"{self.cur}[i] = {expr};"))  # fmt: skip
        self.ops.append(op)

    def _leaky_relu(self, keras: Any, layer: Any) -> None:
        slope = c_float(float(getattr(layer, "negative_slope", getattr(layer, "alpha", 0.3))))
        self._elementwise(layer, f"v > 0.0f ? v : {slope} * v", "leaky_relu")

    def _elu(self, keras: Any, layer: Any) -> None:
        alpha = c_float(float(layer.alpha))
        self._elementwise(layer, f"v > 0.0f ? v : {alpha} * ek_expm1f(v)", "elu")

    def _per_channel(self, layer: Any, values: np.ndarray) -> str:
        """The index expression of per-channel constants over the flat values: ``i`` when
        there is one per value, ``i % C`` for channels on the last axis."""
        size = values.size
        if size == self.width:
            return "i"
        if size and self.width % size == 0 and int(layer.output.shape[-1]) == size:
            return f"i % {size}"
        raise EdgekitError(
            f"layer {layer.name!r} ({type(layer).__name__}): {size} parameters over "
            f"{self.width} values is not supported by --c-source"
        )

    def _prelu(self, keras: Any, layer: Any) -> None:
        alpha = np.asarray(keras.ops.convert_to_numpy(layer.alpha), np.float32)
        if alpha.size not in (1, self.width):
            alpha = np.broadcast_to(alpha, [int(d) for d in layer.output.shape[1:]])
        name = self._name("alpha")
        self.data.append(c_array("float", name, alpha.ravel(), c_float, 8))
        idx = "0" if alpha.size == 1 else self._per_channel(layer, alpha.ravel())
        self._elementwise(layer, f"v > 0.0f ? v : {name}[{idx}] * v", "prelu")

    def _batch_norm(self, keras: Any, layer: Any) -> None:
        """Inference BatchNormalization: ``x * scale + offset`` per channel (last axis)."""
        axis = layer.axis if isinstance(layer.axis, int) else list(layer.axis)
        if axis not in (-1, len(layer.output.shape) - 1, [-1], [len(layer.output.shape) - 1]):
            raise EdgekitError(
                f"layer {layer.name!r}: BatchNormalization over axis {axis} is not supported "
                "by --c-source (the last axis is)"
            )
        conv = keras.ops.convert_to_numpy
        mean = np.asarray(conv(layer.moving_mean), np.float64)
        var = np.asarray(conv(layer.moving_variance), np.float64)
        gamma = np.asarray(conv(layer.gamma), np.float64) if layer.scale else np.ones_like(mean)
        beta = np.asarray(conv(layer.beta), np.float64) if layer.center else np.zeros_like(mean)
        scale = (gamma / np.sqrt(var + float(layer.epsilon))).astype(np.float32)
        offset = (beta - mean * scale).astype(np.float32)
        idx = self._per_channel(layer, scale)
        sc, of = self._name("bn_scale"), self._name("bn_offset")
        self.data.append(c_array("float", sc, scale, c_float, 8))
        self.data.append(c_array("float", of, offset, c_float, 8))
        self._elementwise(layer, f"v * {sc}[{idx}] + {of}[{idx}]", "batch_norm")

    def _layer_norm(self, keras: Any, layer: Any) -> None:
        """LayerNormalization over the last axis of flat values (mean, variance, then the
        per-value scale and offset), as Keras computes it."""
        axis = layer.axis if isinstance(layer.axis, int) else list(layer.axis)
        rank = len(layer.output.shape)
        if rank != 2 or axis not in (-1, 1, [-1], [1]):
            raise EdgekitError(
                f"layer {layer.name!r}: --c-source writes LayerNormalization over the features "
                "of a flat input only"
            )
        conv = keras.ops.convert_to_numpy
        self._ensure_writable()
        cur, n, eps = self.cur, self.width, c_float(float(layer.epsilon))
        gamma = beta = None
        if layer.scale:
            gamma = self._name("ln_gamma")
            self.data.append(c_array("float", gamma, np.asarray(conv(layer.gamma), np.float32),
                                     c_float, 8))  # fmt: skip
        if layer.center:
            beta = self._name("ln_beta")
            self.data.append(c_array("float", beta, np.asarray(conv(layer.beta), np.float32),
                                     c_float, 8))  # fmt: skip
        expr = "(v - mean) * inv"
        if gamma:
            expr = f"{expr} * {gamma}[i]"
        if beta:
            expr = f"{expr} + {beta}[i]"
        self.steps.append(self._uses_math(
            "{\n        float mean = 0.0f, var = 0.0f, inv;\n"
            f"        for (i = 0; i < {n}; ++i) mean += {cur}[i];\n"
            f"        mean /= {n}.0f;\n"
            f"        for (i = 0; i < {n}; ++i) var += ({cur}[i] - mean) * ({cur}[i] - mean);\n"
            f"        var /= {n}.0f;\n"
            f"        inv = 1.0f / ek_sqrtf(var + {eps});\n"
            f"        for (i = 0; i < {n}; ++i) {{ const float v = {cur}[i]; {cur}[i] = {expr}; }}\n"
            "    }"
        ))  # fmt: skip
        self.ops.append("layer_norm")

    def _rescaling(self, keras: Any, layer: Any) -> None:
        scale = np.float32(np.asarray(layer.scale, np.float32).ravel()[0])
        offset = np.float32(np.asarray(layer.offset, np.float32).ravel()[0])
        if np.asarray(layer.scale).size != 1 or np.asarray(layer.offset).size != 1:
            raise EdgekitError(f"layer {layer.name!r}: only scalar Rescaling is supported")
        self._ensure_writable()
        cur = self.cur
        self.steps.append(
            _loop(self.width, f"{cur}[i] = {cur}[i] * {c_float(scale)} + {c_float(offset)};")
        )
        self.ops.append("rescaling")


# Keras layer class -> how it is written (the supported layers, in the order errors list them)
_LAYERS: dict[str, Callable[[FloatWriter, Any, Any], None]] = {
    "InputLayer": FloatWriter._nothing,
    "Flatten": FloatWriter._nothing,
    "Reshape": FloatWriter._nothing,
    "Dropout": FloatWriter._nothing,
    "AlphaDropout": FloatWriter._nothing,
    "GaussianNoise": FloatWriter._nothing,
    "GaussianDropout": FloatWriter._nothing,
    "ActivityRegularization": FloatWriter._nothing,
    "Normalization": FloatWriter._normalization,
    "BatchNormalization": FloatWriter._batch_norm,
    "LayerNormalization": FloatWriter._layer_norm,
    "Dense": FloatWriter._dense,
    "Activation": FloatWriter._activation,
    "ReLU": FloatWriter._relu,
    "LeakyReLU": FloatWriter._leaky_relu,
    "ELU": FloatWriter._elu,
    "PReLU": FloatWriter._prelu,
    "Softmax": FloatWriter._softmax,
    "Rescaling": FloatWriter._rescaling,
}
