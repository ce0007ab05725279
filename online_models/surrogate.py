"""A label-free guess learned from the enrolments still running (a temporal-difference target).

Until a course week has outcomes, the models answer with hand-written priors (online_models.priors), which
read one week's features alone. A school's running flows know more without any outcome: a student now
in week 6 shows how one who looked like *this* in week 2 went on. The surrogate is fitted from every
running enrolment's earlier snapshots to the priors at its latest snapshot, so it predicts from what is
seen now what the priors will say weeks later; the models answer with it wherever no label has taught
them yet (learners.ScoringModels.predict). In strict time order on generated schools, whose first
outcomes arrive after the test flows' week 4, it is what answers in those weeks (docs/models.md, "In
strict time order"); where labels come early (the OULAD deals) the learned forests answer and it changes nothing.

Small on purpose: scoring walks its trees in Python for every student a batch touches, and the reasons
(online_models.explain) ask for P(dropout) several times more.
"""
from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from online_models.window_forest import COLUMNS, FlatTree, boosted_trees, feature_row

#: What a surrogate predicts, in the order the target function returns them.
TARGETS = ("progress", "dropout", "success")
#: Enrolments one fit learns from at most (a random sample): bounded cost, whatever the school's size.
MAX_ENROLMENTS = 3000
#: Fewer (earlier snapshot, later prior) rows than this and there is no surrogate: the priors answer.
MIN_ROWS = 200
#: A course week with fewer rows than this gets no guess from the surrogate: the week's priors answer,
#: rather than trees fitted on other weeks' rows. Late weeks have few (few running enrolments are past
#: them), and in a single presentation nobody is ahead, so the week being scored has none.
MIN_WEEK_ROWS = 100
#: 25 trees of 15 leaves per target. Measured on the generated school (1500 students, seed 11), strict
#: order: as good in weeks 1-4 as 100 trees of 31 (dropout AUC within .007, MAE within 0.2).
BOOSTING: dict[str, Any] = {"max_iter": 25, "learning_rate": 0.3, "max_leaf_nodes": 15, "min_samples_leaf": 20}

#: An enrolment's snapshots so far: course week -> model input.
Trajectory = Mapping[int, Mapping[str, float]]
#: The label-free targets of one snapshot, in TARGETS order.
TargetFunction = Callable[[Mapping[str, float]], Sequence[float]]
#: The column of a feature row that holds its course week.
_WEEK = COLUMNS.index("course_week")


@dataclass(frozen=True)
class _Boosted:
    bias: float
    trees: list[FlatTree]

    def predict(self, row: Sequence[float]) -> float:
        return self.bias + sum(tree.predict(row) for tree in self.trees)

    def predict_rows(self, rows: np.ndarray) -> np.ndarray:
        """`predict` of every row, summed in the same order (so each equals it to the last bit)."""
        total = np.zeros(len(rows))
        for tree in self.trees:
            total += tree.predict_rows(rows)
        return self.bias + total


@dataclass(frozen=True)
class Surrogate:
    """One boosted model per target, and what it was fitted on (for the published version's metadata)."""

    models: dict[str, _Boosted]
    enrolments: int
    rows: int
    rows_by_week: dict[int, int]

    def predict(self, x: Mapping[str, float], target: str) -> float | None:
        """`target`'s label-free guess for x (not clipped: the caller knows the target's range); None
        where x's course week had fewer than MIN_WEEK_ROWS rows."""
        row = feature_row(x)
        if self.rows_by_week.get(int(row[_WEEK]), 0) < MIN_WEEK_ROWS:
            return None
        return self.models[target].predict(row)

    def predict_rows(self, rows: np.ndarray, target: str) -> np.ndarray:
        """`predict` of every feature row (window_forest.feature_row), NaN where it would say None."""
        weeks = [week for week, count in self.rows_by_week.items() if count >= MIN_WEEK_ROWS]
        covered = np.isin(rows[:, _WEEK].astype(np.int64), weeks)
        return np.where(covered, self.models[target].predict_rows(rows), np.nan)


def training_rows(trajectories: Iterable[Trajectory], targets: TargetFunction) -> tuple[np.ndarray, np.ndarray, int]:
    """(rows, targets, enrolments): every snapshot before an enrolment's latest, with the targets at that latest
    one. Each trajectory is let go once its rows are in the arrays (a store's sample is read as this iterates),
    and the arrays grow by doubling: tens of thousands of row lists, or of decoded weeks, alive until the end
    made the garbage collector scan them and their release hold the GIL (and a worker's event loop) for
    tens of ms at a time."""
    rows = np.empty((1024, len(COLUMNS)), dtype=np.float32)
    values = np.empty((len(rows), len(TARGETS)), dtype=np.float64)
    filled = enrolments = 0
    for trajectory in trajectories:
        enrolments += 1
        if len(trajectory) < 2:
            continue
        if filled + len(trajectory) > len(rows):
            size = max(2 * len(rows), filled + len(trajectory))
            rows, values = _grown(rows, size), _grown(values, size)
        latest = max(trajectory)
        later = targets(trajectory[latest])
        for week, x in trajectory.items():
            if week < latest:
                rows[filled] = feature_row(x)
                values[filled] = later
                filled += 1
    return rows[:filled], values[:filled], enrolments


def _grown(array: np.ndarray, size: int) -> np.ndarray:
    bigger = np.empty((size, array.shape[1]), dtype=array.dtype)
    bigger[:len(array)] = array
    return bigger


def fit_surrogate(trajectories: Iterable[Trajectory], targets: TargetFunction, seed: int = 0) -> Surrogate | None:
    """Fit on at most MAX_ENROLMENTS of `trajectories` (a seeded sample of a longer list; a store's sample is
    bounded already); None with fewer than MIN_ROWS rows."""
    if isinstance(trajectories, Sequence) and len(trajectories) > MAX_ENROLMENTS:
        trajectories = random.Random(seed).sample(list(trajectories), MAX_ENROLMENTS)
    rows, values, enrolments = training_rows(trajectories, targets)
    if len(rows) < MIN_ROWS:
        return None
    weeks, counts = np.unique(rows[:, _WEEK].astype(np.int64), return_counts=True)
    models = {}
    with threadpool_limits(1):  # as window_forest: OpenMP threads would fight the worker for the cores
        for column, target in enumerate(TARGETS):
            model = HistGradientBoostingRegressor(**BOOSTING, random_state=seed).fit(rows, values[:, column])
            models[target] = _Boosted(*boosted_trees(model))
    return Surrogate(models, enrolments=enrolments, rows=len(rows),
                     rows_by_week={int(w): int(n) for w, n in zip(weeks, counts)})
