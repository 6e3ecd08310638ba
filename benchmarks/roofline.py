"""Roofline: MNIST MLP throughput in GFLOP/s against numpy float32 matmul of the same shapes.

The MNIST MLP (784-128-10) costs 2 * (784*128 + 128*10) = 203,264 FLOPs per sample. For
batch sizes 256..4096, edgekit bench measures each runtime's throughput; numpy (its BLAS)
runs the same two matrix products on the same machine, in the same run. The ratio says how
close each runtime gets to what this machine's BLAS does with the same shapes.

    python benchmarks/roofline.py [--run DIR] [--threads 1]
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

from _common import mnist_run, table, write_result

FLOPS_PER_SAMPLE = 2 * (784 * 128 + 128 * 10)
BATCHES = (256, 1024, 4096)


def numpy_gflops(batch: int, threads: int, seconds: float = 1.0) -> float:
    """Median GFLOP/s of x @ W1 -> relu -> @ W2 in float32 with numpy, same shapes."""
    import numpy as np
    from threadpoolctl import threadpool_limits  # installed with scikit-learn (train extra)

    rng = np.random.default_rng(0)
    x = rng.random((batch, 784), dtype=np.float32)
    w1 = rng.random((784, 128), dtype=np.float32)
    w2 = rng.random((128, 10), dtype=np.float32)
    times = []
    with threadpool_limits(limits=threads):
        end = time.perf_counter() + seconds
        while time.perf_counter() < end or len(times) < 5:
            start = time.perf_counter_ns()
            np.maximum(x @ w1, 0.0) @ w2
            times.append((time.perf_counter_ns() - start) / 1e9)
    times.sort()
    return batch * FLOPS_PER_SAMPLE / times[len(times) // 2] / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="a trained MNIST run directory")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import edgekit
    from edgekit.bench import run_bench

    work = Path(tempfile.mkdtemp(prefix="edgekit-roofline-"))
    os.chdir(work)
    run = mnist_run(args.run, work)
    export = edgekit.export(run, quantize=["float32", "int8"], onnx=True, out=work / "export")
    result = run_bench(
        [export.path], batch=list(BATCHES), threads=[args.threads], repeat=args.repeat, min_time=0.5
    )
    ref = {b: numpy_gflops(b, args.threads) for b in BATCHES}
    rows, entries = [], []
    for r in result.rows:
        if r.status != "ok":
            continue
        gflops = r.throughput_per_s * FLOPS_PER_SAMPLE / 1e9
        entries.append(
            {
                "variant": r.variant,
                "runtime": r.runtime,
                "batch": r.batch,
                "gflops": gflops,
                "numpy_gflops": ref[r.batch],
                "ratio": gflops / ref[r.batch],
            }
        )
        rows.append(
            [
                r.variant,
                r.runtime,
                r.batch,
                f"{gflops:.1f}",
                f"{ref[r.batch]:.1f}",
                f"{gflops / ref[r.batch]:.2f}",
            ]
        )
    print(table(["variant", "runtime", "batch", "GFLOP/s", "numpy GFLOP/s", "ratio"], rows))
    print(f"threads={args.threads}; int8 variants are counted at the same FLOPs (ops, not bytes)")
    write_result(
        "roofline", {"threads": args.threads, "flops_per_sample": FLOPS_PER_SAMPLE, "rows": entries}
    )


if __name__ == "__main__":
    main()
