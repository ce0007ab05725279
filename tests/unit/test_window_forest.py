"""The window forest: its flat trees predict what scikit-learn's fitted models predict, it has no
opinion before it can have one, and its memory stays bounded however many labels arrive."""
from __future__ import annotations

import pickle
import random

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestClassifier

from online_models import window_forest as wf
from online_models.labels import Label
from online_models.learners import ScoringModels


def _x(rng: random.Random) -> dict[str, float]:
    return {name: rng.random() for name in wf.COLUMNS}


def _rows(xs: list[dict[str, float]]) -> np.ndarray:
    return np.asarray([[x[n] for n in wf.COLUMNS] for x in xs], dtype=np.float32)


def test_flat_trees_predict_what_scikit_learn_predicts():
    rng = random.Random(1)
    xs = [_x(rng) for _ in range(300)]
    rows = _rows(xs)
    y_class = rows[:, 0] + 0.3 * rows[:, 1] > 0.7
    y_value = 50 * rows[:, 0] + 10 * rows[:, 2]
    forest = RandomForestClassifier(**wf.FOREST_PARAMS, min_samples_leaf=10, random_state=0).fit(rows, y_class)
    boosted = HistGradientBoostingRegressor(**wf.BOOSTING_PARAMS, random_state=0).fit(rows, y_value)
    trees = wf._forest_trees(forest.estimators_, list(forest.classes_).index(True))
    flat_p = [sum(t.predict(r) for t in trees) / len(trees) for r in rows.tolist()]
    assert np.allclose(flat_p, forest.predict_proba(rows)[:, 1])
    base, boosted_trees = wf.boosted_trees(boosted)
    flat_v = [base + sum(t.predict(r) for t in boosted_trees) for r in rows.tolist()]
    assert np.allclose(flat_v, boosted.predict(rows), atol=1e-6)


def test_no_opinion_until_both_classes_are_there_then_it_ranks():
    rng = random.Random(2)
    model = wf.WindowForestClassifier()
    for _ in range(200):  # one class only: nothing to fit
        model.learn_one(_x(rng), False)
    assert model.predict_proba_one(_x(rng)) == {}
    for _ in range(wf.MIN_CLASS):
        x = _x(rng)
        x["progress"] = 2.0  # the positives stand apart on one feature
        model.learn_one(x, True)
    high, low = _x(rng), _x(rng)
    high["progress"] = 2.0
    assert model.predict_proba_one(high)[True] > 2 * model.predict_proba_one(low)[True] + 0.1


def test_the_regressor_answers_zero_until_it_has_enough_examples():
    rng = random.Random(3)
    model = wf.WindowForestRegressor()
    for _ in range(wf.MIN_EXAMPLES - 1):
        model.learn_one(_x(rng), 40.0)
    assert model.predict_one(_x(rng)) == 0.0
    model.learn_one(_x(rng), 40.0)
    assert model.predict_one(_x(rng)) == pytest.approx(40.0, abs=1.0)


def test_memory_is_bounded_and_refits_are_few():
    rng = random.Random(4)
    model = wf.WindowForestClassifier(window=300)
    for i in range(3000):
        model.learn_one(_x(rng), i % 3 == 0)
    assert len(model.targets) == len(model.rows) == 300 + model.since_fit  # those since the last fit wait
    assert model.fitted_at == 300 and model.since_fit < wf.REFIT_AFTER
    # geometric growth to the window (60 -> 300: 9 fits), then one per REFIT_AFTER examples
    assert 9 <= model.fits <= 9 + 3000 // wf.REFIT_AFTER
    size = len(pickle.dumps(model))
    for _ in range(500):
        model.learn_one(_x(rng), True)
    assert len(pickle.dumps(model)) < 1.5 * size


def test_each_course_keeps_its_share_of_the_windows():
    assert wf.course_share([5000], 1000, 4000) == 1000  # one course: its window, as before courses were kept
    assert wf.course_share([300, 5000], 1000, 4000) == 1000  # few courses: whole windows
    assert wf.course_share([100] + [5000] * 5, 1000, 4000) == 780  # the small one keeps its 100, five share 3,900
    assert wf.course_share([], 1000, 4000) == 1000
    courses = np.array([3, 3, 77, 3, 77, 77, 77, 3, 49])
    kept = wf.latest_of_each_course(courses, 2, 8)
    assert np.flatnonzero(kept).tolist() == [3, 5, 6, 7, 8]  # each course's latest two, in the order learned
    assert np.flatnonzero(wf.latest_of_each_course(courses, 2, 4)).tolist() == [6, 7, 8]  # 4 over 3: one each
    assert wf.latest_of_each_course(np.zeros(0, np.int64), 2, 8).tolist() == []


def test_a_window_stored_before_courses_were_kept_gives_way_as_named_courses_arrive():
    """Its rows name no course; kept as a course of their own they would never leave beside the named ones."""
    old = [wf.NO_COURSE] * 5
    assert np.flatnonzero(wf.latest_of_each_course(np.array([*old, 3, 3, 77]), 4, 8)).tolist() == [4, 5, 6, 7]
    assert np.flatnonzero(wf.latest_of_each_course(np.array(old + [3] * 4), 4, 8)).tolist() == [5, 6, 7, 8]
    assert wf.latest_of_each_course(np.array(old), 4, 8).sum() == 4  # no course named anywhere: one course
    assert wf.latest_of_each_course(np.array([*old, 3]), 10, 20).all()  # room for more than it holds: all stay


def test_a_course_beyond_its_share_keeps_its_latest_flows_and_a_random_part_of_the_one_it_cuts():
    courses = np.full(90, 3)
    flows = np.array([1] * 40 + [2] * 30 + [1] * 10 + [4] * 10)  # flow 1's last rows came after flow 2's
    flow_1, flow_2 = np.flatnonzero(flows == 1), np.flatnonzero(flows == 2)
    kept = wf.latest_of_each_course(courses, 70, 70, flows, np.random.default_rng(0))
    assert kept[flows != 2].all() and kept[flow_2].sum() == 10  # flows 4 and 1 whole, a part of flow 2
    assert kept[flow_2[:15]].any() and kept[flow_2[15:]].any()  # from anywhere in it, not its latest rows
    cut = wf.latest_of_each_course(courses, 55, 55, flows, np.random.default_rng(0))
    assert cut[flows == 4].all() and cut[flow_1].sum() == 45 and not cut[flow_2].any()
    assert not cut[flow_1[:40]].all()  # flow 1's early rows are not all kept ahead of its later ones
    stored = np.array([wf.NO_FLOW] * 3 + [1] * 4)  # a version's rows from before flows were kept, then a flow
    kept = wf.latest_of_each_course(np.full(7, 3), 5, 5, stored, np.random.default_rng(0))
    assert np.flatnonzero(kept).tolist() == [2, 3, 4, 5, 6]  # the stored rows leave oldest first, as before


def test_a_window_of_sorted_outcomes_keeps_each_classs_share():
    """Real outcomes come sorted (withdrawals first, passes and fails at the end), and a flow's arrive together:
    kept by arrival, a window beyond its share held BBB's latest, few dropouts (5% where 17% dropped out)."""
    rng = random.Random(16)
    model = wf.WindowForestClassifier(window=150)
    for course in (3, 49, 77):
        xs = [_x(rng) for _ in range(300)]
        for i, x in enumerate(xs):  # each flow's 30% dropouts first
            model.learn_one({**x, wf.COURSE: course, wf.FLOW: 1}, i < 90)
    model.settle()
    assert len(model.targets) == 300 and set(model.flows.tolist()) == {1}
    for course in (3, 49, 77):
        assert 0.2 < model.targets[model.courses == course].mean() < 0.4


def test_one_courses_burst_does_not_push_another_course_out_of_the_window():
    """Outcomes come a flow at a time: a course's burst bigger than the window used to leave the week's forest
    with that course's students alone, ranking the other course's by a relation it does not have."""
    rng = random.Random(14)
    model = wf.WindowForestClassifier(window=200)
    for course, feature, n in ((3, "progress", 400), (77, "sum_auth", 600)):  # each course its own telling feature
        for _ in range(n):
            x = _x(rng)
            model.learn_one({**x, wf.COURSE: course}, x[feature] > 0.5)
    model.settle()
    assert sorted(np.unique(model.courses, return_counts=True)[1].tolist()) == [200, 200]
    probe = [_x(rng) for _ in range(200)]
    p = np.array([model.predict_proba_one(x)[True] for x in probe])
    telling = np.array([x["progress"] > 0.5 for x in probe])
    assert p[telling].mean() > p[~telling].mean() + 0.15  # course 3's relation is still learned
    assert set(model.courses[-200:].tolist()) == {77}  # where one window of 200 would have held course 77 alone


def test_settling_refits_on_the_burst_the_refit_schedule_left_waiting():
    """Real outcomes come sorted: a burst of one class that stays under REFIT_AFTER is left out of
    the fit until more labels come. settle() refits on all of it (what scorer bootstrap publishes)."""
    rng = random.Random(13)
    model = wf.WindowForestClassifier(window=1000)
    for _ in range(400):
        x = _x(rng)
        model.learn_one(x, x["progress"] > 0.5)
    fitted_at = model.fitted_at
    # as many as the schedule leaves waiting: under REFIT_AFTER and under the window's growth share
    burst = min(wf.REFIT_AFTER - model.since_fit, int((1 + wf.REFIT_GROWTH) * fitted_at) - len(model.targets)) - 1
    assert burst > 100
    for _ in range(burst):  # late news: students with high progress failed after all
        model.learn_one({**_x(rng), "progress": 0.6 + 0.4 * rng.random()}, False)
    assert model.fitted_at == fitted_at  # no refit: the burst is not in the trees
    probe = [{**_x(rng), "progress": 0.8} for _ in range(50)]
    stale = np.mean([model.predict_proba_one(x)[True] for x in probe])
    model.settle()
    assert model.fitted_at == len(model.targets) and model.since_fit == 0
    settled = np.mean([model.predict_proba_one(x)[True] for x in probe])
    assert stale > 0.7 and settled < stale - 0.2  # measured: .73, then .48
    trees = model.trees
    model.settle()  # nothing new: nothing refit
    assert model.trees is trees


def test_scoring_models_settle_every_week_learner():
    rng = random.Random(7)
    models = ScoringModels(family="forest")
    for i in range(300):
        xs = [{**_x(rng), "course_week": float(week)} for week in (1, 2)]
        models.learn_weeks(xs, Label(float(i % 100), i % 3 == 0, i % 3 == 1))
    regressor, dropout, success = models.learners
    learners = [*regressor.models.values(), *dropout.members[0].models.values(), *success.members[0].models.values()]
    assert len(learners) == 6 and any(learner.since_fit for learner in learners)
    models.settle()
    assert all(learner.since_fit == 0 and learner.fitted_at == 300 for learner in learners)


def test_rehearsal_does_not_duplicate_the_window():
    """ScoringModels rehearses the other class for the incremental learners; a refit learner
    sees the whole window at once, so it must learn each snapshot exactly once."""
    rng = random.Random(5)
    models = ScoringModels(family="forest")
    for i in range(30):
        x = {**_x(rng), "course_week": 1.0}
        models.learn_weeks([x], Label(50.0, i % 2 == 0, i % 2 == 1))
    dropout = models.learners[1].members[0].models[1]
    assert len(dropout.targets) == 30


def _fitted(example, n: int = 1000, seed: int = 5) -> wf.WindowForestClassifier:
    """A classifier fitted once on a full window of `example(rng)` -> (x, y)."""
    rng = random.Random(seed)
    model = wf.WindowForestClassifier(window=n)
    for _ in range(n):
        model.learn_one(*example(rng))
    return model


def _stripes(rng: random.Random) -> tuple[dict[str, float], bool]:
    """A fine, exact pattern on one feature: only small leaves can follow it."""
    x = _x(rng)
    return x, int(x["progress"] * 16) % 2 == 0


def _noisy_trait(rng: random.Random) -> tuple[dict[str, float], bool]:
    """Like students: a latent trait seen through half the features with noise, and an outcome that is a
    coin weighted by it. Large leaves average the noise away."""
    trait = rng.random()
    x = {name: trait + rng.gauss(0, 0.3) if i % 2 == 0 else rng.random() for i, name in enumerate(wf.COLUMNS)}
    return x, rng.random() < 0.2 + 0.6 * trait


@pytest.mark.heavy  # 12 forest fits on full windows
def test_each_fit_keeps_the_leaf_size_its_window_supports_out_of_bag():
    assert _fitted(_stripes).leaf_size == min(wf.LEAF_SIZES)
    for seed in (5, 6, 7):
        chosen = _fitted(_noisy_trait, seed=seed).leaf_size
        assert chosen is not None and chosen > min(wf.LEAF_SIZES), seed


def test_a_window_stored_before_a_feature_was_appended_or_courses_kept_predicts_as_before_and_learns_on():
    rng = random.Random(9)
    newest = wf.COLUMNS[-1]
    model = wf.WindowForestClassifier(window=100)
    for i in range(60):
        x = _x(rng)
        x[newest] = 0.0  # a stored model never saw the appended column
        model.learn_one(x, x["progress"] > 0.5 or i < 10)
    probe = [_x(rng) for _ in range(20)]
    before = [model.predict_proba_one(x) for x in probe]
    model.rows = model.rows[:, :-1]  # as a version pickled before the column existed holds it
    del model.courses, model.flows  # and before windows kept courses and flows
    restored = pickle.loads(pickle.dumps(model))
    assert restored.rows.shape == (len(model.targets), len(wf.COLUMNS))
    assert restored.courses.tolist() == [wf.NO_COURSE] * len(model.targets)
    assert restored.flows.tolist() == [wf.NO_FLOW] * len(model.targets)
    assert not restored.rows[:, -1].any()
    assert [restored.predict_proba_one(x) for x in probe] == before
    for _ in range(wf.REFIT_AFTER):  # enough to refit on rows of both widths
        restored.learn_one(_x(rng), rng.random() > 0.5)
    assert restored.fitted_at and restored.rows.shape[1] == len(wf.COLUMNS)
