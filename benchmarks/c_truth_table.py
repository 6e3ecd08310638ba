"""The truth table of the int8 C: how many outputs equal TFLM, LiteRT builtin and XNNPACK.

``export --quantize int8 --c-source int8`` compares the generated C, element by element on the
whole test set, with TensorFlow Lite Micro (the ``tflite-micro`` interpreter), ai_edge_litert's
builtin kernels (no delegate) and its default interpreter (XNNPACK), and records the counts in
``manifest.json`` under ``c_source.validation.vs``. This script trains a set of models (seeded,
a few epochs, in subprocesses: ``python -m edgekit train``), exports each one twice, with the
default rounding (``--c-rounding tflm``) and with ``--c-rounding litert``, and prints, per
model and rounding, the outputs compared, how many are identical to each runtime and the
largest difference in LSB:

* digits 64-32-10 relu, digits 64-16-10 tanh, digits 64-16-10 sigmoid;
* breast_cancer 30-16-1 (a sigmoid head);
* a tabular CSV made here: six features whose scales span 1e-2 to 1e3, three classes;
* MNIST 784-64-32-10 (``$EDGEKIT_DATA_DIR/mnist.npz`` or ``../shared/datasets/mnist.npz``).

About 2 minutes on 2 cores. Writes ``results/c_truth_table.json``.

    python benchmarks/c_truth_table.py [--epochs 5] [--mnist-epochs 1] [--skip-mnist]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from _common import mnist_path, table, write_result

ROUNDINGS = ("tflm", "litert")
RUNTIMES = {"tflm": "TFLM", "litert_builtin": "LiteRT builtin", "xnnpack": "XNNPACK"}
SEED = 0


def tabular_csv(path: Path, n: int = 1200) -> Path:
    """Six features on scales 1e-2 .. 1e3 (each feature's own scale), three classes from a
    seeded linear score of the standardized features."""
    import numpy as np

    rng = np.random.default_rng(SEED)
    scales = np.array([1e-2, 1e-1, 1.0, 1e1, 1e2, 1e3])
    z = rng.normal(size=(n, scales.size))
    x = z * scales + scales * np.array([0.5, -2.0, 3.0, 1.0, 0.0, 5.0])  # offsets too
    score = z @ np.array([1.0, -0.7, 0.5, 0.9, -1.2, 0.8]) + 0.3 * rng.normal(size=n)
    label = np.digitize(score, np.quantile(score, [1 / 3, 2 / 3]))
    header = "f_0.01,f_0.1,f_1,f_10,f_100,f_1000,label"
    rows = [",".join(f"{v:.6g}" for v in row) + f",c{k}" for row, k in zip(x, label, strict=True)]
    path.write_text(header + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def models(work: Path, epochs: int, mnist_epochs: int, skip_mnist: bool) -> dict[str, list[str]]:
    """name -> ``edgekit train`` arguments."""
    common = f"--epochs {epochs} --seed {SEED}".split()
    out = {
        "digits 64-32-10 relu": ["--dataset", "digits", "--hidden", "32", "--activation", "relu"],
        "digits 64-16-10 tanh": ["--dataset", "digits", "--hidden", "16", "--activation", "tanh"],
        "digits 64-16-10 sigmoid": [
            "--dataset",
            "digits",
            "--hidden",
            "16",
            "--activation",
            "sigmoid",
        ],
        "breast_cancer 30-16-1": ["--dataset", "breast_cancer", "--hidden", "16"],
        "tabular 6-16-3 (1e-2..1e3)": [
            "--dataset",
            str(tabular_csv(work / "tabular.csv")),
            *("--target", "label", "--hidden", "16", "--learning-rate", "0.01"),
        ],
    }
    out = {name: [*args, *common] for name, args in out.items()}
    if not skip_mnist:
        out["mnist 784-64-32-10"] = [
            "--dataset",
            str(mnist_path()),
            *f"--hidden 64,32 --activation relu --epochs {mnist_epochs} --seed {SEED}".split(),
        ]
    return out


def edgekit(*args: str, cwd: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "edgekit", *args], check=True, cwd=cwd, stdout=subprocess.DEVNULL
    )


def measure(work: Path, name: str, train_args: list[str]) -> list[dict]:
    """Train one model, export it with each rounding; one row per rounding."""
    run = work / re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")
    started = time.perf_counter()
    edgekit("train", *train_args, "--out", str(run), cwd=work)
    trained = time.perf_counter() - started
    rows = []
    for rounding in ROUNDINGS:
        out = work / f"{run.name}-export-{rounding}"
        started = time.perf_counter()
        edgekit("export", str(run), "--quantize", "int8", "--c-source", "int8",
                "--c-rounding", rounding, "--out", str(out), cwd=work)  # fmt: skip
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        validation = manifest["c_source"]["validation"]
        rows.append(
            {
                "model": name,
                "rounding": rounding,
                "outputs": validation.get("outputs"),
                "passed": validation.get("passed"),
                "vs": validation.get("vs", {}),
                "train_seconds": round(trained, 1),
                "export_seconds": round(time.perf_counter() - started, 1),
            }
        )
    return rows


def cells(row: dict) -> list[str]:
    equal, lsb = [], []
    for key in RUNTIMES:
        v = row["vs"].get(key, {})
        if "exact" in v:
            equal.append(f"{v['exact']:,}")
            lsb.append(str(v["max_lsb"]))
        else:
            why = v.get("not_checked") or v.get("error") or "not run"
            equal.append(f"- ({why[:40]})")
            lsb.append("-")
    return [row["model"], row["rounding"], f"{row['outputs']:,}", *equal, *lsb]


HEADER = [
    "model",
    "rounding",
    "outputs",
    *(f"= {label}" for label in RUNTIMES.values()),
    *(f"max LSB vs {label}" for label in RUNTIMES.values()),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5, help="epochs of the small models")
    parser.add_argument("--mnist-epochs", type=int, default=1)
    parser.add_argument("--skip-mnist", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="edgekit-truth-") as tmp:
        work = Path(tmp)
        for name, train_args in models(work, args.epochs, args.mnist_epochs,
                                       args.skip_mnist).items():  # fmt: skip
            rows += measure(work, name, train_args)
            print(f"  {name}: done ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    print(table(HEADER, [cells(r) for r in rows]))
    seconds = time.perf_counter() - started
    print(f"\n{len(rows)} exports in {seconds:.0f} s; seed {SEED}")
    path = write_result(
        "c_truth_table",
        {
            "seed": SEED,
            "epochs": args.epochs,
            "mnist_epochs": None if args.skip_mnist else args.mnist_epochs,
            "seconds": round(seconds, 1),
            "runtimes": dict(RUNTIMES),
            "rows": rows,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
