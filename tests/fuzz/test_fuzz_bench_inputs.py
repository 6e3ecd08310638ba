"""Fuzzing what bench, compare and report read besides models: ``--budget`` expressions and
bench JSON files (``compare``, ``--baseline``, ``report``)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from edgekit.errors import EdgekitError
from tests.fuzz.conftest import count, fuzz_settings, mutate, mutations
from tests.fuzz.test_fuzz_files import edited, json_values

# --- --budget -------------------------------------------------------------------------------

BUDGET_LIKE = (
    r"\s{0,2}([A-Za-z0-9_.\-]{1,8}\s?:\s?)?"
    r"(p50_ms|p95_ms|p99_ms|accuracy|accuracy_drop|size_kb|throughput_per_s|max_abs_diff|p95)"
    r"\s?(<=|<|>=|>|=|==|=<|!=)\s?[-+0-9.eEinfatyx_]{0,8}\s{0,2}"
)


@fuzz_settings(max_examples=1000)
@given(text=st.text(max_size=40) | st.from_regex(BUDGET_LIKE, fullmatch=True))
@example(text="int8:p95_ms<=1e400")
@example(text="p95_ms<=nan")
@example(text="p95_ms<=")
def test_budget_parser(text):
    from edgekit.bench.budgets import METRICS, OPS, parse_budget

    count("--budget parser")
    try:
        budget = parse_budget(text)
    except EdgekitError as err:
        assert "\n" not in str(err).replace(repr(text), "")
        return
    assert budget.metric in METRICS and budget.op in OPS and math.isfinite(budget.limit)
    scope = f"{budget.scope}:" if budget.scope else ""
    again = parse_budget(f"{scope}{budget.metric}{budget.op}{budget.limit!r}")
    assert (again.scope, again.metric, again.op, again.limit) == (
        budget.scope, budget.metric, budget.op, budget.limit,
    )  # fmt: skip


# --- bench JSON files -----------------------------------------------------------------------


def _row(artifact: str, p50: float) -> dict:
    samples = [round(p50 * (1 + 0.01 * (i % 7)), 6) for i in range(40)]
    return {
        "artifact": artifact, "format": "tflite", "variant": artifact.split(".")[1],
        "runtime": "tflite", "device": "cpu", "threads": 1, "batch": 1, "status": "ok",
        "error": None, "size_bytes": 5000, "init_ms": 1.0, "first_ms": 0.1,
        "latency_ms": {"min": p50 * 0.9, "mean": p50, "std": 0.001, "p50": p50, "p90": p50 * 1.1,
                       "p95": p50 * 1.2, "p99": p50 * 1.3, "max": p50 * 2},
        "throughput_per_s": 1000 / p50, "peak_rss_mb": 50.0, "metrics": {"accuracy": 0.9},
        "max_abs_diff": 1e-6, "accuracy_drop": 0.0, "runs": 40, "rounds": 1,
        "samples_ms": samples,
    }  # fmt: skip


VALID = {
    "schema": "edgekit.bench/1",
    "environment": {"cpu": "x", "cores": 2, "python": "3"},
    "results": [_row("model.float32.tflite", 0.01), _row("model.int8.tflite", 0.02)],
    "budgets": [],
}
ROW_KEYS = list(VALID["results"][0])
WHERE = st.one_of(
    st.sampled_from([("schema",), ("results",), ("environment",), ("results", 0), ("results", 1)]),
    st.tuples(st.just("results"), st.integers(0, 1), st.sampled_from(ROW_KEYS)),
    st.tuples(
        st.just("results"),
        st.integers(0, 1),
        st.just("latency_ms"),
        st.sampled_from(["p50", "p95", "min", "mean"]),
    ),
    st.tuples(st.just("results"), st.integers(0, 1), st.just("samples_ms"), st.integers(0, 39)),
)
NUMBERS = st.sampled_from([0, -1, 1, 0.0, -0.5, 1e-300, 1e308, 2**63, True, "1", None])
EDIT = st.tuples(WHERE, st.one_of(NUMBERS, json_values, st.lists(st.floats(), max_size=30),
                                  st.just("<delete>")))  # fmt: skip


def _check_bench_files(base: Path, new: Path) -> None:
    from edgekit.bench import compare, load_bench
    from edgekit.bench.budgets import check_budgets, parse_budgets
    from edgekit.report import report_markdown

    try:
        rows = load_bench(new).rows
    except EdgekitError as err:
        assert "\n" not in str(err)
        rows = None
    if rows is not None:
        report_markdown(rows, {}, source=new.name)
        checks = check_budgets(parse_budgets(["p95_ms<=1", "float32:accuracy>=0.5",
                                              "size_kb<10", "throughput_per_s>1"]), rows)  # fmt: skip
        assert all(c.passed in (True, False, None) for c in checks)
    try:
        result = compare(base, new, max_regression=10)
    except EdgekitError as err:
        assert "\n" not in str(err)
        return
    result.table()
    json.dumps(result.to_json(), allow_nan=False)  # a comparison is always finite numbers
    assert isinstance(result.passed, bool)


@fuzz_settings(max_examples=400)
@given(edits=st.lists(EDIT, min_size=1, max_size=4))
@example(edits=[(("results", 0, "samples_ms"), 5)])  # TypeError before the fix
@example(edits=[(("results", 0, "latency_ms", "p50"), -1)])  # "-200% faster"
@example(edits=[(("results", 0, "samples_ms"), [0.0] * 20)])  # division by zero
@example(edits=[(("results", 0, "batch"), 0)])  # ZeroDivisionError in report
@example(edits=[(("results", 0, "latency_ms", "p95"), "<delete>")])  # KeyError in report
def test_bench_json_compare_and_report(tmp_path, edits):
    count("bench JSON: load_bench, compare, budgets, report")
    base, new = tmp_path / "base.json", tmp_path / "new.json"
    base.write_text(json.dumps(VALID))
    new.write_text(json.dumps(edited(VALID, edits)))
    _check_bench_files(base, new)
    _check_bench_files(new, base)


@fuzz_settings(max_examples=300)
@given(edits=mutations(1 << 12))
def test_bench_json_with_mutated_bytes(tmp_path, edits):
    count("bench JSON: mutated bytes")
    base, new = tmp_path / "base.json", tmp_path / "new.json"
    base.write_text(json.dumps(VALID))
    new.write_bytes(mutate(json.dumps(VALID, indent=1).encode(), edits))
    _check_bench_files(base, new)


@pytest.mark.slow
@fuzz_settings(max_examples=30)
@given(edits=st.lists(EDIT, min_size=1, max_size=3))
@example(edits=[(("results", 0, "latency_ms", "p95"), "<delete>")])  # KeyError before the fix
def test_report_plots(tmp_path, edits):
    pytest.importorskip("matplotlib")
    from edgekit.report import write_report

    count("bench JSON: report with plots")
    path = tmp_path / "b.json"
    path.write_text(json.dumps(edited(VALID, edits)))
    try:
        written = write_report(path, out=tmp_path / "r")
    except EdgekitError as err:
        assert "\n" not in str(err)
        return
    assert [p.name for p in written] == ["report.md", "latency.png", "tradeoff.png"]
