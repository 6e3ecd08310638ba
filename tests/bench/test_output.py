"""How bench numbers are shown: latency units, samples/s, the unstable mark."""

from __future__ import annotations

import numpy as np
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


def test_a_rare_preempted_call_does_not_make_a_row_unstable():
    """1 call in 1,000 taking 0.1 ms among 5 µs calls made std/mean 0.55 over all calls;
    over the calls up to p99 the row is steady. Two modes (half 5 µs, half 15 µs) are not."""
    steady = [0.005 + 0.0001 * (i % 7) for i in range(999)] + [0.113]
    two_modes = [0.005 if i % 2 else 0.015 for i in range(1000)]
    for samples, unstable in ((steady, False), (two_modes, True)):
        ordered = sorted(samples)
        mean = sum(samples) / len(samples)
        std = (sum((v - mean) ** 2 for v in samples) / len(samples)) ** 0.5
        lat = {"min": ordered[0], "mean": mean, "std": std, "p50": ordered[499],
               "p90": ordered[899], "p95": ordered[949], "p99": ordered[989],
               "max": ordered[-1]}  # fmt: skip
        row = BenchRow(artifact="m.tflite", format="tflite", variant="float32",
                       runtime="tflite", device="cpu", threads=1, batch=1, size_bytes=1,
                       latency_ms=lat, samples_ms=samples)  # fmt: skip
        assert row.unstable is unstable, (std / mean, lat)
    raw = np.array(steady)
    assert raw.std() / raw.mean() > 0.5  # over every call, the old rule called it unstable


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
