"""``edgekit estimate``: MACs, parameters, flash, RAM and latency of a model on a target.

Everything is computed from the model file and the target catalog; nothing runs.

* **MACs and parameters**, per layer and in total: a FULLY_CONNECTED layer of ``units``
  outputs from ``n_in`` features costs ``units * n_in`` multiply-accumulates per sample and
  holds ``units * n_in + units`` parameters (weights and bias). CONV_2D and
  DEPTHWISE_CONV_2D are counted per output element. Elementwise ops with constant operands
  (the normalization's SUB/MUL) count their constants as parameters and cost no MACs.
* **Flash**: the model file's bytes (TFLite Micro reads the flatbuffer in place). The
  inference runtime's own code is not included.
* **RAM**: the tensor arena. Every non-constant tensor lives from the op that writes it to
  the last op that reads it, in execution order; temporaries an op needs (the hybrid int8
  kernels' quantized-input, accumulator and row-sum buffers) live for that op only. The
  arena is planned like TFLite Micro's greedy planner with 16-byte alignment
  (:mod:`edgekit.formats.arena`); ``peak_activation_bytes`` is the largest sum of
  simultaneously live tensors. Runtime bookkeeping and the stack are not included.
* **Latency**: ``MACs x cycles_per_mac`` (int8 or float figure, by what each layer
  computes in) ``+ ops x op_overhead_cycles``, divided by the clock.

For ``.onnx`` files the layers come from :mod:`edgekit.formats.onnx_layers`, and the arena is
approximated from the dense layers' widths (input and output of the widest layer).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.estimate.catalog import Target, get_target, load_catalog
from edgekit.formats.arena import ALIGNMENT, Buffer, greedy_plan, peak_live

SCHEMA = "edgekit.estimate/1"
NOTICE = "ESTIMATE from the model file and a target catalog, not a measurement"
MAC_OPS = ("FULLY_CONNECTED", "BATCH_MATMUL", "CONV_2D", "DEPTHWISE_CONV_2D")
ELEMENTWISE_WITH_CONSTANTS = ("ADD", "SUB", "MUL", "DIV", "MAXIMUM", "MINIMUM", "PRELU")


@dataclass
class LayerEstimate:
    """One operator: what it computes in, its output shape, MACs and parameters."""

    index: int
    op: str
    name: str
    output_shape: list[int]
    compute: str  # int8, int16, float32 or "-" for ops without MACs
    macs: int
    params: int
    cycles: float


@dataclass
class Estimate:
    """The result of :func:`estimate`; ``text()`` for people, ``to_json()`` for tools."""

    artifact: str
    format: str
    target: Target
    compute: str  # int8, int16, float32, mixed, or none (no MACs)
    layers: list[LayerEstimate]
    flash_bytes: int
    arena_bytes: int
    peak_activation_bytes: int
    scratch_bytes: int
    ops: int
    notes: list[str] = field(default_factory=list)
    ram_method: str = "planned"

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def ram_bytes(self) -> int:
        return self.arena_bytes

    @property
    def cycles(self) -> float:
        return sum(layer.cycles for layer in self.layers) + (
            self.ops * self.target.op_overhead_cycles
        )

    @property
    def latency_ms(self) -> float:
        return 1000.0 * self.cycles / self.target.clock_hz

    @property
    def fits_ram(self) -> bool:
        return self.ram_bytes <= self.target.ram_bytes

    @property
    def fits_flash(self) -> bool:
        return self.flash_bytes <= self.target.flash_bytes

    @property
    def fits(self) -> bool:
        return self.fits_ram and self.fits_flash

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "estimate": True,
            "notice": NOTICE,
            "artifact": {"file": self.artifact, "format": self.format},
            "target": self.target.to_json(),
            "compute": self.compute,
            "totals": {
                "macs": self.macs,
                "params": self.params,
                "ops": self.ops,
                "flash_bytes": self.flash_bytes,
                "ram_bytes": self.ram_bytes,
                "arena_bytes": self.arena_bytes,
                "peak_activation_bytes": self.peak_activation_bytes,
                "scratch_bytes": self.scratch_bytes,
                "cycles": round(self.cycles),
                "latency_ms": round(self.latency_ms, 6),
            },
            "fits": {"ram": self.fits_ram, "flash": self.fits_flash},
            "method": {
                "ram": self.ram_method,
                "latency": "macs x cycles_per_mac + ops x op_overhead_cycles, / clock_hz",
                "alignment": ALIGNMENT,
            },
            "layers": [asdict(layer) for layer in self.layers],
            "assumptions": self.target.assumptions,
            "notes": self.notes,
        }

    def _computes(self) -> str:
        kinds = sorted({la.compute for la in self.layers if la.macs})
        return " and ".join(kinds) if kinds else "no MAC layers"

    def text(self) -> str:
        from edgekit.tables import format_table

        t = self.target
        rows = [
            [str(la.index), la.op, la.name[-40:], str(la.output_shape), la.compute,
             str(la.macs), str(la.params)]
            for la in self.layers
            if la.macs or la.params
        ]  # fmt: skip
        head = ["#", "op", "name", "output", "compute", "MACs", "params"]

        def fit(used: int, have: int) -> str:
            verdict = "fits" if used <= have else "DOES NOT FIT"
            return f"{used:,} B of {have:,} B ({100.0 * used / have:.2g}%): {verdict}"

        mac_cycles = sum(la.cycles for la in self.layers)
        mac_part = f"{mac_cycles:,.0f} MAC cycles"
        if self.compute in ("int8", "int16", "float32"):
            mac_part = f"{self.macs:,} MACs x {t.cycles_per_mac(self.compute):g} cycles/MAC"
        lines = [
            f"{NOTICE}.",
            f"{self.artifact} ({self.format}, computes in {self._computes()}) on {t.name}: "
            f"{t.description}, {t.clock_hz / 1e6:g} MHz",
            "",
            format_table(head, rows) if rows else "(no layers with MACs or parameters)",
            "",
            f"total: {self.macs:,} MACs, {self.params:,} parameters, {self.ops} ops",
            f"flash (model bytes): {fit(self.flash_bytes, t.flash_bytes)}",
            f"RAM (tensor arena):  {fit(self.ram_bytes, t.ram_bytes)}",
            f"  activations {self.peak_activation_bytes:,} B at peak, scratch "
            f"{self.scratch_bytes:,} B, {self.ram_method}",
            f"latency: ~{self.latency_ms:.3g} ms = ({mac_part} + {self.ops} ops x "
            f"{t.op_overhead_cycles:g} cycles) / {t.clock_hz / 1e6:g} MHz",
        ]
        if t.assumptions:
            lines += ["", "assumptions in this estimate:"]
            lines += [f"  {k}: {v}" for k, v in t.assumptions.items()]
        if self.notes:
            lines += ["", *(f"note: {n}" for n in self.notes)]
        return "\n".join(lines)


def estimate(
    path: str | Path, *, target: str | Target, catalog: list[str | Path] | None = None
) -> Estimate:
    """Estimate ``path`` (``.tflite`` or ``.onnx``) on ``target`` (a catalog name).

    ``catalog`` adds target files to the built-in and user catalogs. Example:
    ``estimate("model.int8.tflite", target="cortex-m4").latency_ms``.
    """
    path = Path(path)
    if isinstance(target, str):
        target = get_target(target, catalog=load_catalog(catalog))
    if not path.exists():
        raise EdgekitError(f"{path}: no such file")
    if path.is_dir():
        raise EdgekitError(f"{path}: is a directory; estimate takes one .tflite or .onnx file")
    suffix = path.suffix.lower()
    if suffix == ".tflite":
        return _estimate_tflite(path, target)
    if suffix == ".onnx":
        return _estimate_onnx(path, target)
    raise EdgekitError(
        f"{path}: unknown model type {suffix or '(no suffix)'!r}; "
        "edgekit estimates .tflite and .onnx files"
    )


def list_targets(catalog: list[str | Path] | None = None) -> list[Target]:
    """Every target of the catalog, sorted by name."""
    targets = load_catalog(catalog)
    return [targets[name] for name in sorted(targets)]


def targets_table(targets: list[Target]) -> str:
    """The catalog as a table (``edgekit estimate --list-targets``)."""
    from edgekit.tables import format_table, size

    rows = [
        [t.name, f"{t.clock_hz / 1e6:g}", size(t.ram_bytes), size(t.flash_bytes),
         f"{t.cycles_per_mac_int8:g}", f"{t.cycles_per_mac_float:g}", t.description]
        for t in targets
    ]  # fmt: skip
    head = ["target", "MHz", "RAM", "flash", "cyc/MAC int8", "cyc/MAC float", "description"]
    note = (
        "Sources of every number: edgekit estimate --list-targets --json. Cycle figures are "
        "assumptions; add targets in ~/.config/edgekit/targets.toml or ./edgekit.toml."
    )
    return format_table(head, rows) + "\n\n" + note


# --- TFLite -------------------------------------------------------------------------------


def _estimate_tflite(path: Path, target: Target) -> Estimate:
    from edgekit.formats.tflite_graph import read_tflite

    g = read_tflite(path)
    producers = {o: op for op in g.ops for o in op.outputs}
    notes: list[str] = []
    layers: list[LayerEstimate] = []
    scratch: list[Buffer] = []
    for op in g.ops:
        out = g.tensors[op.outputs[0]] if op.outputs else None
        macs, params, compute = _op_cost(g, op, producers)
        if compute == "hybrid":
            compute = "int8"
            n_in = g.tensors[op.inputs[0]].size
            units = out.shape[-1] if out is not None and out.shape else 1
            size = n_in + 8 * units + 8  # quantized input, int32 accumulators and row sums
            scratch.append(Buffer(("scratch", op.index), size, op.index, op.index))
            _note(notes, "dynamic-range layers quantize their input at run time (hybrid int8)")
        if compute == "int16":
            _note(notes, "int16 activations are estimated with the int8 cycles per MAC")
        if op.name == "DEQUANTIZE" and all(g.tensors[i].is_constant for i in op.inputs):
            _note(notes, "float16 weights are expanded to float32 in RAM once, at load time")
        cpm = target.cycles_per_mac(compute) if macs else 0.0
        layers.append(
            LayerEstimate(
                index=op.index,
                op=op.name,
                name=_layer_name(out.name) if out is not None else op.name,
                output_shape=list(out.shape) if out is not None else [],
                compute=compute if macs else "-",
                macs=macs,
                params=params,
                cycles=macs * cpm,
            )
        )
    activations = _lifetimes(g)
    arena = greedy_plan(activations + scratch)
    computes = {la.compute for la in layers if la.macs}
    compute = computes.pop() if len(computes) == 1 else ("mixed" if computes else "none")
    if any(t.dynamic_batch for t in g.tensors if t.index in g.inputs):
        notes.append("batch dimension taken as 1 (one sample per inference)")
    return Estimate(
        artifact=path.name,
        format="tflite",
        target=target,
        compute=compute,
        layers=layers,
        flash_bytes=g.bytes,
        arena_bytes=arena,
        peak_activation_bytes=peak_live(activations),
        scratch_bytes=sum(b.size for b in scratch),
        ops=len(g.ops),
        notes=notes,
        ram_method=(
            f"planned from {len(activations) + len(scratch)} buffer lifetimes in execution order, "
            f"{ALIGNMENT}-byte aligned"
        ),
    )


def _layer_name(tensor_name: str) -> str:
    """``model_1/dense_0_1/MatMul;...`` -> ``dense_0_1`` (the Keras layer's scope)."""
    first = tensor_name.split(";")[0]
    parts = first.split("/")
    return parts[1] if len(parts) >= 3 else first


def _note(notes: list[str], text: str) -> None:
    if text not in notes:
        notes.append(text)


def _weights(g, index: int, producers) -> Any:
    """The constant behind a weight input, looking through DEQUANTIZE (float16 weights)."""
    t = g.tensors[index]
    op = producers.get(index)
    if t.data is None and op is not None and op.name == "DEQUANTIZE" and op.inputs[:1] != [-1]:
        return g.tensors[op.inputs[0]] if op.inputs else t
    return t


def _op_cost(g, op, producers) -> tuple[int, int, str]:
    """(MACs, parameters, compute type) of one op per sample."""
    ins = [g.tensors[i] if i >= 0 else None for i in op.inputs]
    out = g.tensors[op.outputs[0]] if op.outputs else None
    if op.name in MAC_OPS and len(ins) >= 2 and None not in ins[:2] and out is not None:
        w = _weights(g, op.inputs[1], producers)
        if w.data is None or len(w.shape) < 2:  # a product of two activations
            return 0, 0, "-"
        bias = ins[2].size if len(ins) > 2 and ins[2] is not None else 0
        if op.name == "FULLY_CONNECTED":
            units, n_in = w.shape[0], int(np.prod(w.shape[1:]))
            macs = out.size // max(units, 1) * units * n_in
        elif op.name == "BATCH_MATMUL":
            n_in, units = w.shape[-2], w.shape[-1]
            macs = out.size * n_in
        elif op.name == "CONV_2D":  # weights [out_c, kh, kw, in_c]
            macs = out.size * int(np.prod(w.shape[1:]))
        else:  # DEPTHWISE_CONV_2D, weights [1, kh, kw, out_c]
            macs = out.size * int(np.prod(w.shape[1:3]))
        return int(macs), int(w.size + bias), _compute(ins[0].dtype, w.dtype)
    if op.name in ELEMENTWISE_WITH_CONSTANTS:
        params = sum(t.size for t in ins if t is not None and t.is_constant)
        return 0, int(params), "-"
    return 0, 0, "-"


def _compute(activation: str, weights: str) -> str:
    if activation in ("int8", "uint8"):
        return "int8"
    if activation == "int16":
        return "int16"
    if weights in ("int8", "uint8", "int4"):
        return "hybrid"
    return "float32"


def _lifetimes(g) -> list[Buffer]:
    """Every non-constant tensor an op touches, from its writer to its last reader."""
    first: dict[int, int] = {i: 0 for i in g.inputs}
    last: dict[int, int] = {}
    for op in g.ops:
        for i in op.outputs:
            first.setdefault(i, op.index)
        for i in op.inputs:
            if i >= 0:
                first.setdefault(i, op.index)
                last[i] = op.index
    end = len(g.ops) - 1
    for i in g.outputs:
        last[i] = end
    for op in g.ops:  # computed once from constants (float16 weights): persistent
        if op.inputs and all(i < 0 or g.tensors[i].is_constant for i in op.inputs):
            for i in op.outputs:
                first[i], last[i] = 0, end
    buffers = []
    for i, start in first.items():
        t = g.tensors[i]
        if t.is_constant:
            continue
        buffers.append(Buffer(i, t.nbytes, start, max(last.get(i, start), start)))
    return buffers


# --- ONNX ---------------------------------------------------------------------------------


def _estimate_onnx(path: Path, target: Target) -> Estimate:
    from edgekit.formats.onnx_layers import inspect_onnx

    try:
        parts = inspect_onnx(path)
    except EdgekitError:
        raise
    except Exception as err:  # the protobuf decoder fails anywhere on a corrupt file
        raise EdgekitError(f"{path}: cannot read the ONNX model ({err})") from err
    scheme = parts["quantization"]
    int8_acts = scheme.startswith("static")
    item = 1 if int8_acts else 4
    layers = []
    buffers = []
    for i, info in enumerate(parts["layers"]):
        compute = "int8" if info.weights_dtype in ("int8", "uint8") else "float32"
        buffers.append(Buffer(("in", i), info.inputs * item, max(i - 1, 0), i))
        layers.append(
            LayerEstimate(
                index=i,
                op=info.op,
                name=info.name,
                output_shape=[1, info.units],
                compute=compute,
                macs=info.macs,
                params=info.params,
                cycles=info.macs * target.cycles_per_mac(compute),
            )
        )
    if layers:
        last = len(layers) - 1
        buffers.append(Buffer("out", parts["layers"][-1].units * item, last, last))
    computes = {la.compute for la in layers}
    return Estimate(
        artifact=path.name,
        format="onnx",
        target=target,
        compute=computes.pop() if len(computes) == 1 else ("mixed" if computes else "none"),
        layers=layers,
        flash_bytes=path.stat().st_size,
        arena_bytes=greedy_plan(buffers),
        peak_activation_bytes=peak_live(buffers),
        scratch_bytes=0,
        ops=len(parts["ops"]),
        notes=[f"ONNX quantization: {scheme}"],
        ram_method="approximated from the dense layers' input and output widths (ONNX)",
    )
