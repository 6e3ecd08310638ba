"""Numbers that must be true and errors that must be one line: bench's artifact sizes,
``edgekit estimate`` on models LiteRT or onnxruntime would refuse, target catalogs with
absurd numbers, and a matrix of other hostile estimate inputs.

Every refusal is one line on stderr with exit code 2 (``cli`` runs the CLI in-process).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tests.conftest import cli


def one_line(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text, text
    return text


def onnx_matmul(path: Path, *, n_in: int = 16, units: int = 512, external: bool = True,
                edit=None) -> Path:  # fmt: skip
    """``x @ w + b``, ``n_in -> units``, its weights in ``w.bin`` beside it when ``external``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.full((n_in, units), 0.5, np.float32), "w")
    b = numpy_helper.from_array(np.zeros(units, np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
         helper.make_node("Add", ["h", "b"], ["y"], name="add")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", n_in])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", units])],
        [w, b],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if edit is not None:
        edit(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    if external:
        onnx.save_model(model, str(path), save_as_external_data=True, location="w.bin",
                        size_threshold=0, all_tensors_to_one_file=True)  # fmt: skip
    else:
        onnx.save_model(model, str(path), save_as_external_data=False)
    return path


# --- 1. bench's size of an ONNX artifact counts its external data ---------------------------


def test_bench_targets_count_onnx_external_data(tmp_path):
    from edgekit.bench.targets import resolve_targets
    from edgekit.formats.sizes import artifact_bytes

    path = onnx_matmul(tmp_path / "export" / "m.onnx")
    weights = (tmp_path / "export" / "w.bin").stat().st_size
    assert weights == (16 * 512 + 512) * 4
    total = path.stat().st_size + weights
    assert artifact_bytes(path) == total
    for given in (path, path.parent):  # a bare file, and a directory without a manifest
        (target,) = resolve_targets([given], runtimes={"onnxruntime"})
        assert target.size_bytes == total > 30_000


def test_bench_size_budget_sees_external_data(tmp_path):
    path = onnx_matmul(tmp_path / "m.onnx")
    total = path.stat().st_size + (tmp_path / "w.bin").stat().st_size
    report = tmp_path / "bench.json"
    code, out, err = cli("bench", str(path), "--runs", "2", "--json", str(report),
                         "--budget", "size_kb<=1")  # fmt: skip
    assert code == 1, (out, err)
    assert "budget violations" in out and f"{total / 1024:.2f}" in out, out
    (row,) = json.loads(report.read_text())["results"]
    assert row["status"] == "ok" and row["size_bytes"] == total > 34_816


def test_bench_refuses_onnx_with_missing_external_data(tmp_path):
    path = onnx_matmul(tmp_path / "m.onnx")
    (tmp_path / "w.bin").unlink()
    code, out, err = cli("bench", str(path), "--runs", "2")
    assert (code, out) == (2, "")
    assert (
        err == f"edgekit: error: {path}: tensor 'w' keeps its data in 'w.bin', which is missing\n"
    )
