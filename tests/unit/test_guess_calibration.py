"""The label-free guess keeps its ranking and takes the level of the outcomes learned for its course week."""
from __future__ import annotations

import math
import pickle
import random
from itertools import pairwise

import numpy as np
import pytest

from online_models import guess_calibration
from online_models.guess_calibration import KEEP, GuessCalibration
from online_models.labels import Label
from online_models.learners import P_FLOOR, ScoringModels, off_the_edges
from online_models.priors import prior_success


def test_no_outcome_no_shift() -> None:
    calibration = GuessCalibration()
    assert calibration.shift("success", 3) == 0.0 and calibration.calibrated("success", 3, 0.37) == 0.37
    calibration.learn("dropout", 3, 0.4, True)
    assert calibration.calibrated("success", 3, 0.37) == 0.37  # the other target's outcomes say nothing


def test_a_week_of_failures_only_pulls_its_guesses_down_and_keeps_their_order() -> None:
    """The generated school's week 10: everyone still scored fails, while the guess says .1-.5."""
    calibration = GuessCalibration()
    rng = random.Random(1)
    for _ in range(500):
        calibration.learn("success", 10, rng.uniform(0.1, 0.5), False)
    guesses = [0.1, 0.2, 0.3, 0.5]
    shifted = [calibration.calibrated("success", 10, g) for g in guesses]
    assert shifted == sorted(shifted) and len(set(shifted)) == 4  # the ranking is the guess's
    assert max(shifted) < 0.05


def test_calibrated_guesses_stay_where_they_are() -> None:
    calibration = GuessCalibration()
    rng = random.Random(2)
    for _ in range(KEEP):
        guess = rng.uniform(0.05, 0.95)
        calibration.learn("dropout", 4, guess, rng.random() < guess)
    assert abs(calibration.shift("dropout", 4)) < 0.2


def test_a_week_with_few_outcomes_moves_little_and_one_with_none_takes_the_pooled_level() -> None:
    calibration = GuessCalibration()
    for week, n in ((1, 400), (2, 3)):  # both weeks: guesses of .5, all of them wrong the same way
        for _ in range(n):
            calibration.learn("success", week, 0.5, False)
    pooled = calibration.shift("success", 7)  # a week with no outcome yet takes the level of all weeks
    assert pooled < -3  # 403 failures at .5: far down
    assert calibration.shift("success", 1) < pooled - 0.3  # 400 of its own: further down than the pool
    assert pooled - 0.05 < calibration.shift("success", 2) < pooled  # 3 of its own: next to the pool


def test_only_the_latest_outcomes_count() -> None:
    calibration = GuessCalibration()
    for outcome in (True, False):
        for _ in range(KEEP):
            calibration.learn("dropout", 5, 0.5, outcome)
    assert len(calibration.logits[("dropout", 5)]) == KEEP and not calibration.outcomes[("dropout", 5)].any()
    assert calibration.calibrated("dropout", 5, 0.5) < 0.01


def _idle(week: int) -> dict[str, float]:
    return {"progress": 0.0, "required_done_share": 0.3, "days_inactive": 2.0, "course_week": week}


def test_the_models_answer_a_week_without_a_forest_at_the_level_of_its_outcomes() -> None:
    """Week 10 has learned only failures, so its forest never fits (it waits for both classes): the success
    prior answers, shifted to the failures' level; the bundle keeps that through publishing."""
    models = ScoringModels()
    x = _idle(10)
    assert models.predict(x).p_success == pytest.approx(prior_success(x))
    for _ in range(300):
        models.learn_weeks([_idle(10)], Label(20.0, dropout=False, success=False))
    assert models.predict(x).p_success < 0.05 < prior_success(x)
    restored = ScoringModels.from_bytes(models.to_bytes())
    assert restored.predict(x) == models.predict(x)
    old = ScoringModels.from_bytes(models.to_bytes())
    del old.__dict__["calibration"]  # a version published before the calibration: the guess's own level
    assert ScoringModels.from_bytes(old.to_bytes()).predict(x).p_success == pytest.approx(prior_success(x))


def test_a_guess_pulled_past_the_floor_keeps_its_ranking() -> None:
    """BBB's late weeks, warm: a week's outcomes shift the guess to a rate of a few percent, which put most
    students below the probability floor; a clip made them one tie (the dropout AUC .74 -> .62)."""
    models = ScoringModels()
    for _ in range(KEEP):
        models.learn_weeks([_idle(10)], Label(20.0, dropout=False, success=False))
    students = [{**_idle(10), "required_done_share": share} for share in (0.0, 0.3, 0.6, 0.9)]
    priors = [prior_success(x) for x in students]
    answers = [models.predict(x).p_success for x in students]
    assert priors == sorted(priors) and len(set(priors)) == 4
    assert answers == sorted(answers) and len(set(answers)) == 4  # the prior's order, no ties
    assert all(P_FLOOR <= p < 2 * P_FLOOR for p in answers)  # all near the floor, where the clip tied them


def test_off_the_edges_is_the_probability_itself_but_near_0_and_1_and_keeps_the_order() -> None:
    grid = [i / 1000 for i in range(1001)]
    kept = [off_the_edges(p) for p in grid]
    assert all(a < b for a, b in pairwise(kept))
    assert kept[0] == P_FLOOR and kept[-1] == 1 - P_FLOOR
    assert all(k == p for p, k in zip(grid, kept) if 2 * P_FLOOR <= p <= 1 - 2 * P_FLOOR)


def test_the_intercept_is_the_maximum_a_posteriori_one() -> None:
    """Against a brute-force search of the same objective (log-likelihood minus the pooled prior's penalty)."""
    rng = random.Random(4)
    calibration = GuessCalibration()
    pairs = [(rng.uniform(0.2, 0.8), rng.random() < 0.3) for _ in range(200)]
    for guess, outcome in pairs:
        calibration.learn("dropout", 2, guess, outcome)
    z = np.array([math.log(g / (1 - g)) for g, _ in pairs])
    y = np.array([o for _, o in pairs], dtype=float)

    def objective(b: float) -> float:
        p = 1 / (1 + np.exp(-(z + b)))
        return float(np.sum(y * np.log(p) + (1 - y) * np.log(1 - p))) - b * b / 2  # POOLED_SPREAD 1

    grid = np.linspace(-3, 3, 60001)
    best = grid[np.argmax([objective(b) for b in grid])]
    assert calibration.shift("dropout", 9) == pytest.approx(best, abs=2e-4)  # week 9 has none: the pooled one


def test_a_published_calibration_carries_every_week_fitted(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker loading a version scores at once: unpickled, no week's shift is fitted again."""
    calibration = GuessCalibration()
    for week in (1, 2, 3):
        for i in range(50):
            calibration.learn("dropout", week, 0.5, i % 4 == 0)
    copy = pickle.loads(pickle.dumps(calibration))

    def no_fit(*args: object) -> float:
        raise AssertionError("fitted again after loading")

    monkeypatch.setattr(guess_calibration, "_intercept", no_fit)
    assert [copy.shift("dropout", w) for w in (1, 2, 3, 9)] == [calibration.shift("dropout", w) for w in (1, 2, 3, 9)]
