"""Three online learners behind one object: final progress, P(dropout), P(success).

One model serves every course week: the engagement features carry `course_week` and
`days_since_course_start`, and the per-week learners (`PerWeek`) keep one learner per course
week, the online twin of the seed's per-week forests. The default family, `forest`, measured
best against those forests on the OULAD import and on generated data (`scorer evaluate`,
README): per-week forests refit on the latest labels (online_models.window_forest). Two ideas
keep it useful before labels arrive:

- a label-free guess answers until a week has labels of both classes (`ScoringModels.predict`): the
  surrogate learned from the running flows (online_models.surrogate), or before it is fitted the prior
  from the seed's hypotheses (online_models.priors); its probabilities are shifted to the
  level of the outcomes learned so far (online_models.guess_calibration);
- progress is learned as a residual on top of the hand prior, so a learner with little evidence stays
  near it.

The other families (incremental River learners, and `blend`, which weights them against the
prior per course week by their recent loss: `WeekBlend`) stay as candidates for `--family`.
"""
from __future__ import annotations

import abc
import math
import pickle
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Generic, Protocol, TypedDict, TypeVar

import numpy as np
from river import (
    base,
    compose,
    forest,
    linear_model,
    metrics,
    optim,
    preprocessing,
    utils,
)

from features.hypotheses import Factor
from online_models.explain import CohortNorms, explain
from online_models.guess_calibration import GuessCalibration
from online_models.guess_stack import Stack, fit_weights
from online_models.labels import Label
from online_models.logistic import logit
from online_models.priors import PRIORS, clip, prior_dropout, prior_progress, prior_success, priors
from online_models.surrogate import Surrogate, Trajectory, fit_surrogate
from online_models.window_forest import WindowForestClassifier, WindowForestRegressor, row_input
from streams.contract.outputs import Basis, ScoreBasis

#: Rolling window (in learned examples) of the prequential metrics.
WINDOW = 500
#: Rolling window of each course week's prequential metrics. A label teaches one example per week its
#: enrolment was open, so a week's window spans about its last 200 labels (the global one, shared by
#: all weeks, about 500 / weeks). Smaller leaves a week's AUC to a handful of positives (at 20% dropout,
#: 40 in 200: standard error ~0.04; ~0.09 at 50); larger makes late weeks, which fewer enrolments
#: reach, average over examples from model versions long gone. Cost: up to (WEEK_CAP + 1) x 7 x 200
#: (label, prediction) pairs in every published version, ~160 KB compressed (a target's metrics pickle
#: their shared pairs once: 159 KB with 5 metrics, 162 KB with 7).
WINDOW_PER_WEEK = 200
#: Course weeks from this one on share one set of per-week metrics, so the `course_week` label of
#: their gauge takes at most WEEK_CAP + 1 values (0: no course week in x) whatever the course length.
WEEK_CAP = 20
#: Probabilities are kept off 0/1 so a confident miss costs a finite log loss.
P_FLOOR = 0.01
#: Weight of the newest loss in a WeekBlend member's per-week moving average.
LOSS_DECAY = 0.02
#: Examples kept per (target, course week, class) to rehearse: the learner sees the classes
#: interleaved even when a block of one arrives (bounded: 2 targets x weeks x 2 classes x this).
REHEARSAL = 16
#: Sharpness of WeekBlend: weight ~ loss ** -BLEND_POWER (large = nearly "pick the best").
BLEND_POWER = 8.0
#: Engagement features the models do not see: a flow number only says which cohort a student
#: is in, and a new cohort's number is one the model has never seen.
EXCLUDED_FEATURES = frozenset({"flow_num"})


def model_input(features: dict[str, float]) -> dict[str, float]:
    """The model's x: the engagement features (features.engagement.compute), finite floats only."""
    return {
        k: float(v) for k, v in features.items()
        if k not in EXCLUDED_FEATURES and v is not None and math.isfinite(v)
    }


# -- building blocks ---------------------------------------------------------------------------


def course_week(x: dict[str, float]) -> int:
    return int(x.get("course_week", 0))


def with_priors(x: dict[str, float]) -> dict[str, float]:
    """x plus the priors (probabilities as logits): a linear model then only has to learn
    how far the data disagree with them, which it can do from few labels."""
    return {**x, "prior_progress": prior_progress(x), "prior_dropout": logit(prior_dropout(x)),
            "prior_success": logit(prior_success(x))}


def weekly_interactions(x: dict[str, float]) -> dict[str, float]:
    """Every feature also as `name@week`: a linear model gets its own coefficients per course
    week (the seed's "one model per week" inside one linear model)."""
    week = course_week(x)
    return {**x, **{f"{name}@{week}": value for name, value in x.items()}}


# -- blend members and blends -----------------------------------------------------------------
# River's base classes declare a model input as `dict[Hashable, Any]`, which our `dict[str, float]`
# inputs are not to mypy (dict is invariant in its key type), and type compose.Pipeline as neither
# regressor nor classifier; so what the blends and ScoringModels call is spelled as protocols, and
# the River methods overridden below take `RiverX`, which is compatible with both.

#: `x` of the River methods overridden below (see above).
RiverX = dict[Any, float]
Y = TypeVar("Y")
Y_contra = TypeVar("Y_contra", contravariant=True)


class Learner(Protocol[Y_contra]):
    """Anything that learns from (x, y) one example at a time."""

    def learn_one(self, x: dict[str, float], y: Y_contra) -> None: ...


class RegressorLike(Learner[float], Protocol):
    """A River regressor, or a pipeline ending in one, as the blends and ScoringModels use it."""

    def predict_one(self, x: dict[str, float]) -> float | None: ...


class ClassifierLike(Learner[base.typing.ClfTarget], Protocol):
    """A River classifier, or a pipeline ending in one, as the blends and ScoringModels use it."""

    def predict_proba_one(self, x: dict[str, float]) -> dict[Any, float]: ...


M = TypeVar("M", bound=Learner[Any])


class Prior(base.Classifier):
    """The version-0 prior as a classifier blend member that never learns: P(True) = `prior(x)`
    (0.5 without a prior). `prior` is pickled by its name: versions published before online_models.priors
    name prior_dropout and prior_success in this module, and load because it imports them."""

    def __init__(self, prior: Callable[[dict[str, float]], float] | None = None) -> None:
        self.prior = prior

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        yield {"prior": prior_dropout}

    def learn_one(self, x: RiverX, y: base.typing.ClfTarget) -> None:
        return None

    def predict_proba_one(self, x: RiverX, **kwargs: Any) -> dict[base.typing.ClfTarget, float]:
        p = self.prior(x) if self.prior is not None else 0.5
        return {True: p, False: 1.0 - p}


class PriorResidual(base.Regressor):
    """The progress prior as a blend member that never learns: on the residual target
    `final - prior_progress` it predicts 0, "the prior is right"."""

    def learn_one(self, x: RiverX, y: float) -> None:
        return None

    def predict_one(self, x: RiverX) -> float:
        return 0.0


class _PerWeek(base.Estimator, Generic[M]):
    """One learner per course week (`course_week`, 0 when absent), made by `factory` on the
    week's first example."""

    def __init__(self, factory: Callable[[], M]) -> None:
        self.factory = factory
        self.models: dict[int, M] = {}

    @property
    def order_free(self) -> bool:
        """As order-free as its learners (online_models.window_forest: rehearsal would only duplicate rows)."""
        return bool(getattr(getattr(self.factory, "func", self.factory), "order_free", False))

    def _week_learner(self, x: dict[str, float]) -> M:
        week = course_week(x)
        if week not in self.models:
            self.models[week] = self.factory()
        return self.models[week]


class PerWeek(_PerWeek[RegressorLike], base.Regressor):
    """One regressor per course week, the online twin of the seed's per-week forests. A week with
    no example yet has no opinion: 0 (no change, on the residual target)."""

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        yield {"factory": partial(forest.AMFRegressor, n_estimators=2, max_nodes=16, seed=1)}

    def learn_one(self, x: RiverX, y: float) -> None:
        self._week_learner(x).learn_one(x, y)

    def predict_one(self, x: RiverX) -> float:
        return self.opinion(x) or 0.0

    def opinion(self, x: RiverX) -> float | None:
        """The week's learner's prediction; None while the week has none, or one not fitted yet."""
        model = self.models.get(course_week(x))
        if model is None:
            return None
        if isinstance(model, WindowForestRegressor):
            return model.opinion(x)
        return float(model.predict_one(x) or 0.0)


class PerWeekClassifier(_PerWeek[ClassifierLike], base.Classifier):
    """One classifier per course week. A week with no example yet has no opinion: no probability."""

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        yield {"factory": partial(forest.AMFClassifier, n_estimators=2, max_nodes=16, seed=1)}

    @property
    def _multiclass(self) -> bool:
        return bool(getattr(self.factory(), "_multiclass", False))  # as multi-class as its learners

    def learn_one(self, x: RiverX, y: base.typing.ClfTarget) -> None:
        self._week_learner(x).learn_one(x, y)

    def predict_proba_one(self, x: RiverX, **kwargs: Any) -> dict[base.typing.ClfTarget, float]:
        model = self.models.get(course_week(x))
        return {} if model is None else model.predict_proba_one(x)


def _log_loss(y: bool, p: float) -> float:
    p = min(1 - 1e-6, max(1e-6, p))
    return -math.log(p if y else 1 - p)


class _WeekBlend(base.Estimator, Generic[M, Y]):
    """Weighted average of members, weights per course week ~ (moving average loss) ** -BLEND_POWER,
    because no single learner wins every week. Losses are prequential, and `learn_batch` scores a
    whole batch before learning any of it: a label's weeks share one y, so scoring week 3 after
    learning week 2 would reward the member that memorises the current student."""

    def __init__(self, members: list[M]) -> None:
        self.members = members
        self.losses: dict[int, list[float]] = {}

    @abc.abstractmethod
    def _outputs(self, x: dict[str, float]) -> list[float]:
        """Each member's output: a prediction, or P(True) for a classifier."""

    @abc.abstractmethod
    def _loss(self, y: Y, output: float) -> float:
        """A member's loss on one example, given its output."""

    def _weights(self, x: dict[str, float]) -> list[float]:
        losses = self.losses.get(course_week(x))
        if losses is None:
            return [1.0 / len(self.members)] * len(self.members)
        inverse = [max(loss, 1e-6) ** -BLEND_POWER for loss in losses]
        return [w / sum(inverse) for w in inverse]

    def _blend(self, x: dict[str, float]) -> float:
        return sum(w * out for w, out in zip(self._weights(x), self._outputs(x)))

    def _record(self, x: dict[str, float], y: Y) -> None:
        losses = [self._loss(y, out) for out in self._outputs(x)]
        week = course_week(x)
        old = self.losses.get(week)
        self.losses[week] = losses if old is None else [
            (1 - LOSS_DECAY) * a + LOSS_DECAY * b for a, b in zip(old, losses)
        ]

    def learn_batch(self, xs: Sequence[dict[str, float]], ys: Sequence[Y]) -> None:
        for x, y in zip(xs, ys):
            self._record(x, y)
        for x, y in zip(xs, ys):
            for member in self.members:
                member.learn_one(x, y)


class WeekBlend(_WeekBlend[RegressorLike, float], base.Regressor):
    """Blend of regressors; a member's loss is its absolute error."""

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        small_forest = partial(forest.AMFRegressor, n_estimators=2, max_nodes=16, seed=1)
        yield {"members": [PriorResidual(), PerWeek(small_forest)]}

    def _outputs(self, x: dict[str, float]) -> list[float]:
        return [float(m.predict_one(x) or 0.0) for m in self.members]

    def _loss(self, y: float, output: float) -> float:
        return abs(output - float(y))

    def learn_one(self, x: RiverX, y: float) -> None:
        self.learn_batch([x], [y])

    def predict_one(self, x: RiverX) -> float:
        return self._blend(x)


class WeekBlendClassifier(_WeekBlend[ClassifierLike, base.typing.ClfTarget], base.Classifier):
    """Blend of binary classifiers' P(True); a member's loss is its log loss."""

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        yield {"members": [Prior(prior_dropout), _logistic()]}

    def _outputs(self, x: dict[str, float]) -> list[float]:
        return [m.predict_proba_one(x).get(True, 0.5) for m in self.members]

    def _loss(self, y: base.typing.ClfTarget, output: float) -> float:
        return _log_loss(bool(y), output)

    def learn_one(self, x: RiverX, y: base.typing.ClfTarget) -> None:
        self.learn_batch([x], [y])

    def predict_proba_one(self, x: RiverX, **kwargs: Any) -> dict[base.typing.ClfTarget, float]:
        p = self._blend(x)
        return {True: p, False: 1.0 - p}


class FirstOpinion(base.Classifier):
    """The first member with an opinion (a non-empty probability) answers; all of them learn. A
    learner that waits for enough labels (a refit forest) defers to a prior until then, instead of
    answering 0.5 for everyone; ScoringModels asks the members before the prior only (`_learned_p`)
    and answers with its own label-free guess where they have none."""

    def __init__(self, members: list[ClassifierLike]) -> None:
        self.members = members

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        yield {"members": [_logistic(), Prior(prior_dropout)]}

    def learn_one(self, x: RiverX, y: base.typing.ClfTarget) -> None:
        for member in self.members:
            member.learn_one(x, y)

    def predict_proba_one(self, x: RiverX, **kwargs: Any) -> dict[base.typing.ClfTarget, float]:
        for member in self.members:
            proba = member.predict_proba_one(x)
            if proba:
                return proba
        return {}


def _settle(learner: object) -> None:
    """Every window learner inside `learner` refits on all it has learned (window_forest: between
    fits the newest examples wait); the learners that learn one example at a time are always current."""
    if isinstance(learner, WindowForestClassifier | WindowForestRegressor):
        learner.settle()
    elif isinstance(learner, _PerWeek):
        for week_learner in learner.models.values():
            _settle(week_learner)
    elif isinstance(learner, FirstOpinion | _WeekBlend):
        for member in learner.members:
            _settle(member)


def _learn_batch(learner: Learner[Y], xs: list[dict[str, float]], ys: list[Y]) -> None:
    if isinstance(learner, _WeekBlend):
        learner.learn_batch(xs, ys)
    else:
        for x, y in zip(xs, ys):
            learner.learn_one(x, y)


def _relearn(learner: ClassifierLike, x: dict[str, float], y: bool) -> None:
    """Learn an example seen before; a blend's members learn it but its losses do not count it
    (a loss on a learned example would reward the member that memorises)."""
    for member in getattr(learner, "members", [learner]):
        if not getattr(member, "order_free", False):
            member.learn_one(x, y)


# -- model families ----------------------------------------------------------------------------

#: (progress regressor on the residual `final - prior_progress`, dropout classifier, success classifier)
Learners = tuple[RegressorLike, ClassifierLike, ClassifierLike]


def _logistic() -> ClassifierLike:
    return (compose.FuncTransformer(with_priors) | compose.FuncTransformer(weekly_interactions)
            | preprocessing.StandardScaler() | linear_model.LogisticRegression(optimizer=optim.Adam(0.001)))


def _linear(seed: int) -> Learners:
    regressor = (compose.FuncTransformer(with_priors) | compose.FuncTransformer(weekly_interactions)
                 | preprocessing.StandardScaler() | linear_model.LinearRegression(optimizer=optim.Adam(0.01)))
    return regressor, _logistic(), _logistic()


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
        WeekBlendClassifier([Prior(prior_dropout), _logistic()]),
        WeekBlendClassifier([Prior(prior_success), _logistic()]),
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


# -- the bundle --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prediction:
    """What a model version says about one student (the worker publishes it as contract Scores)."""

    progress: float
    p_dropout: float
    p_success: float
    model_version: int
    basis: ScoreBasis


def _learned_p(model: ClassifierLike, x: dict[str, float]) -> float | None:
    """P(True) from what `model` learned; None where it has no opinion yet (a week without enough of both
    classes), so the label-free guess answers. A FirstOpinion's Prior member only keeps River's contract
    that a classifier always answers: the guess is the bundle's (ScoringModels._label_free)."""
    for member in model.members if isinstance(model, FirstOpinion) else [model]:
        if isinstance(member, Prior):
            return None
        proba = member.predict_proba_one(x)
        if proba:
            return clip(proba.get(True, 0.5), P_FLOOR, 1.0 - P_FLOOR)
    return None


def _guess_range(target: str) -> tuple[float, float]:
    """Where a label-free guess of `target` is kept: final progress in 0-100, probabilities off 0 and 1."""
    return (0.0, 100.0) if target == "progress" else (P_FLOOR, 1.0 - P_FLOOR)


def _week_learners(model: ClassifierLike) -> dict[int, ClassifierLike]:
    """Course week -> `model`'s learner of it, where it learns one per week."""
    first = model.members[0] if isinstance(model, FirstOpinion) else model
    return first.models if isinstance(first, PerWeekClassifier) else {}


def _week_forest(model: ClassifierLike, week: int) -> WindowForestClassifier | None:
    """`model`'s fitted window forest of course week `week`, if it has one (the `forest` family)."""
    learner = _week_learners(model).get(week)
    return learner if isinstance(learner, WindowForestClassifier) and learner.trees else None


def _learned_residual(model: RegressorLike, x: dict[str, float]) -> float | None:
    """Progress over its prior as `model` learned it; None where x's course week has no fitted model yet."""
    if isinstance(model, PerWeek):
        return model.opinion(x)
    return float(model.predict_one(x) or 0.0)


#: metric name -> its rolling value over a window of prequential (label, prediction) pairs
RollingMetrics = dict[str, utils.Rolling[metrics.base.Metric]]


class ProbabilityBias(metrics.base.MeanMetric, metrics.base.RegressionMetric):
    """The mean of P minus the outcome (1 or 0): how far a probability's level sits above (+) or below (-)
    the share that comes true, live (the evaluation's counterpart: evaluate.calibration_error, which says
    why the level matters); log loss mixes it with the ranking."""

    def _eval(self, y_true: bool, y_pred: float) -> float:
        return y_pred - float(y_true)


def _rolling_metrics(window: int) -> RollingMetrics:
    """The prequential metrics over the last `window` examples: the global set and each week's."""
    return {
        "progress_mae": utils.Rolling(metrics.MAE, window_size=window),
        "dropout_logloss": utils.Rolling(metrics.LogLoss, window_size=window),
        "dropout_auc": utils.Rolling(metrics.ROCAUC, window_size=window),
        "dropout_bias": utils.Rolling(ProbabilityBias, window_size=window),
        "success_logloss": utils.Rolling(metrics.LogLoss, window_size=window),
        "success_auc": utils.Rolling(metrics.ROCAUC, window_size=window),
        "success_bias": utils.Rolling(ProbabilityBias, window_size=window),
    }


def _update_metrics(rolling: RollingMetrics, label: Label, scores: Prediction) -> None:
    if label.progress is not None:
        rolling["progress_mae"].update(label.progress, scores.progress)
    for target, outcome, p in (("dropout", label.dropout, scores.p_dropout),
                               ("success", label.success, scores.p_success)):
        for metric in ("logloss", "auc", "bias"):
            rolling[f"{target}_{metric}"].update(outcome, p)


def _with_every_metric(rolling: RollingMetrics, window: int) -> None:
    """A version published before a metric existed gets it, empty (its window fills as labels arrive)."""
    for name, metric in _rolling_metrics(window).items():
        rolling.setdefault(name, metric)


def _metric_values(rolling: RollingMetrics) -> dict[str, float | None]:
    """Each rolling metric, or None where its window cannot define it: no example yet, or (ROC AUC)
    only one class in the window, where River reports -0.0, which looks measured."""
    out: dict[str, float | None] = {}
    for name, metric in rolling.items():
        labels = {args[0] for args, _ in metric.window}
        defined = len(labels) == 2 if name.endswith("_auc") else bool(labels)
        out[name] = float(metric.obj.get()) if defined else None
    return out


def metric_week(x: dict[str, float]) -> int:
    """The course week x's example counts for in the per-week metrics (late weeks pooled)."""
    return min(max(course_week(x), 0), WEEK_CAP)


@dataclass
class WeekMetrics:
    """One course week's prequential metrics, and how many examples of that week were ever learned
    (the window holds at most WINDOW_PER_WEEK of them)."""

    rolling: RollingMetrics = field(default_factory=lambda: _rolling_metrics(WINDOW_PER_WEEK))
    examples: int = 0


@dataclass
class ScoringModels:
    """Versioned bundle of the three learners and their prequential (predict-then-learn) metrics.

    Version 0 (nothing learned) answers with the priors above. `n_labels` counts learned
    (course week's features, label) examples, `n_progress_labels` those with a known final progress.
    """

    family: str = DEFAULT_FAMILY
    seed: int = 0
    version: int = 0
    n_labels: int = 0
    n_progress_labels: int = 0
    learners: Learners = field(init=False)
    norms: CohortNorms = field(init=False, default_factory=CohortNorms)  # what reasons compare with
    #: (target, course week, class) -> the latest examples of that class, for `_rehearse`
    recent: dict[tuple[str, int, bool], list[dict[str, float]]] = field(init=False, default_factory=dict)
    rolling: RollingMetrics = field(init=False)
    #: metric_week -> that week's prequential metrics: a window over all weeks mixes week 1's guesses
    #: with week 10's, which the seed showed differ in quality
    by_week: dict[int, WeekMetrics] = field(init=False, default_factory=dict)
    #: the label-free guess learned from the running flows (None: the hand priors answer)
    surrogate: Surrogate | None = field(init=False, default=None)
    #: the level of the label-free probabilities, learned from the outcomes (online_models.guess_calibration)
    calibration: GuessCalibration = field(init=False, default_factory=GuessCalibration)
    #: surrogates fitted so far: a stack fitted on an older guess is fitted again
    guess_version: int = field(init=False, default=0)
    #: (target, course week) -> how its forest and the guess are weighed (online_models.guess_stack)
    stacks: dict[tuple[str, int], Stack] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.learners = FAMILIES[self.family](self.seed)
        self.rolling = _rolling_metrics(WINDOW)

    def predict(self, x: dict[str, float]) -> Prediction:
        """What the learners say where they have learned x's course week; elsewhere the label-free guess."""
        regressor, dropout, success = self.learners
        residual = _learned_residual(regressor, x) if self.n_progress_labels else None
        progress = self._label_free(x, "progress") if residual is None else clip(prior_progress(x) + residual)
        p_dropout, dropout_basis = self._answer(dropout, "dropout", x)
        p_success, success_basis = self._answer(success, "success", x)
        basis = ScoreBasis("guess" if residual is None else "learned", dropout_basis, success_basis)
        return Prediction(progress, p_dropout, p_success, self.version, basis)

    def p_dropout(self, x: dict[str, float]) -> float:
        return self._answer(self.learners[1], "dropout", x)[0]

    def _answer(self, model: ClassifierLike, target: str, x: dict[str, float]) -> tuple[float, Basis]:
        """The week's forest and the guess stacked where the forest has learned x's week (without the
        forest's out-of-bag P, published before stacks: the forest alone); elsewhere the guess at the
        outcomes' level. With what answered: a curator reads a guess no outcome has leveled as a ranking."""
        week = course_week(x)
        p = _learned_p(model, x) if self.n_labels else None
        if p is None:
            guess = self.calibration.calibrated(target, week, self._label_free(x, target))
            return (clip(guess, P_FLOOR, 1.0 - P_FLOOR),
                    "calibrated_guess" if self.calibration.has_outcomes(target) else "guess")
        stack = self._stack(model, target, week)
        return (p if stack is None else clip(stack.combine(p, self._label_free(x, target)), P_FLOOR, 1.0 - P_FLOOR),
                "learned")

    def _stack(self, model: ClassifierLike, target: str, week: int) -> Stack | None:
        """The week's stack, fitted again when its forest or the guess has changed since."""
        forest = _week_forest(model, week)
        if forest is None or forest.out_of_bag is None:
            return None
        fitted_for = (forest.fits, self.guess_version)
        stack = self.stacks.get((target, week))
        if stack is None or stack.fitted_for != fitted_for:
            rows, forest_p, outcomes = forest.fitted_window()
            guesses = self._label_free_rows(rows, target)
            stack = Stack(fitted_for, fit_weights(forest_p, guesses, outcomes), len(outcomes))
            self.stacks[(target, week)] = stack
        return stack

    def _label_free(self, x: dict[str, float], target: str) -> float:
        """The surrogate fitted on the running flows (online_models.surrogate) where it covers x's course
        week, else the hand prior."""
        value = None if self.surrogate is None else self.surrogate.predict(x, target)
        if value is None:
            return PRIORS[target](x)
        return clip(value, *_guess_range(target))

    def _label_free_rows(self, rows: np.ndarray, target: str) -> np.ndarray:
        """`_label_free` of every stored feature row (window_forest), the surrogate's trees walked for all at once."""
        values = np.full(len(rows), np.nan) if self.surrogate is None else self.surrogate.predict_rows(rows, target)
        for i in np.flatnonzero(np.isnan(values)):
            values[i] = PRIORS[target](row_input(rows[i]))
        return np.asarray(np.clip(values, *_guess_range(target)))

    def refit_surrogate(self, trajectories: Iterable[Trajectory]) -> Surrogate | None:
        """Refit the label-free guess on the running enrolments' snapshots (kept as is when too few)."""
        surrogate = fit_surrogate(trajectories, priors, self.seed)
        if surrogate is not None:
            self.surrogate = surrogate
            self.guess_version += 1
        return surrogate

    def explain(self, x: dict[str, float], p_dropout: float | None = None) -> tuple[Factor, ...]:
        """The hypotheses behind this student's P(dropout) (online_models.explain). `p_dropout`: x's own, where the
        caller has it from `predict`, so it is not asked again (one of the 4-5 times explaining asks the model)."""
        return explain(self.p_dropout, x, self.norms, self.p_dropout(x) if p_dropout is None else p_dropout)

    def learn_weeks(self, xs: list[dict[str, float]], label: Label) -> None:
        """Learn one label from each course week's features. All are scored first (the honest, prequential error:
        none of them has been learned yet), then learned."""
        before = [self.predict(x) for x in xs]
        for target in ("dropout", "success"):
            for x in xs:
                self.calibration.learn(target, course_week(x), self._label_free(x, target), getattr(label, target))
        regressor, dropout, success = self.learners
        for x, scores in zip(xs, before):
            week = self.by_week.setdefault(metric_week(x), WeekMetrics())
            week.examples += 1
            _update_metrics(self.rolling, label, scores)
            _update_metrics(week.rolling, label, scores)
        if label.progress is not None:
            _learn_batch(regressor, xs, [label.progress - prior_progress(x) for x in xs])
            self.n_progress_labels += len(xs)
        _learn_batch(dropout, xs, [label.dropout] * len(xs))
        self._rehearse(dropout, "dropout", xs, label.dropout)
        for x in xs:
            self.norms.learn_one(x)
        _learn_batch(success, xs, [label.success] * len(xs))
        self._rehearse(success, "success", xs, label.success)
        self.n_labels += len(xs)

    def settle(self) -> None:
        """Bring every learner up to all it has learned, before a batch of history is published
        (`scorer bootstrap`). The live trainer does not: refitting at every publish made strict-order
        dropout AUC worse on several real presentations (docs/models.md, "Several presentations")."""
        for learner in self.learners:
            _settle(learner)

    def _rehearse(self, learner: ClassifierLike, target: str, xs: list[dict[str, float]], y: bool) -> None:
        """After each example, one recent example of the other class of the same week: however the
        labels arrive (real ones come sorted by result), the learner sees the classes interleaved."""
        buffers = self.recent
        for x in xs:
            week = course_week(x)
            other = buffers.get((target, week, not y))
            if other:
                rehearsed = other.pop(0)
                _relearn(learner, rehearsed, not y)
                other.append(rehearsed)
            mine = buffers.setdefault((target, week, y), [])
            mine.append(x)
            del mine[:-REHEARSAL]

    def metrics(self) -> dict[str, float | None]:
        """The rolling metrics over the last WINDOW examples of any week (None where undefined)."""
        return _metric_values(self.rolling)

    def metrics_by_week(self) -> dict[int, dict[str, float | None]]:
        """Per course week seen (`metric_week`), its rolling metrics over its last WINDOW_PER_WEEK
        examples (None where undefined) and `examples`, how many it ever learned."""
        return {week: {**_metric_values(m.rolling), "examples": m.examples}
                for week, m in sorted(self.by_week.items())}

    def metrics_by_week_json(self) -> dict[str, dict[str, float | None]]:
        """`metrics_by_week` keyed by the week as a string: JSON keys are strings, so this is the shape
        the published metadata, Postgres and `scorer evaluate --json` hold."""
        return {str(week): values for week, values in self.metrics_by_week().items()}

    def stack_weights(self) -> dict[str, dict[str, dict[str, float]]]:
        """target -> course week -> how it weighs its forest against the guess (online_models.guess_stack),
        every week's stack fitted to the models as they are now."""
        weights: dict[str, dict[str, dict[str, float]]] = {}
        for target, model in (("dropout", self.learners[1]), ("success", self.learners[2])):
            for week in sorted(_week_learners(model)):
                stack = self._stack(model, target, week)
                if stack is not None:
                    weights.setdefault(target, {})[str(week)] = stack.as_json()
        return weights

    def to_bytes(self) -> bytes:
        """Pickle, zlib-compressed: feature names repeat in every tree node, so it shrinks ~4x. Every
        week's stack is fitted first: a worker that loads the version scores at once."""
        self.stack_weights()
        return zlib.compress(pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL), 6)

    @classmethod
    def from_bytes(cls, blob: bytes) -> ScoringModels:
        models = pickle.loads(zlib.decompress(blob))
        if not isinstance(models, cls):
            raise TypeError(f"expected {cls.__name__}, got {type(models).__name__}")
        if not hasattr(models, "norms"):  # a version published before reasons: no cohort seen yet
            models.norms = CohortNorms()
        if not hasattr(models, "recent"):  # published before rehearsal: nothing to rehearse yet
            models.recent = {}
        if not hasattr(models, "by_week"):  # published before per-week metrics: they start empty
            models.by_week = {}
        if not hasattr(models, "surrogate"):  # published before surrogates: the priors answer until a refit
            models.surrogate = None
        if not hasattr(models, "calibration"):  # published before it: the guesses keep their level until labels
            models.calibration = GuessCalibration()
        if not hasattr(models, "stacks"):  # published before stacks: each forest answers alone until its next fit
            models.stacks, models.guess_version = {}, 0
        _with_every_metric(models.rolling, WINDOW)
        for week in models.by_week.values():
            _with_every_metric(week.rolling, WINDOW_PER_WEEK)
        return models
