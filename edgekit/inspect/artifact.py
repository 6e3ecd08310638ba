"""``edgekit inspect``'s report of one artifact: :class:`ArtifactInfo` and :func:`inspect_artifact`."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgekit.errors import EdgekitError
from edgekit.fileio import sha256_file
from edgekit.formats.layers import LayerInfo


@dataclass
class ArtifactInfo:
    """What ``edgekit inspect`` reports about one artifact."""

    file: str
    format: str
    bytes: int
    sha256: str
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    ops: list[str]
    layers: list[LayerInfo]
    quantization: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def params(self) -> int:
        """Parameters of the dense layers (weights and biases)."""
        return sum(layer.params for layer in self.layers)

    @property
    def macs(self) -> int:
        """Multiply-accumulates per sample in the dense layers."""
        return sum(layer.macs for layer in self.layers)

    @property
    def op_counts(self) -> dict[str, int]:
        return dict(Counter(self.ops))

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["params"] = self.params
        out["macs"] = self.macs
        out["op_counts"] = self.op_counts
        return out

    def text(self) -> str:
        """A human-readable summary."""
        from edgekit.tables import format_table

        def tensor(t: dict[str, Any]) -> str:
            q = t.get("quantization")
            qtext = f", {_quantization_text(q)}" if q else ""
            return f"  {t['name']}: {t['dtype']} {t['shape']}{qtext}"

        lines = [
            f"{self.file}: {self.format}, {self.bytes} bytes, sha256 {self.sha256[:16]}...",
            *(f"{k}: {v}" for k, v in self.details.items()),
            "inputs:",
            *(tensor(t) for t in self.inputs),
            "outputs:",
            *(tensor(t) for t in self.outputs),
            f"ops ({len(self.ops)}): "
            + ", ".join(f"{op} x{n}" if n > 1 else op for op, n in self.op_counts.items()),
            f"quantization: {self.quantization}",
            f"parameters: {self.params:,} (dense layers), MACs per sample: {self.macs:,}",
        ]
        if self.layers:
            rows = [
                [layer.op, layer.name[-48:], str(layer.inputs), str(layer.units),
                 f"{layer.params:,}", f"{layer.macs:,}", layer.weights_dtype]
                for layer in self.layers
            ]  # fmt: skip
            head = ["op", "name", "in", "out", "params", "MACs", "weights"]
            lines += ["", format_table(head, rows)]
        return "\n".join(lines)


def _quantization_text(q: dict[str, Any]) -> str:
    """``scale 0.0039, zero point -128``, or a summary of per-feature parameters."""
    scale, zero_point = q["scale"], q["zero_point"]
    if isinstance(scale, list):
        return (
            f"per feature ({len(scale)}): scale {min(scale):.4g} .. {max(scale):.4g}, "
            f"zero point {min(zero_point):.4g} .. {max(zero_point):.4g}"
        )
    return f"scale {scale:.6g}, zero point {zero_point:.6g}"


def inspect_artifact(path: str | Path) -> ArtifactInfo:
    """Inspect a ``.tflite``, ``.onnx`` or ``.keras`` file."""
    path = Path(path)
    if path.is_dir():
        raise EdgekitError(
            f"{path}: is a directory; inspect takes one .tflite, .onnx or .keras file"
        )
    if not path.is_file():
        raise EdgekitError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".tflite":
        from edgekit.inspect.tflite import inspect_tflite

        parts = inspect_tflite(path)
    elif suffix == ".onnx":
        from edgekit.formats.onnx_layers import inspect_onnx

        parts = inspect_onnx(path)
    elif suffix == ".keras":
        from edgekit.inspect.keras import inspect_keras

        parts = inspect_keras(path)
    else:
        raise EdgekitError(
            f"{path}: unknown artifact type {suffix or '(no suffix)'!r}; "
            "edgekit inspects .tflite, .onnx and .keras files"
        )
    from edgekit.formats.sizes import artifact_bytes

    return ArtifactInfo(
        file=path.name, bytes=artifact_bytes(path), sha256=sha256_file(path), **parts
    )
