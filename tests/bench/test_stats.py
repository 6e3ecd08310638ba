"""Latency statistics and the noise-aware comparison, on synthetic, seeded sample sets."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.bench.comparison import compare, compare_rows
from edgekit.bench.schema import BenchRow
from edgekit.bench.stats import ratio_of_medians, summarize, thin
from tests.bench.benchhelpers import noisy_run


def test_summarize_exact_values():
    s = summarize(np.arange(1, 101, dtype=float))  # 1..100 ms
    assert s["min"] == 1.0 and s["max"] == 100.0
    assert s["mean"] == 50.5
    assert s["p50"] == pytest.approx(50.5)
    assert s["p90"] == pytest.approx(90.1)
    assert s["p95"] == pytest.approx(95.05)
    assert s["p99"] == pytest.approx(99.01)
    assert s["std"] == pytest.approx(np.std(np.arange(1, 101), ddof=1))
    assert summarize([2.5])["std"] == 0.0


def test_thin_keeps_time_order_and_ends():
    x = np.arange(10_000)
    t = thin(x, 2000)
    assert len(t) == 2000 and t[0] == 0 and t[-1] == 9999
    assert np.all(np.diff(t) > 0)
    assert len(thin(x[:50], 2000)) == 50


@pytest.mark.parametrize("seed", range(10))
def test_same_model_twice_on_a_noisy_machine_does_not_flag(seed):
    ci = ratio_of_medians(noisy_run(seed), noisy_run(seed + 100))
    assert ci.low <= 1.10  # what --max-regression 10 would need to flag
    assert ci.low < ci.ratio < ci.high


@pytest.mark.parametrize("seed", range(10))
def test_a_real_30_percent_slowdown_flags(seed):
    ci = ratio_of_medians(noisy_run(seed), noisy_run(seed + 100, scale=1.3))
    assert ci.low > 1.10
    assert 1.2 < ci.ratio < 1.4


def test_bootstrap_is_seeded_and_reproducible():
    a, b = noisy_run(1), noisy_run(2)
    assert ratio_of_medians(a, b) == ratio_of_medians(a, b)
    assert ratio_of_medians(a, b, seed=1) != ratio_of_medians(a, b, seed=2)


def test_few_samples_give_a_wide_interval():
    a, b = noisy_run(1, n=12), noisy_run(2, n=12)
    wide = ratio_of_medians(a, b)
    narrow = ratio_of_medians(noisy_run(1), noisy_run(2))
    assert wide.high - wide.low > narrow.high - narrow.low


def row(samples=None, p50=None, status="ok", **key) -> BenchRow:
    samples = list(samples) if samples is not None else []
    lat = summarize(samples) if samples else ({"p50": p50} if p50 is not None else None)
    fields = dict(artifact="m.tflite", format="tflite", variant="float32", runtime="tflite",
                  device="cpu", threads=1, batch=1)  # fmt: skip
    fields.update(key)
    return BenchRow(**fields, status=status, latency_ms=lat, samples_ms=samples)


def test_compare_rows_verdicts():
    base = row(noisy_run(0))
    assert compare_rows(base, row(noisy_run(1)), max_regression=10).verdict == "same"
    slow = compare_rows(base, row(noisy_run(1, scale=1.3)), max_regression=10)
    assert slow.verdict == "regression" and slow.method == "bootstrap" and slow.failed
    fast = compare_rows(base, row(noisy_run(1, scale=0.6)), max_regression=10)
    assert fast.verdict == "faster" and not fast.failed
    # A 30% slowdown within a 50% allowance passes, and is shown as what it is (it was "same").
    within = compare_rows(base, row(noisy_run(1, scale=1.3)), max_regression=50)
    assert within.verdict == "slower" and not within.failed
    # A significant 20% speed-up within a 30% allowance is "faster" (it was "same").
    assert compare_rows(base, row(noisy_run(1, scale=0.8)), max_regression=30).verdict == "faster"
    # Too few samples to tell a 10% allowance from the noise: "noise", which does not fail.
    few = compare_rows(row(noisy_run(0, n=12)), row(noisy_run(1, n=12)), max_regression=10)
    assert few.verdict == "noise" and not few.failed and few.low < 1 / 1.1


@pytest.mark.parametrize(
    ("low", "high", "verdict"),
    [
        (1.12, 1.30, "regression"),  # entirely beyond the allowance
        (1.02, 1.15, "slower"),  # a real slowdown, not entirely beyond the allowance
        (0.70, 0.95, "faster"),
        (0.95, 1.05, "same"),  # holds 1, within the allowance on both sides
        (0.97, 1.20, "noise"),  # holds 1, but could be a regression
        (0.80, 1.02, "noise"),  # holds 1, but could be a large speed-up
    ],
)
def test_latency_verdicts_from_the_interval(low, high, verdict):
    from edgekit.bench.comparison import latency_verdict

    assert latency_verdict((low + high) / 2, low, high, 1.10) == verdict


def test_compare_rows_without_samples_falls_back_to_p50():
    r = compare_rows(row(p50=1.0), row(p50=1.25), max_regression=10)
    assert (r.verdict, r.method, r.ratio, r.low) == ("regression", "p50", 1.25, None)
    assert compare_rows(row(p50=1.0), row(p50=1.05), max_regression=10).verdict == "same"


def test_compare_rows_status_changes():
    ok = row(noisy_run(0))
    err = row(status="error")
    assert compare_rows(ok, err, max_regression=10).verdict == "error"
    assert compare_rows(ok, row(status="skipped"), max_regression=10).verdict == "not measured"
    assert compare_rows(err, ok, max_regression=10).verdict == "not compared"


def test_compare_matches_on_the_full_key():
    base = [row(noisy_run(0)), row(noisy_run(1), batch=32), row(noisy_run(2), variant="int8",
            artifact="m8.tflite")]  # fmt: skip
    new = [row(noisy_run(3), batch=32), row(noisy_run(4, scale=1.5)), row(noisy_run(5),
           threads=2)]  # fmt: skip
    result = compare(base, new, max_regression=10)
    verdicts = {(r.key[0], r.key[4], r.key[5]): r.verdict for r in result.rows}
    assert verdicts == {
        ("m.tflite", 1, 1): "regression",
        ("m.tflite", 1, 32): "same",
        ("m8.tflite", 1, 1): "missing",
        ("m.tflite", 2, 1): "new",
    }
    assert not result.passed and len(result.regressions) == 2  # the regression, the missing
    assert result.summary() == (
        "1 regression(s) beyond 10%: m.tflite (tflite, threads=1, batch=1); 1 row(s) measured "
        "in the base not measured now: m8.tflite (tflite, threads=1, batch=1)"
    )
    assert "regression" in result.table() and "| regression |" in result.markdown()


def test_compare_with_nothing_in_common_is_a_user_error():
    from edgekit.errors import EdgekitError

    with pytest.raises(EdgekitError, match="no measurement in common"):
        compare([row(p50=1.0)], [row(p50=1.0, threads=4)])
    with pytest.raises(EdgekitError, match="--max-regression must be a percentage >= 0"):
        compare([row(p50=1.0)], [row(p50=1.0)], max_regression=-5)


def test_rounds_absorb_a_machine_that_changes_speed_between_processes():
    """Three rounds each; in the new run one process landed on a 2x slower machine state."""
    base = np.concatenate([noisy_run(s, n=600) for s in (1, 2, 3)])
    new = np.concatenate([noisy_run(4, n=600), noisy_run(5, n=600, scale=2.0), noisy_run(6, n=600)])
    as_one_run = ratio_of_medians(base, new)
    as_rounds = ratio_of_medians(base, new, base_rounds=3, new_rounds=3)
    assert as_rounds.high - as_rounds.low > 2 * (as_one_run.high - as_one_run.low)
    assert as_rounds.low < 1.10  # not flagged at 10%
    # ... while a real 30% slowdown of every round still is.
    slow = np.concatenate([noisy_run(s, n=600, scale=1.3) for s in (4, 5, 6)])
    assert ratio_of_medians(base, slow, base_rounds=3, new_rounds=3).low > 1.10


def test_combine_rounds():
    from edgekit.bench.rows import combine_rounds

    rounds = [
        {"status": "ok", "samples_ms": list(noisy_run(s, n=2000)), "init_ms": 10.0 + s,
         "first_ms": 1.0, "runs": 5000, "peak_rss_mb": 90.0 + s, "metrics": {"accuracy": 0.9}}
        for s in range(3)
    ]  # fmt: skip
    out = combine_rounds(rounds, batch=4)
    assert (out["rounds"], out["runs"], len(out["samples_ms"])) == (3, 15000, 1998)
    assert (out["init_ms"], out["peak_rss_mb"], out["metrics"]) == (11.0, 92.0, {"accuracy": 0.9})
    assert out["latency_ms"] == summarize(out["samples_ms"])
    # samples/s at the median batch time (it was batch / mean, which a few spikes pull down)
    assert out["throughput_per_s"] == pytest.approx(4000 / out["latency_ms"]["p50"])
    failed = {"status": "error", "error": "killed by signal SIGSEGV"}
    assert combine_rounds([rounds[0], failed], batch=1) == failed
