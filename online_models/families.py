"""The candidate model families, compared by `scorer evaluate --family`: each builds the three learners
(progress, P(dropout), P(success)) from the building blocks (online_models.week_learners) for one seed.
DEFAULT_FAMILY is the one the scorer runs; the others stay as candidates for `--family`.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TypedDict

from river import compose, forest, linear_model, optim, preprocessing

from online_models.priors import prior_dropout, prior_success
from online_models.week_learners import (
    ClassifierLike,
    FirstOpinion,
    PerWeek,
    PerWeekClassifier,
    Prior,
    PriorResidual,
    RegressorLike,
    WeekBlend,
    WeekBlendClassifier,
    logistic,
    weekly_interactions,
    with_priors,
)
from online_models.window_forest import WindowForestClassifier, WindowForestRegressor

#: (progress regressor on the residual `final - prior_progress`, dropout classifier, success classifier)
Learners = tuple[RegressorLike, ClassifierLike, ClassifierLike]


def _linear(seed: int) -> Learners:
    regressor = (compose.FuncTransformer(with_priors) | compose.FuncTransformer(weekly_interactions)
                 | preprocessing.StandardScaler() | linear_model.LinearRegression(optimizer=optim.Adam(0.01)))
    return regressor, logistic(), logistic()


def _arf(seed: int) -> Learners:
    return (
        forest.ARFRegressor(n_models=10, grace_period=30, seed=seed),
        forest.ARFClassifier(n_models=10, grace_period=30, leaf_prediction="mc", seed=seed),
        forest.ARFClassifier(n_models=10, grace_period=30, leaf_prediction="mc", seed=seed + 1),
    )


class AMFParams(TypedDict):
    n_estimators: int
    max_nodes: int


#: Mondrian trees grow with every example unless capped; 10 trees x 32 nodes per week keeps a
#: published version at a few MB whatever the volume (unbounded: 375 MB after 9,600 examples,
#: for 0.25 MAE better on the evaluation).
AMF_PARAMS: AMFParams = {"n_estimators": 10, "max_nodes": 32}


def _weekly_amf(seed: int) -> Learners:
    return (
        PerWeek(partial(forest.AMFRegressor, **AMF_PARAMS, seed=seed)),
        PerWeekClassifier(partial(forest.AMFClassifier, **AMF_PARAMS, seed=seed)),
        PerWeekClassifier(partial(forest.AMFClassifier, **AMF_PARAMS, seed=seed + 1)),
    )


def _blend(seed: int) -> Learners:
    """Per-week Mondrian forests for progress (they won late weeks), logistic regression on
    top of the priors for the probabilities (per-week trees were weaker there), each blended
    with the prior itself, which wins while labels are few."""
    return (
        WeekBlend([PriorResidual(), _weekly_amf(seed)[0]]),
        WeekBlendClassifier([Prior(prior_dropout), logistic()]),
        WeekBlendClassifier([Prior(prior_success), logistic()]),
    )


def _forest(seed: int) -> Learners:
    """Per-week forests refit on the latest labels (online_models.window_forest): progress as
    boosted trees on the residual over the prior (0, the prior, until a week has enough labels),
    the probabilities as random forests that defer to the priors until a week has both classes."""
    return (
        PerWeek(partial(WindowForestRegressor, seed=seed)),
        FirstOpinion([PerWeekClassifier(partial(WindowForestClassifier, seed=seed)), Prior(prior_dropout)]),
        FirstOpinion([PerWeekClassifier(partial(WindowForestClassifier, seed=seed + 1)), Prior(prior_success)]),
    )


#: Candidate model families, compared by `scorer evaluate --family`; DEFAULT_FAMILY won.
FAMILIES: dict[str, Callable[[int], Learners]] = {
    "linear": _linear, "arf": _arf, "weekly_amf": _weekly_amf, "blend": _blend, "forest": _forest,
}
DEFAULT_FAMILY = "forest"
