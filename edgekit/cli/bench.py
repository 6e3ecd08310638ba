"""``edgekit bench``, ``compare`` and ``report``: measuring artifacts and reading the results."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from edgekit.cli.flags import int_list
from edgekit.errors import CheckFailed

if TYPE_CHECKING:
    from edgekit.bench import BenchRow


@click.command(short_help="Measure latency, memory and accuracy of artifacts.")
@click.argument("artifacts", nargs=-1, type=click.Path())
@click.option(
    "--runtime",
    default="auto",
    show_default=True,
    help="auto (by file type), tflite, onnxruntime, keras, c or tflm; a comma list filters an "
    "export directory (keras: its source model.keras, the reference; c: its --c-source code, "
    "compiled with -O2; tflm: the .tflite files in TensorFlow Lite for Microcontrollers, "
    "with the smallest arena it accepts; host latency), e.g. auto,c.",
)
@click.option(
    "--device",
    default="cpu",
    show_default=True,
    help="cpu or gpu (onnxruntime CUDA/TensorRT, Keras on TensorFlow's GPU; comma list "
    "allowed), qemu:cortex-m4 or qemu:cortex-m3 (the --c-source code on an emulated core: "
    "exact instruction counts, latency derived at the catalog clock), or a remote board: "
    "ssh://[user@]host[:port] or a NAME from edgekit.toml or ~/.config/edgekit/devices.toml.",
)
@click.option(
    "--remote-python",
    metavar="PATH",
    help="Python on the remote device, with edgekit's core install [default: the device's "
    "python, else python3].",
)
@click.option(
    "--ssh-option",
    "ssh_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Passed to ssh as -o KEY=VALUE, on top of your ssh config (repeatable).",
)
@click.option("--threads", default="1", show_default=True, help="Thread counts, e.g. 1,2.")
@click.option("--batch", default="1", show_default=True, help="Batch sizes, e.g. 1,32.")
@click.option("--warmup", type=int, default=10, show_default=True, help="Untimed calls first.")
@click.option("--runs", type=int, default=100, show_default=True, help="Timed calls (at least).")
@click.option(
    "--min-time",
    type=float,
    default=0.5,
    show_default=True,
    help="Keep timing until this many seconds have passed (tiny models get more samples).",
)
@click.option(
    "--repeat",
    type=int,
    default=1,
    show_default=True,
    metavar="N",
    help="Measure each row in N processes, in interleaved rounds; compare and --baseline "
    "then weigh the spread between them. Use 3 or more on shared or noisy machines.",
)
@click.option(
    "--timeout",
    type=float,
    default=300.0,
    show_default=True,
    help="Seconds one measurement may take before its child process is killed.",
)
@click.option(
    "--memory-limit",
    "memory_limit_mb",
    default="auto",
    show_default=True,
    metavar="auto|MIB",
    callback=lambda ctx, param, value: int(value) if value.strip().isdigit() else value.strip(),
    help="Memory each measuring process may use (its private writable memory, RLIMIT_DATA; "
    "shared libraries and reserved address space do not count); one that needs more is an "
    "error row. auto: what it holds once its runtime is loaded, plus 384 MiB and 3x the "
    "model's and 2x the test data's size. 0: no limit.",
)
@click.option(
    "--allow-failed",
    is_flag=True,
    help="Accept artifacts whose export validation failed (validation.passed false in the "
    "manifest); without it benching one is a failed check (exit 1). Such rows are marked !.",
)
@click.option(
    "--data",
    type=click.Path(dir_okay=False),
    help="Test data: .npz (x, y[, reference]) or .csv (header row; the feature columns the "
    "manifest names, or all numeric ones; the label in the manifest's target column) "
    "[default: the export's test.npz].",
)
@click.option("--json", "json_out", metavar="FILE|-", help="Write results as JSON (- for stdout).")
@click.option("--markdown", type=click.Path(dir_okay=False), help="Write a markdown table.")
@click.option(
    "--junit",
    type=click.Path(dir_okay=False),
    help="Write JUnit XML: a test case per measurement, budget and baseline check.",
)
@click.option(
    "--budget",
    multiple=True,
    metavar="EXPR",
    help="[VARIANT:]METRIC OP NUMBER, e.g. p95_ms<=2 or int8:accuracy>=0.95 (repeatable).",
)
@click.option(
    "--baseline", type=click.Path(dir_okay=False), help="A previous bench JSON to compare with."
)
@click.option(
    "--max-regression",
    type=float,
    default=10.0,
    show_default=True,
    metavar="PCT",
    help="Slowdown (median latency, beyond the noise) that fails --baseline.",
)
def bench(
    artifacts: tuple[str, ...],
    threads: str,
    batch: str,
    json_out: str | None,
    markdown: str | None,
    junit: str | None,
    budget: tuple[str, ...],
    **options: Any,
) -> None:
    """Measure latency, memory and accuracy of exported artifacts.

    Exit code 1 when a measurement fails, a budget is violated or the baseline regresses,
    and when an artifact's export validation had failed (unless --allow-failed). Budgets
    count measured rows only: a budget whose rows were all skipped or failed, or that
    matches no row, fails too.
    Latencies are per call of one batch, shown in ns/µs/ms/s (the JSON keeps milliseconds);
    samples/s is batch / p50; a p95 marked * has a large spread. One progress line per
    measurement goes to stderr. Under GitHub Actions (GITHUB_ACTIONS=true) failures are also
    printed as ::error:: annotations; --junit writes every check as a test case.

    On a remote device (--device ssh://... or NAME) the files are copied to a temporary
    directory there, measured by the device's edgekit and removed; budgets and the baseline
    are checked here.

    \b
    Examples:
      edgekit bench                                   # runs/latest/export
      edgekit bench model.int8.tflite --threads 1,2 --batch 1,32
      edgekit bench export/ --runtime auto,c          # + the --c-source code, compiled
      edgekit bench export/ --runtime tflm --budget "arena_kb<=4"
      edgekit bench export/ --device qemu:cortex-m4   # the C on an emulated Cortex-M4
      edgekit bench export/ --budget "int8:p95_ms<=1" --json bench.json
      edgekit bench export/ --baseline main.json --max-regression 10
      edgekit bench export/ --device ssh://pi@raspberrypi.local --budget "int8:p95_ms<=2"
    """
    from edgekit.bench import github_annotations, run_bench, write_outputs
    from edgekit.bench.ci import in_github_actions
    from edgekit.bench.write import bench_inputs, check_outputs
    from edgekit.tables import latency

    to_stdout = json_out == "-"
    err = to_stdout  # stdout carries nothing but the JSON then
    outputs: dict[str, Any] = {
        "json_path": None if to_stdout else json_out,
        "markdown_path": markdown,
        "junit_path": junit,
    }
    inputs = bench_inputs(artifacts, data=options.get("data"), baseline=options.get("baseline"))
    check_outputs(**outputs, protect=inputs)  # before anything is measured

    def progress(row: BenchRow, index: int, total: int) -> None:
        lat = row.latency_ms or {}
        what = f"p50 {latency(lat.get('p50'))}" if row.ok else str(row.error)
        if row.ok and row.latency_source == "host":
            what += " (host)"
        if row.ok and row.emulated:
            what += f" (emulated), {row.instructions_per_inference:,} instructions/inference"
            if row.cycles_per_inference:
                what += f", ~{row.cycles_per_inference:,} cycles (TRM timings)"
        if row.ok and row.arena_bytes is not None:
            what += f", arena {row.arena_bytes:,} B"
        click.echo(
            f"[{index + 1}/{total}] {row.artifact} {row.runtime} {row.device} "
            f"threads={row.threads} batch={row.batch}: {row.status}, {what}",
            err=True,
        )

    result = run_bench(
        artifacts,
        threads=int_list("--threads", threads),
        batch=int_list("--batch", batch),
        budgets=budget,
        on_row=progress,
        **options,
    )
    write_outputs(result, **outputs, protect=inputs)
    click.echo(result.table(), err=err)
    if to_stdout:
        import json

        click.echo(json.dumps(result.to_json(), indent=2))
    if in_github_actions():
        for line in github_annotations(result):
            click.echo(line, err=err)
    if not result.passed:
        raise CheckFailed(result.problems())


@click.command(short_help="Compare two bench JSON files; exit 1 on a regression.")
@click.argument("base", type=click.Path())
@click.argument("new", type=click.Path())
@click.option(
    "--max-regression",
    type=float,
    default=10.0,
    show_default=True,
    metavar="PCT",
    help="Median-latency slowdown (beyond the noise) that fails.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@click.option(
    "--markdown", type=click.Path(dir_okay=False), help="Also write the table as markdown."
)
def compare(
    base: str, new: str, max_regression: float, as_json: bool, markdown: str | None
) -> None:
    """Compare two bench JSON files; exit 1 on a significant regression.

    Each row's verdict comes from the bootstrap 95% confidence interval of its
    median-latency ratio new/base: regression (entirely above 1 + PCT/100: exit 1), slower
    or faster (a real change within the allowance), same, or noise (too spread out to say).
    Accuracy (or MAE), size and peak memory changes are shown beside it.

    \b
    Examples:
      edgekit compare main.json pr.json --max-regression 10
      edgekit compare main.json pr.json --json > comparison.json
      edgekit compare main.json pr.json --markdown comparison.md
    """
    from edgekit.bench import compare_report, comparison_annotations
    from edgekit.bench.ci import in_github_actions
    from edgekit.fileio import check_output

    if markdown is not None:
        check_output(markdown, protect=[base, new])

    report = compare_report(base, new, max_regression=max_regression, markdown_path=markdown)
    result = report.comparison
    if as_json:
        import json

        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        click.echo(result.table())
    if in_github_actions():
        for line in comparison_annotations(result):
            click.echo(line, err=as_json)
    if not result.passed:
        raise CheckFailed(result.summary())


@click.command(short_help="Plot a bench JSON file and write a report.")
@click.argument("bench_json", type=click.Path())
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="Output directory [default: BENCH_JSON's directory + /report].",
)
@click.option(
    "--html",
    is_flag=True,
    help="Also write report.html: one self-contained file (tables, plots inlined).",
)
def report(bench_json: str, out: str | None, html: bool) -> None:
    """Plot a bench JSON file (PNG) and write a markdown report beside the plots.

    Writes report.md, latency.png (latency distribution per measurement, log axis in µs)
    and tradeoff.png (accuracy vs size, coloured by p50) into --out; with --html also
    report.html, which holds the tables and both plots in one file to share.

    \b
    Examples:
      edgekit report bench.json --out report/
      edgekit report bench.json --out report/ --html
    """
    from edgekit.report import write_report

    written = write_report(bench_json, out=out, html=html)
    for path in written:
        click.echo(str(path))
