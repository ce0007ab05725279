"""Confidence intervals of proportions and of their differences, and the tests read off them, small and
dependency-free (the worker's console shows them, so no scipy here).

>>> low, high = wilson(50, 100)
>>> round(low, 4), round(high, 4)
(0.4038, 0.5962)
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

Z95 = NormalDist().inv_cdf(0.975)


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion k/n ((0, 1) when n = 0)."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low = 0.0 if k == 0 else max(0.0, centre - half)  # exactly, whatever the float rounding
    high = 1.0 if k == n else min(1.0, centre + half)
    return low, high


def newcombe(k1: int, n1: int, k0: int, n0: int) -> tuple[float, float]:
    """Newcombe's hybrid score interval of p1 - p0, from the two Wilson intervals."""
    p1, p0 = k1 / n1, k0 / n0
    l1, u1 = wilson(k1, n1)
    l0, u0 = wilson(k0, n0)
    d = p1 - p0
    return d - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)


def paired_mean_difference(differences: Sequence[float], z: float = Z95) -> tuple[float, float, float]:
    """(mean, low, high) of paired differences (one per student, e.g. one method's absolute error minus
    another's): the normal interval of the mean, fair for the hundreds of students a course week has."""
    n = len(differences)
    mean = math.fsum(differences) / n
    if n < 2:
        return mean, mean, mean
    half = z * math.sqrt(math.fsum((d - mean) ** 2 for d in differences) / (n - 1) / n)
    return mean, mean - half, mean + half


def two_sided_p(difference: float, low: float, high: float, z: float = Z95) -> float:
    """The two-sided p-value of `difference` = 0 read off its normal interval (low, high) at level z."""
    se = (high - low) / (2 * z)
    if se <= 0:
        return 1.0 if difference == 0 else 0.0
    return 2 * NormalDist().cdf(-abs(difference) / se)


def holm(p_values: Sequence[float], alpha: float = 0.05) -> list[bool]:
    """Which of the p-values Holm's step-down procedure rejects at family-wise level `alpha`: a table of
    thirty paired intervals at 95% puts about one and a half on a side by luck alone, and Holm's keeps
    the chance of any false verdict in the table at `alpha` whatever the tests' dependence.

    >>> holm([0.01, 0.04, 0.03, 0.005])
    [True, False, False, True]
    """
    order = sorted(range(len(p_values)), key=p_values.__getitem__)
    rejected = [False] * len(p_values)
    for rank, i in enumerate(order):
        if p_values[i] > alpha / (len(p_values) - rank):
            break
        rejected[i] = True
    return rejected
