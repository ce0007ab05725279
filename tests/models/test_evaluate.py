"""Time-ordered evaluation on a generated export: the online model learns, and the per-week
table compares it with the seed's forests on the same students."""
from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from helpers.exports import generated_export_fixtures
from online_models.evaluation.evaluate import FOREST_FEATURES, evaluate_students
from online_models.evaluation.forest import WeeklyForest
from online_models.evaluation.forest_in_time import MIN_LABELS, ForestInTime
from online_models.evaluation.online_replay import online_runs, run_online
from online_models.evaluation.students import TRAIN_SHARE, flows_done, in_learning_order, labels_of, split_by_flow
from online_models.priors import prior_dropout, prior_progress
from streams.cli import main

pytestmark = pytest.mark.heavy

STUDENTS = 300


export_dir, students = generated_export_fixtures(STUDENTS, weeks=10)


@pytest.fixture(scope="module")
def blend_run(students):
    """The strict replay of the incremental blend, which two tests read."""
    return run_online(students, family="blend", seed=0)


def test_split_keeps_flows_whole_and_tests_on_the_later_ones(students):
    train, test = split_by_flow(students)
    assert train and test and not train & test
    flow_of = {s.id: (s.course_id, s.flow) for s in students}
    assert not {flow_of[u] for u in train} & {flow_of[u] for u in test}
    start = {s.id: s.schedule.start for s in students}
    assert min(start[u] for u in test) > min(start[u] for u in train)


def test_a_week_is_taught_by_a_course_once_the_replay_learned_an_outcome_of_it_for_that_week(students, blend_run):
    """The replay's `taught` against the label times: a (student, week) counts as taught by the student's own course
    exactly when some student of that course whose outcome was learned before it had that week open; a learned
    answer always follows some outcome."""
    by_id, run = {s.id: s for s in students}, blend_run
    done = flows_done(students)
    learned = [(s.learned_at(done), s) for s in in_learning_order(students, done)]
    groups = set()
    for (u, w), group in run.taught.items():
        at, course = by_id[u].week_end(w), by_id[u].course_id
        teachers = {s.course_id for t, s in learned if t < at and w in s.weekly and s.open_at(w)}
        assert group == ("own_course" if course in teachers else "other_courses" if teachers else "none")
        assert group != "none" or run.bases[(u, w)].progress == "guess"
        groups.add(group)
    assert groups == {"own_course", "other_courses", "none"}  # staggered flows of several courses: all three


def test_online_model_beats_its_prior_once_labels_have_arrived(students, blend_run):
    """Prequential, in time order: snapshots scored after >= 20 outcomes had been learned are
    predicted better than by the version-0 prior on the very same snapshots (a flow's outcomes are
    learned together, four weeks after its end, so in three flows of 100 few snapshots come later)."""
    by_id, run = {s.id: s for s in students}, blend_run
    late = [(u, w) for (u, w), seen in run.labels_seen.items() if seen >= 20 and by_id[u].label.progress is not None]
    assert len(late) > 100
    truth = np.array([by_id[u].label.progress for u, _ in late])
    model = np.array([run.predictions[key][0] for key in late])
    prior = np.array([prior_progress(by_id[u].weekly[w]) for u, w in late])
    assert np.abs(model - truth).mean() < np.abs(prior - truth).mean()
    first = [key for key, seen in run.labels_seen.items() if seen == 0 and by_id[key[0]].label.progress is not None]
    early_mae = np.mean([abs(run.predictions[k][0] - by_id[k[0]].label.progress) for k in first])
    assert np.abs(model - truth).mean() < early_mae
    assert run.models.n_labels > 0


def test_before_any_outcome_the_guess_from_the_running_flows_beats_the_priors(students):
    """Strict order, no label learned yet: where the surrogate answers (online_models.surrogate), it predicts
    final progress closer and ranks dropouts better than the priors on the very same snapshots."""
    by_id = {s.id: s for s in students}
    run = run_online(students, family="forest", seed=0)
    unlabelled = [(u, w) for (u, w), seen in run.labels_seen.items() if seen == 0]
    guessed = [(u, w) for u, w in unlabelled if run.predictions[(u, w)][0] != prior_progress(by_id[u].weekly[w])]
    assert len(guessed) > 200 and len(guessed) > len(unlabelled) / 3
    known = [(u, w) for u, w in guessed if by_id[u].label.progress is not None]
    truth = np.array([by_id[u].label.progress for u, _ in known])
    guess = np.array([run.predictions[key][0] for key in known])
    prior = np.array([prior_progress(by_id[u].weekly[w]) for u, w in known])
    assert np.abs(guess - truth).mean() < np.abs(prior - truth).mean()
    dropped = [by_id[u].label.dropout for u, _ in guessed]
    prior_dropout_auc = roc_auc_score(dropped, [prior_dropout(by_id[u].weekly[w]) for u, w in guessed])
    assert roc_auc_score(dropped, [run.predictions[key][1] for key in guessed]) > prior_dropout_auc


def test_the_replays_side_by_side_are_the_replays_one_after_the_other(students):
    """`scorer evaluate --workers 2` runs the strict and the warm replay in two spawned processes: the same
    forecasts, bases and label counts as in this process, and the models came back with what they learned."""
    some = students[:100]  # any students will do: what is compared is a replay with itself
    train, _ = split_by_flow(some)
    apart, here = online_runs(some, "linear", 0, train, workers=2), online_runs(some, "linear", 0, train)
    assert set(apart) == set(here) == {"online", "online_warm"}
    for name, run in here.items():
        assert run.predictions and apart[name].predictions == run.predictions
        assert apart[name].bases == run.bases and apart[name].labels_seen == run.labels_seen
        assert apart[name].models.n_labels == run.models.n_labels > 0
    assert here["online_warm"].predictions != here["online"].predictions  # two different replays were compared


def test_evaluate_reports_every_week_for_both_methods(students):
    result = evaluate_students(students, family="linear", workers=2)
    assert set(result) >= {"protocol", "students", "weeks", "summary"}
    assert result["students"]["train"] + result["students"]["test"] == result["students"]["labelled"]
    assert [row["week"] for row in result["weeks"]] == list(range(1, 11))
    compared = 0
    for row in result["weeks"]:
        assert row["n"] > 0
        for method in ("online", "online_warm", "forest"):
            assert row[method]["mae"] is not None and 0 <= row[method]["mae"] <= 100
            assert row[method]["mae"] ** 2 <= row[method]["mse"] <= 100 ** 2  # MSE >= MAE^2 (Jensen)
            assert 0 <= row[method]["auc_dropout"] <= 1
            for target in ("dropout", "success"):  # calibration never exceeds the Brier score's root
                assert 0 <= row[method][f"calibration_{target}"] <= row[method][f"brier_{target}"] ** 0.5 + 1e-3
        for method in ("online", "online_warm"):  # each gap to the forest, with its paired interval
            for metric in ("mae", "auc_dropout"):
                gap = row[f"{method}_vs_forest"][metric]
                assert gap["low"] <= gap["difference"] <= gap["high"] and gap["low"] < gap["high"]
                assert (gap["p"] < 0.05) == (gap["low"] > 0 or gap["high"] < 0)  # the interval's own test
                assert gap["difference"] == pytest.approx(row[method][metric] - row["forest"][metric], abs=2e-3)
        for method in ("online", "online_warm"):  # the AUCs inside each flow, weighted by its students
            for metric in ("auc_dropout", "auc_success"):
                within = row[f"{method}_vs_forest_within_flows"][metric]
                if within is None:  # every test flow of one outcome that week
                    continue
                compared += 1
                assert 1 <= within["flows"] <= len(result["students"]["test_flows"])
                assert within["difference"] == pytest.approx(within["method"] - within["forest"], abs=2e-3)
                assert within["low"] <= within["difference"] <= within["high"]
    assert compared >= 20  # of 40 (week, method, AUC) cells
    # what answered each probability: every scored (student, week) counted once, under one basis
    for method in ("online", "online_warm"):
        for score in ("p_dropout", "p_success"):
            for row in result["weeks"]:
                levels = row[f"{method}_by_basis"][score]
                assert set(levels) <= {"learned", "calibrated_guess", "guess"}
                assert sum(v["scores"] for v in levels.values()) == row["n"]
                assert all(0 <= v["mean_p"] <= 1 and 0 <= v["came_true"] <= 1 for v in levels.values())
            pooled = result["summary"]["by_basis"][method][score]
            assert sum(v["scores"] for v in pooled.values()) == sum(r["n"] for r in result["weeks"])
    # whose outcomes had taught each scored week: every score in one group, the groups' own metrics
    for method in ("online", "online_warm"):
        for row in result["weeks"]:
            groups = row[f"{method}_by_taught"]
            assert set(groups) <= {"own_course", "other_courses", "none"}
            assert sum(g["scores"] for g in groups.values()) == row["n"]
            assert all(0 <= g["method"]["mae"] <= 100 and 0 <= g["forest"]["mae"] <= 100 for g in groups.values())
        pooled = result["summary"]["by_taught"][method]
        assert sum(g["scores"] for g in pooled.values()) == sum(r["n"] for r in result["weeks"])
    first = result["weeks"][0]
    assert "none" in first["online_by_taught"] and "none" not in first["online_warm_by_taught"]
    # strict: week 1 of the first test flow comes before any outcome; warm learned the train flows first
    assert "guess" in result["weeks"][0]["online_by_basis"]["p_dropout"]
    assert set(result["weeks"][0]["online_warm_by_basis"]["p_dropout"]) == {"learned"}
    calibration = result["summary"]["calibration"]["forest"]  # the means over the weeks of the rows' values
    weekly_brier = [r["forest"]["brier_dropout"] for r in result["weeks"]]
    assert calibration["brier_dropout"] == pytest.approx(np.mean(weekly_brier), abs=1e-4)
    forest_mae = [row["forest"]["mae"] for row in result["weeks"]]
    assert forest_mae[-1] < forest_mae[0]  # the seed's finding: later weeks predict better
    for versus in (result["summary"]["online_vs_forest"], result["summary"]["online_warm_vs_forest"]):
        for metric in ("mae", "auc_dropout", "auc_success"):  # beyond chance is a subset of the raw comparison
            assert set(versus[metric]["significantly_worse_weeks"]) <= set(versus[metric]["worse_weeks"])
            assert not set(versus[metric]["significantly_better_weeks"]) & set(versus[metric]["worse_weeks"])
            for side in ("worse", "better"):  # Holm's adjustment only ever drops verdicts
                assert set(versus[metric][f"significantly_{side}_weeks_holm"]) <= set(
                    versus[metric][f"significantly_{side}_weeks"])
        assert versus["never_significantly_worse"] == (not any(
            versus[m]["significantly_worse_weeks"] for m in ("mae", "auc_dropout", "auc_success")))
    for method in ("online", "online_warm"):  # the within-flow verdicts are the rows' intervals
        within = result["summary"][f"{method}_vs_forest_within_flows"]["auc_dropout"]
        rows = result["weeks"]
        assert within["significantly_worse_weeks"] == [
            r["week"] for r in rows if r[f"{method}_vs_forest_within_flows"]["auc_dropout"]["high"] < 0]
        assert set(within["significantly_worse_weeks_holm"]) <= set(within["significantly_worse_weeks"])
    for method in ("online", "online_warm"):  # does learning help: each week's gap to the label-free prior
        for row in result["weeks"]:
            gap = row[f"{method}_vs_prior"]["mae"]
            assert gap["difference"] == pytest.approx(row[method]["mae"] - row["prior"]["mae"], abs=2e-3)
            assert gap["low"] <= gap["difference"] <= gap["high"]
        learning = result["summary"]["learning_vs_prior"][method]
        assert learning["prior"] == pytest.approx(np.mean([r["prior"]["mae"] for r in result["weeks"]]), abs=1e-3)
        assert learning["worse_weeks"] == [r["week"] for r in result["weeks"] if r[method]["mae"] > r["prior"]["mae"]]
        assert learning["significantly_better_weeks"] == [
            r["week"] for r in result["weeks"] if r[f"{method}_vs_prior"]["mae"]["high"] < 0]
    # the seed validates per course: every test course, every week, the same metrics on its own students
    courses = result["courses"]
    assert set(courses) == {str(c) for c, _ in result["students"]["test_flows"]}
    for week, row in enumerate(result["weeks"]):
        parts = [rows[week] for rows in courses.values()]
        assert sum(p["n"] for p in parts) == row["n"]
        known = [p for p in parts if p["n"]]
        metrics = {"mae", "mse", *(f"{metric}_{target}" for metric in ("auc", "brier", "calibration")
                                   for target in ("dropout", "success"))}
        assert all(set(p["forest"]) == metrics for p in known)
        assert any(p["forest"]["mse"] is not None for p in known)
    # the strict replay's prequential metrics per course week: every snapshot a label taught, counted once
    by_week = result["online_prequential_by_week"]
    assert "online_prequential_by_week" in result["protocol"]
    assert by_week and set(by_week) <= {str(w) for w in range(1, 11)}
    taught = sum(s.open_at(w) for s in students if s.label is not None for w in s.weekly)
    assert sum(values["examples"] for values in by_week.values()) == taught
    assert all(values["dropout_auc"] is None or 0 <= values["dropout_auc"] <= 1 for values in by_week.values())
    json.dumps(result)


def test_cli_writes_json_and_plot(export_dir, tmp_path, capfd, monkeypatch):
    """`scorer evaluate` end to end, on a 2-week horizon to keep it quick; how far it got on stderr, the replays'
    lines from the processes they run in."""
    png = tmp_path / "curves.png"
    assert main(["evaluate", str(export_dir), "--json", "--weeks", "2", "--family", "linear", "--plot", str(png)]) == 0
    written = capfd.readouterr()
    printed = json.loads(written.out)
    assert [row["week"] for row in printed["weeks"]] == [1, 2]
    assert png.stat().st_size > 10_000
    told = [line.split("] ", 1)[1] for line in written.err.splitlines() if line.startswith("evaluate [")]
    assert told[0] == f"read {printed['students']['total']:,} enrolments and their weekly snapshots from {export_dir}"
    for replay in ("online", "online_warm"):
        steps = [line for line in told if line.startswith(f"{replay}: ") and line.endswith("replayed")]
        assert len(steps) == 10 and steps[-1].split()[1] == steps[-1].split()[3]  # each tenth, the last: n of n
    assert told[-1] == (f"week 2: the seed's forest fitted, with hindsight and in time order; "
                        f"{printed['weeks'][1]['n']:,} test enrolments compared")
    assert main(["evaluate", str(export_dir), "--weeks", "2", "--family", "linear"]) == 0
    lines = capfd.readouterr().out.splitlines()
    (header, week_1, _, legend, holm, strict, warm, within, within_strict, _, in_time, in_time_cells, learning,
     learning_strict, _, basis, basis_strict, _, taught, taught_strict, _, warning, silence) = lines
    without = printed["summary"]["online_vs_forest_in_time"]["weeks_without_forest"]
    assert in_time.startswith("strict against the seed's forest in time order") and f"weeks {without}:" in in_time
    assert in_time_cells.startswith("  mae ") and "auc_success" in in_time_cells
    assert header.split()[:6] == ["week", "n", "|", "mae", "strict", "warm"]
    gap = printed["weeks"][0]["online_vs_forest"]["mae"]  # the strict MAE cell carries its verdict
    verdict = "-" if gap["low"] > 0 else "+" if gap["high"] < 0 else " "
    assert week_1.split("|")[1][13:20] == f"{printed['weeks'][0]['online']['mae']:6.3f}{verdict}"
    assert legend.startswith("- / +: worse / better than the forest beyond chance")
    assert holm.startswith("after Holm's adjustment") and warm.startswith("  warm: mae ")
    held = printed["summary"]["online_vs_forest"]["auc_dropout"]  # the verdicts that hold over the table
    assert f"auc_dropout {held['significantly_worse_weeks_holm']} / {held['significantly_better_weeks_holm']}" in strict
    inside = printed["summary"]["online_vs_forest_within_flows"]["auc_success"]
    assert within.startswith("AUC within flows") and within_strict.startswith("  strict: auc_dropout ")
    cell = (f"auc_success {inside['significantly_worse_weeks']} / {inside['significantly_better_weeks']} "
            f"[{inside['significantly_worse_weeks_holm']} / {inside['significantly_better_weeks_holm']}]")
    assert cell in within_strict
    helped = printed["summary"]["learning_vs_prior"]["online"]  # does learning beat the label-free prior
    assert learning.startswith("progress MAE against the label-free prior")
    assert learning_strict == (f"  strict: {helped['online']:.3f} against {helped['prior']:.3f}; "
                               f"{helped['significantly_worse_weeks']} / {helped['significantly_better_weeks']} "
                               f"[{helped['significantly_worse_weeks_holm']} / "
                               f"{helped['significantly_better_weeks_holm']}]")
    answered = printed["summary"]["by_basis"]["online"]["p_dropout"]
    assert basis.startswith("what answered the probabilities") and basis_strict.startswith("  strict: p_dropout ")
    assert all(f"{name} {v['scores']} ({v['mean_p']:.3f} / {v['came_true']:.3f})" in basis_strict
               for name, v in answered.items())
    by_taught = printed["summary"]["by_taught"]["online"]  # whose outcomes had taught the week, MAE pooled
    assert taught.startswith("whose outcomes had taught") and taught_strict.startswith("  strict: ")
    assert all(f"{name} {v['scores']} (" in taught_strict for name, v in by_taught.items())
    rule = printed["early_warning"]["rule"]
    assert warning.startswith("early warning (strict, at_risk at 0.6") and f"warned {rule['warned']} of " in warning
    assert all(f"{name} {v['warned']} ({v['precision']})" in warning
               for name, v in rule["by_basis"].items() if v["warned"])
    assert silence.startswith("  without a model (warn at N+ days inactive): 3+ days warned ")
    assert all(f"{row['days_inactive']}+ days warned {row['warned']}, precision {row['precision']}, recall "
               f"{row['recall']}, lead to asleep {row['median_lead_days_to_asleep']} d" in silence
               for row in printed["early_warning"]["silence"])


def test_early_warnings_come_before_students_go_quiet_and_beat_the_base_rate(students, blend_run):
    """The at_risk rule over the strict replay: warned students go quiet more often than students
    at large, and the warning comes days before the transition."""
    from online_models.evaluation.early_warning import report

    result = report(students, blend_run, on=0.6, off=0.45)
    rule = result["rule"]
    assert rule["went_quiet"] >= 10 and rule["warned"] >= 5, rule
    assert rule["precision"] > rule["base_rate"], rule
    assert 0 < rule["recall"] <= 1 and rule["median_lead_days_to_asleep"] > 7, rule
    # each warned student counted once, under what answered the P(dropout) of their first warning
    split = rule["by_basis"]
    assert sum(b["warned"] for b in split.values()) == rule["warned"], split
    assert sum(b["warned_then_quiet"] for b in split.values()) == rule["warned_then_quiet"], split
    assert split["guess"]["warned"] > 0 and all(
        b["precision"] == (round(b["warned_then_quiet"] / b["warned"], 3) if b["warned"] else None)
        for b in split.values()), split
    recalls = [row["recall"] for row in result["sweep"]]
    assert recalls == sorted(recalls, reverse=True)  # a higher threshold warns fewer students
    silence = result["silence"]  # without a model: warned at N+ days inactive, on the same looks
    assert all(row["students"] == rule["students"] and row["went_quiet"] == rule["went_quiet"] for row in silence)
    assert [row["warned"] for row in silence] == sorted((row["warned"] for row in silence), reverse=True)
    assert rule["precision"] > max(row["precision"] for row in silence)  # here its warnings come true more often
    quiet = [s for s in students if s.quiet.asleep is not None]
    assert quiet and all(s.quiet.dozing is not None and s.quiet.dozing < s.quiet.asleep for s in quiet)


def test_the_forest_in_time_order_learns_only_the_outcomes_learned_before_each_score(students):
    """Each score is the forest fitted on the outcomes the strict replay had learned before that week ended, no
    more: refitting by hand on that prefix gives the same scores, and a user with fewer than MIN_LABELS of them
    gets none."""
    _, test = split_by_flow(students, TRAIN_SHARE, 0)
    timed = ForestInTime(students, FOREST_FEATURES, seed=0)
    done = flows_done(students)
    order = in_learning_order(students, done)
    by_id = {s.id: s for s in students}
    label_of = labels_of(students)
    seen_both = False
    for week in (2, 6, 9):
        users = sorted(u for u in test if week in by_id[u].weekly and by_id[u].open_at(week))
        scores = timed.scores(users, week)
        learned = {u: sum(s.learned_at(done) < by_id[u].week_end(week) for s in order) for u in users}
        assert {u for u, _ in scores} == {u for u in users if learned[u] >= MIN_LABELS}
        stages = sorted({learned[u] for u in users if learned[u] >= MIN_LABELS})
        seen_both |= len(users) > len({u for u, _ in scores}) > 0
        for count in stages[:2]:
            some = [u for u in users if learned[u] == count][:5]
            forest = WeeklyForest(week, FOREST_FEATURES, 0).fit(
                {s.id: s.weekly for s in students}, {s.id: label_of[s.id] for s in order[:count]},
                {s.id: s.course_id for s in students})
            progress, dropout, success = forest.predict({s.id: s.weekly for s in students}, some)
            for k, u in enumerate(some):
                assert scores[(u, week)] == pytest.approx((progress[k], dropout[k], success[k]))
    assert seen_both  # some week had both: snapshots with a forest in time order and some before it had one


def test_evaluate_compares_the_strict_replay_with_the_forest_in_time_order(students):
    result = evaluate_students(students, family="linear")
    without = result["summary"]["online_vs_forest_in_time"]["weeks_without_forest"]
    for row in result["weeks"]:
        in_time = row["in_time"]
        assert in_time["n"] + in_time["not_scored"] == row["n"]
        assert (row["week"] in without) == (in_time["n"] == 0)
        if in_time["n"]:
            gap = in_time["online_vs_forest_in_time"]["mae"]
            assert gap["difference"] == pytest.approx(in_time["online"]["mae"] - in_time["forest_in_time"]["mae"],
                                                      abs=2e-3)
            if in_time["n"] == row["n"]:  # the same snapshots: the online values are the week's own
                assert in_time["online"]["mae"] == row["online"]["mae"]
    assert 1 in without and 10 not in without  # no outcome before the first flows' week 1; many by week 10
    assert "forest_in_time" in result["protocol"]
