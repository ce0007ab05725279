"""A random forest refit on a sliding window of the latest labelled snapshots, as a River learner.

Measured on the OULAD import and on generated data (`scorer evaluate`), River's incremental
trees and linear models trailed the seed's per-week random forests (up to 0.08 AUC in a week), while a
forest fitted on one course week's current features matched them (trajectory columns added
nothing). So the strongest online learner we have is the forest itself, kept current: each
(target, course week) learner holds each course's latest WINDOW labelled snapshots and refits when the
window has grown by REFIT_GROWTH since the last fit. Memory and the published blob stay
bounded (the window is float32 arrays of at most WHOLE_WINDOWS * WINDOW rows, and those learned since the last fit;
the fitted trees are kept as flat arrays), and a recent window follows a school whose students change.

The fitted trees are walked in plain Python for one row at a time: scikit-learn's
`predict_proba` costs ~2 ms per call (input validation, thread dispatch), the walk ~0.1 ms.
Until MIN_CLASS of each class (or, for a regressor, MIN_EXAMPLES) are in the window the learner
has no opinion, and the model answers with its label-free guess (learners.ScoringModels.predict).
"""
from __future__ import annotations

from array import array
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from river import base
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestClassifier
from sklearn.metrics import log_loss
from threadpoolctl import threadpool_limits

from features import FEATURE_NAMES
from online_models.scoring_copy import reduce_with

#: Snapshots kept per learner and course: about two cohorts of a course week; the oldest leaves first.
#: Measured against 1,000 (docs/models.md, "A course week's window keeps each course's latest snapshots").
WINDOW = 2000
#: Courses whose windows a learner keeps whole: beyond them the courses share this many windows equally
#: (a course with fewer snapshots keeps them all), so a fit costs at most this many windows' rows.
WHOLE_WINDOWS = 2
#: The key of a learned x that names its course (the trainer adds it; the trees never see it): the
#: window keeps each course's latest snapshots, not only the school's.
COURSE = "course_id"
#: The course of snapshots learned without one (and of windows stored before courses were kept).
NO_COURSE = -1
#: The key of a learned x that names its flow (the trainer adds it; the trees never see it): a course beyond its
#: share keeps its latest flows whole and a random part of the one it cuts, whatever order that flow's outcomes
#: were learned in (docs/models.md, "A course's window keeps its latest flows, and a fair part of the one it cuts").
FLOW = "flow_id"
#: The flow of snapshots learned without one (and of windows stored before flows were kept): they leave oldest first.
NO_FLOW = -1
#: A window's arrays with one entry per snapshot, kept or dropped together.
PER_ROW = ("rows", "targets", "courses", "flows")
#: Refit once the window holds this share more examples than at the last fit (and after
#: every REFIT_AFTER new ones once it is full): about ten fits to fill a window.
REFIT_GROWTH = 0.5
REFIT_AFTER = 250
#: A classifier fits once each class has this many snapshots, a regressor once it has MIN_EXAMPLES.
MIN_CLASS = 20
MIN_EXAMPLES = 40
#: The seed's forests, made smaller so a published version stays a few MB: 50 trees.
FOREST_PARAMS: dict[str, Any] = {"n_estimators": 50, "max_features": "sqrt", "n_jobs": 1}
#: The students a leaf must hold: each classifier fit tries these and keeps the forest whose
#: out-of-bag log loss is lowest. Measured (five random splits of the OULAD import, three seeds of
#: the generated school): OULAD dropout gained with every larger leaf (mean AUC .613 with 5, .623
#: with 10, .637 with 20, .646 with 40, .654 with 80), while the generated school's late weeks
#: (AUC .9-.99) lost with them (80: dropout -.008, success -.011); no single size suited both.
#: Chosen per fit, neither lost, at three fits' cost (learning ~1.6x). Chosen by out-of-bag AUC
#: instead, a few hundred windowed rows ranked the sizes by noise in some fits: OULAD split 0's
#: week-2 dropout AUC was .609 against .660 by log loss, and the five splits' mean .642 against .653
#: (log loss, a proper score, also weighs how well calibrated each forest is).
LEAF_SIZES = (10, 40, 80)
#: Out-of-bag probabilities are clipped to [OOB_CLIP, 1 - OOB_CLIP] before the log loss.
OOB_CLIP = 1e-3
#: Progress is scored by its mean absolute error, which a forest of means does not minimise:
#: gradient-boosted trees on the absolute error (the median) did, by 1-2 points a week.
BOOSTING_PARAMS: dict[str, Any] = {"loss": "absolute_error", "max_iter": 60, "learning_rate": 0.08,
                                   "max_leaf_nodes": 15, "min_samples_leaf": 20, "l2_regularization": 1.0}
#: Columns, in order: every engagement feature the models see (learners.EXCLUDED_FEATURES is
#: not imported to keep this module below learners; a constant column costs a forest nothing).
COLUMNS: tuple[str, ...] = FEATURE_NAMES


def feature_row(x: Mapping[Any, float]) -> list[float]:
    """x as the trees' input row: COLUMNS in order, 0 where x has no value."""
    return [float(x.get(name, 0.0)) for name in COLUMNS]


def course_share(sizes: Sequence[int], per_course: int, total: int) -> int:
    """The most snapshots each course may keep: up to `per_course`, and together at most `total` (water-filling:
    a course with fewer than its share keeps them all and leaves the rest to the others)."""
    left, courses = total, len(sizes)
    for served, size in enumerate(sorted(sizes)):
        share = min(per_course, left // (courses - served))
        if size > share:
            return share
        left -= size
    return per_course


def latest_of_each_course(courses: np.ndarray, per_course: int, total: int, flows: np.ndarray | None = None,
                          rng: np.random.Generator | None = None) -> np.ndarray:
    """Which rows a window keeps (rows oldest first, `courses` their courses, `flows` their flows): each course's
    `course_share` rows of its latest flows, a flow being as recent as its last row; of the flow that does not fit
    whole, a random part (`rng`): real outcomes arrive sorted (withdrawals first, passes and fails at the end), and
    a flow's latest rows are its last outcomes (docs/models.md). Rows of NO_FLOW each count as a flow of their own
    (the oldest leave first). With one course, its latest `min(per_course, total)`. Rows of NO_COURSE alone are
    one course too; beside named courses they are a window stored before courses were kept, and leave as
    the named ones arrive, the oldest first, as that window's rows would have."""
    named = courses != NO_COURSE
    kept = np.zeros(len(courses), dtype=bool)
    flows = np.full(len(courses), NO_FLOW, dtype=np.int64) if flows is None else flows
    kept[named] = _latest_per_course(courses[named], flows[named], per_course, total,
                                     np.random.default_rng(0) if rng is None else rng)
    unnamed = np.flatnonzero(~named)
    room = max(0, min(per_course - int(named.sum()), total - int(kept.sum())))
    kept[unnamed[max(0, len(unnamed) - room):]] = True
    return kept


def _latest_per_course(courses: np.ndarray, flows: np.ndarray, per_course: int, total: int,
                       rng: np.random.Generator) -> np.ndarray:
    index = np.arange(len(courses))
    recency = index.copy()  # a row's flow's last row; a row of NO_FLOW its own
    named = flows != NO_FLOW
    if named.any():
        _, flow_of_row = np.unique(courses[named] * (1 << 32) + flows[named], return_inverse=True)
        last = np.zeros(int(flow_of_row.max()) + 1, dtype=np.int64)
        np.maximum.at(last, flow_of_row, index[named])
        recency[named] = last[flow_of_row]
    _, course_of_row, sizes = np.unique(courses, return_inverse=True, return_counts=True)
    share = course_share(sizes.tolist(), per_course, total)
    order = np.lexsort((rng.random(len(courses)), -recency, course_of_row))  # by course, latest flows first
    starts = np.cumsum(sizes) - sizes
    rank = np.empty(len(courses), dtype=np.int64)
    rank[order] = index - np.repeat(starts, sizes)
    return rank < share


def row_input(row: Sequence[float]) -> dict[str, float]:
    """A stored row back as the x it was made from: every feature the models see has a value in x, so
    only the float32 rounding differs (and flow_num, which they do not see, reads 0)."""
    return {name: float(value) for name, value in zip(COLUMNS, row)}


@dataclass(frozen=True)
class FlatTree:
    """One fitted tree as flat arrays: node i splits on `feature[i] <= threshold[i]` (left) or is
    a leaf (`left[i] == -1`) predicting `value[i]`. `array.array` indexes as fast as a list and
    pickles as raw bytes, so a published version stays small and quick to load."""

    left: array[int]
    right: array[int]
    feature: array[int]
    threshold: array[float]
    value: array[float]

    @classmethod
    def of(cls, left: Any, right: Any, feature: Any, threshold: Any, value: Any) -> FlatTree:
        """From numpy arrays of one fitted tree."""
        return cls(array("i", np.asarray(left, dtype=np.int32).tobytes()),
                   array("i", np.asarray(right, dtype=np.int32).tobytes()),
                   array("i", np.asarray(feature, dtype=np.int32).tobytes()),
                   array("d", np.asarray(threshold, dtype=np.float64).tobytes()),
                   array("d", np.asarray(value, dtype=np.float64).tobytes()))

    def predict(self, row: Sequence[float]) -> float:
        node = 0
        left, right, feature, threshold = self.left, self.right, self.feature, self.threshold
        while left[node] != -1:
            node = left[node] if row[feature[node]] <= threshold[node] else right[node]
        return float(self.value[node])

    def predict_rows(self, rows: np.ndarray) -> np.ndarray:
        """`predict` of every row at once, one tree level per step: a stack's refit asks the guess for a whole
        window (guess_stack), and row by row in Python that was a tenth of a strict replay (docs/models.md)."""
        left, right = np.frombuffer(self.left, np.int32), np.frombuffer(self.right, np.int32)
        feature, threshold = np.frombuffer(self.feature, np.int32), np.frombuffer(self.threshold, np.float64)
        node = np.zeros(len(rows), dtype=np.intp)
        walking = np.flatnonzero(left[node] != -1)
        while len(walking):
            at = node[walking]
            goes_left = rows[walking, feature[at]] <= threshold[at]
            node[walking] = np.where(goes_left, left[at], right[at])
            walking = walking[left[node[walking]] != -1]
        return np.frombuffer(self.value, np.float64)[node]


def _forest_trees(estimators: Sequence[Any], positive: int) -> list[FlatTree]:
    """The trees of a fitted random forest classifier, each leaf predicting P(class `positive`)."""
    trees = []
    for estimator in estimators:
        tree = estimator.tree_
        values = tree.value[:, 0, :]
        leaf = values[:, positive] / np.maximum(values.sum(axis=1), 1e-12)
        trees.append(FlatTree.of(tree.children_left, tree.children_right, tree.feature, tree.threshold, leaf))
    return trees


def _out_of_bag_p(forest: RandomForestClassifier) -> np.ndarray:
    """Each row's P(True) from only the trees that did not see it (NaN where every tree did): an
    honest estimate from the window alone."""
    return np.asarray(forest.oob_decision_function_[:, list(forest.classes_).index(True)], dtype=np.float32)


def _out_of_bag_log_loss(scores: np.ndarray, labels: np.ndarray) -> float:
    """Log loss of the out-of-bag P(True) (clipped: a row every such tree put in a pure leaf scores 0 or 1)."""
    scored = ~np.isnan(scores)
    if not scored.any():
        return float("inf")
    return float(log_loss(labels[scored], np.clip(scores[scored], OOB_CLIP, 1 - OOB_CLIP), labels=[False, True]))


def boosted_trees(model: HistGradientBoostingRegressor) -> tuple[float, list[FlatTree]]:
    """A fitted gradient-boosting regressor as (bias, trees): its prediction is the bias plus the sum of
    the trees' leaves (already scaled by the learning rate)."""
    trees = []
    for [predictor] in model._predictors:  # private: the fitted trees have no public accessor
        nodes = predictor.nodes
        left = np.where(nodes["is_leaf"], -1, nodes["left"].astype(np.int64))  # stored unsigned
        trees.append(FlatTree.of(left, nodes["right"], nodes["feature_idx"], nodes["num_threshold"], nodes["value"]))
    return float(np.ravel(model._baseline_prediction)[0]), trees  # private, as above


class _Window(base.Estimator):
    """Each course's latest `window` snapshots (its oldest flows dropped first; `WHOLE_WINDOWS` windows in all) and
    the refit schedule, shared by both learners. Per course: outcomes arrive a flow at a time, and one window over
    the school's held the latest flows' courses alone (docs/models.md, "A course week's window keeps each
    course's latest snapshots")."""

    #: Order-free: a refit sees the whole window at once, so rehearsing examples (learners.ScoringModels)
    #: would only duplicate rows.
    order_free = True

    def __init__(self, window: int = WINDOW, seed: int = 0) -> None:
        self.window = window
        self.seed = seed
        self.rows = np.zeros((0, len(COLUMNS)), dtype=np.float32)
        self.targets = np.zeros(0, dtype=np.float32)
        self.courses = np.zeros(0, dtype=np.int64)
        self.flows = np.zeros(0, dtype=np.int64)
        self.fitted_at = 0  # examples in the window at the last fit (0: never fitted)
        self.since_fit = 0
        self.trees: list[FlatTree] = []
        self.bias, self.scale = 0.0, 1.0  # prediction = bias + scale * sum of the trees' leaves

    def __setstate__(self, state: dict[str, Any]) -> None:
        """A window pickled before a feature was appended to COLUMNS gets it as 0 in its stored rows:
        its trees never split on it (they index the columns they knew, which kept their places), and
        the rows it learns from now on carry it."""
        missing = len(COLUMNS) - state["rows"].shape[1]
        if missing > 0:
            state["rows"] = np.pad(state["rows"], ((0, 0), (0, missing)))
        state.setdefault("courses", np.full(len(state["targets"]), NO_COURSE, dtype=np.int64))
        state.setdefault("flows", np.full(len(state["targets"]), NO_FLOW, dtype=np.int64))
        self.__dict__.update(state)

    def _add(self, x: dict[Any, float], y: float) -> None:
        self.rows = np.vstack([self.rows, np.asarray([feature_row(x)], dtype=np.float32)])
        self.targets = np.append(self.targets, np.float32(y))
        self.courses = np.append(self.courses, np.int64(x.get(COURSE, NO_COURSE)))
        self.flows = np.append(self.flows, np.int64(x.get(FLOW, NO_FLOW)))
        self.since_fit += 1
        due = (not self.trees or self.since_fit >= REFIT_AFTER
               or min(len(self.targets), self.window) >= (1 + REFIT_GROWTH) * self.fitted_at)
        if due:
            self._refit()

    def settle(self) -> None:
        """Refit on the whole window if anything was learned since the last fit. Between fits up to
        REFIT_AFTER of the newest examples go unused, and real outcomes arrive sorted (a module's
        passes and fails in one burst at its end), so a model learned from a school's history
        (`scorer bootstrap`) could be published from a fit that never saw the burst. Measured on
        BBB's students dealt into four presentations, warm-started on the first two: week-9 dropout
        AUC .544 without settling, .673 with it (the seed's forest .629)."""
        if self.since_fit:
            self._refit()

    def _refit(self) -> None:
        """Fit on each course's share of its latest flows' rows (`latest_of_each_course`). The others leave only
        now: until the next fit the rows the last one saw stay together (fitted_window), whatever arrived since (at
        most REFIT_AFTER once fitted)."""
        kept = latest_of_each_course(self.courses, self.window, WHOLE_WINDOWS * self.window, self.flows,
                                     np.random.default_rng([self.seed, len(self.targets)]))
        if not kept.all():
            for name in PER_ROW:
                setattr(self, name, getattr(self, name)[kept])
            self._forget_fit_rows()
        if self._ready():
            with threadpool_limits(1):  # OpenMP threads fighting the worker for 2 cores made a fit 4x slower
                self._fit()
            self.fitted_at, self.since_fit = len(self.targets), 0

    def _forget_fit_rows(self) -> None:
        """Rows the last fit saw have left the window."""

    def _ready(self) -> bool:
        raise NotImplementedError

    def _fit(self) -> None:
        raise NotImplementedError

    def _predict(self, x: dict[Any, float]) -> float | None:
        if not self.trees:
            return None
        row = feature_row(x)
        return self.bias + self.scale * sum(tree.predict(row) for tree in self.trees)


def reduce_for_scoring(window: _Window) -> tuple[Any, ...]:
    """How a window learner pickles into a version's scoring copy (learners.ScoringModels.to_bytes): its trees
    and out-of-bag P without the rows it fits on, which a worker never reads. The rows were 85% of a version
    learned from a school of four courses (docs/models.md, "A worker loads a version without its windows")."""
    return reduce_with(window, {name: getattr(window, name)[:0] for name in PER_ROW})


class WindowForestClassifier(_Window, base.Classifier):
    """P(True) of a random forest fitted on the window (see the module docstring)."""

    #: min_samples_leaf of the forest in use (None: not fitted yet, or fitted before it was chosen)
    leaf_size: int | None = None
    #: the out-of-bag P(True) of each row the last fit saw (None: not fitted, or fitted before it was kept)
    out_of_bag: np.ndarray | None = None
    #: fits so far: what was learned from the out-of-bag P holds until the next one
    fits: int = 0

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        yield {"window": 100}

    def _ready(self) -> bool:
        positives = int(self.targets.sum())
        return min(positives, len(self.targets) - positives) >= MIN_CLASS

    def _fit(self) -> None:
        labels = self.targets > 0.5
        best: tuple[float, int, RandomForestClassifier, np.ndarray] | None = None
        for leaf in LEAF_SIZES:
            if best is not None and 2 * leaf > len(labels):
                break  # no split could leave two such leaves: a forest of stumps
            forest = RandomForestClassifier(**FOREST_PARAMS, min_samples_leaf=leaf, oob_score=True,
                                            random_state=self.seed).fit(self.rows, labels)
            scores = _out_of_bag_p(forest)
            loss = _out_of_bag_log_loss(scores, labels)
            if best is None or loss < best[0]:
                best = (loss, leaf, forest, scores)
        assert best is not None
        _, self.leaf_size, forest, self.out_of_bag = best
        self.trees = _forest_trees(forest.estimators_, list(forest.classes_).index(True))
        self.scale = 1.0 / len(self.trees)
        self.fits += 1

    def fitted_window(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rows, out-of-bag P, labels) of the rows the last fit saw that some tree did not see (rows learned
        since are not among them); empty before a fit, or once those rows left without a new fit."""
        if self.out_of_bag is None:
            return self.rows[:0], np.zeros(0, np.float32), self.targets[:0] > 0.5
        scored = ~np.isnan(self.out_of_bag)
        seen = slice(0, self.fitted_at)
        return self.rows[seen][scored], self.out_of_bag[scored], self.targets[seen][scored] > 0.5

    def _forget_fit_rows(self) -> None:
        self.out_of_bag = None  # no longer the rows it scored: no stack until the next fit

    def learn_one(self, x: dict[Any, float], y: base.typing.ClfTarget) -> None:
        self._add(x, 1.0 if y else 0.0)

    def predict_proba_one(self, x: dict[Any, float], **kwargs: Any) -> dict[base.typing.ClfTarget, float]:
        p = self._predict(x)
        return {} if p is None else {True: p, False: 1.0 - p}


class WindowForestRegressor(_Window, base.Regressor):
    """Gradient-boosted trees on the absolute error, fitted on the window; 0 (no change, on a
    residual target) until then."""

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        yield {"window": 100}

    def _ready(self) -> bool:
        return len(self.targets) >= MIN_EXAMPLES

    def _fit(self) -> None:
        model = HistGradientBoostingRegressor(**BOOSTING_PARAMS, random_state=self.seed).fit(self.rows, self.targets)
        self.bias, self.trees = boosted_trees(model)

    def learn_one(self, x: dict[Any, float], y: float) -> None:
        self._add(x, float(y))

    def predict_one(self, x: dict[Any, float]) -> float:
        value = self.opinion(x)
        return 0.0 if value is None else value

    def opinion(self, x: dict[Any, float]) -> float | None:
        """The fitted trees' prediction; None before the first fit, where `predict_one` says 0 (River
        regressors always answer) and the model answers with its label-free guess instead."""
        return self._predict(x)
