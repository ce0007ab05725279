"""Time-ordered evaluation: the online model as it would have run live vs the seed's per-week forests.

    scorer evaluate DIR --json [--plot out.png] [--family blend] [--weeks 10] [--workers 2]

DIR is an LMS export (the seed's CSV files, e.g. from `scorer generate`). Every student gets
a feature snapshot at the end of each course week of their flow; then time runs forward:
each snapshot is scored by the online model *as it stands at that moment*, and each
module outcome (the label) teaches the model from all that student's earlier snapshots when
the live trainer would learn it (with the rest of its flow's: streams.core.step.label_release).
The forests are trained offline on the earlier flows and scored on the same (student, week)
pairs as the online model. Module outcomes arrive weeks after the features, and flows overlap,
so the strict replay is reported next to a "warm" one that gives the online model the forest's
training set first, and next to the seed's forest in time order, fitted only on the outcomes the strict
replay had learned by then (online_models.evaluation.forest_in_time; see the JSON's `protocol`).

Per week and method: progress MAE and MSE (the seed's two error measures) and the ROC AUC of
P(dropout) and P(success); the JSON's `courses` repeats the table per course, as the seed
validated per course. Each week also holds the online methods' gaps to the forest with paired 95%
intervals (`online_vs_forest`): a week holds a few hundred students, so a small gap can be chance. The text
table (online_models.evaluation.report) shows MAE and the AUCs, an online cell marked - or + where its
interval puts it worse or better.

The JSON's `online_prequential` and `online_prequential_by_week` are the strict replay's own
rolling metrics (what `scorer_model_rolling_error` and `scorer_model_week_metric` report live):
each label's snapshots scored by the model just before it learns them, over its last examples,
the second grouped by the snapshot's course week.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from features import FEATURE_NAMES
from online_models.evaluation.delong import delong_difference, stratified_difference
from online_models.evaluation.early_warning import report as early_warning_report
from online_models.evaluation.forest import Predictions, WeeklyForest
from online_models.evaluation.forest_in_time import MIN_LABELS, ForestInTime
from online_models.evaluation.online_replay import TAUGHT, OnlineRun, Taught, online_runs
from online_models.evaluation.progress import QUIET, Progress
from online_models.evaluation.students import (
    LEARN_AFTER,
    TRAIN_SHARE,
    Student,
    labels_of,
    load_students,
    split_by_flow,
)
from online_models.families import DEFAULT_FAMILY
from online_models.intervals import holm, paired_mean_difference, two_sided_p
from online_models.labels import Label
from online_models.learners import EXCLUDED_FEATURES
from online_models.prequential import WEEK_CAP, WINDOW, WINDOW_PER_WEEK
from online_models.priors import prior_progress
from streams.contract.outputs import ScoreBasis
from streams.core.step import StepConfig

#: The forest gets the online model's inputs, minus course_week (constant within a week's forest).
FOREST_FEATURES: tuple[str, ...] = tuple(n for n in FEATURE_NAMES if n not in EXCLUDED_FEATURES | {"course_week"})


def _mae(pairs: list[tuple[float | None, float]]) -> float | None:
    known = [abs(truth - guess) for truth, guess in pairs if truth is not None]
    return round(float(np.mean(known)), 3) if known else None


def _mse(pairs: list[tuple[float | None, float]]) -> float | None:
    known = [(truth - guess) ** 2 for truth, guess in pairs if truth is not None]
    return round(float(np.mean(known)), 3) if known else None


def _auc(truth: list[bool], scores: list[float]) -> float | None:
    if len(set(truth)) < 2:
        return None
    return round(float(roc_auc_score(truth, scores)), 3)


def _brier(truth: list[bool], p: list[float]) -> float:
    return round(float(np.mean((np.asarray(p) - np.asarray(truth, dtype=float)) ** 2)), 4)


#: Equal-width bins of P for the calibration error.
CALIBRATION_BINS = 10


def calibration_error(truth: list[bool], p: list[float]) -> float:
    """The expected calibration error: over CALIBRATION_BINS equal-width bins of P, the gap between the
    mean P and the share that came true, weighted by the bin's students. An alert fires at a fixed P
    (SCORER_AT_RISK_THRESHOLD), so whether a P of 0.6 comes true six times in ten is what sets how many
    students a school hears about, whatever the ranking's AUC."""
    probabilities, outcomes = np.asarray(p, dtype=float), np.asarray(truth, dtype=float)
    bins = np.minimum((probabilities * CALIBRATION_BINS).astype(int), CALIBRATION_BINS - 1)
    gap = 0.0
    for b in np.unique(bins):
        inside = bins == b
        gap += abs(probabilities[inside].mean() - outcomes[inside].mean()) * inside.sum()
    return round(gap / len(probabilities), 4)


def _metrics(labels: list[Label], progress: Iterable[float], dropout: Iterable[float],
             success: Iterable[float]) -> dict[str, float | None]:
    pairs = [(label.progress, float(p)) for label, p in zip(labels, progress)]
    out: dict[str, float | None] = {"mae": _mae(pairs), "mse": _mse(pairs)}
    for target, scores in (("dropout", dropout), ("success", success)):
        truth, p = [bool(getattr(label, target)) for label in labels], [float(v) for v in scores]
        out[f"auc_{target}"] = _auc(truth, p)
        out[f"brier_{target}"] = _brier(truth, p)
        out[f"calibration_{target}"] = calibration_error(truth, p)
    return out


#: (score, its column in a method's (progress, P(dropout), P(success)), the Label field it forecasts)
PROBABILITIES = (("p_dropout", 1, "dropout"), ("p_success", 2, "success"))
#: (metric, column, the Label field it ranks): each probability's AUC
AUCS = tuple((f"auc_{target}", column, target) for _, column, target in PROBABILITIES)


def _interval(difference: float, low: float, high: float) -> dict[str, float]:
    return {"difference": round(difference, 4), "low": round(low, 4), "high": round(high, 4),
            "p": float(f"{two_sided_p(difference, low, high):.3g}")}


def _truth(labels: list[Label], outcome_of: str) -> np.ndarray:
    return np.array([getattr(label, outcome_of) for label in labels], dtype=bool)


def _mae_gap(labels: list[Label], mine: list[float], other: list[float]) -> dict[str, float] | None:
    """`mine`'s progress MAE minus `other`'s on the same students, with a paired 95% interval (the mean of each
    student's absolute error minus the other's); null where no student has a final progress."""
    errors = [abs(label.progress - m) - abs(label.progress - o)
              for label, m, o in zip(labels, mine, other) if label.progress is not None]
    return _interval(*paired_mean_difference(errors)) if errors else None


def _paired(labels: list[Label], mine: list[tuple[float, float, float]],
            forest: list[tuple[float, float, float]]) -> dict[str, dict[str, float] | None]:
    """Per metric: this method's value minus the forest's on the same students, with a paired 95% interval
    and its two-sided p-value (null where undefined), so a week's gap can be told from the luck of which
    students it holds. The interval is per week and metric, not adjusted for the many of them: it flags a
    gap more readily (the summary's Holm verdicts adjust, from the p-values)."""
    out: dict[str, dict[str, float] | None] = {"mae": _mae_gap(labels, [m[0] for m in mine], [f[0] for f in forest])}
    for metric, column, outcome_of in AUCS:
        auc = delong_difference(np.array([m[column] for m in mine]), np.array([f[column] for f in forest]),
                                _truth(labels, outcome_of))
        out[metric] = None if auc is None else _interval(auc.difference, auc.low, auc.high)
    return out


def _within_flows(labels: list[Label], mine: list[tuple[float, float, float]], forest: list[tuple[float, float, float]],
                  flows: list[int]) -> dict[str, dict[str, float] | None]:
    """Per AUC: both methods' AUC inside each flow (a replay scores a flow's week at one moment with one model
    version), weighted by the flow's students, and the paired difference with its interval
    (delong.stratified_difference: pooled, a version's change of level between flows reads as bad ranking)."""
    out: dict[str, dict[str, float] | None] = {}
    for metric, column, outcome_of in AUCS:
        within = stratified_difference(np.array([m[column] for m in mine]), np.array([f[column] for f in forest]),
                                       _truth(labels, outcome_of), np.array(flows))
        out[metric] = None if within is None else {
            "method": round(within.a, 3), "forest": round(within.b, 3), "flows": within.strata,
            **_interval(within.difference.difference, within.difference.low, within.difference.high)}
    return out


def _levels_by_basis(labels: list[Label], predictions: list[tuple[float, float, float]],
                     bases: list[ScoreBasis]) -> dict[str, dict[str, dict[str, float]]]:
    """Per probability, per what answered it: how many scores, their mean and the share that came true. A guess
    no outcome has leveled ranks students, but its level need not be a frequency."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for score, column, target in PROBABILITIES:
        p, truth = np.array([prediction[column] for prediction in predictions]), _truth(labels, target)
        answered = np.array([getattr(basis, score) for basis in bases])
        out[score] = {basis: {"scores": int(mine.sum()), "mean_p": round(float(p[mine].mean()), 4),
                              "came_true": round(float(truth[mine].mean()), 4)}
                      for basis in sorted(set(answered)) for mine in [answered == basis]}
    return out


def _by_taught(labels: list[Label], mine: list[tuple[float, float, float]], forest: list[tuple[float, float, float]],
               taught_by: list[Taught]) -> dict[str, dict[str, Any]]:
    """Per `Taught` group of the week's scores: how many, and this method's and the forest's MAE and AUCs on
    them. A week's model that learned only from other courses carries their level to a course it has not seen."""
    out: dict[str, dict[str, Any]] = {}
    for group in TAUGHT:
        inside = [i for i, by in enumerate(taught_by) if by == group]
        if not inside:
            continue
        some = [labels[i] for i in inside]
        out[group] = {"scores": len(inside), "progress_scores": sum(label.progress is not None for label in some)}
        for method, predictions in (("method", mine), ("forest", forest)):
            values = _metrics(some, *zip(*(predictions[i] for i in inside)))  # already rounded
            out[group][method] = {metric: values[metric] for metric, _ in METRICS}
    return out


def _in_time(users: list[int], label_of: dict[int, Label], week: int, online: Predictions,
             timed: Predictions) -> dict[str, Any]:
    """The strict replay against the forest in time order (online_models.evaluation.forest_in_time) on the
    snapshots that forest scored: how many, how many it could not (too few outcomes yet), both methods' metrics
    on the same students and the paired intervals."""
    scored = [u for u in users if (u, week) in timed]
    out: dict[str, Any] = {"n": len(scored), "not_scored": len(users) - len(scored)}
    if scored:
        labels = [label_of[u] for u in scored]
        mine, theirs = [online[(u, week)] for u in scored], [timed[(u, week)] for u in scored]
        out |= {"online": _metrics(labels, *zip(*mine)), "forest_in_time": _metrics(labels, *zip(*theirs)),
                "online_vs_forest_in_time": _paired(labels, mine, theirs)}
    return out


def _row(week: int, users: list[int], label_of: dict[int, Label], weekly: dict[int, dict[int, dict[str, float]]],
         methods: dict[str, Predictions], runs: dict[str, OnlineRun], flow_of: Mapping[int, int],
         timed: Predictions) -> dict[str, Any]:
    """One week's metrics of every method on `users` (all test students, or one course's); `flow_of`: each
    student's flow, numbered; `timed`: the forest in time order's scores."""
    row: dict[str, Any] = {"week": week, "n": len(users)}
    if not users:
        return row
    labels = [label_of[u] for u in users]
    for name, predictions in methods.items():
        row[name] = _metrics(labels, *zip(*(predictions[(u, week)] for u in users)))
        if name in runs:
            row[f"{name}_labels_seen"] = round(float(np.mean([runs[name].labels_seen[(u, week)] for u in users])), 1)
            mine, forest = [predictions[(u, week)] for u in users], [methods["forest"][(u, week)] for u in users]
            row[f"{name}_vs_forest"] = _paired(labels, mine, forest)
            row[f"{name}_vs_forest_within_flows"] = _within_flows(labels, mine, forest, [flow_of[u] for u in users])
            row[f"{name}_by_basis"] = _levels_by_basis(labels, mine, [runs[name].bases[(u, week)] for u in users])
            row[f"{name}_by_taught"] = _by_taught(labels, mine, forest, [runs[name].taught[(u, week)] for u in users])
    row["in_time"] = _in_time(users, label_of, week, methods["online"], timed)
    prior = [(label.progress, prior_progress(weekly[u][week])) for label, u in zip(labels, users)]
    row["prior"] = {"mae": _mae(prior), "mse": _mse(prior)}
    for name in runs:  # does learning help?
        row[f"{name}_vs_prior"] = {"mae": _mae_gap(labels, [methods[name][(u, week)][0] for u in users],
                                                   [p for _, p in prior])}
    return row


def _week_rows(students: Sequence[Student], train: set[int], test: set[int], runs: dict[str, OnlineRun], weeks: int,
               seed: int, progress: Progress) -> tuple[list[dict[str, Any]], dict[int, list[dict[str, Any]]]]:
    """(the per-week rows over all test students, the same rows per course): the seed validates per course."""
    by_id = {s.id: s for s in students}
    label_of = labels_of(students)  # train and test are labelled
    weekly = {s.id: s.weekly for s in students}
    train_labels = {u: label_of[u] for u in train}
    courses = {u: by_id[u].course_id for u in train}
    numbers = {flow: n for n, flow in enumerate(sorted({(s.course_id, s.flow) for s in students}, key=str))}
    flow_of = {s.id: numbers[(s.course_id, s.flow)] for s in students}
    rows = []
    per_course: dict[int, list[dict[str, Any]]] = {c: [] for c in sorted({by_id[u].course_id for u in test})}
    in_time = ForestInTime(students, FOREST_FEATURES, seed)
    for week in range(1, weeks + 1):
        users = sorted(u for u in test if week in by_id[u].weekly and by_id[u].open_at(week))
        methods: dict[str, Predictions] = {name: run.predictions for name, run in runs.items()}
        timed: Predictions = {}
        if users:
            methods["forest"] = WeeklyForest(week, FOREST_FEATURES, seed).fit(weekly, train_labels, courses).scores(
                weekly, users)
            timed = in_time.scores(users, week)
            progress.say(f"week {week}: the seed's forest fitted, with hindsight and in time order; {len(users):,} "
                         "test enrolments compared")
        rows.append(_row(week, users, label_of, weekly, methods, runs, flow_of, timed))
        for course, course_rows in per_course.items():
            mine = [u for u in users if by_id[u].course_id == course]
            course_rows.append(_row(week, mine, label_of, weekly, methods, runs, flow_of, timed))
    return rows, per_course


METRICS = (("mae", True), ("auc_dropout", False), ("auc_success", False))  # (name, lower is better)
#: What the label-free prior is compared on (it forecasts final progress only)
MAE_ONLY = METRICS[:1]
#: (week, a method's paired interval against the forest) of one metric
WeekGaps = list[tuple[int, dict[str, float]]]


def beyond_chance(gap: dict[str, float], lower_is_better: bool) -> int:
    """1 where a method's paired interval against the forest lies wholly on the worse side, -1 wholly on the
    better side, 0 where it holds no difference."""
    if gap["low"] > 0:
        return 1 if lower_is_better else -1
    if gap["high"] < 0:
        return -1 if lower_is_better else 1
    return 0


def _versus(rows: list[dict[str, Any]], method: str, reference: str,
            metrics: Sequence[tuple[str, bool]]) -> dict[str, Any]:
    """Per metric: means over the weeks `method` and `reference` both have a value, the weeks `method` is worse,
    and the weeks its paired interval (`{method}_vs_{reference}` in each row) puts it worse or better beyond
    chance: each interval alone, and after Holm's adjustment over all the weeks and metrics of the table."""
    out: dict[str, Any] = {}
    key = f"{method}_vs_{reference}"
    gaps = {metric: [(r["week"], r[key][metric]) for r in rows if r["n"] and r[key][metric] is not None]
            for metric, _ in metrics}
    adjusted = _holm(gaps)
    for metric, lower_is_better in metrics:
        pairs = [(r["week"], r[method][metric], r[reference][metric]) for r in rows
                 if r["n"] and r[method][metric] is not None and r[reference][metric] is not None]
        out[metric] = {
            method: round(float(np.mean([o for _, o, _ in pairs])), 3) if pairs else None,
            reference: round(float(np.mean([f for _, _, f in pairs])), 3) if pairs else None,
            "worse_weeks": [w for w, o, f in pairs if (o > f if lower_is_better else o < f)],
            **_verdicts(gaps[metric], adjusted[metric], lower_is_better),
        }
    return out


def _versus_forest(rows: list[dict[str, Any]], method: str) -> dict[str, Any]:
    """`_versus` the forest on every metric, and whether `method` never trails it (raw, beyond chance, after
    Holm)."""
    out = _versus(rows, method, "forest", METRICS)
    per_metric = list(out.values())
    out["matches_or_beats_forest_every_week"] = not any(m["worse_weeks"] for m in per_metric)
    out["never_significantly_worse"] = not any(m["significantly_worse_weeks"] for m in per_metric)
    out["never_significantly_worse_holm"] = not any(m["significantly_worse_weeks_holm"] for m in per_metric)
    return out


def _versus_forest_within_flows(rows: list[dict[str, Any]], method: str) -> dict[str, Any]:
    """`_versus_forest` of the AUCs within flows (`_within_flows`), Holm's adjustment over this table alone."""
    key = f"{method}_vs_forest_within_flows"
    gaps = {metric: [(r["week"], r[key][metric]) for r in rows if r["n"] and r[key][metric] is not None]
            for metric, _, _ in AUCS}
    adjusted = _holm(gaps)
    out: dict[str, Any] = {}
    for metric, weekly in gaps.items():
        out[metric] = {
            method: round(float(np.mean([gap["method"] for _, gap in weekly])), 3) if weekly else None,
            "forest": round(float(np.mean([gap["forest"] for _, gap in weekly])), 3) if weekly else None,
            "worse_weeks": [w for w, gap in weekly if gap["method"] < gap["forest"]],
            **_verdicts(weekly, adjusted[metric], lower_is_better=False),
        }
    return out


def _verdicts(gaps: WeekGaps, held: list[bool], lower_is_better: bool) -> dict[str, list[int]]:
    """The weeks whose paired interval lies wholly on the worse or the better side, alone and where Holm's
    adjustment (`held`) keeps the gap."""
    verdicts = [(w, beyond_chance(gap, lower_is_better), kept) for (w, gap), kept in zip(gaps, held)]
    return {
        "significantly_worse_weeks": [w for w, verdict, _ in verdicts if verdict > 0],
        "significantly_better_weeks": [w for w, verdict, _ in verdicts if verdict < 0],
        "significantly_worse_weeks_holm": [w for w, verdict, kept in verdicts if verdict > 0 and kept],
        "significantly_better_weeks_holm": [w for w, verdict, kept in verdicts if verdict < 0 and kept],
    }


def _holm(gaps: dict[str, WeekGaps]) -> dict[str, list[bool]]:
    """Per metric, per week of `gaps`: whether its gap holds at family-wise level 5% over every week and
    metric of the table (intervals.holm on the paired intervals' p-values)."""
    flat = [gap["p"] for metric in gaps for _, gap in gaps[metric]]
    rejected = iter(holm(flat))
    return {metric: [next(rejected) for _ in gaps[metric]] for metric in gaps}


def _calibration(rows: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Per method, the Brier score and calibration error of each probability, averaged over the weeks."""
    out: dict[str, dict[str, float | None]] = {}
    for method in ("online", "online_warm", "forest"):
        values = {}
        for metric in ("brier_dropout", "calibration_dropout", "brier_success", "calibration_success"):
            weekly = [r[method][metric] for r in rows if r["n"]]
            values[metric] = round(float(np.mean(weekly)), 4) if weekly else None
        out[method] = values
    return out


def _by_basis_over_weeks(rows: list[dict[str, Any]], method: str) -> dict[str, dict[str, dict[str, float]]]:
    """The rows' `{method}_by_basis`, pooled over the weeks (each week's means weighted by its scores)."""
    totals: dict[str, dict[str, list[float]]] = {}
    for row in rows:
        for score, groups in row.get(f"{method}_by_basis", {}).items():
            for basis, level in groups.items():
                total = totals.setdefault(score, {}).setdefault(basis, [0.0, 0.0, 0.0])
                total[0] += level["scores"]
                total[1] += level["scores"] * level["mean_p"]
                total[2] += level["scores"] * level["came_true"]
    return {score: {basis: {"scores": int(n), "mean_p": round(p / n, 4), "came_true": round(y / n, 4)}
                    for basis, (n, p, y) in sorted(groups.items())} for score, groups in totals.items()}


def _by_taught_over_weeks(rows: list[dict[str, Any]], method: str) -> dict[str, dict[str, float | None]]:
    """The rows' `{method}_by_taught` pooled over the weeks: per group, its scores and both methods' MAE over
    them (each week's weighted by its scores with a known final progress; AUCs do not pool across weeks)."""
    totals: dict[str, list[float]] = {}
    for row in rows:
        for group, part in row.get(f"{method}_by_taught", {}).items():
            total = totals.setdefault(group, [0.0, 0.0, 0.0, 0.0])
            weight = part["progress_scores"]
            total[0] += part["scores"]
            total[1] += weight
            if weight:
                total[2] += weight * part["method"]["mae"]
                total[3] += weight * part["forest"]["mae"]
    return {group: {"scores": int(n), "mae": round(mine / known, 3) if known else None,
                    "forest_mae": round(forest / known, 3) if known else None}
            for group in TAUGHT if group in totals for n, known, mine, forest in [totals[group]]}


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    strict, warm = _versus_forest(rows, "online"), _versus_forest(rows, "online_warm")
    starved = [r["week"] for r in rows if r["n"] and r["online_labels_seen"] < 1]
    return {
        "online_vs_forest": strict,
        "online_warm_vs_forest": warm,
        "online_vs_forest_within_flows": _versus_forest_within_flows(rows, "online"),
        "online_warm_vs_forest_within_flows": _versus_forest_within_flows(rows, "online_warm"),
        "online_vs_forest_in_time": {
            **_versus([{"week": r["week"], **r["in_time"]} for r in rows if r["n"]], "online", "forest_in_time",
                      METRICS),
            "weeks_without_forest": [r["week"] for r in rows if r["n"] and not r["in_time"]["n"]]},
        "calibration": _calibration(rows),
        "by_basis": {method: _by_basis_over_weeks(rows, method) for method in ("online", "online_warm")},
        "by_taught": {method: _by_taught_over_weeks(rows, method) for method in ("online", "online_warm")},
        "learning_vs_prior": {method: _versus(rows, method, "prior", MAE_ONLY)["mae"]
                              for method in ("online", "online_warm")},
        "notes": (
            "online (strict time order) can only learn from outcomes that have arrived; flows overlap, so "
            f"in weeks {starved or 'none'} of the test flows it had seen no label at all and scores with a "
            "label-free guess (the surrogate, or the version-0 prior), while the forest was fitted on the "
            "earlier flows' outcomes, which arrive only after those predictions (it uses labels from the future "
            "of the prediction). online_warm gives the online model exactly the forest's training students "
            "first and then continues online: that compares the models on equal information."
        ),
    }


def evaluate(directory: str | Path, *, weeks: int = 10, seed: int = 0, family: str = DEFAULT_FAMILY,
             train_share: float = TRAIN_SHARE, workers: int = 1, progress: Progress = QUIET) -> dict[str, Any]:
    """The per-week comparison table (see the module docstring); JSON-ready."""
    students = load_students(Path(directory), weeks)
    progress.say(f"read {len(students):,} enrolments and their weekly snapshots from {directory}")
    return evaluate_students(students, weeks=weeks, seed=seed, family=family, train_share=train_share,
                             workers=workers, progress=progress)


def evaluate_students(students: Sequence[Student], *, weeks: int = 10, seed: int = 0,
                      family: str = DEFAULT_FAMILY, train_share: float = TRAIN_SHARE,
                      workers: int = 1, progress: Progress = QUIET) -> dict[str, Any]:
    """`evaluate` on students already loaded; `workers`: see `online_runs`; `progress` is told how far it got."""
    train, test = split_by_flow(students, train_share, seed)
    progress.say(f"{len(test):,} test enrolments, the forest and the warm start learn {len(train):,}; "
                 "replaying in time order")
    runs = online_runs(students, family, seed, train, workers, progress)
    rows, per_course = _week_rows(students, train, test, runs, weeks, seed, progress)
    flows = sorted({(s.course_id, s.flow) for s in students if s.id in test}, key=str)
    return {
        "protocol": {
            "split": "test = the later flows (whole flows by start date, until half the students), forest train "
            "= the earlier flows' students; with one flow only, a random half",
            "forest": "the seed's method: one RandomForestRegressor (+ RandomForestClassifier for dropout and "
            "success) per course week k, seed hyper-parameters per week, columns = every feature at the end "
            "of weeks 1..k, trained offline on all train students' labels, course-balanced sample weights",
            "online": f"one River model ({family}) for all weeks, replayed in time order: each (student, week) "
            "snapshot is scored by the model as it stood then, and each outcome teaches all that student's "
            "snapshots from before it when the live trainer would learn it: with the rest of its flow's, once "
            "every enrolment of the flow has an outcome (not before the flow's schedule ends) or at the latest "
            f"{(LEARN_AFTER or 0) / 86400:g} days after that end (or on arrival, if later); where a course week "
            "has no learned opinion yet it answers with the surrogate, refit once a day of event time on the "
            "snapshots of every enrolment not learned by then (online_models.surrogate), else the priors; "
            "their probabilities shifted to the level of the outcomes learned so far for that week "
            "(online_models.guess_calibration); where a week's forest answers, its probabilities and the guess's "
            "are combined by the week's outcomes (online_models.guess_stack)",
            "online_warm": "the same, but the model first learns the forest's train students (their snapshots "
            "and outcomes), then replays the test flows in time order, learning their outcomes as the online "
            "method does",
            "scored": "test students at the end of each course week of their flow while their outcome is not "
            "yet known; all methods score exactly the same (student, week) pairs",
            "labels": "the LMS's verdict where the outcome carries one (result: dropout = withdrawn, success = "
            "passed); otherwise success = attestation>=50 and progress>=50, dropout = not success and inactive "
            ">= 20 days at the outcome (or no progress data); progress MAE and MSE skip 'Нет данных'",
            "calibration": f"each probability's `brier_*` (mean squared error) and `calibration_*` (expected "
            f"calibration error: over {CALIBRATION_BINS} equal-width bins of P, |mean P - share that came true|, "
            "weighted by the bin's students); the summary's `calibration` averages them over the weeks",
            "courses": "`courses` repeats the weekly rows for each course's test students alone (the seed "
            "validates per course): the same models and predictions, metrics on that course's subset; a "
            "course with one outcome class in a week has no AUC (null)",
            "early_warning": "the worker's at_risk rule over the strict replay's forecasts at each week end "
            "(online_models.evaluation.early_warning): precision, recall and median lead time against the "
            "students the reference status machine took to asleep, or whose outcome is dropout; `by_basis`: "
            "the warned students and the precision by what answered the P(dropout) of each one's first warning; "
            "`silence`: the rule a school could run without a model, on the same looks and measures: warn a "
            "still-active student at the first week end with N+ days inactive (again only after they came back)",
            "vs_forest": "each week's `online_vs_forest` and `online_warm_vs_forest`: per metric, the method's value "
            "minus the forest's on the same students with a paired 95% interval (AUC: DeLong's variance of the "
            "difference of two correlated AUCs; MAE: the mean of each student's absolute error minus the "
            "forest's, normal interval); the summary's `significantly_worse_weeks` and "
            "`significantly_better_weeks` are the weeks whose interval lies wholly on that side (unadjusted for "
            "the number of weeks and metrics); the `_holm` lists keep those whose gap also holds after Holm's "
            "step-down adjustment over all the weeks and metrics of the method's table (family-wise 5%), from "
            "each interval's two-sided `p`",
            "within_flows": "each week's `online_vs_forest_within_flows` and `online_warm_vs_forest_within_flows`: "
            "per AUC, the method's and the forest's AUC inside each test flow (a replay scores a flow's week at "
            "one moment, with one model version), averaged with the flows' students as weights, and the "
            "difference with a 95% interval (each flow's DeLong variance, weighted; a flow of one outcome class "
            "is left out). A pooled AUC also ranks students of different flows against each other, whom the "
            "online model scored at different moments: once a version learns its first outcomes it moves every "
            "probability's level, and pooled, that shift reads as bad ranking. The summary's "
            "`*_within_flows` verdicts adjust with Holm over their own table",
            "by_basis": "each week's `online_by_basis` and `online_warm_by_basis`: per probability, per what answered "
            "it (`learned`: the course week's model; `calibrated_guess`: the label-free guess at the level of the "
            "outcomes learned so far; `guess`: that guess at its own level, before any outcome), how many scores, "
            "their mean `mean_p` and the share that `came_true`; the summary's `by_basis` pools the weeks",
            "by_taught": "each week's `online_by_taught` and `online_warm_by_taught`: the week's scores split by whose "
            "outcomes had taught that course week when each was scored (`own_course`: some of the student's own "
            "course; `other_courses`: only other courses', whose level of progress and risk the week's model "
            "carries to a course it has not seen; `none`: no outcome yet, the label-free guess answers), with "
            "how many `scores` (`progress_scores` with a known final progress) and the method's and the forest's "
            "MAE and AUCs on them; the summary's `by_taught` pools the weeks' MAE",
            "learning_vs_prior": "each week's `online_vs_prior` and `online_warm_vs_prior`: the method's progress "
            "MAE minus the label-free prior's (`prior`) on the same students, with a paired 95% interval (each "
            "student's absolute error minus the prior's): whether learning helps; the summary's "
            "`learning_vs_prior` gives the weeks worse or better beyond chance, alone and after Holm's adjustment "
            "over the method's weeks",
            "forest_in_time": "each week's `in_time`: the seed's forest as a school without history could run it "
            "live, each test snapshot scored by a week forest fitted (seed settings, course-balanced weights) on the "
            "outcomes the strict replay had learned before that week ended, train and test flows alike; with fewer "
            f"than {MIN_LABELS} there is no forest yet (`not_scored`); `n`, both methods' metrics on the snapshots "
            "it scored and `online_vs_forest_in_time`, paired 95% intervals; the summary's "
            "`online_vs_forest_in_time` as `online_vs_forest`, with the `weeks_without_forest`",
            "prior": "version-0 model, no labels: once an exercise is due, final progress = progress + "
            "max(0, 100 * exercise_pace - progress) * (1 - 0.5 * min(1, days_inactive / asleep days)): the "
            "rest of the course at the student's pace, discounted by inactivity; before that max(progress, "
            "100 * (1 - min(1, days_inactive / asleep days))) (online_models.priors.prior_progress)",
            "online_prequential": "the strict replay's rolling metrics as it learned (prequential: each "
            "arriving label's snapshots are scored by the model before it learns them), over the last "
            f"{WINDOW} such examples of any week; every labelled student counts, train flows included",
            "online_prequential_by_week": "the same per course week of the snapshot (key: the week, weeks "
            f"from {WEEK_CAP} on pooled as {WEEK_CAP}), over each week's last {WINDOW_PER_WEEK} examples, "
            "with `examples`, how many it learned; null where undefined (no example, or one class for AUC)",
        },
        "family": family,
        "students": {"total": len(students), "labelled": sum(s.label is not None for s in students),
                     "train": len(train), "test": len(test), "test_flows": [list(f) for f in flows]},
        "weeks": rows,
        "courses": {str(course): course_rows for course, course_rows in per_course.items()},
        "online_prequential": runs["online"].models.metrics(),
        "online_prequential_by_week": runs["online"].models.metrics_by_week_json(),
        "early_warning": early_warning_report(students, runs["online"], on=StepConfig.at_risk_on,
                                              off=StepConfig.at_risk_off),
        "summary": _summary(rows),
    }
