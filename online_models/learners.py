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

This module is the bundle (`ScoringModels`) and what it answers (`Prediction`). The learners it holds are
built from the building blocks (online_models.week_learners) by the families (online_models.families), and
its prequential metrics are online_models.prequential; versions published before they moved there name
their classes in this module (`MOVED`).
"""
from __future__ import annotations

import copyreg
import io
import math
import pickle
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from features.hypotheses import Factor
from online_models.explain import CohortNorms, explain
from online_models.families import DEFAULT_FAMILY, FAMILIES, Learners
from online_models.guess_calibration import GuessCalibration
from online_models.guess_stack import Stack, fit_weights
from online_models.labels import Label
from online_models.prequential import (
    WINDOW,
    WINDOW_PER_WEEK,
    RollingMetrics,
    WeekMetrics,
    metric_values,
    metric_week,
    rolling_metrics,
    update_metrics,
    with_every_metric,
)
from online_models.priors import PRIORS, clip, prior_progress, priors
from online_models.scoring_copy import reduce_with
from online_models.surrogate import Surrogate, Trajectory, fit_surrogate
from online_models.week_learners import (
    ClassifierLike,
    FirstOpinion,
    PerWeek,
    PerWeekClassifier,
    Prior,
    RegressorLike,
    course_week,
    keeps_windows,
    learn_batch,
    relearn,
    settle,
)
from online_models.window_forest import (
    COURSE,
    FLOW,
    WindowForestClassifier,
    WindowForestRegressor,
    reduce_for_scoring,
    row_input,
)
from streams.contract.outputs import Basis, ScoreBasis

#: Probabilities are kept off 0/1 so a confident miss costs a finite log loss.
P_FLOOR = 0.01


def off_the_edges(p: float) -> float:
    """`p` kept in [P_FLOOR, 1 - P_FLOOR] without losing its rank: within twice the floor of 0 or 1 it moves
    half the way to the floor, elsewhere it is itself. A clip made one tie of every probability a level shift
    had pushed past the floor: on BBB, warm, in course weeks 26-32, where a week's guess is shifted to a dropout
    rate of 1-5%, most students sat at the floor and the dropout AUC fell from the guess's .70-.87 to .56-.68
    (docs/models.md, "A floor that keeps the ranking")."""
    if p < 2.0 * P_FLOOR:
        return P_FLOOR + p / 2.0
    if p > 1.0 - 2.0 * P_FLOOR:
        return 1.0 - P_FLOOR - (1.0 - p) / 2.0
    return p


#: Examples kept per (target, course week, class) to rehearse: the learner sees the classes
#: interleaved even when a block of one arrives (bounded: 2 targets x weeks x 2 classes x this).
REHEARSAL = 16
#: Engagement features the models do not see: a flow number only says which cohort a student
#: is in, and a new cohort's number is one the model has never seen.
EXCLUDED_FEATURES = frozenset({"flow_num"})


def model_input(features: dict[str, float]) -> dict[str, float]:
    """The model's x: the engagement features (features.engagement.compute), finite floats only."""
    return {
        k: float(v) for k, v in features.items()
        if k not in EXCLUDED_FEATURES and v is not None and math.isfinite(v)
    }


# -- versions published before the split -------------------------------------------------------

#: Name -> the module it lives in now, for each class and function that published versions pickle as
#: online_models.learners.<name>: pickle names them by module, and they were defined (or imported) here
#: before online_models.priors and the split into online_models.week_learners, .families and .prequential.
#: `ScoringModels.from_bytes` looks them up where they are now, so every stored version keeps loading.
MOVED: dict[str, str] = {
    **dict.fromkeys(("FirstOpinion", "PerWeek", "PerWeekClassifier", "Prior", "PriorResidual", "WeekBlend",
                     "WeekBlendClassifier", "with_priors", "weekly_interactions"), "online_models.week_learners"),
    **dict.fromkeys(("ProbabilityBias", "WeekMetrics"), "online_models.prequential"),
    **dict.fromkeys(("prior_dropout", "prior_success"), "online_models.priors"),
}


class _Unpickler(pickle.Unpickler):
    """Reads a published version, finding each name of `MOVED` where it lives now."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "online_models.learners" and name in MOVED:
            module = MOVED[name]
        return super().find_class(module, name)


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
            return float(proba.get(True, 0.5))  # kept off 0 and 1 by the caller, after the stack
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


@dataclass
class ScoringModels:
    """Versioned bundle of the three learners and their prequential (predict-then-learn) metrics.

    Version 0 (nothing learned) answers with the priors (online_models.priors). `n_labels` counts learned
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
    #: a version's scoring copy (`to_bytes(scoring_only=True)`): it answers as the version does, and cannot learn
    scoring_only: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.learners = FAMILIES[self.family](self.seed)
        self.rolling = rolling_metrics(WINDOW)

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
            return off_the_edges(guess), "calibrated_guess" if self.calibration.has_outcomes(target) else "guess"
        stack = self._stack(model, target, week)
        return off_the_edges(p if stack is None else stack.combine(p, self._label_free(x, target))), "learned"

    def _stack(self, model: ClassifierLike, target: str, week: int) -> Stack | None:
        """The week's stack, fitted again when its forest or the guess has changed since."""
        forest = _week_forest(model, week)
        if forest is None or forest.out_of_bag is None:
            return None
        fitted_for = (forest.fits, self.guess_version)
        stack = self.stacks.get((target, week))
        if self.scoring_only:  # its windows were left out, every stack fitted first (`to_bytes`)
            return stack
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

    def learn_weeks(self, xs: list[dict[str, float]], label: Label, course: int | None = None,
                    flow: int | None = None) -> None:
        """Learn one label from each course week's features of an enrolment of `course` and `flow` (what the windows
        keep by: online_models.window_forest). All are scored first (the honest, prequential error: none of them has
        been learned yet), then learned."""
        if self.scoring_only:
            raise TypeError("a version's scoring copy has no windows to learn on: learn on its full form")
        before = [self.predict(x) for x in xs]
        for target in ("dropout", "success"):
            for x in xs:
                self.calibration.learn(target, course_week(x), self._label_free(x, target), getattr(label, target))
        regressor, dropout, success = self.learners
        cohort = {key: value for key, value in ((COURSE, course), (FLOW, flow)) if value is not None}
        of_cohort = [{**x, **cohort} for x in xs] if cohort else xs

        def inputs(learner: object) -> list[dict[str, float]]:
            return of_cohort if keeps_windows(learner) else xs
        for x, scores in zip(xs, before):
            week = self.by_week.setdefault(metric_week(x), WeekMetrics())
            week.examples += 1
            update_metrics(self.rolling, label, scores)
            update_metrics(week.rolling, label, scores)
        if label.progress is not None:
            learn_batch(regressor, inputs(regressor), [label.progress - prior_progress(x) for x in xs])
            self.n_progress_labels += len(xs)
        learn_batch(dropout, inputs(dropout), [label.dropout] * len(xs))
        self._rehearse(dropout, "dropout", xs, label.dropout)
        for x in xs:
            self.norms.learn_one(x)
        learn_batch(success, inputs(success), [label.success] * len(xs))
        self._rehearse(success, "success", xs, label.success)
        self.n_labels += len(xs)

    def settle(self) -> None:
        """Bring every learner up to all it has learned, before a batch of history is published
        (`scorer bootstrap`). The live trainer does not: refitting at every publish made strict-order
        dropout AUC worse on several real presentations (docs/models.md, "Several presentations")."""
        for learner in self.learners:
            settle(learner)

    def _rehearse(self, learner: ClassifierLike, target: str, xs: list[dict[str, float]], y: bool) -> None:
        """After each example, one recent example of the other class of the same week: however the
        labels arrive (real ones come sorted by result), the learner sees the classes interleaved."""
        buffers = self.recent
        for x in xs:
            week = course_week(x)
            other = buffers.get((target, week, not y))
            if other:
                rehearsed = other.pop(0)
                relearn(learner, rehearsed, not y)
                other.append(rehearsed)
            mine = buffers.setdefault((target, week, y), [])
            mine.append(x)
            del mine[:-REHEARSAL]

    def metrics(self) -> dict[str, float | None]:
        """The rolling metrics over the last WINDOW examples of any week (None where undefined)."""
        return metric_values(self.rolling)

    def metrics_by_week(self) -> dict[int, dict[str, float | None]]:
        """Per course week seen (`metric_week`), its rolling metrics over its last WINDOW_PER_WEEK
        examples (None where undefined) and `examples`, how many it ever learned."""
        return {week: {**metric_values(m.rolling), "examples": m.examples}
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

    def to_bytes(self, scoring_only: bool = False) -> bytes:
        """Pickle, zlib-compressed: feature names repeat in every tree node, so it shrinks ~4x. Every
        week's stack is fitted first: a worker that loads the version scores at once. `scoring_only`: without
        what only learning reads (the windows' rows, the examples to rehearse), for the workers, which hold the
        version they score with (docs/models.md, "A worker loads a version without its windows")."""
        self.stack_weights()
        buffer = io.BytesIO()
        pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
        if scoring_only:
            pickler.dispatch_table = {**copyreg.dispatch_table, ScoringModels: _reduce_for_scoring,
                                      WindowForestClassifier: reduce_for_scoring,
                                      WindowForestRegressor: reduce_for_scoring}
        pickler.dump(self)
        return zlib.compress(buffer.getvalue(), 6)

    @classmethod
    def from_bytes(cls, blob: bytes) -> ScoringModels:
        models = _Unpickler(io.BytesIO(zlib.decompress(blob))).load()
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
        with_every_metric(models.rolling, WINDOW)
        for week in models.by_week.values():
            with_every_metric(week.rolling, WINDOW_PER_WEEK)
        return models


def _reduce_for_scoring(models: ScoringModels) -> tuple[Any, ...]:
    """How the bundle pickles into its scoring copy: marked as one, without the examples it rehearses."""
    return reduce_with(models, {"scoring_only": True, "recent": {}})
