"""What ``estimate`` returns: per-layer costs and totals of a model on a target, and their text.

:class:`Estimate` holds what the estimators in :mod:`edgekit.estimate.tflite` and
:mod:`edgekit.estimate.onnx` found; ``text()`` is for people, ``to_json()`` for tools
(``edgekit.estimate/1``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from edgekit.estimate.catalog import Target
from edgekit.formats.arena import ALIGNMENT

SCHEMA = "edgekit.estimate/1"
NOTICE = "ESTIMATE from the model file and a target catalog, not a measurement"


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


def overall_compute(computes: set[str]) -> str:
    """What a model computes in, from its MAC layers' types: one of them, mixed, or none."""
    if len(computes) == 1:
        return next(iter(computes))
    return "mixed" if computes else "none"
