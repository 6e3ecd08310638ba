"""edgekit: train small Keras models, export them for devices, benchmark them honestly.

The public API mirrors the CLI, one call per command::

    import edgekit
    run = edgekit.train(dataset="digits", epochs=20)       # edgekit train
    result = edgekit.export(run, quantize=["int8"])         # edgekit export --quantize int8

Heavy frameworks (TensorFlow) are imported only inside the functions that need them.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "export", "train"]


def train(recipe=None, **options):
    """Train a model and write its run directory (``edgekit train``). Returns a ``Run``."""
    from edgekit.trainer import train as _train

    return _train(recipe, **options)


def export(source=None, **options):
    """Export a run or ``.keras`` model to TFLite/ONNX artifacts (``edgekit export``)."""
    from edgekit.exporters import export as _export

    return _export(source, **options)
