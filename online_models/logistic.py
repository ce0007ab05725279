"""Logits and the maximum a posteriori logistic fit that guess_calibration and guess_stack share: both learn a
few weights from a week's outcomes, with a normal prior so a handful of outcomes moves them little."""
from __future__ import annotations

import math

import numpy as np

_NEWTON_STEPS, _TOLERANCE = 30, 1e-6


def logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def map_logistic(inputs: np.ndarray, outcomes: np.ndarray, prior_mean: np.ndarray, prior_spread: np.ndarray,
                 offset: np.ndarray | float = 0.0) -> np.ndarray:
    """The weights w maximising the log-likelihood of `outcomes` under sigmoid(offset + inputs @ w) plus the
    log density of a normal prior (mean `prior_mean`, standard deviations `prior_spread`): Newton's method,
    the objective being concave."""
    y = np.asarray(outcomes, dtype=float)
    precision = 1.0 / np.asarray(prior_spread, dtype=float) ** 2
    mean = np.asarray(prior_mean, dtype=float)
    w = mean.copy()
    for _ in range(_NEWTON_STEPS):
        p = 1.0 / (1.0 + np.exp(-(offset + inputs @ w)))
        gradient = inputs.T @ (y - p) - precision * (w - mean)
        curvature = (inputs * (p * (1.0 - p))[:, None]).T @ inputs + np.diag(precision)
        step = np.linalg.solve(curvature, gradient)
        w += step
        if np.abs(step).max() < _TOLERANCE:
            break
    return w
