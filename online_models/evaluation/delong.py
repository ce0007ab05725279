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


def delong_difference(a: np.ndarray, b: np.ndarray, y: np.ndarray) -> AucDifference | None:
    """AUC(a) - AUC(b) for the boolean outcome y, both scores of the same students: the variance of the
    difference of their placements, which keeps the covariance of two scores that rank the same students;
    None when y has one class only."""
    if y.all() or not y.any():
        return None
    a10, a01 = placements(a, y)
    b10, b01 = placements(b, y)
    difference = float(a10.mean() - b10.mean())
    se = math.sqrt(_variance(a10 - b10) + _variance(a01 - b01))
    return AucDifference(difference, difference - Z95 * se, difference + Z95 * se)
