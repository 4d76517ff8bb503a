"""Uncertainty for comparisons: bootstrap confidence intervals and paired significance.

Both are seeded, so a report is reproducible from its results file.
"""

from __future__ import annotations

import numpy as np


def bootstrap_ci(
    values: list[float], *, confidence: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return (float("nan"), float("nan"))
    if data.size == 1:
        return (float(data[0]), float(data[0]))
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(resamples, data.size))].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def paired_permutation_p(
    a: list[float], b: list[float], *, resamples: int = 5000, seed: int = 0
) -> float:
    """Two-sided p-value that paired scores ``a`` and ``b`` have the same mean.

    Sign-flip permutation test on the per-item differences (exact when there are few
    items with non-zero differences is not needed: resampling converges quickly).
    """
    diffs = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if diffs.size == 0 or not np.any(diffs):
        return 1.0
    observed = abs(diffs.mean())
    rng = np.random.default_rng(seed)
    signs = rng.choice([-1.0, 1.0], size=(resamples, diffs.size))
    permuted = np.abs((signs * diffs).mean(axis=1))
    return float((np.sum(permuted >= observed - 1e-12) + 1) / (resamples + 1))
