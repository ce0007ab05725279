"""Logits and the maximum a posteriori logistic fit that guess_calibration and guess_stack share: both learn a
few weights from a week's outcomes, with a normal prior so a handful of outcomes moves them little."""
from __future__ import annotations

import math

import numpy as np

_NEWTON_STEPS, _TOLERANCE, _HALVINGS = 30, 1e-6, 30


def logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def sigmoid(z: float) -> float:
    """1 / (1 + e^-z); 0 below z = -700, where e^-z would overflow a float (and the true value is below 1e-304)."""
    return 1.0 / (1.0 + math.exp(-z)) if z > -700.0 else 0.0


def map_logistic(inputs: np.ndarray, outcomes: np.ndarray, prior_mean: np.ndarray, prior_spread: np.ndarray,
                 offset: np.ndarray | float = 0.0) -> np.ndarray:
    """The weights w maximising the log-likelihood of `outcomes` under sigmoid(offset + inputs @ w) plus the
    log density of a normal prior (mean `prior_mean`, standard deviations `prior_spread`): Newton's method,
    the objective being concave, each step halved until it gains. Full steps alone overshot where an input
    barely varies (a forest's out-of-bag P all near .89, as a young window's can be): started from a prior far
    from the answer, the weights went to the hundreds, and scoring with them overflowed."""
    y = np.asarray(outcomes, dtype=float)
    precision = 1.0 / np.asarray(prior_spread, dtype=float) ** 2
    mean = np.asarray(prior_mean, dtype=float)

    def log_posterior(weights: np.ndarray) -> float:
        z = offset + inputs @ weights
        return float(np.sum(y * z - np.logaddexp(0.0, z)) - 0.5 * np.sum(precision * (weights - mean) ** 2))

    w = mean.copy()
    reached = log_posterior(w)
    for _ in range(_NEWTON_STEPS):
        p = 1.0 / (1.0 + np.exp(-np.maximum(offset + inputs @ w, -700.0)))  # kept off overflow, as sigmoid
        gradient = inputs.T @ (y - p) - precision * (w - mean)
        curvature = (inputs * (p * (1.0 - p))[:, None]).T @ inputs + np.diag(precision)
        step = np.linalg.solve(curvature, gradient)
        for _ in range(_HALVINGS):
            gained = log_posterior(w + step)
            if gained >= reached:
                break
            step /= 2.0
        w, reached = w + step, gained
        if np.abs(step).max() < _TOLERANCE:
            break
    return w
