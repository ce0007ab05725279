"""The evaluation's statistics: beyond-chance verdicts per interval and after Holm's adjustment over a whole
table, and how well calibrated a probability is."""
from __future__ import annotations

import random

import numpy as np
import pytest

from online_models.evaluation.evaluate import (
    MAE_ONLY,
    _by_basis_over_weeks,
    _by_taught,
    _by_taught_over_weeks,
    _levels_by_basis,
    _mae_gap,
    _paired,
    _versus,
    _versus_forest,
    _versus_forest_within_flows,
    _within_flows,
    calibration_error,
)
from online_models.evaluation.online_replay import taught
from online_models.evaluation.report import text_table
from online_models.intervals import Z95, holm, two_sided_p
from online_models.labels import Label
from streams.contract.outputs import ScoreBasis


def test_the_p_value_is_five_percent_at_the_edge_of_the_95_percent_interval() -> None:
    assert two_sided_p(1.0, 0.0, 2.0) == pytest.approx(0.05)
    assert two_sided_p(0.0, -1.0, 1.0) == pytest.approx(1.0)
    assert two_sided_p(-3.0, -3.0 - Z95, -3.0 + Z95) == pytest.approx(0.0027, abs=1e-4)  # three standard errors


def test_holm_steps_down_from_the_smallest_p() -> None:
    # sorted: .001 <= .05/5, .013 > .05/4: it stops there, though .013 and .02 would pass alone
    assert holm([0.02, 0.001, 0.013, 0.3, 0.04]) == [False, True, False, False, False]
    assert holm([0.02, 0.001, 0.012, 0.3, 0.04]) == [False, True, True, False, False]  # .012 <= .05/4
    assert holm([0.01, 0.012, 0.016]) == [True, True, True]  # .01 <= .05/3, .012 <= .05/2, .016 <= .05
    assert holm([0.05]) == [True] and holm([0.051]) == [False] and holm([]) == []


def test_holm_rejects_all_bonferroni_does_and_no_more_than_each_test_alone() -> None:
    rng = random.Random(3)
    for _ in range(200):
        ps = [rng.random() ** 3 for _ in range(rng.randint(1, 30))]
        rejected = holm(ps)
        assert all(rejected[i] for i, p in enumerate(ps) if p <= 0.05 / len(ps))
        assert not any(rejected[i] for i, p in enumerate(ps) if p > 0.05)


def _gap(difference: float, standard_error: float) -> dict[str, float]:
    low, high = difference - Z95 * standard_error, difference + Z95 * standard_error
    return {"difference": difference, "low": low, "high": high, "p": two_sided_p(difference, low, high)}


def test_a_table_keeps_only_the_gaps_that_hold_after_holm() -> None:
    """Ten weeks of three metrics: one AUC gap far beyond chance, one just beyond it (p = .03), one MAE gap
    just beyond it the other way; the rest within chance."""
    rows = []
    for week in range(1, 11):
        gaps = {"mae": _gap(0.0, 0.5), "auc_dropout": _gap(0.0, 0.01), "auc_success": _gap(0.0, 0.01)}
        if week == 2:
            gaps["auc_dropout"] = _gap(-0.06, 0.01)  # p ~ 2e-9: worse beyond any doubt
        if week == 5:
            gaps["auc_success"] = _gap(-0.0217, 0.01)  # p ~ .03: worse for the interval alone
        if week == 7:
            gaps["mae"] = _gap(-1.085, 0.5)  # p ~ .03: better for the interval alone
        metrics = {"mae": 10.0, "mse": 100.0, "auc_dropout": 0.8, "auc_success": 0.8}
        rows.append({"week": week, "n": 300, "online": metrics, "online_warm": metrics, "forest": metrics,
                     "online_vs_forest": gaps, "online_warm_vs_forest": gaps})
    versus = _versus_forest(rows, "online")
    assert versus["auc_dropout"]["significantly_worse_weeks"] == [2]
    assert versus["auc_dropout"]["significantly_worse_weeks_holm"] == [2]
    assert versus["auc_success"]["significantly_worse_weeks"] == [5]
    assert versus["auc_success"]["significantly_worse_weeks_holm"] == []
    assert versus["mae"]["significantly_better_weeks"] == [7]
    assert versus["mae"]["significantly_better_weeks_holm"] == []
    assert not versus["never_significantly_worse"] and not versus["never_significantly_worse_holm"]
    table = text_table({"weeks": rows, "summary": {"online_vs_forest": versus, "online_warm_vs_forest": versus}})
    assert "  strict: mae [] / []; auc_dropout [2] / []; auc_success [] / []" in table.splitlines()


def test_the_calibration_error_weighs_each_bin_gap_by_its_students() -> None:
    # ten at P .05 of whom none came true (gap .05), ten at P .65 of whom six did (gap .05), ten at .95 all true
    p = [0.05] * 10 + [0.65] * 10 + [0.95] * 10
    truth = [False] * 10 + [True] * 6 + [False] * 4 + [True] * 10
    assert calibration_error(truth, p) == pytest.approx((0.05 * 10 + 0.05 * 10 + 0.05 * 10) / 30)
    assert calibration_error([True, False] * 5, [0.5] * 10) == 0.0  # a coin, honestly called
    assert calibration_error([True] * 4 + [False] * 6, [1.0] * 4 + [0.0] * 6) == 0.0  # P of 1 in the top bin
    assert calibration_error([False] * 10, [0.9] * 10) == pytest.approx(0.9)


def test_each_probability_is_split_by_what_answered_it_and_pooled_by_its_scores() -> None:
    """Three guesses at P(dropout) .6 where one of three left, one learned .2 where it stayed; P(success) all
    learned. Pooled over two weeks, each week's means weigh by its scores."""
    labels = [Label(50.0, True, False), Label(50.0, False, True), Label(50.0, False, False), Label(50.0, False, True)]
    predictions = [(50.0, 0.6, 0.1), (50.0, 0.6, 0.5), (50.0, 0.6, 0.3), (50.0, 0.2, 0.7)]
    guess, learned = ScoreBasis("guess", "guess", "learned"), ScoreBasis("learned", "learned", "learned")
    week = _levels_by_basis(labels, predictions, [guess, guess, guess, learned])
    assert week["p_dropout"] == {"guess": {"scores": 3, "mean_p": 0.6, "came_true": pytest.approx(1 / 3, abs=1e-4)},
                                 "learned": {"scores": 1, "mean_p": 0.2, "came_true": 0.0}}
    assert week["p_success"] == {"learned": {"scores": 4, "mean_p": 0.4, "came_true": 0.5}}
    later = {"p_dropout": {"guess": {"scores": 1, "mean_p": 0.2, "came_true": 1.0}}, "p_success": {}}
    pooled = _by_basis_over_weeks([{"online_by_basis": week}, {"online_by_basis": later}, {"n": 0}], "online")
    assert pooled["p_dropout"]["guess"] == {"scores": 4, "mean_p": 0.5, "came_true": 0.5}
    assert pooled["p_dropout"]["learned"] == week["p_dropout"]["learned"] and pooled["p_success"] == week["p_success"]


def test_a_week_taught_by_other_courses_only_is_told_from_one_taught_by_the_students_own() -> None:
    assert taught(3, {3, 77}) == "own_course" and taught(77, {3}) == "other_courses" and taught(3, set()) == "none"


def test_each_group_of_whose_outcomes_taught_the_week_gets_both_methods_metrics_on_its_scores() -> None:
    """Two students of a course the week learned from, predicted well; two of one it did not, whose level the
    method misses by 20 where the forest misses by 5: the split shows where the week's gap comes from. Pooled
    with a later week, each week's MAE weighs by its scores with a known final progress."""
    labels = [Label(40.0, True, False), Label(80.0, False, True), Label(30.0, True, False), Label(70.0, False, True)]
    mine = [(42.0, 0.8, 0.1), (78.0, 0.2, 0.9), (50.0, 0.3, 0.4), (90.0, 0.6, 0.2)]
    forest = [(45.0, 0.6, 0.3), (75.0, 0.4, 0.7), (35.0, 0.7, 0.2), (75.0, 0.1, 0.9)]
    split = _by_taught(labels, mine, forest, ["own_course", "own_course", "other_courses", "other_courses"])
    assert list(split) == ["own_course", "other_courses"]  # no score before any outcome: no `none` group
    assert split["own_course"] == {"scores": 2, "progress_scores": 2,
                                   "method": {"mae": 2.0, "auc_dropout": 1.0, "auc_success": 1.0},
                                   "forest": {"mae": 5.0, "auc_dropout": 1.0, "auc_success": 1.0}}
    assert split["other_courses"]["method"] == {"mae": 20.0, "auc_dropout": 0.0, "auc_success": 0.0}
    assert split["other_courses"]["forest"]["mae"] == 5.0 and split["other_courses"]["scores"] == 2
    later = {"own_course": {"scores": 3, "progress_scores": 1, "method": {"mae": 8.0}, "forest": {"mae": 2.0}},
             "none": {"scores": 1, "progress_scores": 0, "method": {"mae": None}, "forest": {"mae": None}}}
    rows = [{"online_by_taught": split}, {"online_by_taught": later}, {"n": 0}]
    pooled = _by_taught_over_weeks(rows, "online")
    assert pooled == {"own_course": {"scores": 5, "mae": 4.0, "forest_mae": 4.0},  # (2 * 2 + 8) / 3, (2 * 5 + 2) / 3
                      "other_courses": {"scores": 2, "mae": 20.0, "forest_mae": 5.0},
                      "none": {"scores": 1, "mae": None, "forest_mae": None}}
    versus = {m: {"significantly_worse_weeks_holm": [], "significantly_better_weeks_holm": []}
              for m in ("mae", "auc_dropout", "auc_success")}
    table = text_table({"weeks": [], "summary": {"online_vs_forest": versus, "by_taught": {"online": pooled}}})
    assert "  strict: own_course 5 (4.000 / 4.000); other_courses 2 (20.000 / 5.000); none 1 (- / -)" in table


def test_inside_each_flow_a_level_that_moved_between_flows_is_no_ranking_error() -> None:
    """The online model ranks both flows' students better than the forest, but scored the second flow after its
    first outcomes lowered every probability (and more of that flow succeed): pooled, it trails the forest
    beyond chance; within the flows it leads, and the summary counts the week better."""
    rng = np.random.default_rng(7)
    flows = np.repeat([0, 1], 400)
    success = rng.random(800) < np.where(flows == 1, 0.6, 0.15)
    labels = [Label(None, not s, bool(s)) for s in success]
    mine = [(0.0, 0.5, float(z)) for z in rng.normal(0, 1, 800) + 1.6 * success - 3.0 * flows]
    forest = [(0.0, 0.5, float(z)) for z in rng.normal(0, 1, 800) + 0.8 * success]
    assert _paired(labels, mine, forest)["auc_success"]["high"] < 0
    within = _within_flows(labels, mine, forest, list(flows))
    success_gap = within["auc_success"]
    assert success_gap is not None and success_gap["flows"] == 2 and success_gap["low"] > 0
    assert within["auc_dropout"] is not None and within["auc_dropout"]["difference"] == 0  # both say .5 to all
    summary = _versus_forest_within_flows([{"week": 3, "n": 800, "online_vs_forest_within_flows": within}], "online")
    assert summary["auc_success"]["significantly_better_weeks"] == [3] == summary["auc_success"][
        "significantly_better_weeks_holm"]
    assert summary["auc_success"]["online"] == success_gap["method"] and summary["auc_dropout"]["worse_weeks"] == []


def test_learning_is_judged_against_the_label_free_prior_on_the_same_students() -> None:
    """Each student's absolute error minus the prior's: a method 4 points closer on every student (errors 1 and
    5 against 5 and 9, plus noise) is better beyond chance; one that only swaps which students it misses is not.
    A student without a final progress does not count."""
    rng = random.Random(8)
    truths = [rng.uniform(20, 80) for _ in range(200)]
    labels = [Label(t, False, True) for t in truths] + [Label(None, True, False)]
    prior = [(t, t + rng.choice((5.0, -9.0))) for t in truths] + [(None, 50.0)]
    closer = [t + (1.0 if p > t else -5.0) + rng.gauss(0, 0.1) for t, (_, p) in zip(truths, prior)] + [0.0]
    gap = _mae_gap(labels, closer, [p for _, p in prior])
    assert gap["difference"] == pytest.approx(-4.0, abs=0.05) and gap["high"] < 0
    swapped = [t - (p - t) for t, (_, p) in zip(truths, prior)] + [0.0]  # the same errors, other side
    assert _mae_gap(labels, swapped, [p for _, p in prior])["difference"] == pytest.approx(0.0, abs=1e-9)

    rows = []
    for week in range(1, 11):
        worse = week == 1  # week 1: the learned model is worse than the prior beyond any doubt
        rows.append({"week": week, "n": 200, "online": {"mae": 20.0 if worse else 10.0}, "prior": {"mae": 15.0},
                     "online_vs_prior": {"mae": _gap(5.0 if worse else -5.0 if week > 5 else -0.2, 0.5)}})
    summary = _versus(rows, "online", "prior", MAE_ONLY)["mae"]
    assert (summary["online"], summary["prior"]) == (11.0, 15.0) and summary["worse_weeks"] == [1]
    assert summary["significantly_worse_weeks_holm"] == [1]
    assert summary["significantly_better_weeks_holm"] == [6, 7, 8, 9, 10]
    table = text_table({"weeks": [], "summary": {"learning_vs_prior": {"online": summary}}})
    assert "  strict: 11.000 against 15.000; [1] / [6, 7, 8, 9, 10] [[1] / [6, 7, 8, 9, 10]]" in table
