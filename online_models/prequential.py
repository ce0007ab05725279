"""The prequential (predict-then-learn) metrics of a ScoringModels: each example is scored before it is
learned, over a rolling window of all weeks and one of each course week (`WeekMetrics`). They are
published with every version (its metadata, the console, the gauges), and pickled in it: versions
published before this module existed name ProbabilityBias and WeekMetrics online_models.learners.<name>
(online_models.learners.MOVED says where they live now).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from river import metrics, utils

from online_models.labels import Label
from online_models.week_learners import course_week

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

#: metric name -> its rolling value over a window of prequential (label, prediction) pairs
RollingMetrics = dict[str, utils.Rolling[metrics.base.Metric]]


class ProbabilityBias(metrics.base.MeanMetric, metrics.base.RegressionMetric):
    """The mean of P minus the outcome (1 or 0): how far a probability's level sits above (+) or below (-)
    the share that comes true, live (the evaluation's counterpart: evaluate.calibration_error, which says
    why the level matters); log loss mixes it with the ranking."""

    def _eval(self, y_true: bool, y_pred: float) -> float:
        return y_pred - float(y_true)


def rolling_metrics(window: int) -> RollingMetrics:
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


class Scores(Protocol):
    """What the metrics read of a prediction (online_models.learners.Prediction, which needs them)."""

    @property
    def progress(self) -> float: ...

    @property
    def p_dropout(self) -> float: ...

    @property
    def p_success(self) -> float: ...


def update_metrics(rolling: RollingMetrics, label: Label, scores: Scores) -> None:
    if label.progress is not None:
        rolling["progress_mae"].update(label.progress, scores.progress)
    for target, outcome, p in (("dropout", label.dropout, scores.p_dropout),
                               ("success", label.success, scores.p_success)):
        for metric in ("logloss", "auc", "bias"):
            rolling[f"{target}_{metric}"].update(outcome, p)


def with_every_metric(rolling: RollingMetrics, window: int) -> None:
    """A version published before a metric existed gets it, empty (its window fills as labels arrive)."""
    for name, metric in rolling_metrics(window).items():
        rolling.setdefault(name, metric)


def metric_values(rolling: RollingMetrics) -> dict[str, float | None]:
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

    rolling: RollingMetrics = field(default_factory=lambda: rolling_metrics(WINDOW_PER_WEEK))
    examples: int = 0
