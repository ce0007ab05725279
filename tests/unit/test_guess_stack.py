"""A learned week weighs its forest against the label-free guess by that week's outcomes."""
from __future__ import annotations

import math
import random

import numpy as np
import pytest

from online_models import guess_stack
from online_models import window_forest as wf
from online_models.guess_stack import PRIOR_MEAN, Stack, fit_weights
from online_models.labels import Label
from online_models.learners import ScoringModels, _week_forest
from online_models.priors import prior_dropout


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _inputs(n: int, weights: tuple[float, float, float], seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(forest P, guess P, outcomes) drawn from P(outcome) = sigmoid(a + b logit(forest) + c logit(guess))."""
    rng = np.random.default_rng(seed)
    forest_logit, guess_logit = rng.normal(0, 1.2, n), rng.normal(0, 1.2, n)
    a, b, c = weights
    outcomes = rng.random(n) < _sigmoid(a + b * forest_logit + c * guess_logit)
    return _sigmoid(forest_logit), _sigmoid(guess_logit), outcomes


def test_many_outcomes_recover_the_weights_that_made_them() -> None:
    forest_p, guess_p, outcomes = _inputs(20000, (-0.5, 0.3, 1.2), seed=1)
    assert fit_weights(forest_p, guess_p, outcomes) == pytest.approx((-0.5, 0.3, 1.2), abs=0.08)


def test_few_outcomes_move_the_weights_little_from_equal_halves() -> None:
    forest_p, guess_p, outcomes = _inputs(40, (0.0, 2.0, 0.0), seed=2)
    few = np.array(fit_weights(forest_p, guess_p, outcomes))
    forest_p, guess_p, outcomes = _inputs(4000, (0.0, 2.0, 0.0), seed=2)
    many = np.array(fit_weights(forest_p, guess_p, outcomes))
    assert np.abs(few - PRIOR_MEAN).max() < np.abs(many - PRIOR_MEAN).max()
    assert many[1] > 1.7 and abs(many[2]) < 0.2  # 4,000 outcomes: the forest alone decides
    assert fit_weights([], [], []) == tuple(PRIOR_MEAN)


def test_the_weights_are_the_maximum_a_posteriori_ones() -> None:
    """At the fit the log posterior's gradient is zero (it is concave: that is its maximum)."""
    forest_p, guess_p, outcomes = _inputs(300, (0.4, 0.8, -0.3), seed=3)
    w = np.array(fit_weights(forest_p, guess_p, outcomes))
    assert np.abs(_gradient(forest_p, guess_p, outcomes, w)).max() < 1e-6


def _gradient(forest_p: np.ndarray, guess_p: np.ndarray, outcomes: np.ndarray, w: np.ndarray) -> np.ndarray:
    inputs = np.column_stack([np.ones(len(outcomes)), guess_stack._logits(forest_p), guess_stack._logits(guess_p)])
    precision = 1 / np.array([guess_stack.INTERCEPT_SPREAD, guess_stack.WEIGHT_SPREAD, guess_stack.WEIGHT_SPREAD]) ** 2
    return inputs.T @ (outcomes - _sigmoid(inputs @ w)) - precision * (w - PRIOR_MEAN)


def test_the_fit_converges_where_the_forest_says_nearly_the_same_for_everyone() -> None:
    """A young window's out-of-bag P can sit in a narrow band, far from its share of outcomes: Newton's full steps
    overshot there (weights in the hundreds in 2 of these 300 windows) and scoring with them overflowed."""
    rng = np.random.default_rng(4)
    for _ in range(300):
        n, level, rate = int(rng.integers(40, 400)), rng.uniform(0.05, 0.95), rng.uniform(0.05, 0.95)
        forest_p = rng.uniform(level - 0.01, level + 0.01, n)
        guess_p, outcomes = rng.uniform(0.05, 0.95, n), rng.random(n) < rate
        w = np.array(fit_weights(forest_p, guess_p, outcomes))
        assert np.abs(_gradient(forest_p, guess_p, outcomes, w)).max() < 1e-4
    assert Stack((1, 0), (-800.0, 1.0, 1.0), rows=40).combine(0.5, 0.5) == 0.0  # no overflow, whatever the weights


def test_a_stack_combines_the_two_logits() -> None:
    stack = Stack((1, 0), (0.2, 0.7, 0.4), rows=80)
    z = 0.2 + 0.7 * math.log(0.3 / 0.7) + 0.4 * math.log(0.6 / 0.4)
    assert stack.combine(0.3, 0.6) == pytest.approx(1 / (1 + math.exp(-z)))
    assert 0 < stack.combine(0.0, 1.0) < 1  # a pure leaf's 0 or 1 stays a probability
    assert stack.as_json() == {"intercept": 0.2, "forest": 0.7, "guess": 0.4, "rows": 80}


def _x(rng: random.Random, week: int) -> dict[str, float]:
    return {name: rng.random() for name in wf.COLUMNS} | {"course_week": float(week)}


def test_the_fitted_window_pairs_each_row_with_its_label_and_out_of_bag_p() -> None:
    """Rows are numbered in a column and labelled by that number's parity: the rows of the last fit, each
    with its own label, and none learned after it."""
    rng = random.Random(4)
    model = wf.WindowForestClassifier(window=100)
    assert len(model.fitted_window()[0]) == 0
    for i in range(400):
        x = _x(rng, 3)
        x["progress"] = float(i)
        model.learn_one(x, i % 2 == 0)
    rows, out_of_bag, labels = model.fitted_window()
    numbers = rows[:, wf.COLUMNS.index("progress")].astype(int)
    last_fit = 400 - model.since_fit
    assert model.since_fit > 0 and last_fit > 100
    assert list(numbers) == list(range(last_fit - 100, last_fit))  # the 100 it saw, the older ones gone
    assert list(labels) == [n % 2 == 0 for n in numbers]
    assert len(out_of_bag) == len(rows) and ((0 <= out_of_bag) & (out_of_bag <= 1)).all()


def _learned(models: ScoringModels, rng: random.Random, n: int) -> None:
    """Dropout follows the dropout prior (the guess) and not the forest's columns; week 2."""
    for _ in range(n):
        x = _x(rng, 2)
        models.learn_weeks([x], Label(50.0, dropout=rng.random() < prior_dropout(x), success=False))


def test_a_learned_week_answers_with_its_stack_fitted_again_when_the_forest_or_the_guess_changes() -> None:
    rng = random.Random(5)
    models = ScoringModels()
    _learned(models, rng, 120)
    forest = _week_forest(models.learners[1], 2)
    assert forest is not None
    x = _x(rng, 2)
    alone = forest.predict_proba_one(x)[True]
    p = models.predict(x).p_dropout
    stack = models.stacks[("dropout", 2)]
    assert p == pytest.approx(stack.combine(alone, prior_dropout(x))) and p != pytest.approx(alone)
    assert stack.fitted_for == (forest.fits, 0)
    _learned(models, rng, 200)  # the forest refits
    models.predict(x)
    assert models.stacks[("dropout", 2)].fitted_for == (forest.fits, 0) and forest.fits > stack.fitted_for[0]
    models.guess_version += 1  # as a surrogate refit does
    models.predict(x)
    assert models.stacks[("dropout", 2)].fitted_for == (forest.fits, 1)


def test_a_published_version_carries_its_stacks_and_an_older_one_answers_with_the_forest_alone(
        monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(6)
    models = ScoringModels()
    _learned(models, rng, 150)
    restored = ScoringModels.from_bytes(models.to_bytes())
    assert set(restored.stacks) == {("dropout", 2)}  # success learned one class only: no forest
    x = _x(rng, 2)

    def no_fit(*args: object) -> tuple[float, float, float]:
        raise AssertionError("fitted again after loading")

    monkeypatch.setattr("online_models.learners.fit_weights", no_fit)
    assert restored.predict(x) == models.predict(x)
    stack = restored.stacks[("dropout", 2)]
    assert restored.stack_weights() == {"dropout": {"2": stack.as_json()}}  # what the version's metadata says
    forest = _week_forest(restored.learners[1], 2)
    assert forest is not None and stack.rows == len(forest.fitted_window()[0]) >= 2 * wf.MIN_CLASS
    old = ScoringModels.from_bytes(models.to_bytes())
    del old.__dict__["stacks"]
    old_forest = _week_forest(old.learners[1], 2)
    assert old_forest is not None
    old_forest.out_of_bag = None  # as a forest fitted before it kept its out-of-bag P
    loaded = ScoringModels.from_bytes(old.to_bytes())
    assert loaded.predict(x).p_dropout == pytest.approx(old_forest.predict_proba_one(x)[True])
