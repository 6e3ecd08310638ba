"""Latency statistics and the noise-aware comparison of two latency distributions.

``summarize`` turns per-call times into the contract's ``latency_ms`` block, ``throughput``
the median batch time into samples per second.
``ratio_of_medians`` compares two runs with a bootstrap that keeps the structure of the noise:
samples are resampled in blocks of consecutive calls, so slow drifts inside a run (a noisy
neighbour, frequency scaling) widen the confidence interval instead of passing for a real
change; with several rounds (``bench --repeat``), whole rounds are resampled first, so the
spread between processes measured at different times counts too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

PERCENTILES = (50, 90, 95, 99)
KEEP_SAMPLES = 2000  # raw samples stored per result row (for compare and report)


def summarize(samples_ms: ArrayLike) -> dict[str, float]:
    """``{"min", "mean", "std", "p50", "p90", "p95", "p99", "max"}`` in milliseconds."""
    s = np.asarray(samples_ms, dtype=np.float64)
    if s.size == 0:
        raise ValueError("no samples")
    p50, p90, p95, p99 = np.percentile(s, PERCENTILES)
    return {
        "min": float(s.min()),
        "mean": float(s.mean()),
        "std": float(s.std(ddof=1)) if s.size > 1 else 0.0,
        "p50": float(p50),
        "p90": float(p90),
        "p95": float(p95),
        "p99": float(p99),
        "max": float(s.max()),
    }


def throughput(latency_ms: dict[str, float], batch: int) -> float | None:
    """Samples per second at the median batch time: ``batch / p50`` (None for a zero p50).

    The median, not the mean: a few slow calls (a noisy neighbour) must not move it.
    """
    p50 = latency_ms["p50"]
    return batch * 1000.0 / p50 if p50 > 0 else None


def thin(samples: ArrayLike, keep: int = KEEP_SAMPLES) -> np.ndarray:
    """At most ``keep`` samples, evenly spaced in time (the order of the calls is kept)."""
    s = np.asarray(samples)
    if s.size <= keep:
        return s
    return s[np.linspace(0, s.size - 1, keep).round().astype(np.int64)]


@dataclass(frozen=True)
class RatioCI:
    """``new / base`` median latency with a bootstrap confidence interval."""

    ratio: float
    low: float
    high: float
    confidence: float


def _resampled_medians(
    x: np.ndarray, rounds: int, rng: np.random.Generator, n_boot: int, blocks: int
) -> np.ndarray:
    """Medians of ``n_boot`` two-stage bootstrap resamples of ``x``.

    ``x`` is ``rounds`` equal segments of consecutive calls (one per measuring process).
    Stage 1 draws rounds with replacement (the spread between processes, taken at different
    times); stage 2 draws blocks of consecutive calls inside each drawn round (the drift
    inside a process). With one round this is a plain moving-block bootstrap.
    """
    rounds = max(1, min(rounds, x.size))
    per = x.size // rounds
    x = x[: per * rounds]
    length = max(1, per // max(1, blocks // rounds))
    k = -(-per // length)  # blocks per round
    out = np.empty(n_boot)
    chunk = max(1, 2_000_000 // (rounds * k * length))  # bound memory to ~16 MB per chunk
    offsets = np.arange(length)
    for start in range(0, n_boot, chunk):
        m = min(chunk, n_boot - start)
        picked = rng.integers(0, rounds, size=(m, rounds, 1)) * per
        starts = picked + rng.integers(0, per - length + 1, size=(m, rounds, k))
        idx = (starts[..., None] + offsets).reshape(m, rounds, k * length)[:, :, :per]
        out[start : start + m] = np.median(x[idx.reshape(m, -1)], axis=1)
    return out


def ratio_of_medians(
    base: ArrayLike,
    new: ArrayLike,
    *,
    base_rounds: int = 1,
    new_rounds: int = 1,
    confidence: float = 0.95,
    n_boot: int = 2000,
    blocks: int = 20,
    seed: int = 0,
) -> RatioCI:
    """Ratio of medians ``median(new) / median(base)`` with a bootstrap confidence interval.

    ``base_rounds``/``new_rounds``: how many equal segments (measuring processes) each sample
    list is made of.

    >>> rng = np.random.default_rng(0)
    >>> base = rng.lognormal(0.0, 0.2, 1000)
    >>> ci = ratio_of_medians(base, base * 1.3)
    >>> 1.2 < ci.low < ci.ratio < ci.high < 1.4
    True
    """
    b = np.asarray(base, dtype=np.float64)
    n = np.asarray(new, dtype=np.float64)
    if b.size == 0 or n.size == 0:
        raise ValueError("no samples")
    rng = np.random.default_rng(seed)
    ratios = _resampled_medians(n, new_rounds, rng, n_boot, blocks) / _resampled_medians(
        b, base_rounds, rng, n_boot, blocks
    )
    alpha = (1.0 - confidence) / 2
    low, high = np.quantile(ratios, [alpha, 1.0 - alpha])
    return RatioCI(
        ratio=float(np.median(n) / np.median(b)),
        low=float(low),
        high=float(high),
        confidence=confidence,
    )
