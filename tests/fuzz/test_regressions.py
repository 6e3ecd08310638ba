"""Every input the fuzzers (and the bad-input matrix) found, kept as an explicit case.

Each case names the reader, the input (built byte for byte in ``tests.hardening.corrupt``,
independent of the TensorFlow version) and what went wrong before the fix. Findings in files
this suite does not own are ``xfail(strict=True)``: they turn into failures once fixed, so
the mark gets removed.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgekit.errors import EdgekitError
from tests.hardening import corrupt


def test_tflite_operator_reading_a_tensor_that_does_not_exist(seeds, tmp_path):
    """``estimate``: IndexError from the tensor list."""
    from edgekit.estimate import estimate

    bad = corrupt.tflite_with_bad_tensor_index(seeds["int8.tflite"], tmp_path / "b.tflite")
    with pytest.raises(EdgekitError, match=r"refers to tensor 9999; the graph has \d+\)$"):
        estimate(bad, target="cortex-m4")


def test_tflite_dense_layer_without_an_input(seeds, tmp_path):
    """``estimate``: AttributeError ('NoneType' has no 'dtype') for an optional input -1."""
    from edgekit.estimate import estimate

    bad = corrupt.tflite_with_missing_input(seeds["float32.tflite"], tmp_path / "m.tflite")
    result = estimate(bad, target="cortex-m4")
    assert result.macs < estimate(seeds["float32.tflite"], target="cortex-m4").macs


@pytest.mark.parametrize(
    "make, message",
    [
        (corrupt.onnx_varint_string, "a string field has the wrong wire type"),  # MemoryError
        (lambda: corrupt.onnx_varint_string(1 << 26), "a string field has the wrong wire type"),
        (corrupt.onnx_varint_message, "a message field has the wrong wire type"),  # TypeError
    ],
    ids=["string-2**63", "string-2**26", "message"],
)
def test_onnx_field_of_the_wrong_wire_type(tmp_path, make, message):
    """``inspect``/``estimate``: a varint where a string or message belongs was taken for a
    length (``bytes(2**26)`` zero-filled 64 MiB, 2**31 2 GiB, larger failed) or iterated over."""
    from edgekit.estimate import estimate
    from edgekit.inspect import inspect_artifact

    path = tmp_path / "m.onnx"
    path.write_bytes(make())
    for read in (inspect_artifact, lambda p: estimate(p, target="rpi4")):
        with pytest.raises(EdgekitError, match=f"not a valid ONNX model \\({message}\\)"):
            read(path)


def test_npz_member_that_is_not_an_array(tmp_path):
    """Every NPZ reader: ``np.load`` returned the raw bytes of a non-``.npy`` member, which
    then passed for a 0-d array of bytes."""
    from edgekit.formats.npz import load_npz

    path = tmp_path / "d.npz"
    path.write_bytes(corrupt.zip_bytes({"x.npy": b"not an array", "y.npy": b"\x00"}))
    with pytest.raises(
        EdgekitError, match=r"not a valid \.npz file \(x\.npy: not a \.npy array\)$"
    ):
        load_npz(path)


def test_test_data_whose_array_is_cut_short(tmp_path, seeds):
    """``bench --data``: the headers pass the parent's check; the child's failure to read
    the array was an error row with a traceback, now it is bad input (exit 2)."""
    from edgekit.bench.job import Job
    from edgekit.bench.measure import UsageError, measure

    data = tmp_path / "d.npz"
    data.write_bytes(corrupt.npz_truncated_array(shape=(3, 4)))
    job = Job(path=str(seeds["float32.tflite"]), runtime="tflite", data=str(data))
    with pytest.raises(UsageError, match="d.npz: not a valid .npz file"):
        measure(job)


@pytest.mark.parametrize(
    "make",
    [corrupt.npz_unsupported_compression, corrupt.npz_member_past_the_end],
    ids=["compression-method-99", "member-past-the-end"],
)
def test_npz_readers_outside_bench(tmp_path, make):
    """The same files through the readers this suite owns: one-line user errors."""
    from edgekit.data import load_dataset
    from edgekit.formats.npz import load_npz

    path = tmp_path / "d.npz"
    path.write_bytes(make(x=np.zeros((3, 4), np.float32)))
    with pytest.raises(EdgekitError, match="not a valid .npz file"):
        load_npz(path)
    with pytest.raises(EdgekitError, match="not a valid .npz file"):
        load_dataset(str(path))


@pytest.mark.parametrize(
    "make",
    [corrupt.npz_unsupported_compression, corrupt.npz_member_past_the_end],
    ids=["compression-method-99", "member-past-the-end"],
)
def test_npz_headers_of_broken_archives(tmp_path, make):
    from edgekit.bench.testdata import load_test_data

    path = tmp_path / "d.npz"
    path.write_bytes(make(x=np.zeros((3, 4), np.float32)))
    with pytest.raises(EdgekitError, match="not a valid .npz file"):
        load_test_data(path)


def _bench_file(tmp_path, name, **row):
    base = {
        "artifact": "m.tflite", "variant": "float32", "runtime": "tflite", "device": "cpu",
        "threads": 1, "batch": 1, "status": "ok", "latency_ms": {"p50": 0.01, "p95": 0.02},
        "samples_ms": [0.01 + 0.001 * (i % 3) for i in range(30)],
    }  # fmt: skip
    path = tmp_path / name
    path.write_text(json.dumps({"schema": "edgekit.bench/1", "results": [{**base, **row}]}))
    return path


def test_compare_against_a_base_of_zero_latencies(tmp_path):
    """``compare``: the bootstrap divided by a zero median (inf/NaN ratios in the JSON, a
    numpy warning on stderr)."""
    import warnings

    from edgekit.bench import compare

    zero = _bench_file(tmp_path, "zero.json", samples_ms=[0.0] * 30, latency_ms={"p50": 0.0})
    good = _bench_file(tmp_path, "good.json")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = compare(zero, good)
    (row,) = result.rows
    assert row.verdict == "not compared"
    json.dumps(result.to_json(), allow_nan=False)


@pytest.mark.parametrize(
    "row, message",
    [
        ({"samples_ms": 5}, "'samples_ms' must be a list of numbers"),  # TypeError
        ({"latency_ms": {"p50": -1.0}}, "'latency_ms' holds a negative latency"),  # "faster"
        ({"batch": 0}, "'batch' must be an integer >= 1"),  # ZeroDivisionError in report
        ({"threads": -2}, "'threads' must be an integer >= 1"),
    ],
    ids=["samples-not-a-list", "negative-latency", "batch-zero", "threads-negative"],
)
def test_bench_json_rows_that_cannot_be_measurements(tmp_path, row, message):
    from edgekit.bench import load_bench

    with pytest.raises(EdgekitError, match=message):
        load_bench(_bench_file(tmp_path, "b.json", **row))


@pytest.mark.slow
def test_report_of_rows_without_a_p95(tmp_path):
    """``report``: KeyError 'p95' for a row whose ``latency_ms`` has only a median."""
    pytest.importorskip("matplotlib")
    from edgekit.report import write_report

    path = _bench_file(tmp_path, "b.json", latency_ms={"p50": 0.01})
    written = write_report(path, out=tmp_path / "r")
    assert [p.name for p in written] == ["report.md", "latency.png", "tradeoff.png"]
