"""Fuzzing the model loaders with mutated ``.tflite`` and ``.onnx`` files.

* In this process, the pure-Python readers that run before any runtime: the TFLite
  flatbuffer reader of ``edgekit estimate``, the ONNX protobuf decoder of ``edgekit inspect``
  and ``estimate``, and the TFLite runner's identifier check. They must raise
  :class:`EdgekitError` (exit 2), never anything else, and never hang.
* In child processes, what can crash: LiteRT's and onnxruntime's C++ loaders, through
  ``inspect`` (a batch of files per child) and through ``bench``'s isolated workers. The
  parent must always get a result: a row per file (``ok`` or ``error``, with a one-line
  reason), never a crash or a traceback.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from edgekit.errors import EdgekitError
from tests.fuzz.conftest import count, fuzz_settings, mutate, mutations

# Sizes of the seed files are fixed per TensorFlow version, not known here: strategies take
# positions in [0, 2**16) and ``mutate`` clips them to the file.
EDITS = mutations(1 << 16)


def _estimate(path: Path):
    from edgekit.estimate import estimate

    return estimate(path, target="cortex-m4")


@fuzz_settings(max_examples=400)
@given(variant=st.sampled_from(["float32.tflite", "int8.tflite"]), edits=EDITS)
@example(variant="float32.tflite", edits=[("truncate", 8)])
@example(variant="int8.tflite", edits=[("int32", 0, 0xFFFFFFFF)])
def test_tflite_readers_raise_only_user_errors(seeds, tmp_path, variant, edits):
    from edgekit.runtime.tflite import TFLiteRunner

    count("tflite: estimate's flatbuffer reader, runner identifier check")
    data = mutate(seeds[variant].read_bytes(), edits)
    path = tmp_path / "fuzz.tflite"
    path.write_bytes(data)
    try:
        result = _estimate(path)
    except EdgekitError as err:
        assert "\n" not in str(err)
    else:
        assert result.macs >= 0 and result.arena_bytes >= 0
    if data[4:8] != b"TFL3":  # refused before the interpreter (C++) ever sees it
        with pytest.raises(EdgekitError, match="not a TensorFlow Lite flatbuffer"):
            TFLiteRunner(path).__enter__()


@fuzz_settings(max_examples=400)
@given(variant=st.sampled_from(["float32.onnx", "dynamic.onnx"]), edits=EDITS)
@example(variant="float32.onnx", edits=[("truncate", 1)])
def test_onnx_reader_raises_only_user_errors(seeds, tmp_path, variant, edits):
    from edgekit.inspect import inspect_artifact

    count("onnx: protobuf decoder (inspect, estimate)")
    path = tmp_path / "fuzz.onnx"
    path.write_bytes(mutate(seeds[variant].read_bytes(), edits))
    for read in (inspect_artifact, _estimate):
        try:
            read(path)
        except EdgekitError as err:
            assert "\n" not in str(err)


# LiteRT's interpreter reads the flatbuffer in C++: inspect runs it in a child, a batch of
# files at a time, and reports each file's outcome as it goes.
INSPECT_CHILD = """
import sys
from edgekit.errors import EdgekitError
from edgekit.inspect import inspect_artifact
for path in sys.argv[1:]:
    try:
        inspect_artifact(path)
        print("ok", flush=True)
    except EdgekitError:
        print("user error", flush=True)
    except Exception as err:
        print(f"BUG {type(err).__name__}: {err}", flush=True)
"""
BATCH = 20


@pytest.mark.slow
@fuzz_settings(max_examples=25)
@given(batch=st.lists(st.tuples(st.sampled_from(["float32.tflite", "int8.tflite"]), EDITS),
                      min_size=BATCH, max_size=BATCH))  # fmt: skip
def test_inspect_with_litert_never_crashes(seeds, tmp_path, batch):
    count("tflite: inspect (LiteRT interpreter, in a child)", len(batch))
    paths = []
    for i, (variant, edits) in enumerate(batch):
        path = tmp_path / f"fuzz{i}.tflite"
        path.write_bytes(mutate(seeds[variant].read_bytes(), edits))
        paths.append(str(path))
    proc = subprocess.run([sys.executable, "-c", INSPECT_CHILD, *paths],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    outcomes = proc.stdout.splitlines()
    crashed = paths[len(outcomes)] if len(outcomes) < len(paths) else None
    assert proc.returncode == 0, f"inspect crashed ({proc.returncode}) on {crashed}"
    assert not [o for o in outcomes if o.startswith("BUG")], outcomes


def _bench_rows(paths: list[Path]):
    """``run_bench`` in this process (the parent); each file is measured in its own child."""
    from edgekit.bench import run_bench

    result = run_bench(paths, warmup=0, runs=1, min_time=0.0, timeout=20.0)
    assert [r.artifact for r in result.rows] == [p.name for p in paths]
    for row in result.rows:
        assert row.status in ("ok", "error"), row
        if row.status == "error":
            assert row.error and "\n" not in row.error
    return result.rows


FILES_PER_BENCH = 4


@pytest.mark.slow
@fuzz_settings(max_examples=12)
@given(batch=st.lists(st.tuples(st.sampled_from(["float32.tflite", "int8.tflite",
                                                 "float32.onnx", "dynamic.onnx"]), EDITS),
                      min_size=FILES_PER_BENCH, max_size=FILES_PER_BENCH))  # fmt: skip
def test_bench_isolates_every_corrupt_model(seeds, tmp_path, batch):
    count("tflite/onnx: bench's isolated workers (LiteRT, onnxruntime)", len(batch))
    paths = []
    for i, (variant, edits) in enumerate(batch):
        path = tmp_path / f"fuzz{i}.{variant.split('.')[1]}"
        path.write_bytes(mutate(seeds[variant].read_bytes(), edits))
        paths.append(path)
    _bench_rows(paths)
