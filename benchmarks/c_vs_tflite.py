"""Standalone C int8 (``export --c-source int8``) vs the int8 ``.tflite`` in ai_edge_litert.

Batch 1, one thread, everything pinned to one CPU. Models: the digits MLP (64 -> 64 -> 10)
and the seeds' MNIST MLP (784 -> 128 -> 10), trained and exported in subprocesses so this
process never loads TensorFlow. Per call:

* C: ``<prefix>_predict_int8`` on int8 inputs, timed with ``clock_gettime`` around each
  call by edgekit's harness (``edgekit.exporters.c.harness.compile_harness``), built twice:
  ``gcc -O2`` (portable: the int16 loop) and ``gcc -O3 -march=native`` (what ``edgekit bench
  --runtime c`` builds; on a CPU with VNNI the byte dot-product loop);
* TFLite: ``set_tensor`` + ``invoke`` + ``get_tensor`` (what ``edgekit bench`` times) and
  ``invoke`` alone, with the interpreter's default (XNNPACK) and with the builtin kernels
  the C code reproduces (``BUILTIN_WITHOUT_DEFAULT_DELEGATES``).

ROUNDS rounds of CALLS calls each, interleaved; the table shows the median of the per-round
p50s and the median of the per-round ratios C / tflite (robust to the machine's drift).
Target: C p50 <= the int8 ``.tflite`` p50 (ratio <= 1).

    python benchmarks/c_vs_tflite.py [--rounds 5] [--calls 20000] [--mnist-epochs 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from _common import mnist_path, table, write_result


def make_export(work: Path, name: str, train_args: list[str]) -> Path:
    run = work / name
    for args in (
        ["train", *train_args, "--out", str(run)],
        ["export", str(run), "--c-source", "int8", "--out", str(run / "export")],
    ):
        subprocess.run([sys.executable, "-m", "edgekit", *args], check=True, cwd=work)
    return run / "export"


def c_timer(export: Path, build: Path, q, flags: list[str]):
    """A function running the compiled harness: CALLS calls -> nanoseconds per call."""
    import numpy as np

    from edgekit.exporters.c.artifact import CSource
    from edgekit.exporters.c.harness import compile_harness

    build = build / ("_".join(f.strip("-") for f in flags) or "O2")
    build.mkdir()
    exe = compile_harness(CSource.load(export), build, flags=flags)  # gcc -std=c99 -O2 + flags
    samples = build / "samples.bin"
    np.ascontiguousarray(q[:64], np.int8).tofile(samples)

    def run(calls: int) -> list[float]:
        out = build / "ns.bin"
        subprocess.run([str(exe), "tq", str(samples), str(out), str(calls)], check=True)
        return np.fromfile(out, dtype=np.float64).tolist()

    return run


def tflite_timer(path: Path, q, *, kernels: str, invoke_only: bool):
    from ai_edge_litert import interpreter as mod

    kw = {}
    if kernels == "builtin":
        kw["experimental_op_resolver_type"] = mod.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    it = mod.Interpreter(model_path=str(path), num_threads=1, **kw)
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    it.allocate_tensors()
    rows = [q[i].reshape(inp["shape"]) for i in range(min(len(q), 64))]
    i_in, i_out, clock = inp["index"], out["index"], time.perf_counter_ns

    def run(calls: int) -> list[float]:
        samples = []
        for k in range(calls):
            if invoke_only:
                it.set_tensor(i_in, rows[k % len(rows)])
                t0 = clock()
                it.invoke()
                t1 = clock()
            else:
                t0 = clock()
                it.set_tensor(i_in, rows[k % len(rows)])
                it.invoke()
                it.get_tensor(i_out)
                t1 = clock()
            samples.append(t1 - t0)
        return samples

    return run


def measure(export: Path, build: Path, *, rounds: int, calls: int) -> dict:
    import numpy as np

    from edgekit.exporters.c.artifact import CSource

    c = CSource.load(export)
    x = np.load(export / "test.npz")["x"].reshape(-1, c.input_size)
    qi = c.input_quantization
    q = np.clip(np.round(x / np.float32(qi["scale"])) + qi["zero_point"], -128, 127)
    q = q.astype(np.int8)
    tflite = export / "model.int8.tflite"
    timers = {
        "c": c_timer(export, build, q, []),
        "c_native": c_timer(export, build, q, ["-O3", "-march=native"]),
        "tflite": tflite_timer(tflite, q, kernels="default", invoke_only=False),
        "tflite_invoke": tflite_timer(tflite, q, kernels="default", invoke_only=True),
        "builtin": tflite_timer(tflite, q, kernels="builtin", invoke_only=False),
    }
    p50 = {k: [] for k in timers}
    for r in range(rounds):
        order = list(timers) if r % 2 == 0 else list(reversed(timers))
        for key in order:
            timers[key](min(calls, 1000))  # warm-up
            p50[key].append(statistics.median(timers[key](calls)) / 1000.0)  # microseconds
    return {k: {"p50_us": statistics.median(v), "rounds": v} for k, v in p50.items()}


def _cpu_flags() -> list[str]:
    """The vector extensions that decide the C's loop (x86: AVX2, AVX-512, VNNI)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni")
    return [f for f in wanted if f" {f}" in text]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--mnist-epochs", type=int, default=1)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    recipe = Path(__file__).resolve().parents[1] / "models" / "mnist_mlp.toml"
    models = {
        "digits 64-64-10": ["--dataset", "digits", "--epochs", "10"],
        "mnist 784-128-10": [str(recipe), "--dataset", str(mnist_path()),
                             "--epochs", str(args.mnist_epochs)],
    }  # fmt: skip
    results, rows = {}, []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name, train_args in models.items():
            export = make_export(work, name.split()[0], train_args)
            build = work / f"build-{name.split()[0]}"
            build.mkdir()
            res = measure(export, build, rounds=args.rounds, calls=args.calls)
            results[name] = res
            c, tfl = res["c"]["p50_us"], res["tflite"]["p50_us"]
            ratio = statistics.median(
                a / b for a, b in zip(res["c"]["rounds"], res["tflite"]["rounds"], strict=True)
            )
            res["c_over_tflite"] = ratio
            native = statistics.median(
                a / b for a, b in zip(res["c_native"]["rounds"], res["tflite"]["rounds"],
                                      strict=True)
            )  # fmt: skip
            res["c_native_over_tflite"] = native
            rows.append([
                name, f"{c:.2f}", f"{res['c_native']['p50_us']:.2f}", f"{tfl:.2f}",
                f"{res['tflite_invoke']['p50_us']:.2f}", f"{res['builtin']['p50_us']:.2f}",
                f"{ratio:.2f}", f"{native:.2f}", "yes" if native <= 1 else "NO",
            ])  # fmt: skip
    head = ["model", "C -O2 p50 us", "C -O3 native p50 us", "tflite p50 us",
            "tflite invoke us", "builtin p50 us", "C -O2/tflite", "C native/tflite",
            "C native <= tflite"]  # fmt: skip
    print(table(head, rows))
    path = write_result(
        "c_vs_tflite",
        {
            "rounds": args.rounds,
            "calls": args.calls,
            "batch": 1,
            "threads": 1,
            "cpu_flags": _cpu_flags(),
            "models": results,
        },
    )
    print(f"\nresults: {path}")


if __name__ == "__main__":
    main()
