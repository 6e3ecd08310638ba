"""Harness overhead: edgekit bench's reported p50 vs a bare loop calling the runtime directly.

For float32 and int8 ``.tflite`` and float32 ``.onnx`` of the digits MLP, at batch 1 and 32:
``edgekit.bench.run_bench`` (a child process per measurement, ``perf_counter_ns`` around the
runtime call) against a bare loop in this process (``set_tensor``/``invoke``/``get_tensor``,
or ``session.run``) with the same threads, input and number of calls, everything pinned to
one CPU. End to end: ROUNDS paired rounds, the median of the per-round p50 ratios. Timing
loop: edgekit's loop (``time_calls`` on ``runner.bind``, what the child runs) and the bare
loop in this process, interleaved in chunks of 500 calls, which cancels the machine's drift
and isolates what the harness itself adds. Target: ratio <= 1.05.

It also times ``edgekit bench model.float32.tflite`` from start to its first result line
(target <= 1 s), with the ``edgekit`` beside this Python or ``--edgekit PATH`` (e.g. a core
install's). Training and export run in subprocesses, so this process never loads TensorFlow.

    python benchmarks/harness_overhead.py [--rounds 5] [--min-time 1.0] [--edgekit PATH]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from _common import table, write_result

ARTIFACTS = ("model.float32.tflite", "model.int8.tflite", "model.float32.onnx")
BATCHES = (1, 32)


def make_export(work: Path) -> Path:
    """Train the default digits MLP and export the three artifacts (in subprocesses)."""
    run = work / "run"
    for args in (
        ["train", "--dataset", "digits", "--epochs", "10", "--out", str(run)],
        ["export", str(run), "--quantize", "float32,int8", "--onnx", "--out", str(run / "export")],
    ):
        subprocess.run([sys.executable, "-m", "edgekit", *args], check=True, cwd=work)
    return run / "export"


class Bare:
    """The runtime called directly: a bare loop over set_tensor/invoke/get_tensor or run."""

    def __init__(self, path: Path, x) -> None:
        import numpy as np

        if path.suffix == ".tflite":
            from ai_edge_litert.interpreter import Interpreter

            it = Interpreter(model_path=str(path), num_threads=1)
            inp, out = it.get_input_details()[0], it.get_output_details()[0]
            it.resize_tensor_input(inp["index"], list(x.shape), strict=True)
            it.allocate_tensors()
            scale, zero = inp["quantization"]
            if np.dtype(inp["dtype"]).kind == "i":
                x = np.clip(np.round(x / scale) + zero, -128, 127)
            self.it, self.x = it, np.ascontiguousarray(x, dtype=inp["dtype"])
            self.index_in, self.index_out = inp["index"], out["index"]
            self.loop = self._tflite
        else:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1
            opts.inter_op_num_threads = 1
            self.sess = ort.InferenceSession(
                str(path), sess_options=opts, providers=["CPUExecutionProvider"]
            )
            self.outs = [self.sess.get_outputs()[0].name]
            self.feed = {self.sess.get_inputs()[0].name: x}
            self.loop = self._onnx

    def _tflite(self, n: int) -> list[int]:
        it, x, i, o, clock = self.it, self.x, self.index_in, self.index_out, time.perf_counter_ns
        samples = []
        for _ in range(n):
            t0 = clock()
            it.set_tensor(i, x)
            it.invoke()
            it.get_tensor(o)
            t1 = clock()
            samples.append(t1 - t0)
        return samples

    def _onnx(self, n: int) -> list[int]:
        sess, outs, feed, clock = self.sess, self.outs, self.feed, time.perf_counter_ns
        samples = []
        for _ in range(n):
            t0 = clock()
            sess.run(outs, feed)
            t1 = clock()
            samples.append(t1 - t0)
        return samples


def end_to_end(path: Path, x, *, rounds: int, min_time: float, warmup: int) -> dict:
    """edgekit as users run it (a child process per measurement) vs the bare loop.

    Each round takes the two back to back (alternating which goes first, so a drift of the
    machine's speed favours neither); the verdict is the median of the per-round ratios.
    """
    from edgekit.bench import run_bench

    bare = Bare(path, x)
    bare.loop(warmup)
    mine, theirs, calls = [], [], 20_000
    for i in range(rounds):
        steps = ["edgekit", "bare"] if i % 2 == 0 else ["bare", "edgekit"]
        for step in steps:
            if step == "edgekit":
                (row,) = run_bench(
                    [path], batch=[len(x)], warmup=warmup, runs=100, min_time=min_time
                ).rows
                assert row.status == "ok", row.error
                mine.append(row.latency_ms["p50"])
                calls = row.runs
            else:  # as many calls as edgekit timed last
                theirs.append(statistics.median(bare.loop(calls)) / 1e6)
    ratios = [a / b for a, b in zip(mine, theirs, strict=True)]
    return {"edgekit_p50_ms": mine, "bare_p50_ms": theirs, "ratios": ratios}


def timing_loop(path: Path, x, *, chunks: int, chunk: int, warmup: int) -> dict:
    """edgekit's timing loop (``time_calls`` on ``runner.bind``, what the child runs) against
    the bare loop in this process, interleaved in short chunks so both see the same machine."""
    from edgekit.bench.measure import time_calls
    from edgekit.runtime import open_runner

    bare = Bare(path, x)
    with open_runner(path, threads=1) as runner:
        run = runner.bind(runner.prepare(x))
        for _ in range(warmup):
            run()
        bare.loop(warmup)
        mine, theirs = [], []
        for i in range(chunks):
            for step in ("edgekit", "bare") if i % 2 == 0 else ("bare", "edgekit"):
                if step == "edgekit":
                    mine += time_calls(run, runs=chunk, min_time=0.0, max_time=60.0)
                else:
                    theirs += bare.loop(chunk)
    return {
        "edgekit_p50_ms": statistics.median(mine) / 1e6,
        "bare_p50_ms": statistics.median(theirs) / 1e6,
        "calls": len(mine),
    }


def overhead(export: Path, *, rounds: int, min_time: float, warmup: int) -> list[dict]:
    import numpy as np

    x_all = np.load(export / "test.npz")["x"].astype(np.float32)
    results = []
    for name in ARTIFACTS:
        for batch in BATCHES:
            x = x_all[:batch]
            e2e = end_to_end(export / name, x, rounds=rounds, min_time=min_time, warmup=warmup)
            loop = timing_loop(export / name, x, chunks=100, chunk=500, warmup=warmup)
            results.append(
                {
                    "artifact": name,
                    "batch": batch,
                    "edgekit_p50_ms": statistics.median(e2e["edgekit_p50_ms"]),
                    "bare_p50_ms": statistics.median(e2e["bare_p50_ms"]),
                    "ratio": statistics.median(e2e["ratios"]),
                    "timing_loop_ratio": loop["edgekit_p50_ms"] / loop["bare_p50_ms"],
                    "rounds": e2e,
                    "timing_loop": loop,
                }
            )
            r = results[-1]
            print(
                f"  {name} batch {batch}: end to end {r['ratio']:.3f}, "
                f"timing loop {r['timing_loop_ratio']:.3f}",
                file=sys.stderr,
            )
    return results


def first_result(exe: list[str], model: Path, repeats: int) -> dict:
    """Seconds from starting ``edgekit bench MODEL`` to its first result line."""
    firsts, totals = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        proc = subprocess.Popen(
            [*exe, "bench", str(model)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        first = None
        for line in proc.stderr:
            if first is None and line.startswith("[1/"):
                first = time.perf_counter() - start
        proc.wait()
        totals.append(time.perf_counter() - start)
        firsts.append(first)
    return {
        "command": [*exe, "bench", model.name],
        "first_result_s": {"median": statistics.median(firsts), "runs": firsts},
        "total_s": {"median": statistics.median(totals), "runs": totals},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--min-time", type=float, default=0.3)
    parser.add_argument("--cpu", type=int, default=0, help="pin everything to this CPU (-1: no)")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--edgekit", help="edgekit executable for the start-up figure")
    parser.add_argument("--startup-repeats", type=int, default=7)
    args = parser.parse_args()
    if args.cpu >= 0 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})  # children (edgekit's workers) inherit it

    with tempfile.TemporaryDirectory(prefix="edgekit-overhead-") as tmp:
        export = make_export(Path(tmp))
        rows = overhead(export, rounds=args.rounds, min_time=args.min_time, warmup=args.warmup)
        exe = args.edgekit or shutil.which("edgekit", path=str(Path(sys.executable).parent))
        startup = first_result(
            [exe] if exe else [sys.executable, "-m", "edgekit"],
            export / "model.float32.tflite",
            args.startup_repeats,
        )

    cells = [
        [r["artifact"], r["batch"], f"{r['edgekit_p50_ms'] * 1000:.2f}",
         f"{r['bare_p50_ms'] * 1000:.2f}", f"{r['ratio']:.3f}", f"{r['timing_loop_ratio']:.3f}"]
        for r in rows
    ]  # fmt: skip
    head = ["artifact", "batch", "edgekit p50 (us)", "bare p50 (us)", "ratio", "timing-loop ratio"]
    print(table(head, cells))
    worst = max(r["ratio"] for r in rows)
    worst_loop = max(r["timing_loop_ratio"] for r in rows)
    print(
        f"\nworst ratio {worst:.3f} end to end, {worst_loop:.3f} for the timing loop alone "
        "(target <= 1.05)"
    )
    first = startup["first_result_s"]["median"]
    print(f"`edgekit bench model.float32.tflite`: first result after {first:.2f} s (median of "
          f"{args.startup_repeats}; target <= 1 s), done after "
          f"{startup['total_s']['median']:.2f} s")  # fmt: skip
    path = write_result(
        "harness_overhead",
        {
            "settings": vars(args),
            "target_ratio": 1.05,
            "results": rows,
            "worst_ratio": worst,
            "worst_timing_loop_ratio": worst_loop,
            "start_to_first_result": startup,
        },
    )
    print(f"results: {path}")


if __name__ == "__main__":
    main()
