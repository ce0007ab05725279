"""The school's four hypotheses tested against outcomes (`scorer hypotheses`).

    scorer hypotheses DIR [--week 4] [--json] [--plot hypotheses.png] [--online-only]

DIR is an LMS export. For each hypothesis (SPEC section 5) and each of its measures:

- the cut-off: the end of course week `week` of each student's flow (the schedule's first
  opening + week weeks - 1 s; default week 4, the middle of the seed's 10-week module). Every
  measure is features.engagement.compute as of that moment, so it uses only what the LMS knew
  by then, exactly as the worker would have scored it. Students whose outcome was already known
  by the cut-off, whose course has fewer weeks, or who have no outcome are left out.
- the outcomes: the module outcome's labels (online_models.labels): success = attestation >= 50
  and progress >= 50; dropout = not success and asleep (20+ days inactive) when the outcome
  arrives, or no progress data at all.
- bands: quartile bands of the measure over the students, ties kept together (a value equal to
  a quartile goes to the lower band, so equal values always share a band and a measure with few
  distinct values gets fewer bands). Per band: n, and the dropout and success rates with
  Wilson 95% intervals.
- effect: the AUC of the measure for the outcome (the probability that a student with the
  outcome has the higher value, ties counting half), with a DeLong 95% interval and two-sided
  p-value; Cliff's delta = 2 AUC - 1. The measure *separates* the outcome when the AUC interval
  excludes 0.5. Also the rate difference between the highest and the lowest band with a
  Newcombe (hybrid score) 95% interval and a two-proportion z-test. p_holm adjusts every
  p-value of the report for multiple testing (Holm); `separates_holm` uses it.
- direction: each measure carries the direction the hypothesis predicts for dropout ("lower":
  a lower value means more dropout); `as_hypothesised` says whether a separating effect goes
  that way. A hypothesis is "supported" when at least one measure separates dropout in the
  predicted direction, "contradicted" when measures separate only against it, else "not shown".
- controls: age and time zone, which no hypothesis is about, run through the same test as
  negative controls: a control that separates means the population or the test is biased, or
  is the 5% chance of a false positive that an unadjusted 95% interval carries (see p_holm).
"""
from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import norm

from features import DEFAULT_THRESHOLDS, DESCRIPTIONS, WEEK, compute, outcome
from features.hypotheses import CONTROLS, HYPOTHESES, Measure
from online_models.evaluation.delong import delong_auc
from online_models.evaluation.history import History, load_history
from online_models.intervals import newcombe, wilson
from online_models.labels import label_from_outcome

CUTOFF_WEEK = 4
OUTCOMES = ("dropout", "success")


# -- statistics ------------------------------------------------------------------------------
def two_proportion_p(k1: int, n1: int, k0: int, n0: int) -> float:
    """Two-sided p-value of the pooled two-proportion z-test."""
    pooled = (k1 + k0) / (n1 + n0)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    if se == 0:
        return 1.0
    return float(2 * norm.sf(abs((k1 / n1 - k0 / n0) / se)))


def bands(x: np.ndarray, quantiles: Sequence[float] = (0.25, 0.5, 0.75)) -> np.ndarray:
    """Band index (0 = lowest) of each value: quantile edges taken from the data, a value equal to
    an edge in the lower band, so ties never straddle bands; empty bands are dropped."""
    edges = np.unique(np.quantile(x, quantiles, method="inverted_cdf"))
    raw = np.searchsorted(edges, x, side="left")
    used = np.unique(raw)
    return np.searchsorted(used, raw)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the given order."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [1.0] * len(p_values)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


# -- the population ----------------------------------------------------------------------------
@dataclass
class Population:
    user_ids: list[int]
    measures: dict[str, np.ndarray]  # measure -> value per student
    outcomes: dict[str, np.ndarray]  # "dropout" / "success" -> bool per student
    excluded: dict[str, int]


def measure_students(history: History, week: int, names: Sequence[str],
                     asleep_days: float = DEFAULT_THRESHOLDS.asleep_days) -> Population:
    """Each labelled student's measures at the end of course week `week`, and their outcomes."""
    excluded = {"no_schedule": 0, "no_outcome": 0, "course_shorter": 0, "outcome_known_by_cutoff": 0}
    users: list[int] = []
    rows: list[dict[str, float]] = []
    dropout: list[bool] = []
    success: list[bool] = []
    for enrolment in history.enrolments():
        user_id, state, schedule = enrolment.user_id, enrolment.state, enrolment.schedule
        result = outcome(state)
        if schedule is None:
            excluded["no_schedule"] += 1
            continue
        cutoff = schedule.start + week * WEEK - 1
        if result is None:
            excluded["no_outcome"] += 1
        elif schedule.weeks < week:
            excluded["course_shorter"] += 1
        elif result["ts"] <= cutoff:
            excluded["outcome_known_by_cutoff"] += 1
        else:
            label = label_from_outcome(result, compute(state, schedule, result["ts"])["days_inactive"], asleep_days)
            users.append(user_id)
            rows.append(compute(state, schedule, cutoff))
            dropout.append(label.dropout)
            success.append(label.success)
    return Population(users, {n: np.array([r[n] for r in rows], dtype=float) for n in names},
                      {"dropout": np.array(dropout, dtype=bool), "success": np.array(success, dtype=bool)}, excluded)


# -- the report --------------------------------------------------------------------------------
def _r(value: float) -> float:
    return round(float(value), 4)


def _band_rows(x: np.ndarray, outcomes: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    index = bands(x)
    out = []
    for b in range(int(index.max()) + 1 if len(index) else 0):
        members = index == b
        n = int(members.sum())
        row: dict[str, Any] = {"band": b + 1, "range": [_r(x[members].min()), _r(x[members].max())], "n": n}
        for name, y in outcomes.items():
            k = int(y[members].sum())
            row[name] = {"k": k, "rate": _r(k / n), "ci": [_r(v) for v in wilson(k, n)]}
        out.append(row)
    return out


def _effect(x: np.ndarray, y: np.ndarray, band_rows: list[dict[str, Any]], name: str) -> dict[str, Any]:
    auc = delong_auc(x, y)
    if auc is None:
        return {"auc": None, "separates": False, "note": "the outcome has one class only"}
    low, high = band_rows[0], band_rows[-1]
    effect: dict[str, Any] = {
        "auc": _r(auc.auc), "auc_ci": [_r(auc.low), _r(auc.high)], "cliffs_delta": _r(2 * auc.auc - 1),
        "cliffs_delta_ci": [_r(2 * auc.low - 1), _r(2 * auc.high - 1)], "p": auc.p, "separates": auc.separates,
        "direction": "higher value, more often" if auc.auc > 0.5 else "lower value, more often"
        if auc.auc < 0.5 else "none",
    }
    if len(band_rows) > 1:
        k1, n1, k0, n0 = high[name]["k"], high["n"], low[name]["k"], low["n"]
        effect["extreme_bands"] = {"difference": _r(k1 / n1 - k0 / n0),
                                   "ci": [_r(v) for v in newcombe(k1, n1, k0, n0)],
                                   "p": two_proportion_p(k1, n1, k0, n0)}
    return effect


def _measure_report(measure: Measure, population: Population) -> dict[str, Any]:
    x = population.measures[measure.name]
    band_rows = _band_rows(x, population.outcomes)
    report: dict[str, Any] = {
        "name": measure.name, "definition": DESCRIPTIONS[measure.name],
        "hypothesised": "lower value, more dropout" if measure.lower_means_dropout else "higher value, more dropout",
        "bands": band_rows,
    }
    for name, y in population.outcomes.items():
        effect = _effect(x, y, band_rows, name)
        if effect["auc"] is not None and effect["separates"]:
            more_dropout_when_lower = effect["auc"] < 0.5 if name == "dropout" else effect["auc"] > 0.5
            effect["as_hypothesised"] = more_dropout_when_lower == measure.lower_means_dropout
        report[name] = effect
    return report


def _verdict(measures: list[dict[str, Any]]) -> str:
    separating = [m["dropout"] for m in measures if m["dropout"].get("separates")]
    if any(e["as_hypothesised"] for e in separating):
        return "supported"
    return "contradicted" if separating else "not shown"


def _adjust(groups: list[dict[str, Any]]) -> None:
    """Holm over every (measure, outcome) p-value of the report."""
    effects = [m[name] for g in groups for m in g["measures"] for name in OUTCOMES if m[name].get("auc") is not None]
    for effect, adjusted in zip(effects, holm([e["p"] for e in effects])):
        effect["p"] = float(f"{effect['p']:.3g}")
        effect["p_holm"] = float(f"{adjusted:.3g}")
        effect["separates_holm"] = adjusted < 0.05


def report(history: History, week: int = CUTOFF_WEEK) -> dict[str, Any]:
    """The whole report, JSON-ready (see the module docstring)."""
    groups = [*HYPOTHESES, CONTROLS]
    names = [m.name for g in groups for m in g.measures]
    population = measure_students(history, week, names)
    n = len(population.user_ids)
    out_groups: list[dict[str, Any]] = [{"key": g.key, "title": g.title, "claim": g.claim,
                                         "measures": [_measure_report(m, population) for m in g.measures]}
                                        for g in groups]
    if n:
        _adjust(out_groups)
    for group in out_groups:
        group["verdict"] = _verdict(group["measures"])
    controls = out_groups[-1]
    biased = [m["name"] for m in controls["measures"] if any(m[o].get("separates") for o in OUTCOMES)]
    controls["verdict"] = (f"separates ({', '.join(biased)}): check the population" if biased
                           else "no effect (as expected)")
    return {
        "cutoff": {"week": week, "moment": f"end of course week {week} of each student's flow (first opening + "
                   f"{week} weeks - 1 s); every measure uses only facts up to then"},
        "population": {
            "students": n,
            "dropout": {"k": int(population.outcomes["dropout"].sum()),
                        "rate": _r(population.outcomes["dropout"].mean()) if n else None},
            "success": {"k": int(population.outcomes["success"].sum()),
                        "rate": _r(population.outcomes["success"].mean()) if n else None},
            "excluded": population.excluded,
        },
        "method": {
            "labels": "success = attestation >= 50 and progress >= 50; dropout = not success and inactive >= 20 days "
            "when the outcome arrives, or no progress data",
            "bands": "quartile bands of the measure, ties in one band (a value equal to a quartile goes to the lower "
            "band); per band n and outcome rates with Wilson 95% intervals",
            "effect": "AUC of the measure for the outcome with a DeLong 95% interval (ties count half); Cliff's delta "
            "= 2 AUC - 1; separates = the AUC interval excludes 0.5; extreme_bands = highest minus lowest band rate, "
            "Newcombe 95% interval, two-proportion z-test; p_holm = Holm-adjusted over the whole report",
            "verdict": "supported: a measure separates dropout in the predicted direction; contradicted: measures "
            "separate only against it; not shown: no measure separates",
        },
        "hypotheses": [g for g in out_groups if g["key"] != CONTROLS.key],
        "controls": next(g for g in out_groups if g["key"] == CONTROLS.key),
    }


def _table(result: dict[str, Any]) -> str:
    pop = result["population"]
    lines = [f"cut-off: end of course week {result['cutoff']['week']}; {pop['students']} students, dropout "
             f"{pop['dropout']['rate']}, success {pop['success']['rate']}"]
    for group in [*result["hypotheses"], result["controls"]]:
        lines.append("")
        lines.append(f"{group['title']}: {group['verdict']}. {group['claim']}")
        lines.append(f"  {'measure':<26} {'dropout rate by band (low -> high)':<36} {'AUC dropout [95% CI]':<24} "
                     f"{'AUC success':<12} separates")
        for m in group["measures"]:
            rates = " ".join(f"{b['dropout']['rate']:.2f}" for b in m["bands"])
            d, s = m["dropout"], m["success"]
            auc = "-" if d["auc"] is None else f"{d['auc']:.3f} [{d['auc_ci'][0]:.3f}, {d['auc_ci'][1]:.3f}]"
            sep = "yes" if d.get("separates") else "no"
            if d.get("separates"):
                sep += " (as hypothesised)" if d.get("as_hypothesised") else " (against the hypothesis)"
            success = "-" if s["auc"] is None else f"{s['auc']:.3f}"
            lines.append(f"  {m['name']:<26} {rates:<36} {auc:<24} {success:<12} {sep}")
    return "\n".join(lines)


def run(directory: Path, *, week: int = CUTOFF_WEEK, plot: Path | None = None, as_json: bool = False,
        online_only: bool = False) -> int:
    """`scorer hypotheses`: print the report (a table, or JSON), plot it if asked."""
    result = report(load_history(Path(directory), online_only=online_only), week)
    if plot is not None:
        from online_models.evaluation.plot import plot_hypotheses

        plot_hypotheses(result, plot)
    print(json.dumps(result, ensure_ascii=False, indent=2) if as_json else _table(result))
    return 0
