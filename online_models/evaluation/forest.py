"""The seed analysts' reference method, kept as the yardstick for the online model.

One random forest per course week k, trained offline on "cumulative weekly columns": every
feature as of the end of weeks 1..k side by side (`progress_1_week`, ..., `progress_k_week`),
so week k's forest sees the student's whole trajectory so far and nothing later. The seed
fit a RandomForestRegressor on m2_progress with the per-week hyper-parameters below; we add
RandomForestClassifiers with the same settings for dropout and success.

The seed's training sample was stratified by course (each course resampled to 500 rows so
small courses weigh as much as big ones); we get the same balance without duplicating rows by
weighting each training student 1 / (students of their course).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

from online_models.labels import Label

#: The seed's chosen forest per week (its `rf_models` dump).
SEED_HYPERPARAMS: dict[int, dict[str, object]] = {
    1: {"n_estimators": 50, "max_features": "log2"},
    2: {"n_estimators": 50, "max_features": "log2"},
    3: {"n_estimators": 50, "max_features": "log2"},
    4: {"n_estimators": 200, "max_features": "log2", "max_depth": 30},
    5: {"n_estimators": 50, "max_features": "log2"},
    6: {"n_estimators": 200, "max_features": "log2"},
    7: {"n_estimators": 200, "max_features": "sqrt"},
    8: {"n_estimators": 200, "max_features": "sqrt"},
    9: {"n_estimators": 200, "max_features": "sqrt"},
    10: {"n_estimators": 200, "max_features": "sqrt"},
}

#: (student, week) -> (progress, P(dropout), P(success)) of one method.
Predictions = dict[tuple[int, int], tuple[float, float, float]]

#: weekly[user_id][week] = that week's feature dict.
WeeklyFeatures = Mapping[int, Mapping[int, Mapping[str, float]]]


def cumulative_matrix(weekly: WeeklyFeatures, users: Sequence[int], week: int, names: Sequence[str]) -> np.ndarray:
    """Rows = users, columns = each feature at the end of weeks 1..week (missing -> 0)."""
    return np.array(
        [
            [float(weekly[u].get(w, {}).get(name, 0.0)) for w in range(1, week + 1) for name in names]
            for u in users
        ],
        dtype=float,
    )


def course_weights(courses: Sequence[int]) -> np.ndarray:
    """1 / course size, scaled to mean 1: every course weighs the same in training."""
    counts = Counter(courses)
    weights = np.array([1.0 / counts[c] for c in courses])
    total = float(weights.sum())
    return weights * len(weights) / total


def _p_true(model: ClassifierMixin, rows: np.ndarray) -> np.ndarray:
    classes = list(model.classes_)
    if True not in classes:
        return np.zeros(len(rows))
    p_true: np.ndarray = model.predict_proba(rows)[:, classes.index(True)]  # scikit-learn is untyped
    return p_true


class WeeklyForest:
    """The three forests of one course week."""

    def __init__(self, week: int, names: Sequence[str], seed: int = 0) -> None:
        params = {**SEED_HYPERPARAMS[min(week, max(SEED_HYPERPARAMS))], "random_state": seed, "n_jobs": -1}
        self.week = week
        self.names = list(names)
        self.progress = RandomForestRegressor(**params)
        self.dropout = RandomForestClassifier(**params)
        self.success = RandomForestClassifier(**params)

    def fit(self, weekly: WeeklyFeatures, labels: Mapping[int, Label], courses: Mapping[int, int]) -> WeeklyForest:
        users = sorted(labels)
        rows = cumulative_matrix(weekly, users, self.week, self.names)
        weights = course_weights([courses[u] for u in users])
        known = np.array([labels[u].progress is not None for u in users])
        self.progress.fit(
            rows[known], np.array([labels[u].progress for u in users if labels[u].progress is not None]),
            sample_weight=weights[known],
        )
        self.dropout.fit(rows, np.array([labels[u].dropout for u in users]), sample_weight=weights)
        self.success.fit(rows, np.array([labels[u].success for u in users]), sample_weight=weights)
        return self

    def predict(self, weekly: WeeklyFeatures, users: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(progress, P(dropout), P(success)) per user."""
        rows = cumulative_matrix(weekly, users, self.week, self.names)
        return np.clip(self.progress.predict(rows), 0, 100), _p_true(self.dropout, rows), _p_true(self.success, rows)

    def scores(self, weekly: WeeklyFeatures, users: Sequence[int]) -> Predictions:
        """`predict` as each (user, this week)'s scores, the shape every method's predictions take."""
        return {(u, self.week): (float(p), float(d), float(c))
                for u, p, d, c in zip(users, *self.predict(weekly, users))}
