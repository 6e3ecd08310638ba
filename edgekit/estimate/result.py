"""What ``estimate`` returns: per-layer costs and totals of a model on a target, and their text.

:class:`Estimate` holds what the estimators in :mod:`edgekit.estimate.tflite` and
:mod:`edgekit.estimate.onnx` found; ``text()`` is for people, ``to_json()`` for tools
(``edgekit.estimate/1``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from edgekit.errors import EdgekitError
from edgekit.estimate.catalog import Target
from edgekit.formats.arena import ALIGNMENT

if TYPE_CHECKING:
    from edgekit.estimate.costs import OpWork

SCHEMA = "edgekit.estimate/1"
NOTICE = "ESTIMATE from the model file and a target catalog, not a measurement"


def json_text(doc: Any, *, what: str) -> str:
    """``doc`` as indented JSON, which never holds ``Infinity`` or ``NaN`` (not JSON): such a
    number is a one-line :class:`EdgekitError` (the catalog's limits keep them out; this is
    the backstop)."""
    try:
        return json.dumps(doc, indent=2, allow_nan=False)
    except ValueError as err:
        raise EdgekitError(
            f"cannot write {what} as JSON: it holds a number that is not finite ({err})"
        ) from err


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
    # instructions per runtime of the target (its cost models), dispatch included
    instructions: dict[str, int] = field(default_factory=dict)


@dataclass
class RuntimeEstimate:
    """One runtime on the target: instructions per inference, its own flash, its arena."""

    name: str
    description: str
    instructions: float
    cycles_per_instruction: float
    flash_bytes: int  # the runtime's code and libraries, not the model
    arena_bytes: int  # what to allocate: activations plus the runtime's persistent overhead
    models_arena: bool  # False: the runtime's buffers are static, the arena is the activations

    @property
    def cycles(self) -> float:
        return self.instructions * self.cycles_per_instruction

    def latency_ms(self, clock_hz: float) -> float:
        return 1000.0 * self.cycles / clock_hz

    def to_json(self, clock_hz: float) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "instructions": round(self.instructions),
            "cycles": round(self.cycles),
            "latency_ms": round(self.latency_ms(clock_hz), 6),
            "runtime_flash_bytes": self.flash_bytes,
            "arena_bytes": self.arena_bytes,
        }


@dataclass
class Estimate:
    """The result of :func:`estimate`; ``text()`` for people, ``to_json()`` for tools."""

    artifact: str
    format: str
    target: Target
    compute: str  # int8, int16, float32, mixed, or none (no MACs)
    layers: list[LayerEstimate]
    flash_bytes: int  # the model's bytes
    arena_bytes: int  # the arena to allocate on the chosen runtime
    peak_activation_bytes: int
    scratch_bytes: int
    ops: int
    notes: list[str] = field(default_factory=list)
    ram_method: str = "planned"
    activation_bytes: int = 0  # the activation plan (what arena_bytes adds overhead to)
    tensors: int = 0
    runtimes: list[RuntimeEstimate] = field(default_factory=list)
    runtime: str | None = None  # which of ``runtimes`` the totals are for; None: no cost model
    # what each op does, as the cost models price it (the model's input and output conversion
    # last, ``real=False``): what benchmarks/estimate_calibration.py fits the costs on
    work: list[OpWork] = field(default_factory=list)

    @property
    def chosen(self) -> RuntimeEstimate | None:
        return next((r for r in self.runtimes if r.name == self.runtime), None)

    @property
    def runtime_flash_bytes(self) -> int:
        """The runtime's own flash (0 where the catalog has no runtime: model only)."""
        rt = self.chosen
        return rt.flash_bytes if rt is not None else 0

    @property
    def total_flash_bytes(self) -> int:
        return self.flash_bytes + self.runtime_flash_bytes

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
        rt = self.chosen
        if rt is not None:
            return rt.cycles
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
        return self.total_flash_bytes <= self.target.flash_bytes

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
                "runtime_flash_bytes": self.runtime_flash_bytes,
                "total_flash_bytes": self.total_flash_bytes,
                "ram_bytes": self.ram_bytes,
                "arena_bytes": self.arena_bytes,
                "activation_bytes": self.activation_bytes,
                "peak_activation_bytes": self.peak_activation_bytes,
                "scratch_bytes": self.scratch_bytes,
                "cycles": round(self.cycles),
                "latency_ms": round(self.latency_ms, 6),
            },
            "fits": {"ram": self.fits_ram, "flash": self.fits_flash},
            "runtime": self.runtime,
            "runtimes": [r.to_json(self.target.clock_hz) for r in self.runtimes],
            "method": {
                "ram": self.ram_method,
                "arena": self._arena_method(),
                "flash": "model and runtime" if self.chosen else "model only",
                "latency": (
                    "per-op instruction cost model x cycles_per_instruction, / clock_hz"
                    if self.chosen
                    else "macs x cycles_per_mac + ops x op_overhead_cycles, / clock_hz"
                ),
                "alignment": ALIGNMENT,
            },
            "layers": [asdict(layer) for layer in self.layers],
            "assumptions": self._assumptions(),
            "notes": self.notes,
        }

    def json_text(self) -> str:
        """:meth:`to_json` as indented JSON, with finite numbers only (see :func:`json_text`)."""
        what = f"the estimate of {self.artifact} on {self.target.name}"
        try:
            doc = self.to_json()
        except (OverflowError, ValueError) as err:  # round() of an infinite figure
            raise EdgekitError(
                f"cannot write {what} as JSON: it holds a number that is not finite ({err})"
            ) from err
        return json_text(doc, what=what)

    def _computes(self) -> str:
        kinds = sorted({la.compute for la in self.layers if la.macs})
        return " and ".join(kinds) if kinds else "no MAC layers"

    def text(self) -> str:
        """The layer table, the totals against the target, and the assumptions behind them."""
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
        rt = self.chosen
        if rt is not None:
            flash = (
                f"flash (model {self.flash_bytes:,} B + {rt.description} {rt.flash_bytes:,} B): "
                f"{fit(self.total_flash_bytes, t.flash_bytes)}"
            )
        else:
            flash = f"flash (model only, no runtime): {fit(self.flash_bytes, t.flash_bytes)}"
        lines = [
            f"{NOTICE}.",
            f"{self.artifact} ({self.format}, computes in {self._computes()}) on {t.name}: "
            f"{t.description}, {t.clock_hz / 1e6:g} MHz",
            "",
            format_table(head, rows) if rows else "(no layers with MACs or parameters)",
            "",
            f"total: {self.macs:,} MACs, {self.params:,} parameters, {self.ops} ops",
            flash,
            f"activations: {self.activation_bytes:,} B ({self.peak_activation_bytes:,} B at peak, "
            f"scratch {self.scratch_bytes:,} B; {self.ram_method})",
            f"arena to allocate: {fit(self.ram_bytes, t.ram_bytes)}",
            f"  {self._arena_method()}",
        ]
        if rt is None:
            lines.append(
                f"latency: ~{self.latency_ms:.3g} ms = ({mac_part} + {self.ops} ops x "
                f"{t.op_overhead_cycles:g} cycles) / {t.clock_hz / 1e6:g} MHz"
            )
        for r in self.runtimes:
            mark = " (the figures above)" if r is rt and len(self.runtimes) > 1 else ""
            lines.append(
                f"latency, {r.description}{mark}: ~{r.latency_ms(t.clock_hz):.3g} ms = "
                f"{r.instructions:,.0f} instructions x {r.cycles_per_instruction:g} cycles / "
                f"{t.clock_hz / 1e6:g} MHz"
            )
        if rt is not None:
            lines.append(
                "  per-op instruction costs fitted to emulated Cortex-M4 counts "
                "(benchmarks/estimate_calibration.py)"
            )
        assumptions = self._assumptions()
        if assumptions:
            lines += ["", "assumptions in this estimate:"]
            lines += [f"  {k}: {v}" for k, v in assumptions.items()]
        if self.notes:
            lines += ["", *(f"note: {n}" for n in self.notes)]
        return "\n".join(lines)

    def _arena_method(self) -> str:
        rt = self.chosen
        if rt is None or not rt.models_arena:
            why = "static buffers" if rt is not None else "no runtime overhead modelled"
            return f"the activations alone ({why})"
        return (
            f"{rt.description}: the activations (or its planning temporaries, if larger) + "
            f"persistent overhead for {self.tensors} tensors and {self.ops} ops, fitted on the "
            "smallest arenas of the 64-bit host build of tflite-micro (a 32-bit MCU needs "
            "somewhat less)"
        )

    def _assumptions(self) -> dict[str, str]:
        """The assumptions this estimate rests on: with a runtime cost model, that runtime's
        (its op costs for the ops of this model only), else the target's latency figures."""
        rt = self.target.runtimes.get(self.runtime or "")
        if rt is None:
            return dict(self.target.assumptions)
        latency = ("cycles_per_mac_int8", "cycles_per_mac_float", "op_overhead_cycles")
        found = {k: v for k, v in self.target.assumptions.items() if k not in latency}
        used = set()
        for w in self.work:
            key = rt.cost(w.op, w.compute)[1] if w.real else f"{w.op}.{w.compute}"
            used.add(f"ops.{key}")
        found.update(
            {f"{rt.name}.{k}": v for k, v in rt.sources.items()
             if v.lower().startswith("assumption") and (not k.startswith("ops.") or k in used)}
        )  # fmt: skip
        return found


def overall_compute(computes: set[str]) -> str:
    """What a model computes in, from its MAC layers' types: one of them, mixed, or none."""
    if len(computes) == 1:
        return next(iter(computes))
    return "mixed" if computes else "none"
