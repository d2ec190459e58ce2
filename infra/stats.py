"""Arithmetic the benchmarks share."""

import statistics
from collections.abc import Sequence


def median_ratio(over: Sequence[float], under: Sequence[float]) -> float:
    """The median of each run's ratio: runs measured side by side, the i-th of each together."""
    return statistics.median(a / b for a, b in zip(over, under, strict=True))
