"""Fuzzing fixtures: small seed models with fixed weights, byte mutations, and a count of the
examples every target ran (printed at the end of the session, for the README).

Hypothesis runs derandomized (the same examples on every run) with no example database, and
every target has a fixed ``max_examples`` that keeps it well under 60 s on 2 cores.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

EXECUTIONS: Counter[str] = Counter()


def fuzz_settings(max_examples: int) -> settings:
    """Reproducible and bounded: derandomized, no database, no deadline (CI is noisy)."""
    return settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
    )


def count(target: str, n: int = 1) -> None:
    EXECUTIONS[target] += n


def pytest_terminal_summary(terminalreporter):
    if EXECUTIONS:
        total = sum(EXECUTIONS.values())
        terminalreporter.write_sep("-", f"fuzz executions: {total}")
        for target, n in sorted(EXECUTIONS.items()):
            terminalreporter.write_line(f"{n:7d}  {target}")


# --- byte mutations ------------------------------------------------------------------------

INTERESTING_32 = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)


def mutations(size: int):
    """Lists of edits to a file of ``size`` bytes: bit flips, byte and 32-bit sets (with
    values that break lengths and offsets), truncation, and splices of the file into itself."""
    at = st.integers(0, size - 1)
    edit = st.one_of(
        st.tuples(st.just("flip"), at, st.integers(0, 7)),
        st.tuples(st.just("byte"), at, st.integers(0, 255)),
        st.tuples(st.just("int32"), st.integers(0, size - 4), st.sampled_from(INTERESTING_32)),
        st.tuples(st.just("truncate"), at),
        st.tuples(st.just("splice"), at, at, st.integers(1, 64)),
    )
    return st.lists(edit, min_size=1, max_size=6)


def mutate(data: bytes, edits) -> bytes:
    out = bytearray(data)
    for edit in edits:
        kind, pos = edit[0], min(edit[1], max(len(out) - 1, 0))
        if not out:
            break
        if kind == "flip":
            out[pos] ^= 1 << edit[2]
        elif kind == "byte":
            out[pos] = edit[2]
        elif kind == "int32":
            out[pos : pos + 4] = edit[2].to_bytes(4, "little")
        elif kind == "truncate":
            del out[pos:]
        else:  # splice: bytes of the original file over these
            src, length = edit[2], edit[3]
            out[pos : pos + length] = data[src : src + length]
    return bytes(out)


# --- seed files ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def seeds(tmp_path_factory) -> dict[str, Path]:
    """A 4 -> 6 -> 3 classifier with fixed weights: float32 and int8 ``.tflite``, float32 and
    dynamic-quantized ``.onnx``. Small files, so mutations hit every structure."""
    import keras

    from edgekit.exporters.onnx import quantize_onnx, to_onnx
    from edgekit.exporters.tflite import to_tflite
    from edgekit.trainer.model import build_model

    x = np.linspace(-2.0, 3.0, 4 * 32, dtype=np.float32).reshape(32, 4)
    model = build_model(input_shape=[4], task="multiclass", n_classes=3, hidden=[6], x_train=x)
    for layer in model.layers:
        if type(layer).__name__ == "Dense":
            kernel, bias = layer.get_weights()
            layer.set_weights(
                [
                    np.linspace(-1, 1, kernel.size, dtype=np.float32).reshape(kernel.shape),
                    np.linspace(-0.1, 0.1, bias.size, dtype=np.float32),
                ]
            )
    keras.utils.set_random_seed(0)
    base = tmp_path_factory.mktemp("seeds")
    paths = {
        "float32.tflite": to_tflite(model, base / "model.float32.tflite", variant="float32"),
        "int8.tflite": to_tflite(model, base / "model.int8.tflite", variant="int8", calibration=x),
        "float32.onnx": to_onnx(model, base / "model.float32.onnx"),
    }
    paths["dynamic.onnx"] = quantize_onnx(
        paths["float32.onnx"], base / "model.dynamic.onnx", mode="dynamic"
    )
    return paths
