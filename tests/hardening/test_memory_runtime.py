"""Models that allocate huge tensors at run time, and batches that do (issue 13).

A few hundred bytes of ONNX (``ConstantOfShape``, ``Expand``, ``Tile``) or ``.tflite``
(``FILL``) can build a 1.6 GB tensor when run; their declared shapes are all small. ``bench``
measures in workers whose memory is limited by default (``--memory-limit auto``: what the
worker holds once its runtime is loaded, plus 384 MiB and 3x the model's and 2x the data's
size): such a model is an error row that says so. ``predict`` runs under the same kind of
allowance and refuses it in one line. A ``.tflite`` whose activations fit at batch 1 but not at
``--batch`` is refused before it allocates them; its evaluation batch shrinks to fit.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from edgekit.bench import run_bench
from edgekit.bench.isolate import memory_error
from edgekit.errors import EdgekitError
from tests.conftest import cli
from tests.hardening.memory_files import (
    LIMIT_MB,
    MB,
    onnx_allocating,
    peak_mb,
    tflite_filling,
    tflite_wide,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_DATA: Linux")
QUICK = dict(warmup=1, runs=3, min_time=0.0)
N = 400_000_000  # floats: 1.6 GB


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("hostile")
    files = {op: onnx_allocating(base / f"{op}.onnx", N, op)
             for op in ("ConstantOfShape", "Expand", "Tile")}  # fmt: skip
    files["fill"] = tflite_filling(base / "fill.tflite", N)
    files["wide"] = tflite_wide(base / "wide.tflite")
    rng = np.random.default_rng(0)
    np.savez(base / "data.npz", x=rng.normal(size=(300, 8)).astype(np.float32),
             y=rng.integers(0, 3, 300))  # fmt: skip
    files["data"] = base / "data.npz"
    for path in files.values():
        assert path.stat().st_size < 64 << 10
    return files


# --- the allowance itself ------------------------------------------------------------------


def test_an_allowance_bounds_a_block_and_is_restored():
    import resource

    from edgekit.isolation import memory_allowance, private_bytes

    before = resource.getrlimit(resource.RLIMIT_DATA)
    with memory_allowance(64 * MB) as limit:
        assert limit is not None and abs(limit - private_bytes() - 64 * MB) < 16 * MB
        assert resource.getrlimit(resource.RLIMIT_DATA)[0] == limit
        with pytest.raises(MemoryError):
            np.ones(128 * MB // 8)
        with memory_allowance(1 << 40) as inner:  # an enclosing, lower limit is kept
            assert inner == limit
        small = np.ones(MB // 8)  # within it: fine
    assert resource.getrlimit(resource.RLIMIT_DATA) == before
    assert np.ones(128 * MB // 8).sum() == 16 * MB and small.sum() == MB // 8


@pytest.mark.parametrize("error", [
    MemoryError(), RuntimeError("std::bad_alloc"), ValueError("OOM when allocating tensor"),
    RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Failed to allocate memory"),
])  # fmt: skip
def test_out_of_memory_is_recognised(error):
    from edgekit.isolation import is_out_of_memory

    assert is_out_of_memory(error)
    assert not is_out_of_memory(RuntimeError("Fill dimensions must be >= 0"))


# --- bench ---------------------------------------------------------------------------------


@pytest.mark.parametrize("op", ["ConstantOfShape", "Expand", "Tile"])
def test_bench_runs_an_allocating_onnx_model_into_its_limit(hostile, op):
    result = run_bench([hostile[op]], **QUICK)
    (row,) = result.rows
    assert row.status == "error" and not result.passed
    limit = int(row.error.split("memory limit of ")[1].split()[0])
    assert row.error == memory_error(limit)
    assert 384 < limit < 384 + 300  # auto: the worker's own (~110 MiB) + 384 MiB


def test_bench_runs_a_filling_tflite_into_its_limit(hostile):
    (row,) = run_bench([hostile["fill"]], **QUICK).rows
    assert row.status == "error"
    assert row.error.startswith(f"{hostile['fill']}: cannot load the TFLite model (); LiteRT "
                                "gives no reason when an allocation fails: the model may need "
                                "more than the ")  # fmt: skip
    assert row.error.endswith(" MiB of memory it may use here (raise it with --memory-limit)")


def test_an_explicit_limit_and_no_limit_still_apply(hostile):
    (row,) = run_bench([hostile["Expand"]], memory_limit_mb=300, **QUICK).rows
    assert (row.status, row.error) == ("error", memory_error(300))
    (row,) = run_bench([hostile["Expand"]], memory_limit_mb=0, **QUICK).rows
    assert row.status == "ok"  # 1.6 GB: this machine has it, and no limit was asked for


def test_activations_that_do_not_fit_the_batch_are_refused_before_they_are_allocated(hostile):
    from edgekit.formats.tflite_graph import activation_bytes

    wide = hostile["wide"]
    assert activation_bytes(wide) == 8_000_012  # two [1, 10^6] float32 tensors alive at once
    assert activation_bytes(wide, batch=1000) == 8_000_012_000
    result = run_bench([wide], batch=[1, 1000], **QUICK)
    one, thousand = result.rows
    assert one.status == "ok", one.error
    assert thousand.status == "error"
    assert thousand.error.startswith(
        "wide.tflite: its activations need 7.5 GiB at once at batch 1000, more than the memory "
        "limit of "
    )
    assert thousand.error.endswith("); raise it with --memory-limit, or use a smaller --batch")


def test_the_evaluation_batch_shrinks_to_fit(hostile):
    """256 samples of 4 MB activations (2 GB) would not fit: it evaluates in smaller batches."""
    (row,) = run_bench([hostile["wide"]], data=hostile["data"], **QUICK).rows
    assert row.status == "ok", row.error
    # Against the same bench without data (no evaluation): a worker's RSS includes what it
    # shares with the process it was forked from, which a test suite that imported
    # TensorFlow makes large; the evaluation itself adds at most ~64 MiB of activations.
    (plain,) = run_bench([hostile["wide"]], **QUICK).rows
    assert plain.status == "ok", plain.error
    assert row.peak_rss_mb - plain.peak_rss_mb < 150, (row.peak_rss_mb, plain.peak_rss_mb)


# --- predict -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ConstantOfShape", "fill"])
def test_predict_refuses_a_model_that_allocates_at_run_time(hostile, name):
    code, out, err = cli("predict", str(hostile[name]), str(hostile["data"]))
    assert (code, out) == (2, "") and err.count("\n") == 1, err
    if name == "fill":
        assert err.startswith(f"edgekit: error: {hostile[name]}: cannot load the TFLite model (); "
                              "LiteRT gives no reason when an allocation fails")  # fmt: skip
    else:
        assert err.startswith(f"edgekit: error: {hostile[name]}: refused: predicting on "
                              f"{hostile['data']} needed more than the 384.")  # fmt: skip


def test_a_runtime_error_in_predict_is_one_line(hostile, tmp_path):
    """FILL of 256 (predict's batch) x 10 million elements overflows int32: LiteRT refuses."""
    path = tflite_filling(tmp_path / "overflow.tflite", 10_000_000)
    x = np.zeros((300, 8), np.float32)
    np.savez(tmp_path / "many.npz", x=x)
    code, out, err = cli("predict", str(path), str(tmp_path / "many.npz"))
    assert (code, out) == (2, "") and err.count("\n") == 1, err
    assert err.startswith(f"edgekit: error: {path}: the tflite runtime failed on ")
    assert "RuntimeError: Fill dimensions must be >= 0" in err


def test_predict_still_works(hostile):
    from edgekit.predict import predict

    result = predict(hostile["wide"], hostile["data"])
    assert len(result.rows) == 300 and result.rows[0].scores == pytest.approx([0.0, 0.0, 0.0],
                                                                              abs=0.2)  # fmt: skip
    with pytest.raises(EdgekitError):
        predict(hostile["Tile"], hostile["data"])


# --- peak memory, as a user sees it --------------------------------------------------------


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux's /proc")
def test_peak_memory_on_run_time_allocations_stays_within_500_mb(hostile, tmp_path):
    cases = [
        (("bench", str(hostile["ConstantOfShape"]), "--runs", "3"), 1),
        (("bench", str(hostile["fill"]), "--runs", "3"), 1),
        (("bench", str(hostile["wide"]), "--runs", "3", "--batch", "1000"), 1),
        (("predict", str(hostile["Expand"]), str(hostile["data"])), 2),
        (("predict", str(hostile["fill"]), str(hostile["data"])), 2),
    ]
    for argv, want in cases:
        code, peak, err = peak_mb(*argv, cwd=tmp_path)
        assert code == want, (argv, err[-2000:])
        assert peak < LIMIT_MB + 120, (argv, peak)  # the tiny models' own peak: 45-70 MB
        print(f"edgekit {' '.join(argv[:2])}: {peak:.0f} MB")
