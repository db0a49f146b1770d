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

Huffman coding then spends about ``-log2(p)`` bits on an index used by a fraction ``p`` of the weights,
so least squared error is not least bytes: *entropy-constrained* clustering (``rate > 0``) minimises
``squared error + rate * bits`` instead, with ``bits = n log2(N / n)`` for an interval of ``n`` of the
``N`` weights. The cost stays a sum over intervals, so the same dynamic programme finds its exact
optimum; it merges rarely used clusters and splits the crowded ones near zero, and then the index
of each weight is its interval's, not its nearest centroid's (Chou, Lookabaugh and Gray, 1989).
"""

from __future__ import annotations

import numpy as np

__all__ = ["INITS", "MAX_BITS", "MIN_BITS", "kmeans_1d", "relative_rate", "share_weights"]

MIN_BITS, MAX_BITS = 1, 8
INITS = ("linear", "optimal")
OPTIMAL_BINS = 1024  # histogram resolution for the dynamic programme over many distinct values


def _optimal_intervals(points: np.ndarray, weights: np.ndarray, k: int, rate: float = 0.0
                       ) -> tuple[np.ndarray, np.ndarray]:
    """``(means, ends)`` of the at most ``k`` intervals of sorted ``points`` (with ``weights``) of least
    weighted squared error plus ``rate`` times their ideal code length; ``ends`` are exclusive offsets
    into ``points``. Dynamic programming, the inner minimum vectorised: with ``rate`` 0 over the count
    too (O(k n^2), exact); with a rate, O(n^2) a solve (exact unless the cap of ``k`` binds, then the
    Lagrangian optimum at the largest count within it)."""
    n = points.size
    k = min(k, n)
    w = np.concatenate([[0.0], np.cumsum(weights)])
    s1 = np.concatenate([[0.0], np.cumsum(weights * points)])
    s2 = np.concatenate([[0.0], np.cumsum(weights * points * points)])
    total_weight = w[-1]

    def cost(starts: np.ndarray, end: int) -> np.ndarray:  # squared error (+ rate * bits) of points[start:end]
        count = w[end] - w[starts]
        total = s1[end] - s1[starts]
        error = s2[end] - s2[starts] - np.where(count > 0, total * total / np.maximum(count, 1e-300), 0.0)
        if rate:
            error = error + rate * count * np.log2(total_weight / np.maximum(count, 1e-300))
        return error

    def intervals(split_at) -> tuple[np.ndarray, np.ndarray]:
        means, ends, end = [], [], n
        for start in split_at:
            means.append((s1[end] - s1[start]) / (w[end] - w[start]))
            ends.append(end)
            end = start
        return np.asarray(means[::-1]), np.asarray(ends[::-1], dtype=np.int64)

    if rate:
        # The count unconstrained first (the rate term usually keeps it within k); else a penalty per
        # interval, the Lagrange multiplier of the count, raised by bisection until at most k remain.
        # O(n^2) a solve where the count as a dimension would cost O(k n^2): minutes for 256 values.
        def solve(penalty: float) -> list[int]:
            best = np.zeros(n + 1)
            split = np.zeros(n + 1, dtype=np.int64)
            for end in range(1, n + 1):
                starts = np.arange(end)
                totals = best[starts] + cost(starts, end) + penalty
                split[end] = int(np.argmin(totals))
                best[end] = totals[split[end]]
            chain, end = [], n
            while end > 0:
                chain.append(int(split[end]))
                end = split[end]
            return chain

        chain = solve(0.0)
        if len(chain) > k:
            low, high = 0.0, float(cost(np.array([0]), n)[0]) + 1e-300  # one interval then costs least
            chain = solve(high)
            for _ in range(40):
                middle = (low + high) / 2
                candidate = solve(middle)
                if len(candidate) <= k:
                    high, chain = middle, candidate
                    if len(candidate) == k:
                        break
                else:
                    low = middle
        return intervals(chain)

    best = np.full((k + 1, n + 1), np.inf)
    best[0, 0] = 0.0
    split = np.zeros((k + 1, n + 1), dtype=np.int64)
    for m in range(1, k + 1):
        for end in range(m, n + 1):
            starts = np.arange(m - 1, end)
            totals = best[m - 1, starts] + cost(starts, end)
            choice = int(np.argmin(totals))
            best[m, end], split[m, end] = totals[choice], starts[choice]
    chain, end = [], n
    for level in range(k, 0, -1):
        chain.append(split[level, end])
        end = split[level, end]
    return intervals(chain)


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


def kmeans_1d(values: np.ndarray, k: int, *, init: str = "optimal", iterations: int = 100, tolerance: float = 1e-7,
              rate: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """``(codebook float32 (<= k,), indices int64)`` of 1-D k-means.

    ``init="linear"`` is Deep Compression's: Lloyd's iteration from ``k`` evenly spaced centroids.
    ``init="optimal"`` is the least-squares partition (exact over up to ``OPTIMAL_BINS`` distinct
    values, else over a histogram of that many bins and refined by Lloyd's iteration). Centroids left
    without a member are dropped, so the codebook may be shorter than ``k`` (a layer with fewer
    distinct weights than ``k`` keeps them all exactly).

    ``rate`` > 0 (``init="optimal"`` only) makes it entropy-constrained: the partition of least
    ``squared error + rate * bits`` (see the module docstring), in squared-error units per bit; it is
    exact over the distinct values or the histogram bins, and Lloyd's nearest-centroid refinement,
    which would undo the trade, is not applied.
    """
    if init not in INITS:
        raise ValueError(f"Expected init in {INITS}. Received: {init!r}")
    if not rate >= 0:
        raise ValueError(f"Expected rate >= 0. Received: {rate}")
    if rate and init != "optimal":
        raise ValueError(f"Entropy-constrained sharing (rate > 0) needs init='optimal'. Received: {init!r}")
    values = np.asarray(values, dtype=np.float64).ravel()
    if k < 1:
        raise ValueError(f"Expected k >= 1. Received: {k}")
    if values.size == 0:
        return np.zeros(0, np.float32), np.zeros(0, np.int64)
    distinct = np.unique(values)
    if distinct.size <= k and not rate:  # nothing to cluster: every value is its own centroid, exactly
        return distinct.astype(np.float32), np.searchsorted(distinct, values).astype(np.int64)
    if init == "linear":
        centroids = _lloyd(values, np.linspace(values.min(), values.max(), k), iterations, tolerance)
        indices = np.searchsorted((centroids[1:] + centroids[:-1]) / 2, values)
    else:
        if distinct.size <= OPTIMAL_BINS:
            cells = np.searchsorted(distinct, values)
            points = distinct
        else:
            edges = np.linspace(values.min(), values.max(), OPTIMAL_BINS + 1)
            bins = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, OPTIMAL_BINS - 1)
            used, cells = np.unique(bins, return_inverse=True)
            points = np.bincount(cells, weights=values) / np.bincount(cells)
        counts = np.bincount(cells, minlength=points.size).astype(np.float64)
        centroids, ends = _optimal_intervals(points, counts, k, rate)
        indices = np.searchsorted(ends, cells, side="right")  # each cell's interval
        if distinct.size > OPTIMAL_BINS:
            if rate:  # the members' own mean, not the bins' (the partition stays the programme's)
                centroids = np.bincount(indices, weights=values, minlength=centroids.size) / np.maximum(
                    np.bincount(indices, minlength=centroids.size), 1)
            else:
                centroids = _lloyd(values, centroids, iterations, tolerance)
                indices = np.searchsorted((centroids[1:] + centroids[:-1]) / 2, values)
    size = centroids.size
    used = np.flatnonzero(np.bincount(indices, minlength=size))
    remap = np.zeros(size, dtype=np.int64)
    remap[used] = np.arange(used.size)
    return centroids[used].astype(np.float32), remap[indices]


def share_weights(weights: np.ndarray, mask: np.ndarray, bits: int, init: str = "optimal", rate: float = 0.0
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(codebook, indices, positions)`` of a layer: k-means with ``2**bits`` centroids over the
    weights kept by ``mask``. ``positions`` are flat offsets into ``weights`` (C order). ``rate`` is
    relative to the kept weights' variance (see :func:`relative_rate`)."""
    if not MIN_BITS <= bits <= MAX_BITS:
        raise ValueError(f"Expected bits in {MIN_BITS}..{MAX_BITS}. Received: {bits}")
    positions = np.flatnonzero(np.asarray(mask).ravel())
    kept = np.asarray(weights).ravel()[positions]
    codebook, indices = kmeans_1d(kept, 2 ** bits, init=init, rate=relative_rate(kept, rate))
    return codebook, indices, positions


def relative_rate(values: np.ndarray, rate: float) -> float:
    """``rate`` (squared error per bit, relative to the variance of ``values``) in ``values``' units.

    One relative rate for every layer trades the same fraction of each layer's variance for a bit, as
    a fixed bit width gives every layer about the same relative error; an absolute rate would starve
    the layers of small weights (conv10, the wide expands) and spend the bits on conv1.
    """
    return float(rate * np.var(values)) if rate and np.size(values) else 0.0
