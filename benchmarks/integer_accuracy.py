"""Integer variants on real data, before and after per-feature input quantization.

For each dataset, train a seeded model with `edgekit train`, then measure in one run:
- before: the model converted with its normalization inside the integer graph (one scale for
  the raw input tensor: what edgekit did until the per-feature inputs), int8, int16x8 and
  onnx-static, run from bare files;
- after: `edgekit export` (per-feature input parameters, normalization in float for float
  inputs), the same variants plus the generated int8 C.
The figure is the accuracy drop against Keras in percentage points (regression: the MAE
increase in % of the target's standard deviation). The outlier-channel model (one hidden unit
of a breast_cancer MLP rescaled 300x, float function unchanged: tests/quant_models.py) is what
per-feature inputs cannot fix; `--quantize auto --integer-only` does, and its cost in export
time beside a plain int8 export is measured for every dataset. Targets: within 1 pp (or one test sample)
for classification, 2 % for regression; MNIST unchanged (int8 <= 0.30x float32, drop <= 0.5).

    python benchmarks/integer_accuracy.py [--skip-mnist]
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from _common import mnist_path, table, write_result

VARIANTS = ("int8", "int16x8", "onnx-static")


def _csv(path: Path, x, y, names: list[str], target: str) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([*names, target])
        for row, value in zip(x, y, strict=True):
            writer.writerow([*(f"{v:.6g}" for v in row), value])
    return path


def datasets(work: Path, mnist: bool) -> list[tuple[str, dict]]:
    """(name, edgekit.train options) for every dataset of the table."""
    import numpy as np
    from sklearn.datasets import load_diabetes, load_wine, make_classification

    wine = load_wine()
    names = [n.replace("/", "_") for n in wine.feature_names]
    wine_csv = _csv(work / "wine.csv", wine.data, wine.target_names[wine.target], names, "cultivar")
    diabetes = load_diabetes(scaled=False)
    diabetes_csv = _csv(
        work / "diabetes.csv", diabetes.data, diabetes.target, diabetes.feature_names, "progression"
    )
    x, y = make_classification(
        n_samples=1200, n_features=8, n_informative=6, random_state=3, class_sep=1.2
    )
    scales = np.array([1e-2, 1e-1, 1.0, 10.0, 100.0, 1e3, 3e2, 3e-2])
    offsets = np.array([0.0, 5.0, -1.0, 40.0, 1e3, 5e3, -200.0, 0.1])
    mixed_csv = _csv(work / "mixed.csv", x * scales + offsets, y, [f"f{i}" for i in range(8)], "y")
    out = [
        ("digits", {"dataset": "digits"}),
        ("breast_cancer", {"dataset": "breast_cancer"}),
        ("wine (13 features, proline ~1000 beside hue ~1)", {"dataset": str(wine_csv), "hidden": [32]}),
        ("mixed ranges (1e-2 .. 1e3, synthetic)", {"dataset": str(mixed_csv), "hidden": [32, 16]}),
        ("diabetes, unscaled (regression)",
         {"dataset": str(diabetes_csv), "hidden": [32], "epochs": 200, "early_stopping": 20,
          "learning_rate": 0.003}),
    ]  # fmt: skip
    out.append(("outlier channel (breast_cancer 256-128, k=300)", {"outlier": True}))
    if mnist:
        recipe = Path(__file__).resolve().parents[1] / "models" / "mnist_mlp.toml"
        out.append(("MNIST (mnist_mlp)", {"recipe": str(recipe), "dataset": str(mnist_path())}))
    return out


def drop_of(validation: dict) -> float:
    if validation.get("mae_increase_pct") is not None:
        return float(validation["mae_increase_pct"])
    return float(validation["accuracy_drop"])


def before(run, work: Path) -> dict[str, float]:
    """The old conversion: normalization inside the integer graph, per-tensor raw input."""
    import numpy as np

    from edgekit.exporters.onnx import quantize_onnx, to_onnx
    from edgekit.exporters.tflite import to_tflite
    from edgekit.exporters.validate import Reference, validate
    from edgekit.formats.npz import load_npz

    model = run.load_model()
    calibration = load_npz(run.calibration_path)["x"][:200].astype(np.float32)
    test = load_npz(run.test_data_path)
    x = test["x"].astype(np.float32)
    ref = Reference(run.task, x, test["y"], np.asarray(model.predict(x, verbose=0), np.float32))
    bare = work / "bare"
    bare.mkdir()
    paths = {
        "int8": to_tflite(model, bare / "m.int8.tflite", variant="int8", calibration=calibration),
        "int16x8": to_tflite(
            model, bare / "m.int16x8.tflite", variant="int16x8", calibration=calibration
        ),
    }
    float_onnx = to_onnx(model, bare / "m.onnx")
    paths["onnx-static"] = quantize_onnx(
        float_onnx, bare / "m.static.onnx", mode="static", calibration=calibration
    )
    out = {}
    for name, path in paths.items():
        validation, _, _ = validate(path, ref, exact=False, atol=0.0, max_accuracy_drop=100.0)
        out[name] = drop_of(validation)
    return out


def after(run, work: Path) -> tuple[dict[str, float], dict]:
    import edgekit

    start = time.perf_counter()
    result = edgekit.export(
        run, quantize=["float32", "int8", "int16x8"], onnx_quantize=["static"], c_source="int8",
        max_accuracy_drop=100.0, out=work / "export",
    )  # fmt: skip
    seconds = time.perf_counter() - start
    by = {a["variant"]: a for a in result.artifacts}
    drops = {name: drop_of(by[name]["validation"]) for name in VARIANTS}
    c = result.manifest["c_source"]["validation"]
    drops["c-int8"] = drops["int8"] if c.get("passed") else float("nan")  # bit-exact to int8
    sizes = {name: by[name]["bytes"] / by["float32"]["bytes"] for name in ("int8",)}
    return drops, {"export_seconds": seconds, "int8_size_ratio": sizes["int8"],
                   "c_int8_identical": f"{c.get('exact')}/{c.get('outputs')}"}  # fmt: skip


def auto_cost(run, work: Path) -> dict:
    """``--quantize auto --integer-only`` beside plain int8: drop, choice, size, seconds."""
    import edgekit

    timings = {}
    for name, options in (("int8", {"quantize": ["int8"]}),
                          ("auto", {"quantize": ["auto"], "integer_only": True})):  # fmt: skip
        start = time.perf_counter()
        result = edgekit.export(run, max_accuracy_drop=1.0 if run.task != "regression" else 2.0,
                                out=work / f"cost_{name}", force=True, **options)  # fmt: skip
        timings[name] = time.perf_counter() - start
        art = result.artifacts[0]
    return {"auto_drop": drop_of(art["validation"]), "auto_chosen": art["auto"]["chosen"],
            "auto_tried": len(art["auto"]["tried"]), "int8_seconds": timings["int8"],
            "auto_seconds": timings["auto"]}  # fmt: skip


def _run(case: Path, options: dict):
    import edgekit

    if options.pop("outlier", False):
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from edgekit.formats.run_dir import open_run
        from tests.quant_models import outlier_channel_model

        return open_run(outlier_channel_model(case, hidden=(256, 128)))
    recipe = options.pop("recipe", None)
    return edgekit.train(recipe, seed=0, out=str(case / "run"), **options)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-mnist", action="store_true")
    args = parser.parse_args()

    rows, records = [], []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name, options in datasets(work, mnist=not args.skip_mnist):
            case = work / f"case{len(records)}"
            case.mkdir()
            run = _run(case, options)
            old = before(run, case)
            new, extra = after(run, case)
            extra.update(auto_cost(run, case))
            test = run.metrics["test"]
            keras = test.get("accuracy", test.get("mae"))
            unit = "MAE +% std" if run.task == "regression" else "pp"
            records.append({"dataset": name, "task": run.task, "keras": keras, "unit": unit,
                            "before": old, "after": new, **extra})  # fmt: skip
            rows.append([
                name, f"{keras:.4f}", unit,
                *(f"{old[v]:+.2f} -> {new[v]:+.2f}" for v in VARIANTS), f"{new['c-int8']:+.2f}",
                f"{extra['int8_size_ratio']:.2f}x",
                f"{extra['auto_drop']:+.2f} ({extra['auto_chosen']}, {extra['auto_tried']} tried)",
                f"{extra['auto_seconds']:.1f} s vs {extra['int8_seconds']:.1f} s",
            ])  # fmt: skip
            print(rows[-1], flush=True)
    header = ["dataset", "Keras", "unit", *(f"{v} before -> after" for v in VARIANTS),
              "C int8 after", "int8 size", "auto --integer-only", "export: auto vs int8"]  # fmt: skip
    print(table(header, rows))
    write_result("integer_accuracy", {"rows": records})


if __name__ == "__main__":
    main()
