"""The surrogate: a label-free guess learned from the running enrolments, and how the models use it."""
from __future__ import annotations

import random

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from online_models import surrogate as sg
from online_models.labels import Label
from online_models.learners import ScoringModels
from online_models.priors import prior_dropout, prior_progress, priors
from online_models.window_forest import MIN_CLASS, feature_row, row_input


def _trajectory(rng: random.Random, weeks: int) -> tuple[dict[int, dict[str, float]], bool]:
    """An enrolment whose week-1 logins foretell whether it will keep up: everyone has done half the
    due work in week 1 (the priors cannot tell them apart), the keen then do it all and the others stop."""
    keen = rng.random() < 0.5
    trajectory = {}
    for week in range(1, weeks + 1):
        done = 0.5 if week == 1 else (0.5 + 0.15 * (week - 1) if keen else 0.5 - 0.15 * (week - 1))
        done = max(0.0, min(1.0, done))
        trajectory[week] = {"course_week": float(week), "required_done_share": done, "exercise_pace": done,
                            "sum_auth": (6.0 if keen else 2.0) + rng.random(), "days_inactive": 0.0 if keen else 9.0}
    return trajectory, keen


def test_the_surrogate_foresees_from_week_one_what_the_priors_see_only_later() -> None:
    rng = random.Random(3)
    running = [_trajectory(rng, weeks=4)[0] for _ in range(300)]
    surrogate = sg.fit_surrogate(running, priors)
    assert surrogate is not None and surrogate.rows == 300 * 3 and surrogate.rows_by_week == {1: 300, 2: 300, 3: 300}
    fresh = [_trajectory(rng, weeks=1) for _ in range(200)]
    keen = [is_keen for _, is_keen in fresh]
    week_one = [trajectory[1] for trajectory, _ in fresh]
    assert len({prior_dropout(x) for x in week_one}) == 2  # the priors see only days_inactive...
    guess = [surrogate.predict(x, "dropout") for x in week_one]
    assert roc_auc_score([not k for k in keen], guess) == 1.0  # ...the guess ranks every leaver above the keen
    keen_progress = np.mean([surrogate.predict(x, "progress") for x, k in zip(week_one, keen) if k])
    assert keen_progress > 80 > prior_progress(week_one[0]) + 25  # where the keen are heading, not where they are


def test_no_surrogate_from_too_few_rows_and_no_guess_for_a_week_it_barely_saw() -> None:
    rng = random.Random(4)
    assert sg.fit_surrogate([_trajectory(rng, weeks=2)[0] for _ in range(sg.MIN_ROWS - 1)], priors) is None
    running = [_trajectory(rng, weeks=2)[0] for _ in range(sg.MIN_WEEK_ROWS + 150)]
    running += [_trajectory(rng, weeks=3)[0] for _ in range(sg.MIN_WEEK_ROWS - 1)]
    surrogate = sg.fit_surrogate(running, priors)
    assert surrogate is not None and surrogate.rows_by_week[2] == sg.MIN_WEEK_ROWS - 1
    assert surrogate.predict({"course_week": 1.0}, "dropout") is not None
    assert surrogate.predict({"course_week": 2.0}, "dropout") is None


def test_a_fit_samples_at_most_max_enrolments(monkeypatch) -> None:
    monkeypatch.setattr(sg, "MAX_ENROLMENTS", 250)
    rng = random.Random(5)
    surrogate = sg.fit_surrogate([_trajectory(rng, weeks=2)[0] for _ in range(400)], priors)
    assert surrogate is not None and surrogate.enrolments == 250 and surrogate.rows == 250


def test_rows_come_from_a_stream_of_trajectories_as_from_a_list() -> None:
    """A store's sample arrives as a generator (read a chunk at a time) and the row arrays grow as it goes:
    the rows, targets and counts are those of the same trajectories in a list, in their order."""
    rng = random.Random(6)
    running = [_trajectory(rng, weeks=rng.choice([1, 3, 5]))[0] for _ in range(900)] + [{}]
    streamed = sg.training_rows((t for t in running), priors)
    rows, values, enrolments = sg.training_rows(running, priors)
    expected = [(w, t) for t in running for w in sorted(t) if w < max(t)]
    assert enrolments == streamed[2] == 901 and len(rows) == len(expected) > 1024  # grew past its first 1024 rows
    assert np.array_equal(rows, streamed[0]) and np.array_equal(values, streamed[1])
    assert rows[:, sg._WEEK].tolist() == [w for w, _ in expected]
    assert values.tolist() == [list(priors(t[max(t)])) for _, t in expected]


def test_the_models_answer_with_the_surrogate_until_a_week_has_learned_an_opinion() -> None:
    rng = random.Random(6)
    models = ScoringModels()
    assert models.refit_surrogate([_trajectory(rng, weeks=4)[0] for _ in range(300)]) is not None
    surrogate = models.surrogate
    assert surrogate is not None
    week_one, week_two = _trajectory(rng, weeks=2)[0].values()
    before = models.predict(week_one)
    assert before.p_dropout == min(0.99, max(0.01, surrogate.predict(week_one, "dropout")))
    assert before.progress == min(100.0, max(0.0, surrogate.predict(week_one, "progress")))
    # week 1 learns both classes (the forest fits), week 2 learns nothing
    for _ in range(3 * MIN_CLASS):
        x, keen = _trajectory(rng, weeks=1)
        models.learn_weeks([x[1]], Label(90.0 if keen else 10.0, dropout=not keen, success=keen))
    assert models.predict(week_one).p_dropout != before.p_dropout  # the learned forest answers
    guess = min(0.99, max(0.01, surrogate.predict(week_two, "dropout")))  # at the level week 1's labels set
    assert models.predict(week_two).p_dropout == pytest.approx(models.calibration.calibrated("dropout", 2, guess))
    assert models.refit_surrogate([]) is None and models.surrogate is surrogate  # too few rows: kept as is
    restored = ScoringModels.from_bytes(models.to_bytes())
    assert restored.predict(week_two) == models.predict(week_two)
    old = ScoringModels.from_bytes(models.to_bytes())
    del old.__dict__["surrogate"]  # a version published before surrogates
    assert ScoringModels.from_bytes(old.to_bytes()).surrogate is None


def test_rows_walked_at_once_answer_exactly_as_one_at_a_time() -> None:
    """The stacks' refits ask the guess for a whole window at once (ScoringModels._label_free_rows): the same
    numbers to the last bit as row by row, the priors' where the surrogate has no guess (week 4 here)."""
    rng = random.Random(6)
    surrogate = sg.fit_surrogate([_trajectory(rng, weeks=4)[0] for _ in range(300)], priors)
    assert surrogate is not None and 4 not in surrogate.rows_by_week
    xs = [x for trajectory, _ in (_trajectory(rng, weeks=4) for _ in range(60)) for x in trajectory.values()]
    rows = np.asarray([feature_row(x) for x in xs], dtype=np.float32)  # as a window stores them
    for target in sg.TARGETS:
        one_by_one = [surrogate.predict(row_input(row), target) for row in rows]
        assert sum(value is None for value in one_by_one) == 60
        expected = np.array([np.nan if value is None else value for value in one_by_one])
        np.testing.assert_array_equal(surrogate.predict_rows(rows, target), expected)
    models = ScoringModels()
    models.surrogate = surrogate
    for target in sg.TARGETS:
        np.testing.assert_array_equal(models._label_free_rows(rows, target),
                                      [models._label_free(row_input(row), target) for row in rows])
