"""Online models in memory: labels, the version-0 priors, every family learning and round-tripping."""
from __future__ import annotations

import math
import pickle
import random
import zlib

import pytest

from online_models.families import FAMILIES
from online_models.labels import Label, label_from_outcome
from online_models.learners import MOVED, REHEARSAL, Prediction, ScoringModels
from online_models.prequential import WEEK_CAP
from online_models.priors import prior_dropout, prior_progress, prior_success
from online_models.week_learners import FirstOpinion
from online_models.window_forest import WindowForestClassifier, WindowForestRegressor
from streams.contract.outputs import ScoreBasis


def _student(rng: random.Random) -> tuple[dict[str, float], Label]:
    motivation = rng.random()
    x = {"progress": 60 * motivation * rng.uniform(0.6, 1.0), "noise": rng.random(), "course_week": 3.0}
    final = min(100.0, 100 * motivation + rng.gauss(0, 5))
    return x, Label(progress=final, dropout=final < 30, success=final >= 50)


def test_label_from_outcome_follows_seed_success_rule():
    assert label_from_outcome({"progress": 80, "attestation": 50}, 0) == Label(80.0, False, True)
    assert label_from_outcome({"progress": 80, "attestation": None}, 0) == Label(80.0, False, False)
    assert label_from_outcome({"progress": 40, "attestation": 90}, 25) == Label(40.0, True, False)
    assert label_from_outcome({"progress": 40, "attestation": 90}, 5) == Label(40.0, False, False)
    assert label_from_outcome({"progress": None, "attestation": None}, 0) == Label(None, True, False)


def test_the_lms_verdict_overrides_the_seed_rules():
    """A real withdrawal is the dropout label whatever the inactivity; a student who stayed quiet to
    the end and failed did not drop out; OULAD's pass counts without a published exam score."""
    assert label_from_outcome({"progress": 30, "attestation": None, "result": "withdrawn"}, 0) == (
        Label(30.0, True, False))
    assert label_from_outcome({"progress": 10, "attestation": None, "result": "failed"}, 60) == (
        Label(10.0, False, False))
    assert label_from_outcome({"progress": 90, "attestation": None, "result": "passed"}, 30) == (
        Label(90.0, False, True))
    assert label_from_outcome({"progress": 90, "attestation": 80, "result": None}, 0) == (
        Label(90.0, False, True))


def test_version_zero_predicts_label_free_priors():
    keen = {"progress": 10.0, "required_done_share": 0.9, "days_inactive": 1.0, "course_week": 2.0}
    idle = {"progress": 2.0, "required_done_share": 0.1, "days_inactive": 15.0, "course_week": 2.0}
    models = ScoringModels()
    assert models.predict({"progress": 140.0}).progress == 100.0
    # nothing due yet: the whole course, discounted by the way to asleep (20 days)
    assert models.predict(keen).progress == pytest.approx(100 * (1 - 1 / 20))
    assert models.predict(idle).progress == pytest.approx(100 * (1 - 15 / 20))
    assert models.predict(keen).p_success > 0.7 > models.predict(idle).p_success
    assert 0.8 > models.predict(idle).p_dropout > 0.5 > models.predict(keen).p_dropout
    assert models.predict(keen).model_version == 0


def test_each_score_says_what_answered_it() -> None:
    """Nothing learned: the guess at its own level. A few outcomes of week 3 (too few for its forests):
    the guess at their level, in every week. Enough of them: week 3's models answer there, and week 7,
    never learned, stays with the leveled guess (progress has no level of its own to learn: a guess)."""
    rng = random.Random(3)
    models = ScoringModels()
    week_3 = {"progress": 30.0, "noise": 0.5, "course_week": 3.0}
    week_7 = {**week_3, "course_week": 7.0}
    assert models.predict(week_3).basis == ScoreBasis("guess", "guess", "guess")
    data = [_student(rng) for _ in range(400)]
    for x, label in data[:10]:
        models.learn_weeks([x], label)
    leveled = ScoreBasis("guess", "calibrated_guess", "calibrated_guess")
    assert models.predict(week_3).basis == leveled and models.predict(week_7).basis == leveled
    for x, label in data[10:]:
        models.learn_weeks([x], label)
    assert models.predict(week_3).basis == ScoreBasis("learned", "learned", "learned")
    assert models.predict(week_7).basis == leveled


def test_the_priors_read_the_pace_on_graded_work_once_an_exercise_is_due():
    """A student who reads few of many required pages but passes every due exercise (OULAD's study
    texts are required rows) is on course to pass: the pace says so, the pages' share does not."""
    reader = {"progress": 20.0, "required_done_share": 0.15, "days_inactive": 2.0}
    assert prior_progress(reader) == pytest.approx(100 * (1 - 2 / 20))  # nothing due yet: inactivity alone
    assert prior_progress({**reader, "days_inactive": 20.0}) == 20.0  # never below the progress made
    passing = {**reader, "exercise_pace": 1.0}
    behind = {**reader, "exercise_pace": 0.0, "missed_deadlines": 2.0}  # due and passed nothing
    # the rest of the course at the pace, discounted by half the way to asleep (2 of 20 days)
    assert prior_progress(passing) == pytest.approx(20 + 80 * (1 - 0.5 * 2 / 20)) and prior_progress(behind) == 20.0
    assert prior_progress({**passing, "days_inactive": 30.0}) == pytest.approx(20 + 80 * 0.5)
    assert prior_success(passing) > prior_success(reader) + 0.15 > prior_success(behind) + 0.15
    assert prior_dropout(passing) < prior_dropout(reader) - 0.2 < prior_dropout(behind) - 0.2
    # success also asks how well: the same work with better scores
    scored = {**passing, "sum_exercise_attempts_mean": 1.0}
    well, poorly = {**scored, "mean_attempt_score": 90.0}, {**scored, "mean_attempt_score": 30.0}
    assert prior_success(well) > prior_success(poorly) + 0.2
    # and dropout too (early success): once attempted, the scores are a third part of the work done, beside the
    # pages read and the pace; before any attempt, the work done is the other two parts' mean
    leaving = (0.5 + 0.5 * 2 / 20) * (1 - 0.5 * 0.0)  # 2 of 20 days inactive, no active day in the last 14
    assert prior_dropout(passing) == pytest.approx((1 - (0.15 + 1.0) / 2) * leaving)
    assert prior_dropout(poorly) == pytest.approx((1 - (0.15 + 1.0 + 0.3) / 3) * leaving)
    assert prior_dropout(well) < prior_dropout(passing) < prior_dropout(poorly)
    # success counts the scores once: its staying part is the same for both
    assert prior_success(well) / prior_success(poorly) == pytest.approx((0.5 + 0.45) / (0.5 + 0.15))


def test_the_dropout_prior_reads_how_regularly_the_student_comes():
    """The same work and the same days since the last visit, one student active on 12 of the last 14 days
    and one on 2: the regular one is half as likely to leave at most, and the success prior follows."""
    base = {"required_done_share": 0.3, "days_inactive": 1.0, "days_since_course_start": 30.0}
    regular, rare = {**base, "active_days_last_14": 12.0}, {**base, "active_days_last_14": 2.0}
    assert prior_dropout(regular) == pytest.approx(0.7 * (0.5 + 0.5 / 20) * (1 - 0.5 * 12 / 14))
    assert prior_dropout(rare) == pytest.approx(0.7 * (0.5 + 0.5 / 20) * (1 - 0.5 * 2 / 14))
    assert prior_success(regular) > prior_success(rare)
    # a course 4 days old: 4 active days of 4 is as regular as it gets
    assert prior_dropout({**base, "days_since_course_start": 4.0, "active_days_last_14": 4.0}) == (
        pytest.approx(0.7 * (0.5 + 0.5 / 20) * 0.5))


@pytest.mark.heavy
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_learns_and_round_trips(family):
    rng = random.Random(1)
    data = [_student(rng) for _ in range(800)]  # the linear family needs 800 to clear 0.7 of the prior (400: 0.74)
    models = ScoringModels(family=family)
    for x, label in data:
        models.learn_weeks([x], label)
    held_out = [_student(rng) for _ in range(150)]
    mae = sum(abs(models.predict(x).progress - y.progress) for x, y in held_out) / len(held_out)
    prior_mae = sum(abs(ScoringModels().predict(x).progress - y.progress) for x, y in held_out) / len(held_out)
    assert mae < 0.7 * prior_mae
    assert models.n_labels == 800 and models.metrics()["progress_mae"] < prior_mae
    assert models.metrics()["success_auc"] > 0.8
    copy = ScoringModels.from_bytes(models.to_bytes())
    assert copy.predict(held_out[0][0]) == models.predict(held_out[0][0])


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_an_enrolments_course_and_flow_reach_the_windows_and_no_learner_takes_them_for_features(family):
    rng = random.Random(2)
    told, untold = ScoringModels(family=family), ScoringModels(family=family)
    for i in range(120):
        x, label = _student(rng)
        told.learn_weeks([x], label, (3, 77)[i % 2], 1 + i % 3)
        untold.learn_weeks([x], label)
    probe = [_student(rng)[0] for _ in range(20)]
    assert [told.predict(x) for x in probe] == [untold.predict(x) for x in probe]
    if family == "forest":
        window = told.learners[1].members[0].models[3]
        assert set(window.courses.tolist()) == {3, 77} and set(window.flows.tolist()) == {1, 2, 3}


def _windows(models: ScoringModels) -> list[WindowForestClassifier | WindowForestRegressor]:
    """Every window learner the bundle holds (the `forest` family's; none in the River families)."""
    found = []
    for learner in models.learners:
        for member in learner.members if isinstance(learner, FirstOpinion) else [learner]:
            found += [m for m in getattr(member, "models", {}).values()
                      if isinstance(m, (WindowForestClassifier, WindowForestRegressor))]
    return found


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_a_versions_scoring_copy_answers_as_it_does_without_what_only_learning_reads(family, monkeypatch):
    """What a worker loads (ModelRegistry.load(scoring_only=True)): the same scores and reasons, no window rows, no
    stack fitted again (it has no rows to fit one on), and it refuses to learn; the full form learns on."""
    rng = random.Random(5)
    models = ScoringModels(family=family)
    for x, label in (_student(rng) for _ in range(150)):
        models.learn_weeks([x], label, 3)
    full, scoring = models.to_bytes(), models.to_bytes(scoring_only=True)
    copy, again = ScoringModels.from_bytes(scoring), ScoringModels.from_bytes(full)
    monkeypatch.setattr("online_models.learners.fit_weights", lambda *args: pytest.fail("a stack fitted again"))
    probe = [_student(rng)[0] for _ in range(30)]
    assert [copy.predict(x) for x in probe] == [models.predict(x) for x in probe]
    assert [copy.explain(x) for x in probe] == [models.explain(x) for x in probe]
    assert copy.scoring_only and not again.scoring_only and copy.recent == {} and again.recent == models.recent
    if family == "forest":
        assert all(len(w.targets) == len(w.rows) == len(w.courses) == 0 and w.trees for w in _windows(copy))
        assert sum(len(w.targets) for w in _windows(again)) == sum(len(w.targets) for w in _windows(models)) > 0
        assert len(scoring) < len(full)
    with pytest.raises(TypeError, match="scoring copy"):
        copy.learn_weeks([probe[0]], _student(rng)[1])
    monkeypatch.undo()
    again.learn_weeks([probe[0]], _student(rng)[1], 3)
    assert again.n_labels == models.n_labels + 1


def test_rolling_auc_is_undefined_not_zero_while_its_window_holds_one_class():
    models = ScoringModels()
    assert models.metrics()["dropout_auc"] is None and models.metrics()["progress_mae"] is None
    rng = random.Random(3)
    for x, label in (_student(rng) for _ in range(200)):
        if not label.dropout:
            models.learn_weeks([x], label)  # only students who stayed: one class
    assert models.metrics()["dropout_auc"] is None
    assert models.metrics()["progress_mae"] is not None and models.metrics()["progress_mae"] >= 0


def test_a_block_of_one_class_is_learned_interleaved_with_the_other_from_a_bounded_buffer():
    """Labels sorted by result (all passers, then all failures): after each failure the dropout
    and success learners relearn a recent passer of the same week, from at most REHEARSAL kept
    per (target, week, class); a version published before rehearsal existed loads with none."""
    rng = random.Random(5)
    data = sorted((_student(rng) for _ in range(120)), key=lambda pair: pair[1].dropout)
    models = ScoringModels()
    seen: list[tuple[dict[str, float], bool]] = []
    dropout = models.learners[1]
    members = dropout.members  # the blend's members see every example, rehearsed ones included
    original = members[1].learn_one
    members[1].learn_one = lambda x, y: (seen.append((x, bool(y))), original(x, y))[1]
    for x, label in data:
        models.learn_weeks([x], label)
    failures = sum(label.dropout for _, label in data)
    assert 0 < failures < len(data)
    block = seen[-2 * failures:]
    assert [y for _, y in block] == [True, False] * failures  # each failure, then a rehearsed passer
    assert {x["noise"] for x, y in block if not y} <= {x["noise"] for x, label in data if not label.dropout}
    assert max(len(kept) for kept in models.recent.values()) == REHEARSAL
    del members[1].learn_one
    old = ScoringModels.from_bytes(models.to_bytes())
    del old.__dict__["recent"]
    assert ScoringModels.from_bytes(old.to_bytes()).recent == {}


class PriorsOnly(ScoringModels):
    """Predicts the version-0 priors whatever it learned, so the prequential scores are known in
    advance (a real learner would move after the first label)."""

    def predict(self, x: dict[str, float]) -> Prediction:
        return Prediction(prior_progress(x), prior_dropout(x), prior_success(x), self.version, ScoreBasis())


def _snapshot(week: float, keen: bool) -> dict[str, float]:
    """A keen student (P(dropout) prior 0.05, P(success) 0.7125, progress 100: nothing is due and
    nothing inactive) or an idle one (0.9, 0.075, 0: asleep)."""
    if keen:
        return {"progress": 0.0, "required_done_share": 0.9, "days_inactive": 0.0, "course_week": week}
    return {"progress": 0.0, "required_done_share": 0.1, "days_inactive": 30.0, "course_week": week}


def test_metrics_per_course_week_score_each_week_on_its_own_examples() -> None:
    """The priors rank week 1 right (the leaver looked idle) and week 2 backwards (the leaver looked
    keen): AUC 1 and 0 there, while the window over all weeks mixes them."""
    models = PriorsOnly()
    leaver, stayer = Label(10.0, dropout=True, success=False), Label(90.0, dropout=False, success=True)
    models.learn_weeks([_snapshot(1, keen=False), _snapshot(2, keen=True)], leaver)
    models.learn_weeks([_snapshot(1, keen=True), _snapshot(2, keen=False)], stayer)
    by_week = models.metrics_by_week()
    assert set(by_week) == {1, 2}
    week1, week2 = by_week[1], by_week[2]
    assert week1["dropout_auc"] == week1["success_auc"] == 1.0
    assert week2["dropout_auc"] == week2["success_auc"] == 0.0
    keen, idle = 100.0, 0.0  # the progress priors
    assert week1["progress_mae"] == pytest.approx((abs(10 - idle) + abs(90 - keen)) / 2)
    assert week2["progress_mae"] == pytest.approx((abs(10 - keen) + abs(90 - idle)) / 2)
    assert week1["dropout_logloss"] == pytest.approx(-(math.log(0.9) + math.log(0.95)) / 2)
    # P(success) = (1 - P(dropout)) * 0.75 without attempts: keen (1 - 0.05) * 0.75, idle (1 - 0.9) * 0.75
    assert week2["success_logloss"] == pytest.approx(-(math.log(1 - 0.95 * 0.75) + math.log(0.1 * 0.75)) / 2)
    # the bias is the mean of P minus the outcome: week 1's leaver at P(dropout) .9, its stayer at .05
    assert week1["dropout_bias"] == pytest.approx(((0.9 - 1) + (0.05 - 0)) / 2)
    assert week2["success_bias"] == pytest.approx(((0.95 * 0.75 - 0) + (0.1 * 0.75 - 1)) / 2)
    assert week1["examples"] == week2["examples"] == 2
    overall = models.metrics()["dropout_auc"]
    assert overall is not None and 0.0 < overall < 1.0  # all weeks together: neither


def test_a_week_with_one_class_has_no_auc_and_a_week_without_progress_no_mae() -> None:
    models = ScoringModels()
    models.learn_weeks([_snapshot(1, keen=True), _snapshot(2, keen=True)], Label(80.0, False, True))
    models.learn_weeks([_snapshot(1, keen=False)], Label(None, True, False))
    by_week = models.metrics_by_week()
    assert by_week[1]["dropout_auc"] is not None and by_week[1]["progress_mae"] is not None
    assert by_week[2]["dropout_auc"] is None and by_week[2]["success_auc"] is None  # one student: one class
    assert by_week[2]["dropout_logloss"] is not None and by_week[2]["examples"] == 1
    models.learn_weeks([_snapshot(3, keen=False)], Label(None, True, False))
    assert models.metrics_by_week()[3]["progress_mae"] is None  # no known final progress in week 3


def test_weeks_past_the_cap_are_pooled_into_it() -> None:
    models = ScoringModels()
    weeks = [WEEK_CAP - 1, WEEK_CAP, WEEK_CAP + 1, WEEK_CAP + 30]
    models.learn_weeks([_snapshot(w, keen=True) for w in weeks], Label(70.0, False, True))
    by_week = models.metrics_by_week()
    assert set(by_week) == {WEEK_CAP - 1, WEEK_CAP}
    assert by_week[WEEK_CAP]["examples"] == 3 and by_week[WEEK_CAP - 1]["examples"] == 1
    assert ScoringModels.from_bytes(models.to_bytes()).metrics_by_week() == by_week


def test_a_version_published_before_the_bias_metrics_gets_them_empty() -> None:
    models = ScoringModels()
    models.learn_weeks([_snapshot(1, keen=True)], Label(70.0, False, True))
    for rolling in (models.rolling, models.by_week[1].rolling):
        del rolling["dropout_bias"], rolling["success_bias"]
    old = ScoringModels.from_bytes(models.to_bytes())
    assert old.metrics()["dropout_bias"] is None and old.metrics_by_week()[1]["success_bias"] is None
    idle = _snapshot(1, keen=False)
    before = old.predict(idle).p_dropout
    old.learn_weeks([idle], Label(5.0, True, False))  # learning goes on, now with them
    assert old.metrics()["dropout_bias"] == pytest.approx(before - 1)
    assert old.metrics()["dropout_logloss"] is not None and old.metrics_by_week()[1]["examples"] == 2


def test_a_version_published_before_per_week_metrics_loads_with_none() -> None:
    models = ScoringModels()
    models.learn_weeks([_snapshot(1, keen=True)], Label(70.0, False, True))
    del models.__dict__["by_week"]
    old = ScoringModels.from_bytes(models.to_bytes())
    assert old.metrics_by_week() == {} and old.metrics()["progress_mae"] is not None
    old.learn_weeks([_snapshot(4, keen=False)], Label(5.0, True, False))
    assert set(old.metrics_by_week()) == {4}


def test_versions_pickled_before_their_classes_moved_still_load() -> None:
    """A published version pickles each learner, metric and pipeline function it holds by module and name.
    Versions published before online_models.priors, .week_learners and .prequential existed name every one
    of them online_models.learners.<name>; ScoringModels.from_bytes finds each where `MOVED` says it is now."""
    rng = random.Random(4)
    renamed: set[str] = set()
    for family in ("forest", "blend"):  # between them, every name of MOVED
        models = ScoringModels(family=family)
        for x, label in (_student(rng) for _ in range(120)):
            models.learn_weeks([x, {**x, "course_week": 4.0}], label)
        old = pickle.dumps(models, protocol=3)  # protocol 3 names each global as text: c<module>\n<name>\n
        for name, module in MOVED.items():
            now, before = f"c{module}\n{name}\n".encode(), f"conline_models.learners\n{name}\n".encode()
            if now in old:
                old = old.replace(now, before)
                renamed.add(name)
        for module in (b"online_models.week_learners", b"online_models.priors", b"online_models.prequential"):
            assert b"c" + module + b"\n" not in old  # else a name that was in online_models.learners is not in MOVED
        with pytest.raises(AttributeError):  # as an old blob: its names are no longer all in online_models.learners
            pickle.loads(old)
        loaded = ScoringModels.from_bytes(zlib.compress(old))
        for x, _ in (_student(rng) for _ in range(5)):
            assert loaded.predict(x) == models.predict(x)
    assert renamed == set(MOVED)
