"""Training overhead: `edgekit train models/mnist_mlp.toml` vs a plain Keras `fit`.

Both train the seeds' MNIST model (Flatten, Dense 128 relu, Dense 10 softmax, Adam, 5 epochs,
batch 32) on the same 54,000/6,000 split of the same file, in the same process, alternating,
REPEATS times each. The plain script loads the .npz, scales pixels to [0, 1], fits and
evaluates; edgekit also writes its run directory (model, run.json, history, plot, test and
calibration data). Target: edgekit's wall time within 10% of the plain fit, test accuracy
>= 0.97.

    python benchmarks/train_overhead.py [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from _common import mnist_path, spread, table, write_result

REPO = Path(__file__).resolve().parents[1]


def plain_keras(path: Path, seed: int = 0) -> tuple[float, float]:
    """The seeds' script: load, scale to [0, 1], fit 5 epochs, evaluate."""
    import keras
    import numpy as np
    from sklearn.model_selection import train_test_split

    start = time.perf_counter()
    with np.load(path) as d:
        x, y, x_test, y_test = d["x_train"], d["y_train"], d["x_test"], d["y_test"]
    x, x_test = x.astype("float32") / 255.0, x_test.astype("float32") / 255.0
    x_tr, x_val, y_tr, y_val = train_test_split(x, y, test_size=0.1, random_state=seed, stratify=y)
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((28, 28)),
            keras.layers.Flatten(),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_tr, y_tr, validation_data=(x_val, y_val), epochs=5, batch_size=32, verbose=0)
    _, accuracy = model.evaluate(x_test, y_test, batch_size=256, verbose=0)
    return time.perf_counter() - start, float(accuracy)


def edgekit_train(path: Path, out: Path) -> tuple[float, float]:
    import edgekit

    start = time.perf_counter()
    run = edgekit.train(
        str(REPO / "models" / "mnist_mlp.toml"), dataset=str(path), out=str(out), force=True
    )
    return time.perf_counter() - start, run.metrics["test"]["accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="keep the last edgekit run here")
    args = parser.parse_args()
    path = mnist_path()
    import keras  # noqa: F401  (import cost is paid once, outside both timings)

    work = Path(tempfile.mkdtemp(prefix="edgekit-bench-"))
    os.chdir(work)
    plain, ours = [], []
    for i in range(args.repeats):
        order = (
            [("plain", plain_keras), ("edgekit", None)]
            if i % 2 == 0
            else [("edgekit", None), ("plain", plain_keras)]
        )
        for name, fn in order:
            if name == "plain":
                plain.append(fn(path))
            else:
                ours.append(edgekit_train(path, args.keep or work / "mnist"))
            print(
                f"  repeat {i + 1} {name}: {(plain if name == 'plain' else ours)[-1]}", flush=True
            )
    p_time = spread([t for t, _ in plain])
    e_time = spread([t for t, _ in ours])
    ratio = e_time["median"] / p_time["median"]
    rows = [
        [
            "plain Keras fit",
            f"{p_time['median']:.1f} s",
            f"{p_time['min']:.1f}-{p_time['max']:.1f}",
            f"{plain[-1][1]:.4f}",
        ],
        [
            "edgekit train",
            f"{e_time['median']:.1f} s",
            f"{e_time['min']:.1f}-{e_time['max']:.1f}",
            f"{ours[-1][1]:.4f}",
        ],
    ]
    print(table(["", "median wall", "range", "test accuracy"], rows))
    print(f"edgekit / plain = {ratio:.3f}  (target <= 1.10); accuracy target >= 0.97")
    write_result(
        "train_overhead",
        {
            "plain_seconds": p_time,
            "edgekit_seconds": e_time,
            "ratio": ratio,
            "plain_accuracy": [a for _, a in plain],
            "edgekit_accuracy": [a for _, a in ours],
        },
    )


if __name__ == "__main__":
    main()
