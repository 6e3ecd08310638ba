"""Render benchmarks/README.md from benchmarks/results/*.json: no number typed by hand.

python benchmarks/render_readme.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, VARIANT_HEADER, fmt, variant_rows

HERE = Path(__file__).resolve().parent


def load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def md(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def section_train(d: dict) -> str:
    p, e = d["plain_seconds"], d["edgekit_seconds"]
    return (
        md(
            ["", "median wall", "range", "test accuracy"],
            [
                [
                    "plain Keras `fit`",
                    f"{p['median']:.1f} s",
                    f"{p['min']:.1f}-{p['max']:.1f} s",
                    f"{d['plain_accuracy'][-1]:.4f}",
                ],
                [
                    "`edgekit train models/mnist_mlp.toml`",
                    f"{e['median']:.1f} s",
                    f"{e['min']:.1f}-{e['max']:.1f} s",
                    f"{d['edgekit_accuracy'][-1]:.4f}",
                ],
            ],
        )
        + f"\n\nedgekit / plain: **{d['ratio']:.3f}** (target <= 1.10; {len(p['runs'])} runs each)"
    )


def section_export(d: dict) -> str:
    rows = [
        ["int8 size / float32 size", f"{100 * d['int8_size_ratio']:.1f}%", "<= 30%"],
        ["int8 accuracy drop", f"{d['int8_accuracy_drop_pp']:+.2f} pp", "<= 0.5 pp"],
        [
            "float32 .tflite max abs diff vs Keras",
            f"{d['float32_tflite_max_abs_diff']:.2e}",
            "<= 1e-5",
        ],
        ["float32 .onnx max abs diff vs Keras", f"{d['float32_onnx_max_abs_diff']:.2e}", "<= 1e-5"],
        [
            "export wall / raw converter calls",
            f"{d['export_seconds']['median']:.1f} s / {d['raw_conversion_seconds']['median']:.1f} s"
            f" = {d['export_time_ratio']:.2f}x",
            "<= 1.3x",
        ],
    ]
    arts = md(
        ["variant", "bytes", "accuracy", "drop (pp)", "max abs diff"],
        [
            [
                a["variant"],
                a["bytes"],
                fmt(a["validation"]["metrics"].get("accuracy"), ".4f"),
                fmt(a["validation"].get("accuracy_drop"), "+.2f"),
                fmt(a["validation"]["max_abs_diff"], ".2e"),
            ]
            for a in d["artifacts"]
        ],
    )
    return (
        md(["figure", f"measured ({d['test_samples']} test images)", "target"], rows)
        + "\n\n"
        + arts
    )


def section_harness(d: dict) -> str:
    rows = [
        [
            r["artifact"],
            r["batch"],
            f"{r['edgekit_p50_ms'] * 1000:.2f} us",
            f"{r['bare_p50_ms'] * 1000:.2f} us",
            f"{r['ratio']:.3f}",
            f"{r['timing_loop_ratio']:.3f}",
        ]
        for r in d["results"]
    ]
    first = d["start_to_first_result"]["first_result_s"]["median"]
    return (
        md(["artifact", "batch", "edgekit p50", "bare loop p50", "end to end", "timing loop"], rows)
        + f"\n\nWorst ratio {d['worst_ratio']:.3f} end to end, "
        f"{d['worst_timing_loop_ratio']:.3f} for the timing loop alone (target <= 1.05). "
        f"`edgekit bench model.float32.tflite` in a core-only venv: first result after "
        f"**{first:.2f} s** (target <= 1 s)."
    )


def section_variants(d: dict) -> str:
    return md(VARIANT_HEADER, variant_rows(d["rows"]))


def section_roofline(d: dict) -> str:
    return md(
        ["variant", "runtime", "batch", "GFLOP/s", "numpy float32 GFLOP/s", "ratio"],
        [
            [
                e["variant"],
                e["runtime"],
                e["batch"],
                f"{e['gflops']:.1f}",
                f"{e['numpy_gflops']:.1f}",
                f"{e['ratio']:.2f}",
            ]
            for e in d["rows"]
        ],
    ) + (
        f"\n\n{d['threads']} thread(s); {d['flops_per_sample']:,} FLOPs per sample (int8 counted "
        "at the same FLOPs)."
    )


def section_cli(d: dict) -> str:
    base = d["python -c pass"]["median"]
    return md(
        ["command", "median", "range", "vs `python -c pass`"],
        [
            [
                f"`{name}`",
                f"{s['median'] * 1000:.0f} ms",
                f"{s['min'] * 1000:.0f}-{s['max'] * 1000:.0f} ms",
                f"{s['median'] / base:.1f}x",
            ]
            for name, s in d.items()
            if isinstance(s, dict) and "median" in s
        ],
    )


def section_footprint(d: dict) -> str:
    return (
        md(
            ["install", "site-packages on disk", "largest packages (MB)"],
            [
                [
                    name,
                    f"{d[name]['bytes'] / 2**20:.0f} MB",
                    ", ".join(f"{n} {s / 2**20:.0f}" for n, s in d[name]["top"][:4]),
                ]
                for name in ("core", "train")
            ],
        )
        + f"\n\ntrain / core: {d['ratio']:.1f}x"
    )


def section_c(d: dict) -> str:
    return (
        md(
            [
                "model",
                "C int8 p50, gcc -O2",
                "C int8 p50, gcc -O3 -march=native",
                "TFLite int8 p50 (default, XNNPACK)",
                "TFLite builtin kernels p50",
                "C -O2 / TFLite",
                "C native / TFLite",
            ],
            [
                [
                    name,
                    f"{m['c']['p50_us']:.2f} us",
                    f"{m['c_native']['p50_us']:.2f} us" if "c_native" in m else "-",
                    f"{m['tflite']['p50_us']:.2f} us",
                    f"{m['builtin']['p50_us']:.2f} us",
                    f"{m['c_over_tflite']:.2f}",
                    f"{m['c_native_over_tflite']:.2f}" if "c_native" in m else "-",
                ]
                for name, m in d["models"].items()
            ],
        )
        + f"\n\nbatch {d['batch']}, {d['rounds']} rounds, CPU: {d['environment']['cpu']}"
        + (f" ({', '.join(d['cpu_flags'])})" if d.get("cpu_flags") else "")
    )


def section_truth(d: dict) -> str:
    labels = d["runtimes"]

    def equal(row: dict, key: str) -> str:
        v = row["vs"].get(key, {})
        if "exact" not in v:
            return "-"
        return f"{v['exact']:,} ({v['max_lsb']} LSB)" if v["max_lsb"] else f"{v['exact']:,}"

    rows = [
        [r["model"], r["rounding"], f"{r['outputs']:,}", *(equal(r, k) for k in labels)]
        for r in d["rows"]
    ]
    head = [
        "model",
        "--c-rounding",
        "int8 outputs",
        *(f"= {v} (max diff)" for v in labels.values()),
    ]
    return (
        md(head, rows)
        + f"\n\nOutputs of the int8 C identical to each runtime on the whole test set, from"
        " `manifest.json`'s `c_source.validation.vs`; in brackets the largest difference where"
        f" any. Seed {d['seed']}, {d['epochs']} epochs ({d['mnist_epochs']} for MNIST),"
        f" {len(d['rows'])} exports in {d['seconds']:.0f} s."
    )


def section_remote(d: dict) -> str:
    rows = d.get("rows") or []
    body = md(list(rows[0]), [list(r.values()) for r in rows]) if rows else ""
    return body + (f"\n\n{d['summary']}" if d.get("summary") else "")


def section_integer(d: dict) -> str:
    variants = ("int8", "int16x8", "onnx-static")
    rows = [
        [
            r["dataset"],
            f"{r['keras']:.4f}",
            r["unit"],
            *(f"{r['before'][v]:+.2f} -> {r['after'][v]:+.2f}" for v in variants),
            f"{r['after']['c-int8']:+.2f}",
            f"{r['int8_size_ratio']:.2f}x",
            f"{r['auto_drop']:+.2f} ({r['auto_chosen']}, {r['auto_tried']} tried)",
            f"{r['auto_seconds']:.1f} s / {r['int8_seconds']:.1f} s",
        ]
        for r in d["rows"]
    ]
    head = ["dataset", "Keras", "drop in", *(f"{v}: before -> after" for v in variants),
            "C int8", "int8 / float32 size", "auto --integer-only",
            "export time: auto / int8"]  # fmt: skip
    return (
        md(head, rows)
        + "\n\nbefore: the normalization inside the integer graph (one scale for the raw input);"
        " after: per-feature input parameters (int8 I/O) or the normalization in float ahead of"
        " the quantize step (float inputs). Regression: MAE increase in % of the target's std."
    )


SECTIONS = [
    ("train_overhead", "1. Training overhead (MNIST recipe)", "train_overhead.py", section_train),
    (
        "export_figures",
        "2. Export: sizes, parity and export time (MNIST recipe)",
        "export_figures.py",
        section_export,
    ),
    (
        "harness_overhead",
        "3. Harness overhead: edgekit bench vs a bare runtime loop",
        "harness_overhead.py",
        section_harness,
    ),
    ("variant_table", "4. The variant table on MNIST", "variant_table.py", section_variants),
    (
        "roofline",
        "5. Roofline: throughput vs numpy float32 matmul",
        "roofline.py",
        section_roofline,
    ),
    ("cli_startup", "6. CLI cold start", "cli_startup.py", section_cli),
    ("install_footprint", "7. Install footprint", "install_footprint.py", section_footprint),
    ("c_vs_tflite", "Generated C vs TFLite (int8, batch 1)", "c_vs_tflite.py", section_c),
    (
        "c_truth_table",
        "The int8 C's truth table: identical to TFLM, LiteRT builtin, XNNPACK",
        "c_truth_table.py",
        section_truth,
    ),
    ("remote_overhead", "Remote bench over loopback SSH", "remote_overhead.py", section_remote),
    (
        "integer_accuracy",
        "Integer variants on real data: accuracy drop before and after per-feature inputs",
        "integer_accuracy.py",
        section_integer,
    ),
]


def main() -> None:
    out = [
        "# Benchmarks",
        "",
        "Each script answers one question, prints a table and writes `results/<name>.json`;",
        "this page is rendered from those files by `python benchmarks/render_readme.py`.",
        "Ratios are measured side by side in one run, alternating, and medians are reported.",
        "",
    ]
    env = None
    for name, title, script, render in SECTIONS:
        data = load(name)
        out += [f"## {title}", "", f"`python benchmarks/{script}`", ""]
        if data is None:
            out += ["(not measured yet)", ""]
            continue
        env = env or data.get("environment")
        out += [render(data), ""]
    if env:
        versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items())
        out[6:6] = [
            f"Machine: {env['cpu']}, {env['cores']} cores, {env['memory_mb']} MB, "
            f"{env['system']}, Python {env['python']}; {versions}.",
            "",
        ]
    (HERE / "README.md").write_text("\n".join(out) + "\n", encoding="utf-8")
    print(f"wrote {HERE / 'README.md'}")


if __name__ == "__main__":
    main()
