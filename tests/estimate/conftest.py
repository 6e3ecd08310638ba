"""Tiny models for the estimate tests, built once per session (no training needed)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def mnist_models(tmp_path_factory):
    """The seeds' MNIST shape: 28x28 -> Flatten -> Dense 128 relu -> Dense 10 softmax.

    Untrained, seeded weights; TFLite float32, int8 and dynamic, and ONNX float32.
    """
    import keras

    from edgekit.exporters.onnx import to_onnx
    from edgekit.exporters.tflite import to_tflite
    from edgekit.trainer.model import build_model

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(64, 28, 28)).astype(np.float32)
    model = build_model(
        input_shape=[28, 28], task="multiclass", n_classes=10, hidden=[128], x_train=x
    )
    for layer in model.layers:  # non-zero biases, or the converter drops them
        if type(layer).__name__ == "Dense":
            layer.bias.assign(rng.normal(scale=0.1, size=layer.bias.shape).astype(np.float32))
    base = tmp_path_factory.mktemp("mnist")
    paths = {}
    for variant in ("float32", "int8", "dynamic"):
        paths[variant] = to_tflite(
            model, base / f"model.{variant}.tflite", variant=variant, calibration=x
        )
    paths["onnx"] = to_onnx(model, base / "model.float32.onnx")
    return paths
