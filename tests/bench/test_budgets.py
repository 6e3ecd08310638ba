"""``--budget`` parsing and checking."""

from __future__ import annotations

import pytest

from edgekit.bench.budgets import (
    METRICS,
    check_budgets,
    check_scopes,
    parse_budget,
    violations,
    violations_table,
)
from edgekit.bench.schema import BenchRow
from edgekit.errors import EdgekitError


@pytest.mark.parametrize(
    ("text", "scope", "metric", "op", "limit"),
    [
        ("p95_ms<=2", None, "p95_ms", "<=", 2.0),
        (" int8 : p95_ms <= 1.5 ", "int8", "p95_ms", "<=", 1.5),
        ("accuracy>=0.95", None, "accuracy", ">=", 0.95),
        ("onnx-float32:throughput_per_s>1e4", "onnx-float32", "throughput_per_s", ">", 1e4),
        ("model.int8.tflite:size_kb<64", "model.int8.tflite", "size_kb", "<", 64.0),
        ("accuracy_drop<=0.5", None, "accuracy_drop", "<=", 0.5),
        ("max_abs_diff < -0.0", None, "max_abs_diff", "<", 0.0),
    ],
)
def test_parse_budget(text, scope, metric, op, limit):
    b = parse_budget(text)
    assert (b.scope, b.metric, b.op, b.limit) == (scope, metric, op, limit)
    assert b.expr == text.strip()


def test_unknown_metric_names_the_valid_ones():
    with pytest.raises(EdgekitError) as err:
        parse_budget("p50<=1")
    assert str(err.value) == (
        "unknown metric 'p50' in --budget 'p50<=1'; choose from " + ", ".join(METRICS)
    )


@pytest.mark.parametrize("text", ["p95_ms", "p95_ms=<1", "p95_ms==1", "<=1", "p95_ms<=", ""])
def test_malformed_budget(text):
    with pytest.raises(EdgekitError) as err:
        parse_budget(text)
    assert str(err.value) == (
        f"malformed --budget {text!r}: expected [VARIANT:]METRIC OP NUMBER, e.g. p95_ms<=2 or "
        "int8:accuracy>=0.95; OP is one of <=, <, >=, >"
    )


@pytest.mark.parametrize("text", ["p95_ms<=fast", "p95_ms<=nan", "p95_ms<=inf"])
def test_budget_limit_must_be_a_finite_number(text):
    with pytest.raises(EdgekitError, match=r"is not a number$"):
        parse_budget(text)


def make_row(variant="float32", status="ok", **values) -> BenchRow:
    row = BenchRow(
        artifact=f"model.{variant}.tflite", format="tflite", variant=variant, runtime="tflite",
        device="cpu", threads=1, batch=1, status=status, size_bytes=10 * 1024,
        latency_ms={"min": 0.5, "mean": 1.0, "std": 0.1, "p50": 0.9, "p90": 1.4, "p95": 1.5,
                    "p99": 2.0, "max": 3.0},
        throughput_per_s=1000.0, init_ms=4.0, peak_rss_mb=80.0,
        metrics={"accuracy": 0.95}, max_abs_diff=0.01, accuracy_drop=0.3,
    )  # fmt: skip
    for k, v in values.items():
        setattr(row, k, v)
    return row


@pytest.mark.parametrize(
    ("expr", "value", "passed"),
    [
        ("p50_ms<=1", 0.9, True),
        ("p95_ms<1.5", 1.5, False),
        ("p99_ms<=2", 2.0, True),
        ("p90_ms<=1", 1.4, False),
        ("mean_ms<=1", 1.0, True),
        ("init_ms<3", 4.0, False),
        ("throughput_per_s>=1000", 1000.0, True),
        ("size_kb<=10", 10.0, True),
        ("peak_rss_mb<50", 80.0, False),
        ("accuracy>=0.96", 0.95, False),
        ("accuracy_drop<=0.5", 0.3, True),
        ("max_abs_diff<0.001", 0.01, False),
    ],
)
def test_every_metric(expr, value, passed):
    (check,) = check_budgets([parse_budget(expr)], [make_row()])
    assert check.value == pytest.approx(value)
    assert check.passed is passed


def test_scoped_budget_and_violation_table():  # the value has its unit now: "2.50 ms"
    rows = [make_row("float32"), make_row("int8", latency_ms={"p95": 2.5})]
    checks = check_budgets([parse_budget("int8:p95_ms<=2"), parse_budget("p95_ms<=3")], rows)
    assert [(c.row.variant, c.passed) for c in checks] == [
        ("int8", False),
        ("float32", True),
        ("int8", True),
    ]
    assert [c.to_json()["expr"] for c in violations(checks)] == ["int8:p95_ms<=2"]
    table = violations_table(checks)
    assert table.splitlines()[0].split() == ["budget", "artifact", "runtime", "threads", "batch",
                                             "value"]  # fmt: skip
    assert table.splitlines()[2].split() == ["int8:p95_ms<=2", "model.int8.tflite", "tflite",
                                             "1", "1", "2.50", "ms"]  # fmt: skip


@pytest.mark.parametrize(
    ("expr", "value", "passed"),
    [("mae<=0.2", 0.15, True), ("rmse<0.2", 0.25, False), ("int8:mae<0.1", 0.15, False)],
)
def test_regression_metrics(expr, value, passed):
    row = make_row("int8", metrics={"mae": 0.15, "rmse": 0.25}, accuracy_drop=None)
    (check,) = check_budgets([parse_budget(expr)], [row])
    assert (check.value, check.passed) == (pytest.approx(value), passed)
    assert "mae" in METRICS and "rmse" in METRICS
    # a classification row has no MAE: the budget is violated, "not measured"
    (check,) = check_budgets([parse_budget("mae<=1")], [make_row()])
    assert (check.value, check.passed) == (None, False)


def test_violation_values_are_shown_in_their_units():
    rows = [make_row("int8", latency_ms={"p95": 0.0123}, throughput_per_s=1234567.0)]
    budgets = [parse_budget("p95_ms<=0.01"), parse_budget("throughput_per_s>=2e6"),
               parse_budget("size_kb<=5")]  # fmt: skip
    lines = violations_table(check_budgets(budgets, rows)).splitlines()
    assert [line.split()[-2:] for line in lines[2:]] == [["12.3", "µs"], ["1", "1,234,567"],
                                                         ["1", "10"]]  # fmt: skip


def test_unmeasured_metric_fails_and_rows_that_did_not_run_are_not_judged():
    no_data = make_row(metrics=None, accuracy_drop=None)
    skipped = make_row("int8", status="skipped", latency_ms=None)
    checks = check_budgets([parse_budget("accuracy>=0.5")], [no_data, skipped])
    assert [(c.value, c.passed) for c in checks] == [(None, False), (None, None)]
    assert "not measured" in violations_table(checks)


def test_scope_that_matches_nothing():
    with pytest.raises(EdgekitError) as err:
        check_scopes([parse_budget("int4:p95_ms<=1")], ["float32", "int8"])
    assert str(err.value) == (
        "--budget 'int4:p95_ms<=1' matches no result: no variant or artifact 'int4' "
        "(variants here: float32, int8)"
    )
    check_scopes([parse_budget("int8:p95_ms<=1"), parse_budget("p50_ms<1")], ["int8"])
