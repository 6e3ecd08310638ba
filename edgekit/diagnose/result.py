"""What ``diagnose`` found: per artifact, its layers worst first; as text, JSON and a plot."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.diagnose.layer import LayerReport
from edgekit.tables import format_table, num

SCHEMA = "edgekit.diagnose/1"
PLOT_NAME = "diagnose.png"
KINDS = {
    "static": "weights and activations quantized",
    "weights": "weights only, activations float",
}


@dataclass
class ArtifactDiagnosis:
    """One artifact: ``layers`` worst first (largest ``error``)."""

    artifact: str
    variant: str
    kind: str  # "static" or "weights" (see KINDS)
    samples: int
    top1_agreement: float | None  # of the artifact's output with the Keras model's
    max_abs_diff: float
    reference: str = "source"  # the float model compared with (edgekit.diagnose.reference)
    layers: list[LayerReport] = field(default_factory=list)

    @property
    def worst(self) -> LayerReport | None:
        return self.layers[0] if self.layers else None

    def in_model_order(self) -> list[LayerReport]:
        return sorted(self.layers, key=lambda r: r.position)

    def to_json(self) -> dict[str, Any]:
        worst = self.worst
        return {
            "artifact": self.artifact,
            "variant": self.variant,
            "kind": self.kind,
            "samples": self.samples,
            "top1_agreement": self.top1_agreement,
            "max_abs_diff": self.max_abs_diff,
            "reference": self.reference,
            "layers": [r.to_json() for r in self.layers],
            "worst": worst.layer if worst else None,
            "summary": worst.sentence if worst else "",
        }

    def text(self) -> str:
        agree = (
            "" if self.top1_agreement is None else f"; top-1 agreement {self.top1_agreement:.1%}"
        )
        against = "" if self.reference == "source" else f"; against the {self.reference} model"
        head = f"{self.artifact} ({self.variant}; {KINDS[self.kind]}{agree}{against})"
        if not self.layers:
            return f"{head}\n  no layer could be matched to a tensor of the artifact"
        rows = [
            [
                r.layer,
                r.dtype,
                num(r.error, 3),
                num(r.channel_error, 3),
                num(r.rmse_rel, 3),
                num(r.cosine, 4),
                num(r.scale, 3),
                "-" if r.range_used is None else f"{r.range_used:.0%}",
                "-" if r.saturation is None else f"{r.saturation:.1%}",
                "-" if r.top1_downstream is None else f"{r.top1_downstream:.1%}",
            ]
            for r in self.layers
        ]
        table = format_table(
            ["layer", "type", "error", "channel", "vs float", "cosine", "scale", "range used",
             "clipped", "top-1 after"],
            rows,
        )  # fmt: skip
        notes = [f"  {r.sentence}" for r in self.layers]
        indented = "\n".join(f"  {line}" for line in table.splitlines())
        return "\n".join([head, indented, *notes])


@dataclass
class Diagnosis:
    """Every diagnosed artifact of one export directory."""

    export: Path
    task: str
    samples: int
    data: str
    results: list[ArtifactDiagnosis]

    @property
    def default_plot(self) -> Path:
        return self.export / PLOT_NAME

    def to_json(self, plot: Path | None = None) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "schema": SCHEMA,
            "export": str(self.export),
            "task": self.task,
            "data": self.data,
            "samples": self.samples,
            "results": [r.to_json() for r in self.results],
        }
        if plot is not None:
            doc["plot"] = str(plot)
        return doc

    def text(self) -> str:
        legend = (
            "error: how far the layer alone moves the output (RMSE / output range); "
            "channel: what it adds at the layer (RMSE / channel range, mean over channels); "
            "vs float, cosine, top-1 after: against the Keras model run end to end"
        )
        parts = [f"{r.text()}\n" for r in self.results]
        return "\n".join([*parts, f"{self.samples} samples of {self.data}. {legend}"])

    def save_plot(self, path: str | Path | None = None) -> Path:
        """Write the error-per-layer plot (PNG, atomically); default ``diagnose.png`` in the
        export directory. Returns its path."""
        from edgekit.diagnose.plot import error_plot
        from edgekit.fileio import atomic_write_bytes

        target = Path(path) if path is not None else self.default_plot
        return atomic_write_bytes(target, error_plot(self.results))
