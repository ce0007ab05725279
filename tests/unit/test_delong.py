"""DeLong's AUC interval and the paired difference of two AUCs, and the paired mean difference of errors:
right values, and intervals that miss a true difference of zero about as often as they say (5%)."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from online_models.evaluation.delong import delong_auc, delong_difference, stratified_difference
from online_models.intervals import paired_mean_difference


def test_delong_auc_matches_sklearn_with_ties_and_has_a_sane_interval() -> None:
    rng = np.random.default_rng(0)
    y = rng.random(400) < 0.4
    x = np.round(rng.normal(0, 1, 400) + 0.6 * y, 1)  # rounded: many ties
    auc = delong_auc(x, y)
    assert auc is not None and auc.auc == pytest.approx(roc_auc_score(y, x))
    assert auc.low < auc.auc < auc.high and auc.separates and auc.p < 1e-4
    null = delong_auc(rng.normal(0, 1, 400), y)
    assert null is not None and null.low < 0.5 < null.high and not null.separates
    assert delong_auc(x, np.zeros(400, dtype=bool)) is None
    perfect = delong_auc(np.array([0.0, 1, 2, 3]), np.array([False, False, True, True]))
    assert perfect is not None and (perfect.auc, perfect.separates) == (1.0, True)


def test_the_paired_difference_is_the_difference_of_the_aucs_and_zero_for_the_same_scores() -> None:
    rng = np.random.default_rng(1)
    y = rng.random(500) < 0.3
    good = np.round(rng.normal(0, 1, 500) + 1.0 * y, 1)
    weak = np.round(rng.normal(0, 1, 500) + 0.3 * y, 1)
    gap = delong_difference(good, weak, y)
    assert gap is not None
    assert gap.difference == pytest.approx(roc_auc_score(y, good) - roc_auc_score(y, weak))
    assert 0 < gap.low < gap.difference < gap.high  # a real gap: the interval excludes 0
    same = delong_difference(good, good, y)
    assert same is not None and (same.difference, same.low, same.high) == (0.0, 0.0, 0.0)
    assert delong_difference(good, weak, np.ones(500, dtype=bool)) is None


def test_pairing_narrows_the_interval_of_two_scores_that_share_their_signal() -> None:
    """Two forecasts built on the same signal differ far less than two independent ones: the paired
    interval must be narrower than one that ignores their covariance (sum of the two variances)."""
    rng = np.random.default_rng(2)
    y = rng.random(600) < 0.4
    signal = rng.normal(0, 1, 600) + 0.8 * y
    a, b = signal + rng.normal(0, 0.2, 600), signal + rng.normal(0, 0.2, 600)
    gap, auc_a, auc_b = delong_difference(a, b, y), delong_auc(a, y), delong_auc(b, y)
    assert gap is not None and auc_a is not None and auc_b is not None
    unpaired_half = np.hypot(auc_a.high - auc_a.auc, auc_b.high - auc_b.auc)
    assert (gap.high - gap.low) / 2 < unpaired_half / 3


def test_within_strata_each_stratum_counts_by_its_students_and_a_one_class_stratum_not_at_all() -> None:
    rng = np.random.default_rng(4)
    y = rng.random(600) < 0.3
    a, b = rng.normal(0, 1, 600) + 1.0 * y, rng.normal(0, 1, 600) + 0.4 * y
    strata = np.repeat([0, 1, 2], [100, 200, 300])
    y[:100] = False  # stratum 0: one class, no AUC
    within = stratified_difference(a, b, y, strata)
    assert within is not None and within.strata == 2
    one, two = slice(100, 300), slice(300, 600)
    expected_a = (200 * roc_auc_score(y[one], a[one]) + 300 * roc_auc_score(y[two], a[two])) / 500
    expected_b = (200 * roc_auc_score(y[one], b[one]) + 300 * roc_auc_score(y[two], b[two])) / 500
    assert (within.a, within.b) == (pytest.approx(expected_a), pytest.approx(expected_b))
    assert within.difference.difference == pytest.approx(expected_a - expected_b)
    assert within.difference.low < within.difference.difference < within.difference.high
    assert stratified_difference(a, b, np.zeros(600, dtype=bool), strata) is None


def test_a_level_that_moves_between_strata_is_no_ranking_error_within_them() -> None:
    """Score a ranks each stratum's students better than b, but its level drops in the second stratum, where more
    of them come true (as a model's does once its first outcomes show its guesses' level too high): pooled, a
    trails b beyond chance; within the strata it leads."""
    rng = np.random.default_rng(5)
    strata = np.repeat([0, 1], 400)
    y = rng.random(800) < np.where(strata == 1, 0.6, 0.15)
    a = rng.normal(0, 1, 800) + 1.6 * y - 3.0 * strata
    b = rng.normal(0, 1, 800) + 0.8 * y
    pooled, within = delong_difference(a, b, y), stratified_difference(a, b, y, strata)
    assert pooled is not None and pooled.high < 0
    assert within is not None and within.difference.low > 0


@pytest.mark.parametrize("kind", ["auc", "auc within strata", "mae"])
def test_intervals_miss_a_true_zero_difference_about_five_percent_of_the_time(kind: str) -> None:
    """Two methods equally good by construction (each the same signal plus its own noise): over 400
    samples of 300 students, the 95% interval of their difference should exclude 0 in ~5% of them
    (binomial 95% range for 400 draws: 2.9%-7.4%; the test allows 2%-9%)."""
    rng = np.random.default_rng(3)
    misses = 0
    for _ in range(400):
        y = rng.random(300) < 0.35
        signal = rng.normal(0, 1, 300) + 0.7 * y
        a, b = signal + rng.normal(0, 0.8, 300), signal + rng.normal(0, 0.8, 300)
        if kind == "auc":
            gap = delong_difference(a, b, y)
            assert gap is not None
            low, high = gap.low, gap.high
        elif kind == "auc within strata":
            within = stratified_difference(a, b, y, np.repeat([0, 1, 2], 100))
            assert within is not None
            low, high = within.difference.low, within.difference.high
        else:
            _, low, high = paired_mean_difference(list(np.abs(a - signal) - np.abs(b - signal)))
        misses += low > 0 or high < 0
    assert 0.02 <= misses / 400 <= 0.09


def test_paired_mean_difference() -> None:
    mean, low, high = paired_mean_difference([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5 and low == pytest.approx(2.5 - 1.959964 * np.std([1, 2, 3, 4], ddof=1) / 2)
    assert high - mean == pytest.approx(mean - low)
    assert paired_mean_difference([0.7]) == (0.7, 0.7, 0.7)
