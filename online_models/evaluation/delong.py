"""DeLong's AUC statistics: one score's AUC with its interval, and the difference of two scores' AUCs on
the same students (paired, so their shared sampling noise cancels: DeLong, DeLong & Clarke-Pearson, 1988).

The evaluation asks whether the online model *trails* the per-week forest or only differs from it by the
luck of which students happen to be in a week; the hypotheses report asks whether a measure separates an
outcome at all. Both rest on the same structural components (placements), computed here once.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm, rankdata

from online_models.intervals import Z95


@dataclass(frozen=True)
class Auc:
    auc: float
    low: float
    high: float
    p: float

    @property
    def separates(self) -> bool:
        return self.low > 0.5 or self.high < 0.5


@dataclass(frozen=True)
class AucDifference:
    """AUC(a) - AUC(b) on the same students, with a 95% interval."""

    difference: float
    low: float
    high: float


def placements(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(per positive: the share of negatives scored below it, per negative: the share of positives scored
    above it), ties counting half (midranks); their means are both the AUC."""
    pos, neg = x[y], x[~y]
    n1, n0 = len(pos), len(neg)
    ranks_all = rankdata(np.concatenate([pos, neg]))
    v10 = (ranks_all[:n1] - rankdata(pos)) / n0
    v01 = 1 - (ranks_all[n1:] - rankdata(neg)) / n1
    return v10, v01


def _variance(values: np.ndarray) -> float:
    return float(values.var(ddof=1)) / len(values) if len(values) > 1 else 0.0


def delong_auc(x: np.ndarray, y: np.ndarray) -> Auc | None:
    """AUC of scores x for the boolean outcome y, with DeLong's variance; None when y has one class only."""
    if y.all() or not y.any():
        return None
    v10, v01 = placements(x, y)
    auc = float(v10.mean())
    se = math.sqrt(_variance(v10) + _variance(v01))
    if se == 0:
        return Auc(auc, auc, auc, 1.0 if auc == 0.5 else 0.0)
    p = float(2 * norm.sf(abs(auc - 0.5) / se))
    return Auc(auc, max(0.0, auc - Z95 * se), min(1.0, auc + Z95 * se), p)


def _paired_aucs(a: np.ndarray, b: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """(AUC(a), AUC(b), the variance of their difference) for y of both classes: the variance of the difference
    of their placements, which keeps the covariance of two scores that rank the same students."""
    a10, a01 = placements(a, y)
    b10, b01 = placements(b, y)
    return float(a10.mean()), float(b10.mean()), _variance(a10 - b10) + _variance(a01 - b01)


def delong_difference(a: np.ndarray, b: np.ndarray, y: np.ndarray) -> AucDifference | None:
    """AUC(a) - AUC(b) for the boolean outcome y, both scores of the same students; None when y has one class
    only."""
    if y.all() or not y.any():
        return None
    auc_a, auc_b, variance = _paired_aucs(a, b, y)
    difference, se = auc_a - auc_b, math.sqrt(variance)
    return AucDifference(difference, difference - Z95 * se, difference + Z95 * se)


@dataclass(frozen=True)
class StratifiedAucs:
    """Two scores' AUCs within each stratum, averaged with the strata's weights (their students), and the
    difference of those averages with a 95% interval."""

    a: float
    b: float
    difference: AucDifference
    strata: int


def stratified_difference(a: np.ndarray, b: np.ndarray, y: np.ndarray, strata: np.ndarray) -> StratifiedAucs | None:
    """AUC(a) - AUC(b) within each stratum of `strata` (one key per student), weighted by its students. The
    strata hold different students, so the variance of the weighted difference is the weighted sum of each
    stratum's paired (DeLong) variance. A stratum of one class has no AUC and is left out; None when all are.

    Why: a pooled AUC also ranks students scored at different moments against each other. In a replay each
    flow's week is scored at one moment by one model version, and a version that has just learned its first
    outcomes moves every probability's level: pooled, the levels' shift reads as bad ranking."""
    parts = []
    for key in np.unique(strata):
        inside = strata == key
        if y[inside].all() or not y[inside].any():
            continue
        parts.append((int(inside.sum()), *_paired_aucs(a[inside], b[inside], y[inside])))
    if not parts:
        return None
    sizes = np.array([n for n, *_ in parts], dtype=float)
    weights = sizes / sizes.sum()
    auc_a, auc_b, variance = (np.array(column) for column in zip(*(values for _, *values in parts)))
    difference, se = float(weights @ (auc_a - auc_b)), math.sqrt(float(weights ** 2 @ variance))
    return StratifiedAucs(float(weights @ auc_a), float(weights @ auc_b),
                          AucDifference(difference, difference - Z95 * se, difference + Z95 * se), len(parts))
