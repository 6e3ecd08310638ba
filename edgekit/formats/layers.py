"""The dense layers of a model file, as ``inspect`` and ``estimate`` report them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class LayerInfo:
    """A dense (matrix-multiply) layer: ``units`` outputs from ``inputs`` features."""

    op: str
    name: str
    inputs: int
    units: int
    params: int  # weights + bias
    macs: int  # multiply-accumulates per sample
    weights_dtype: str
