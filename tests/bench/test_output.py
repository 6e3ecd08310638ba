"""How bench numbers are shown: latency units, samples/s, the unstable mark."""

from __future__ import annotations

import pytest

from edgekit.bench.output import UNSTABLE_NOTE, rows_markdown, rows_table
from edgekit.bench.schema import BenchRow
from edgekit.tables import format_table, latency, rate, sig


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0.001572, "1.57 µs"),  # was "0.001572 ms"
        (6.46e-04, "646 ns"),  # was "6.46e-04"
        (0.0114, "11.4 µs"),
        (0.999996, "1.00 ms"),  # rounded before the unit is picked
        (2.5, "2.50 ms"),
        (123.4, "123 ms"),
        (1234.5, "1.23 s"),
        (12_345_678.0, "12,300 s"),
        (0.0, "0 ns"),
        (None, "-"),
    ],
)
def test_latency_units_three_significant_digits(ms, text):
    assert latency(ms) == text


def test_rates_and_significant_digits():
    assert rate(229148.4) == "229,148" and rate(12.345) == "12.3" and rate(None) == "-"
    assert (sig(0.0123), sig(999.96), sig(1234567.0)) == ("0.0123", "1,000", "1,230,000")


def test_unit_cells_are_right_aligned_numbers():
    text = format_table(["a", "p50"], [["x", "1.57 µs"], ["longer", "12.3 ms*"]])
    assert text.splitlines()[2:] == ["x        1.57 µs", "longer  12.3 ms*"]


def _row(p50: float, p95: float, *, std: float = 0.0, batch: int = 1) -> BenchRow:
    lat = {"min": p50 * 0.9, "mean": p50, "std": std, "p50": p50, "p90": p95, "p95": p95,
           "p99": p95, "max": p95}  # fmt: skip
    return BenchRow(artifact="m.tflite", format="tflite", variant="float32", runtime="tflite",
                    device="cpu", threads=1, batch=batch, size_bytes=2048, latency_ms=lat,
                    throughput_per_s=batch * 1000 / p50, metrics={"accuracy": 0.96667})  # fmt: skip


def test_bench_table_units_rates_and_unstable_rows():
    steady, tail, spread = _row(0.0114, 0.0125), _row(0.01, 0.03), _row(1.0, 1.5, std=0.6)
    assert (steady.unstable, tail.unstable, spread.unstable) == (False, True, True)
    text = rows_table([steady, tail])
    head, _, first, second, *notes = text.splitlines()
    assert head.split()[8:11] == ["p50", "p95", "samples/s"]
    assert first.split()[7:15] == ["2.0", "KB", "11.4", "µs", "12.5", "µs", "87,719", "96.67%"]
    assert second.split()[11:13] == ["30.0", "µs*"]
    assert notes == ["", UNSTABLE_NOTE]
    assert steady.to_json()["unstable"] is False and tail.to_json()["unstable"] is True
    assert list(tail.to_json())[-2:] == ["unstable", "samples_ms"]
    assert rows_markdown([tail]).endswith("\n\n- \\" + UNSTABLE_NOTE)
    assert UNSTABLE_NOTE.startswith("* unstable: the latency spread is large (p95/p50 > 2 or ")
