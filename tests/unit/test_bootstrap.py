"""`scorer bootstrap`'s learning: a fresh model learns an export's labelled enrolments as the live
trainer would (weeks before the outcome, a flow's outcomes together), `until` leaves later outcomes out, and
nothing is published without the workers' Redis."""
from __future__ import annotations

import json

import pytest

from helpers.exports import generated_export_fixtures
from online_models import surrogate
from online_models.bootstrap import ALL_WEEKS, Refused, bootstrap, learn_history
from online_models.evaluation.students import LEARN_AFTER
from online_models.learners import ScoringModels
from streams.cli import main

pytestmark = pytest.mark.heavy

STUDENTS = 24


export_dir, students = generated_export_fixtures(STUDENTS, weeks=ALL_WEEKS)


def test_a_fresh_model_learns_every_labelled_enrolment_in_the_live_trainers_order(students):
    models, seen = ScoringModels(), []
    learn = models.learn_weeks
    models.learn_weeks = lambda xs, label, course, flow: (seen.append((xs, label, course, flow)),
                                                          learn(xs, label, course, flow))
    settle = models.settle
    models.settle = lambda: (seen.append("settled"), settle())
    learned = learn_history(models, students)
    assert seen.pop() == "settled"  # after the last label: what is published has refit on all of it

    # when the live trainer gets each outcome: with its flow's, once the flow has them all (not before its
    # end), at the latest LEARN_AFTER after that end
    last: dict = {}
    for s in students:
        last[s.course_id, s.flow] = max(last.get((s.course_id, s.flow), s.label_ts), s.label_ts)

    def release(s) -> float:
        return max(s.label_ts, min(s.schedule.end + LEARN_AFTER, max(s.schedule.end, last[s.course_id, s.flow])))

    labelled = sorted(students, key=lambda s: (release(s), s.label_ts, s.id))
    assert any(release(s) < s.schedule.end + LEARN_AFTER for s in students)  # complete flows went early
    assert all(s.label is not None for s in labelled)  # every generated student gets an outcome
    assert labelled != sorted(students, key=lambda s: (s.label_ts, s.id))  # not the order they arrived in
    assert learned.enrolments == STUDENTS and learned.no_weeks == learned.after_until == learned.unlabelled == 0
    assert seen == [(s.open_weeks(), s.label, s.course_id, s.flow) for s in labelled]  # the outcomes' order
    assert all(week["course_week"] < 11 for xs, *_ in seen for week in xs)
    weeks = sum(len(s.open_weeks()) for s in labelled)
    assert learned.weeks == models.n_labels == weeks and weeks > STUDENTS  # several weeks per enrolment
    assert sum(learned.labels.values()) == STUDENTS and learned.labels["success"] and learned.labels["dropout"]
    first = labelled[0]
    assert learned.learners[0] == f"{first.user_id}:{first.course_id}:{first.flow}"  # as the worker names it


def test_the_learned_model_predicts_otherwise_than_version_0(students):
    """With two dozen enrolments the blend still trusts the priors' probabilities; its progress
    regressor moves at once, towards the final progress it was shown (the default family's forests
    wait for more labels per week than two dozen enrolments give)."""
    models, fresh = ScoringModels(family="blend"), ScoringModels(family="blend")
    learn_history(models, students)
    pairs = [(s.label.progress, x) for s in students for x in s.open_weeks() if s.label.progress is not None]
    learned, prior = ([m.predict(x) for _, x in pairs] for m in (models, fresh))
    assert sum(a != b for a, b in zip(learned, prior)) > len(pairs) / 2
    assert all(p.model_version == 0 for p in prior)

    def mae(predictions):
        return sum(abs(truth - p.progress) for (truth, _), p in zip(pairs, predictions)) / len(pairs)

    assert mae(learned) < mae(prior)


def test_until_leaves_later_outcomes_out(students):
    times = sorted(s.label_ts for s in students)
    until = times[len(times) // 2]
    before = [s for s in students if s.label_ts < until]
    assert 0 < len(before) < len(students)

    models = ScoringModels()
    learned = learn_history(models, students, until=until)
    assert learned.enrolments + learned.no_weeks == len(before)
    assert learned.after_until == len(students) - len(before)
    assert models.n_labels == sum(len(s.open_weeks()) for s in before)


def test_the_surrogate_learns_the_weeks_of_the_enrolments_still_running_at_until(students, monkeypatch):
    """What the live trainer's store would hold at `until`: the weeks ended by then of every enrolment whose
    outcome had not come (two dozen enrolments give too few rows for the real thresholds, lowered here)."""
    monkeypatch.setattr(surrogate, "MIN_ROWS", 5)
    times = sorted(s.label_ts for s in students)
    until = times[len(times) // 2]
    running = [s for s in students if s.label_ts >= until]
    weeks = [sum(s.week_end(w) <= until and s.open_at(w) for w in s.weekly) for s in running]
    assert sum(weeks) > len(running) > 0

    models = ScoringModels()
    learned = learn_history(models, students, until=until)
    assert models.surrogate is not None
    assert learned.surrogate_rows == models.surrogate.rows == sum(max(n - 1, 0) for n in weeks)


def test_a_dry_run_publishes_nothing_and_needs_no_redis(export_dir, monkeypatch, capsys):
    summary = bootstrap(export_dir, dry_run=True, family="linear")
    assert summary["version"] is None and summary["family"] == "linear" and summary["n_labels"] > 0
    assert summary["kind"] == "bootstrap" and summary["until"] is None and summary["enrolments"] == STUDENTS
    with pytest.raises(Refused):
        bootstrap(export_dir)  # publishing needs a registry

    monkeypatch.delenv("SCORER_REDIS_URL", raising=False)
    assert main(["bootstrap", str(export_dir)]) == 2
    assert "SCORER_REDIS_URL" in capsys.readouterr().err
    assert main(["bootstrap", str(export_dir), "--dry-run", "--json", "--until", "2024-03-01T00:00:00"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["until"] == "2024-03-01T00:00:00" and printed["version"] is None
    assert printed["enrolments"] + printed["left_out"]["after_until"] == STUDENTS
