"""Downsampling a metric series for charts, keeping its extremes."""

from __future__ import annotations

import itertools

import numpy as np


def minmax_indices(values: np.ndarray, max_points: int) -> np.ndarray:
    """Indices of at most ``max_points`` points: the first and last, and in each of
    ``(max_points - 2) // 2`` equal-count buckets its minimum and its maximum (in order).

    Every bucket's extremes survive, so spikes and dips stay visible however long the series.
    NaNs are never chosen when a bucket has numbers.
    """
    n = len(values)
    if n <= max_points:
        return np.arange(n)
    if max_points < 3:
        return np.array([0, n - 1][:max_points])
    buckets = max(1, (max_points - 2) // 2)
    edges = np.linspace(1, n - 1, buckets + 1).astype(np.int64)
    chosen = [0]
    for lo, hi in itertools.pairwise(edges.tolist()):
        if hi <= lo:
            continue
        part = values[lo:hi]
        if np.all(np.isnan(part)):
            chosen.append(int(lo))
            continue
        a, b = int(np.nanargmin(part)) + lo, int(np.nanargmax(part)) + lo
        chosen.extend(sorted({a, b}))
    chosen.append(n - 1)
    return np.unique(np.array(chosen, dtype=np.int64))
