"""Weight sharing: per-layer k-means over the kept weights, as in Deep Compression (section 3).

Deep Compression compares three initialisations and keeps the *linear* one (centroids spaced evenly
between the smallest and largest weight): it keeps centroids on the rare large weights, which
matter more than their number suggests, where density-based or random initialisation spends almost
all centroids near zero. One-dimensional k-means is then Lloyd's iteration with the assignment done
by a binary search over the midpoints between (sorted) centroids.

Lloyd's iteration only finds a local optimum, and from the linear start a poor one when the weights
are already few distinct values with long tails: re-clustering the 8-bit Deep Compression release to
6 bits, linear-start k-means left the model agreeing with the 8-bit one on 68 % of held-out photos.
In one dimension the *global* optimum is computable: clusters are intervals of the sorted values, so
dynamic programming over the distinct values (or, for dense float weights, over a fine histogram,
refined by Lloyd's iteration) finds the partition of least squared error. ``init="optimal"`` does
that; on the same re-clustering it agrees on 87 %. It is the default; ``init="linear"`` gives the
paper's.
"""

from __future__ import annotations

import numpy as np

__all__ = ["INITS", "MAX_BITS", "MIN_BITS", "kmeans_1d", "share_weights"]

MIN_BITS, MAX_BITS = 1, 8
INITS = ("linear", "optimal")
OPTIMAL_BINS = 1024  # histogram resolution for the dynamic programme over many distinct values


def _optimal_intervals(points: np.ndarray, weights: np.ndarray, k: int) -> np.ndarray:
    """Means of the ``k`` intervals of sorted ``points`` (with ``weights``) of least weighted squared
    error, by dynamic programming: O(k n^2) with the inner minimum vectorised."""
    n = points.size
    k = min(k, n)
    w = np.concatenate([[0.0], np.cumsum(weights)])
    s1 = np.concatenate([[0.0], np.cumsum(weights * points)])
    s2 = np.concatenate([[0.0], np.cumsum(weights * points * points)])

    def cost(starts: np.ndarray, end: int) -> np.ndarray:  # squared error of points[start:end]
        count = w[end] - w[starts]
        total = s1[end] - s1[starts]
        return s2[end] - s2[starts] - np.where(count > 0, total * total / np.maximum(count, 1e-300), 0.0)

    best = np.full((k + 1, n + 1), np.inf)
    best[0, 0] = 0.0
    split = np.zeros((k + 1, n + 1), dtype=np.int64)
    for m in range(1, k + 1):
        for end in range(m, n + 1):
            starts = np.arange(m - 1, end)
            totals = best[m - 1, starts] + cost(starts, end)
            choice = int(np.argmin(totals))
            best[m, end], split[m, end] = totals[choice], starts[choice]
    means, end = [], n
    for m in range(k, 0, -1):
        start = split[m, end]
        means.append((s1[end] - s1[start]) / (w[end] - w[start]))
        end = start
    return np.asarray(means[::-1])


def _lloyd(values: np.ndarray, centroids: np.ndarray, iterations: int, tolerance: float) -> np.ndarray:
    k = centroids.size
    spread = values.max() - values.min()
    for _ in range(iterations):
        indices = np.searchsorted((centroids[1:] + centroids[:-1]) / 2, values)
        sums = np.bincount(indices, weights=values, minlength=k)
        counts = np.bincount(indices, minlength=k)
        updated = np.where(counts > 0, sums / np.maximum(counts, 1), centroids)
        moved = np.abs(updated - centroids).max()
        centroids = updated
        if moved <= tolerance * spread:
            break
    return centroids


def kmeans_1d(values: np.ndarray, k: int, *, init: str = "optimal", iterations: int = 100, tolerance: float = 1e-7
              ) -> tuple[np.ndarray, np.ndarray]:
    """``(codebook float32 (<= k,), indices int64)`` of 1-D k-means.

    ``init="linear"`` is Deep Compression's: Lloyd's iteration from ``k`` evenly spaced centroids.
    ``init="optimal"`` is the least-squares partition (exact over up to ``OPTIMAL_BINS`` distinct
    values, else over a histogram of that many bins and refined by Lloyd's iteration). Centroids left
    without a member are dropped, so the codebook may be shorter than ``k`` (a layer with fewer
    distinct weights than ``k`` keeps them all exactly).
    """
    if init not in INITS:
        raise ValueError(f"Expected init in {INITS}. Received: {init!r}")
    values = np.asarray(values, dtype=np.float64).ravel()
    if k < 1:
        raise ValueError(f"Expected k >= 1. Received: {k}")
    if values.size == 0:
        return np.zeros(0, np.float32), np.zeros(0, np.int64)
    distinct = np.unique(values)
    if distinct.size <= k:  # nothing to cluster: every value is its own centroid, exactly
        return distinct.astype(np.float32), np.searchsorted(distinct, values).astype(np.int64)
    if init == "linear":
        centroids = _lloyd(values, np.linspace(values.min(), values.max(), k), iterations, tolerance)
    elif distinct.size <= OPTIMAL_BINS:
        counts = np.bincount(np.searchsorted(distinct, values), minlength=distinct.size)
        centroids = _optimal_intervals(distinct, counts.astype(np.float64), k)
    else:
        edges = np.linspace(values.min(), values.max(), OPTIMAL_BINS + 1)
        bins = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, OPTIMAL_BINS - 1)
        counts = np.bincount(bins, minlength=OPTIMAL_BINS)
        sums = np.bincount(bins, weights=values, minlength=OPTIMAL_BINS)
        used = counts > 0
        centroids = _optimal_intervals(sums[used] / counts[used], counts[used].astype(np.float64), k)
        centroids = _lloyd(values, centroids, iterations, tolerance)
    indices = np.searchsorted((centroids[1:] + centroids[:-1]) / 2, values)
    used = np.flatnonzero(np.bincount(indices, minlength=k))
    remap = np.zeros(k, dtype=np.int64)
    remap[used] = np.arange(used.size)
    return centroids[used].astype(np.float32), remap[indices]


def share_weights(weights: np.ndarray, mask: np.ndarray, bits: int, init: str = "optimal"
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(codebook, indices, positions)`` of a layer: k-means with ``2**bits`` centroids over the
    weights kept by ``mask``. ``positions`` are flat offsets into ``weights`` (C order)."""
    if not MIN_BITS <= bits <= MAX_BITS:
        raise ValueError(f"Expected bits in {MIN_BITS}..{MAX_BITS}. Received: {bits}")
    positions = np.flatnonzero(np.asarray(mask).ravel())
    codebook, indices = kmeans_1d(np.asarray(weights).ravel()[positions], 2 ** bits, init=init)
    return codebook, indices, positions
