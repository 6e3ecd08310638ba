"""The variant table on MNIST: every variant and runtime, size, accuracy and speed.

Exports every TFLite and ONNX variant of a trained MNIST run, plus the generated C (int8 and
float32), and benches each on every runtime that runs it (TFLite, ONNX Runtime, C, and the
Keras reference), at batch 1 and batch 256, with REPEAT interleaved rounds.
Columns: size, accuracy, drop (pp vs Keras), max |diff| vs Keras, p50 at batch 1 and
throughput at batch 256.

    python benchmarks/variant_table.py [--run DIR] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from _common import RESULTS, VARIANT_HEADER, mnist_run, table, variant_rows, write_result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="a trained MNIST run directory")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import edgekit
    from edgekit.bench import run_bench, write_outputs
    from edgekit.report import write_report
    from edgekit.runtime import RUNTIMES

    work = Path(tempfile.mkdtemp(prefix="edgekit-variants-"))
    os.chdir(work)
    run = mnist_run(args.run, work)
    main_export = edgekit.export(
        run,
        quantize=["all"],
        onnx=True,
        onnx_quantize=["dynamic", "static"],
        c_source="int8",
        out=Path(run) / "bench_export",
        force=True,
    )
    float_c = edgekit.export(
        run,
        quantize=["float32"],
        c_source="float32",
        out=Path(run) / "bench_export_c_float",
        force=True,
    )
    runtimes = ["auto", "keras"] + (["c"] if "c" in RUNTIMES else [])
    rows = []
    for export_dir, rts in (
        (main_export.path, runtimes),
        (float_c.path, ["c"] if "c" in runtimes else []),
    ):
        if not rts:
            continue
        result = run_bench(
            [export_dir], runtime=rts, batch=[1, 256], repeat=args.repeat, min_time=0.5
        )
        rows += [r for r in result.rows if r.status == "ok"]
        if export_dir == main_export.path:  # kept for `edgekit report`, the README's picture
            write_outputs(result, json_path=RESULTS / "variant_bench.json", step_summary=False)
            write_report(RESULTS / "variant_bench.json", out=RESULTS / "report")
    by_key: dict[tuple, dict] = {}
    for r in rows:
        entry = by_key.setdefault(
            (r.variant, r.runtime),
            {
                "variant": r.variant,
                "runtime": r.runtime,
                "size_bytes": r.size_bytes,
                "metrics": r.metrics,
                "accuracy_drop": r.accuracy_drop,
                "max_abs_diff": r.max_abs_diff,
            },
        )
        if r.batch == 1:
            entry["p50_ms_batch1"] = r.latency_ms["p50"]
        if r.batch == 256:
            entry["throughput_batch256"] = r.throughput_per_s
    entries = list(by_key.values())

    print(table(VARIANT_HEADER, variant_rows(entries)))
    write_result("variant_table", {"run": str(run), "repeat": args.repeat, "rows": entries})


if __name__ == "__main__":
    main()
