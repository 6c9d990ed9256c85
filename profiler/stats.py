"""Small, explicit statistics used by summaries (compare has its own, heavier ones)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

import numpy as np


def median(values: Sequence[float]) -> float | None:
    """Median, or None for no values."""
    return float(statistics.median(values)) if values else None


def stddev(values: Sequence[float]) -> float | None:
    """Sample standard deviation; 0.0 for one value, None for none."""
    if not values:
        return None
    return float(statistics.stdev(values)) if len(values) > 1 else 0.0


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile `q` (0-100), or None for no values."""
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else None
