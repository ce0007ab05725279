"""The River building blocks the model families (online_models.families) are built from.

Learners with one model per course week (`PerWeek`), blends that weigh their members per course week
by their recent loss (`WeekBlend`), the hand priors as members that never learn (`Prior`,
`PriorResidual`), the first member with an opinion answering (`FirstOpinion`), and how ScoringModels
walks them (`settle`, `learn_batch`, `relearn`). They are pickled in every published model version:
each class keeps its name, and versions published before this module existed name it
online_models.learners.<name> (online_models.learners.MOVED says where it lives now).
"""
from __future__ import annotations

import abc
import math
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any, Generic, Protocol, TypeVar

from river import base, compose, forest, linear_model, optim, preprocessing

from online_models.logistic import logit
from online_models.priors import prior_dropout, prior_progress, prior_success
from online_models.window_forest import WindowForestClassifier, WindowForestRegressor

#: Weight of the newest loss in a WeekBlend member's per-week moving average.
LOSS_DECAY = 0.02
#: Sharpness of WeekBlend: weight ~ loss ** -BLEND_POWER (large = nearly "pick the best").
BLEND_POWER = 8.0


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
    name prior_dropout and prior_success in online_models.learners, and load through its MOVED."""

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
        yield {"members": [Prior(prior_dropout), logistic()]}

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
        yield {"members": [logistic(), Prior(prior_dropout)]}

    def learn_one(self, x: RiverX, y: base.typing.ClfTarget) -> None:
        for member in self.members:
            member.learn_one(x, y)

    def predict_proba_one(self, x: RiverX, **kwargs: Any) -> dict[base.typing.ClfTarget, float]:
        for member in self.members:
            proba = member.predict_proba_one(x)
            if proba:
                return proba
        return {}


def settle(learner: object) -> None:
    """Every window learner inside `learner` refits on all it has learned (window_forest: between
    fits the newest examples wait); the learners that learn one example at a time are always current."""
    if isinstance(learner, WindowForestClassifier | WindowForestRegressor):
        learner.settle()
    elif isinstance(learner, _PerWeek):
        for week_learner in learner.models.values():
            settle(week_learner)
    elif isinstance(learner, FirstOpinion | _WeekBlend):
        for member in learner.members:
            settle(member)


def keeps_windows(learner: object) -> bool:
    """Whether `learner` learns into windows of snapshots (online_models.window_forest), which read a learned
    x's course and flow (window_forest.COURSE, FLOW) to keep each course's latest flows; other learners would take
    them for features."""
    if isinstance(learner, FirstOpinion):
        return keeps_windows(learner.members[0])
    return bool(getattr(learner, "order_free", False))


def learn_batch(learner: Learner[Y], xs: list[dict[str, float]], ys: list[Y]) -> None:
    if isinstance(learner, _WeekBlend):
        learner.learn_batch(xs, ys)
    else:
        for x, y in zip(xs, ys):
            learner.learn_one(x, y)


def relearn(learner: ClassifierLike, x: dict[str, float], y: bool) -> None:
    """Learn an example seen before; a blend's members learn it but its losses do not count it
    (a loss on a learned example would reward the member that memorises)."""
    for member in getattr(learner, "members", [learner]):
        if not getattr(member, "order_free", False):
            member.learn_one(x, y)


# -- the logistic member -----------------------------------------------------------------------
# Here rather than with the families that use it (online_models.families): the River test parameters
# of the blends above (`_unit_test_params`) build it too, and this module cannot import the families.


def logistic() -> ClassifierLike:
    return (compose.FuncTransformer(with_priors) | compose.FuncTransformer(weekly_interactions)
            | preprocessing.StandardScaler() | linear_model.LogisticRegression(optimizer=optim.Adam(0.001)))
