""":class:`CSource`: the C files an export wrote, as its manifest's ``c_source`` records them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.errors import EdgekitError


@dataclass
class CSource:
    """What :func:`~edgekit.exporters.c_source.to_c_source` wrote."""

    variant: str
    prefix: str
    header: Path
    source: Path
    input_size: int
    output_size: int
    input_quantization: dict[str, float] | None = None  # what <prefix>_predict_int8 takes
    output_quantization: dict[str, float] | None = None
    # What <prefix>_predict applies to raw features when it is not input_quantization: the
    # model's normalization folded into per-feature parameters (the manifest's, for int8).
    feature_quantization: dict[str, Any] | None = None
    ops: list[str] = field(default_factory=list)
    arena_bytes: int = 0
    needs_libm: bool = False
    rounding: str | None = None  # int8: "tflm" or "litert", whose kernels it reproduces
    tables: list[str] = field(default_factory=list)  # int8: who filled its elementwise tables

    @property
    def files(self) -> list[Path]:
        return [self.header, self.source]

    @classmethod
    def load(cls, export_dir: str | Path) -> CSource:
        """The C source an export directory holds, from its ``manifest.json``."""
        from edgekit.formats.manifest import c_source_entry, load_manifest

        export_dir = Path(export_dir)
        info = c_source_entry(export_dir, load_manifest(export_dir))
        if not info:
            raise EdgekitError(f"{export_dir}: holds no C source (export with --c-source)")
        header, source = info["paths"]
        return cls(
            variant=info["variant"],
            prefix=info["prefix"],
            header=header,
            source=source,
            input_size=info["input_size"],
            output_size=info["output_size"],
            input_quantization=info.get("input_quantization"),
            output_quantization=info.get("output_quantization"),
            feature_quantization=info.get("feature_quantization"),
            ops=info.get("ops", []),
            arena_bytes=info.get("arena_bytes", 0),
            needs_libm=info.get("needs_libm", False),
            rounding=info.get("rounding", "litert" if info["variant"] == "int8" else None),
            tables=info.get("tables", []),
        )

    def to_json(self) -> dict[str, Any]:
        out = {
            "variant": self.variant,
            "prefix": self.prefix,
            "files": [p.name for p in self.files],
            "input_size": self.input_size,
            "output_size": self.output_size,
            "input_quantization": self.input_quantization,
            "output_quantization": self.output_quantization,
            "ops": self.ops,
            "arena_bytes": self.arena_bytes,
            "needs_libm": self.needs_libm,
        }
        if self.rounding is not None:
            out["rounding"] = self.rounding
        if self.tables:
            out["tables"] = self.tables
        if self.feature_quantization is not None:
            out["feature_quantization"] = self.feature_quantization
        return out
