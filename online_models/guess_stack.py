"""A course week's learned forest and the label-free guess, weighed by that week's outcomes.

While a week's forest is fitted on its first outcomes it can rank worse than the label-free guess
(online_models.surrogate: learned from the running flows, no outcome needed): in a generated school's
strict replay (seed 12) the forest's part of week 5 ranked success .775 against the hindsight forest's
.829 on the same students, the guess's part .857 against .853. Answering with the forest alone once
it holds 20 of each class threw the guess away; letting one or the other answer, by which of them
scored better on the window, flipped on noise (docs/models.md, "Tried and not kept").

Here each (target, course week) answers with a logistic model of two inputs, the forest's P and the
guess, both as logits: P = sigmoid(a + b * logit(forest) + c * logit(guess)). It is fitted on the rows
the forest's last fit saw, each with its out-of-bag P (from the trees that did not see it: honest) and
the guess as the bundle gives it now, so the weights follow the forest's refits and the guess's. All of
those rows: fitted on the part still held as new rows pushed the oldest out, the level moved between
refits of one forest, so a window keeps them until its next fit (window_forest).

The fit is maximum a posteriori: b and c start from equal halves and a from no shift (WEIGHT_SPREAD,
INTERCEPT_SPREAD), so a window of 40 rows moves them little and one of 1,000 decides. Its intercept
also sets the level, as guess_calibration does for the guess alone.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from online_models.logistic import logit, map_logistic, sigmoid

#: The prior of (a, b, c): mean and standard deviation. Equal halves of the two logits, no shift.
PRIOR_MEAN = np.array([0.0, 0.5, 0.5])
INTERCEPT_SPREAD, WEIGHT_SPREAD = 2.0, 1.0
#: Probabilities go into logits from no closer to 0 or 1 than this (a pure leaf says 0 or 1).
EDGE = 1e-3


def _logits(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), EDGE, 1.0 - EDGE)
    return np.log(p / (1.0 - p))


def _edge_logit(p: float) -> float:
    return logit(min(1.0 - EDGE, max(EDGE, p)))


def fit_weights(forest_p: Sequence[float] | np.ndarray, guess_p: Sequence[float] | np.ndarray,
                outcomes: Sequence[bool] | np.ndarray) -> tuple[float, float, float]:
    """The (a, b, c) maximising the outcomes' log-likelihood plus the log prior."""
    inputs = np.column_stack([np.ones(len(outcomes)), _logits(np.asarray(forest_p)), _logits(np.asarray(guess_p))])
    spread = np.array([INTERCEPT_SPREAD, WEIGHT_SPREAD, WEIGHT_SPREAD])
    a, b, c = map_logistic(inputs, np.asarray(outcomes), PRIOR_MEAN, spread)
    return float(a), float(b), float(c)


@dataclass(frozen=True)
class Stack:
    """The weights of one (target, course week), the (forest fit, guess version) they were fitted for, and on
    how many rows."""

    fitted_for: tuple[int, int]
    weights: tuple[float, float, float]
    rows: int

    def combine(self, forest_p: float, guess_p: float) -> float:
        a, b, c = self.weights
        return sigmoid(a + b * _edge_logit(forest_p) + c * _edge_logit(guess_p))

    def as_json(self) -> dict[str, float]:
        """The weights by what they weigh, for a version's metadata (an analyst reads how much a week trusts its
        forest)."""
        a, b, c = self.weights
        return {"intercept": round(a, 4), "forest": round(b, 4), "guess": round(c, 4), "rows": self.rows}
