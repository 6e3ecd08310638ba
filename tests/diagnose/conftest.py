"""The diagnosis fixtures: one normal and one outlier-channel run, exported once per session."""

from __future__ import annotations

import pytest

from tests.quant_models import outlier_channel_model, train_small


@pytest.fixture(scope="session")
def quant_base(tmp_path_factory):
    return tmp_path_factory.mktemp("quant")


@pytest.fixture(scope="session")
def normal_run(quant_base):
    return train_small(quant_base)


@pytest.fixture(scope="session")
def outlier_run(quant_base, normal_run):
    return outlier_channel_model(quant_base, k=300.0)


@pytest.fixture(scope="session")
def outlier_export(outlier_run):
    """Every quantized kind of the outlier model; int8 fails its accuracy check on purpose."""
    import edgekit

    return edgekit.export(
        outlier_run,
        quantize=["dynamic", "int8", "int16x8"],
        onnx_quantize=["dynamic", "static"],
        max_accuracy_drop=100.0,
    )


@pytest.fixture(scope="session")
def normal_export(normal_run):
    import edgekit

    return edgekit.export(normal_run, quantize=["int8"])


@pytest.fixture(scope="session")
def float_export(normal_run):
    import edgekit

    return edgekit.export(normal_run, quantize=["float32"], onnx=True, out=normal_run / "floats")
