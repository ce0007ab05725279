"""The per-student step in memory: what one student's events and the watermark imply, per enrolment."""
from __future__ import annotations

import copy
import json
from dataclasses import replace
from typing import Any

import fastjsonschema

from features import ACTIVE, ASLEEP, DAY, DEFAULT_THRESHOLDS, DOZING, FINISHED, WEEK, CourseSchedule, format_ts
from features.hypotheses import Factor, describe
from streams.contract import ScoreBasis, Scores, Topic, schema
from streams.core.documents import StudentDoc, StudentEvent
from streams.core.event_ids import event_key, holds_key
from streams.core.step import FlowMark, StepConfig, StepResult, step

START = 1_701_424_800.0  # 2023-12-01T10:00, the course start
CONFIG = StepConfig(DEFAULT_THRESHOLDS, score_every=3600.0, grace=7 * DAY)
KEY = "3:1"  # course 3, flow 1
HELD, RELEASED = ("outcome_held", "lms.outcomes"), ("outcome_released", "lms.outcomes")


def _row(course_id: int, activity_id: int, task_id: int, shown: float, module: int = 2) -> dict[str, Any]:
    return {"course_id": course_id, "ts": "2023-11-01T00:00:00", "type": "активность", "task_id": task_id,
            "activity_id": activity_id, "activity_type": "exercise", "is_attestation": 0, "required": 1,
            "date_shown": format_ts(shown), "module": module, "task_position": 1}


#: Course 3 opens a row a week for 12 weeks (longer than the seed's ten); course 5 runs in parallel.
SCHEDULE = CourseSchedule.from_records([_row(3, 10 + w, 100 + w, START + w * WEEK) for w in range(12)])
OTHER = CourseSchedule.from_records([_row(5, 500 + w, 600 + w, START + w * WEEK) for w in range(4)])


def schedules(key: tuple[int, int | None]) -> CourseSchedule | None:
    return {3: SCHEDULE, 5: OTHER}.get(key[0])


LATE = Factor("timeliness", "missed_deadlines", 2.0, 0.0, "target", 0.1)


class CountingScorer:
    """Scores every student alike and counts the calls (the step decides when to re-score)."""

    def __init__(self, p_dropout: float = 0.55, basis: ScoreBasis | None = None) -> None:  # risky enough
        self.calls = 0  # for a reason, not for a warning
        self.p_dropout = p_dropout
        self.basis = basis

    def score(self, features: dict[str, float]) -> Scores:
        self.calls += 1
        return Scores(progress=42.0, p_dropout=self.p_dropout, p_success=0.2, model_version=3, factors=(LATE,),
                      basis=self.basis)


def enrol(offset: int = 0, at: float = START, course_id: int = 3, flow: float = 1.0,
          online: bool = True) -> StudentEvent:
    record = {"user_id": 1, "ts": format_ts(at), "course_id": course_id, "flow_num": flow, "online": online,
              "tg_bot": 1, "time_zone": "+05:00"}
    return StudentEvent(Topic.STUDENTS, 2, offset, record, at)


def login(offset: int, at: float) -> StudentEvent:
    return StudentEvent(Topic.AUTHORIZATIONS, 2, offset, {"user_id": 1, "ts": format_ts(at)}, at)


def attempt(offset: int, at: float, activity_id: int) -> StudentEvent:
    record = {"user_id": 1, "ts": format_ts(at), "activity_id": activity_id, "result": 80, "success": 1}
    return StudentEvent(Topic.EXERCISE_RESULTS, 2, offset, record, at)


def outcome(offset: int, at: float, course_id: int = 3) -> StudentEvent:
    record = {"user_id": 1, "ts": format_ts(at), "course_id": course_id, "module": 2, "progress": 30,
              "attestation": None}
    return StudentEvent(Topic.OUTCOMES, 2, offset, record, at)


def run(doc: StudentDoc | None, events: list[StudentEvent], mark: float | None,
        scorer: CountingScorer | None = None) -> StepResult:
    return step(1, doc, events, {} if mark is None else {2: mark}, schedules, CONFIG, scorer or CountingScorer())


def status(result: StepResult, key: str = KEY) -> str:
    machine = result.doc["enrolments"][key]["machine"]
    assert machine is not None
    return machine["status"]


def test_silence_gives_dozing_then_asleep_filed_where_the_student_stopped() -> None:
    scorer = CountingScorer()
    first = run(None, [enrol(), login(0, START + DAY)], START + DAY, scorer)
    assert first.alerts == [] and status(first) == ACTIVE  # enrolment is no alert
    assert first.status_delta == {ACTIVE: 1}
    (row,) = first.score_rows
    assert (row.enrolment, row.scores.model_version) == (KEY, 3)
    assert first.next_due == START + WEEK  # the end of course week 1 comes before dozing (day 8)

    later = run(first.doc, [], START + 30 * DAY, scorer)
    assert [(a.from_status, a.to_status) for a in later.alerts] == [(ACTIVE, DOZING), (DOZING, ASLEEP)]
    dozing, asleep = later.alerts
    assert dozing.at == START + 8 * DAY and asleep.at == START + 21 * DAY  # 7 / 20 days after the login
    # filed where the student stopped: the week and task of the last activity (day 1), not day 8's
    assert (dozing.position.course_week, dozing.position.task_id) == (1, 100)
    assert (asleep.position.course_week, asleep.position.task_id) == (1, 100)
    # what happened, the model's factors, the risk: in the school's language by default
    assert dozing.reasons == ("нет активности 7 дн.", describe(LATE, "ru"), "риск отчисления 55%")
    assert dozing.to_message()["factors"] == [LATE.to_json("ru")] and dozing.to_message()["schema_version"] == 3
    assert (dozing.course_id, dozing.flow_num, dozing.kind) == (3, 1, "status_change")
    assert later.status_delta == {ACTIVE: -1, ASLEEP: 1}
    assert [learner for learner, _, _ in later.weeks] == ["1:3:1"] * 4
    assert [week for _, week, _ in later.weeks] == [1, 2, 3, 4]  # each finished course week, once


def test_the_lifecycle_ends_with_one_finished_alert_and_no_inactivity_after_it() -> None:
    """The flow's last row opens in week 12; a week's grace later the enrolment is over: a quiet
    student is not reported dozing or asleep after that, and is never scored again."""
    first = run(None, [enrol(), login(0, START + 70 * DAY)], START + 70 * DAY)
    end = SCHEDULE.end + CONFIG.grace
    later = run(first.doc, [], START + 200 * DAY)
    assert [(a.to_status, a.at) for a in later.alerts] == [(DOZING, START + 77 * DAY), (FINISHED, end)]
    assert later.alerts[-1].kind == "finished" and later.next_due is None
    assert later.score_rows[-1].status == FINISHED and later.score_rows[-1].updated_at == end
    again = run(later.doc, [login(1, START + 201 * DAY)], START + 230 * DAY)
    assert again.alerts == [] and again.score_rows == [] and status(again) == FINISHED


def test_a_schedule_still_filling_in_does_not_end_the_lifecycle_early() -> None:
    """Only the first two weeks of the schedule are read at the first step (an end of day 14);
    the rest arrives before the watermark passes that end. The end follows the whole schedule."""
    partial = CourseSchedule.from_records([_row(3, 10 + w, 100 + w, START + w * WEEK) for w in range(2)])
    first = step(1, None, [enrol(), login(0, START + 10 * DAY)], {2: START + 10 * DAY},
                 lambda key: partial if key[0] == 3 else None, CONFIG, CountingScorer())
    assert status(first) == ACTIVE
    later = run(first.doc, [login(1, START + 25 * DAY)], START + 26 * DAY)  # the full schedule now
    assert [a.to_status for a in later.alerts] == [DOZING, ACTIVE] and status(later) == ACTIVE


def test_an_outcome_ends_the_lifecycle_at_its_time_and_becomes_the_label_its_flow_is_learned_with() -> None:
    """The label waits in the document until `learn_after` past the flow's end, when the rest of its
    flow's outcomes are in (step.label_release); the student is due then, and it is handed over once."""
    doc = run(None, [enrol(), login(0, START + DAY)], START + DAY).doc
    result = run(doc, [outcome(0, START + 26 * DAY)], START + 27 * DAY)
    assert [(a.to_status, a.at) for a in result.alerts] == [
        (DOZING, START + 8 * DAY), (ASLEEP, START + 21 * DAY), (FINISHED, START + 26 * DAY)]
    release = SCHEDULE.end + 28 * DAY
    assert result.labels == [] and result.next_due == release
    assert result.counts[HELD] == 1 and result.counts[RELEASED] == 0  # scorer_outcomes_held_total
    assert run(result.doc, [], release - 1).labels == []
    released = run(result.doc, [], release)
    assert released.counts[RELEASED] == 1 and released.counts[HELD] == 0
    (label,) = released.labels
    assert label.learner == "1:3:1" and label.outcome["progress"] == 30 and label.days_inactive == 25.0
    assert released.next_due is None and run(released.doc, [], release + DAY).labels == []


def test_an_outcome_after_its_flows_release_or_with_learn_after_none_is_handed_over_at_once() -> None:
    doc = run(None, [enrol(), login(0, START + DAY)], START + DAY).doc
    late = SCHEDULE.end + 30 * DAY
    at_once = run(copy.deepcopy(doc), [outcome(0, late)], late)
    assert len(at_once.labels) == 1 and at_once.counts[HELD] == at_once.counts[RELEASED] == 0
    on_arrival = replace(CONFIG, learn_after=None)
    result = step(1, doc, [outcome(0, START + 26 * DAY)], {2: START + 27 * DAY}, schedules, on_arrival,
                  CountingScorer())
    assert len(result.labels) == 1


def test_a_held_outcome_waits_for_the_end_of_the_whole_schedule_once_it_has_filled_in() -> None:
    partial = CourseSchedule.from_records([_row(3, 10 + w, 100 + w, START + w * WEEK) for w in range(2)])
    first = step(1, None, [enrol(), login(0, START + DAY), outcome(1, START + 5 * DAY)], {2: START + 6 * DAY},
                 lambda key: partial if key[0] == 3 else None, CONFIG, CountingScorer())
    assert first.labels == [] and first.next_due == partial.end + 28 * DAY
    assert run(first.doc, [], partial.end + 28 * DAY).labels == []  # the full schedule ends later
    assert len(run(first.doc, [], SCHEDULE.end + 28 * DAY).labels) == 1


def test_a_complete_flow_releases_its_outcomes_at_its_last_one_but_never_before_its_end() -> None:
    """Once every enrolment of the flow has an outcome (the flow index's `flows_done`), the held
    outcome goes at the last of them instead of `learn_after` past the end; a flow complete before
    its end (enrolments may still join) waits for the end."""
    doc = run(None, [enrol(), login(0, START + DAY)], START + DAY).doc
    held = run(doc, [outcome(0, START + 26 * DAY)], START + 27 * DAY).doc
    for done, release in ((SCHEDULE.end + 3 * DAY, SCHEDULE.end + 3 * DAY), (START + 30 * DAY, SCHEDULE.end)):
        def complete(key: tuple[int, int | None], done: float = done) -> float | None:
            return done if key == (3, 1) else None

        waiting = step(1, copy.deepcopy(held), [], {2: release - 1}, schedules, CONFIG, CountingScorer(), complete)
        assert waiting.labels == [] and waiting.next_due == release
        released = step(1, copy.deepcopy(held), [], {2: release}, schedules, CONFIG, CountingScorer(), complete)
        assert len(released.labels) == 1 and released.counts[RELEASED] == 1


def test_each_enrolment_and_outcome_is_reported_to_the_flow_index_once() -> None:
    first = run(None, [enrol(), login(0, START + DAY)], START + DAY)
    assert first.flow_marks == [FlowMark(3, 1, None)]
    quiet = run(first.doc, [login(1, START + 2 * DAY)], START + 2 * DAY)
    assert quiet.flow_marks == []
    ended = run(quiet.doc, [outcome(0, START + 26 * DAY)], START + 27 * DAY)
    assert ended.flow_marks == [FlowMark(3, 1, START + 26 * DAY)]
    del ended.doc["enrolments"][KEY]["in_flow_index"]  # stored before the flow index existed
    assert run(ended.doc, [], START + 28 * DAY).flow_marks == [FlowMark(3, 1, None)]


def test_a_document_stored_before_labels_waited_still_takes_its_outcome() -> None:
    doc = run(None, [enrol(), login(0, START + DAY)], START + DAY).doc
    del doc["enrolments"][KEY]["held_labels"]
    held = run(doc, [outcome(0, START + 26 * DAY)], START + 27 * DAY)
    assert len(held.doc["enrolments"][KEY]["held_labels"]) == 1
    assert len(run(held.doc, [], SCHEDULE.end + 28 * DAY).labels) == 1


def test_an_outcome_read_before_the_profile_waits_for_its_enrolment() -> None:
    """Topics are read in any order: the outcome comes first (no watermark yet), the profile later;
    the outcome still ends the lifecycle at its time and becomes the label."""
    early = run(None, [outcome(0, START + 26 * DAY)], None)
    assert early.doc["enrolments"] == {} and len(early.doc["waiting_outcomes"]) == 1
    result = run(early.doc, [enrol(), login(0, START + DAY)], START + 27 * DAY)
    assert result.doc["waiting_outcomes"] == []
    assert [label.learner for label in run(result.doc, [], SCHEDULE.end + 28 * DAY).labels] == ["1:3:1"]
    assert [(a.to_status, a.at) for a in result.alerts][-1] == (FINISHED, START + 26 * DAY)


def test_a_second_enrolment_starts_a_lifecycle_of_its_own() -> None:
    """The same course again in flow 2, after flow 1 is over: its own status, rows and alert ids;
    flow 1 stays finished."""
    first = run(None, [enrol(), login(0, START + DAY), outcome(1, START + 30 * DAY)], START + 31 * DAY)
    assert status(first) == FINISHED
    second = run(first.doc, [enrol(2, at=START + 40 * DAY, flow=2.0), login(3, START + 41 * DAY)], START + 41 * DAY)
    assert status(second, "3:2") == ACTIVE and status(second) == FINISHED
    later = run(second.doc, [], START + 49 * DAY)
    (dozing,) = later.alerts
    assert (dozing.flow_num, dozing.at, dozing.to_status) == (2, START + 48 * DAY, DOZING)
    assert dozing.alert_id not in {a.alert_id for a in first.alerts}
    assert {row.enrolment for row in later.score_rows} == {"3:2"}


def test_course_work_counts_for_its_course_and_logins_for_every_course() -> None:
    """Enrolled in courses 3 and 5 at once: exercises of course 5 keep course 5 active only; a
    login keeps both."""
    doc = run(None, [enrol(), enrol(1, course_id=5, flow=1.0), login(0, START + DAY)], START + DAY).doc
    result = run(doc, [attempt(0, START + 6 * DAY, 501)], START + 10 * DAY)
    assert [(a.course_id, a.to_status) for a in result.alerts] == [(3, DOZING)]
    assert status(result, "5:1") == ACTIVE


def test_activity_before_the_profile_counts_from_the_enrolment_on() -> None:
    """A login published before the profile that opens the enrolment is not lost to it."""
    early = run(None, [login(0, START + 2 * DAY)], START + 2 * DAY)
    assert early.doc["enrolments"] == {}
    result = run(early.doc, [enrol(0, at=START + DAY)], START + 9 * DAY + 60)
    assert [(a.to_status, a.at) for a in result.alerts] == [(DOZING, START + 9 * DAY)]  # 7 days after the login


def test_a_teachers_regrade_is_not_the_students_activity() -> None:
    """Handed in on day 1, graded on day 3 and regraded on day 12 (a record dated then, since the
    LMS names no hand-in time): silence from day 1 on, as the facts say; a regrade is no return."""
    named = {"user_id": 1, "activity_id": 10, "attempt_id": "urn:attempt:7", "success": 0, "result": 40}
    graded = {**named, "ts": format_ts(START + DAY), "graded_at": format_ts(START + 3 * DAY)}
    regraded = {**named, "ts": format_ts(START + 12 * DAY), "result": 90, "success": 1}
    first = run(None, [enrol(), StudentEvent(Topic.EXERCISE_RESULTS, 2, 1, graded, START + DAY)], START + 3 * DAY)
    second = run(first.doc, [StudentEvent(Topic.EXERCISE_RESULTS, 2, 2, regraded, START + 12 * DAY)],
                 START + 30 * DAY)
    assert [(a.from_status, a.to_status, a.at) for a in second.alerts] == [
        (ACTIVE, DOZING, START + 8 * DAY), (DOZING, ASLEEP, START + 21 * DAY)]
    assert second.doc["facts"]["graded"]["10"]["urn:attempt:7"][-1][2] == 90  # the grade still counts


def test_a_redelivered_event_changes_nothing_and_is_counted() -> None:
    first = run(None, [enrol(), login(5, START + DAY)], START + DAY)
    facts = repr(first.doc["facts"])
    again = run(first.doc, [login(5, START + DAY), login(4, START + 2 * DAY)], START + DAY)
    assert repr(again.doc["facts"]) == facts  # offset 5 and older were applied before
    assert again.counts[("duplicate_offset", Topic.AUTHORIZATIONS.value)] == 2
    assert again.counts[("applied", Topic.AUTHORIZATIONS.value)] == 0


def test_only_duplicates_of_an_unknown_student_store_nothing() -> None:
    result = run(None, [], START)
    assert not result.stored and result.alerts == [] and result.score_rows == []


def test_activity_older_than_the_watermark_is_late_and_never_back_dated() -> None:
    first = run(None, [enrol(), login(0, START + DAY)], START + 10 * DAY)
    assert [a.to_status for a in first.alerts] == [DOZING]
    late = run(first.doc, [login(1, START + 5 * DAY)], START + 10 * DAY + 60)
    assert late.counts[("late", Topic.AUTHORIZATIONS.value)] == 1
    (woke,) = late.alerts
    assert (woke.from_status, woke.to_status) == (DOZING, ACTIVE)
    assert woke.at == START + 10 * DAY  # counted at the watermark it missed, not at its own time


def test_scores_are_refreshed_at_most_every_score_every_unless_something_happens() -> None:
    scorer = CountingScorer()
    doc = run(None, [enrol(), login(0, START + DAY)], START + DAY, scorer).doc
    assert scorer.calls == 1
    quiet = run(doc, [login(1, START + DAY + 60)], START + DAY + 120, scorer)
    assert scorer.calls == 1 and quiet.score_rows == []  # a minute later: the stored scores stand
    run(quiet.doc, [], START + DAY + 2 * 3600, scorer)
    assert scorer.calls == 2  # an hour of event time later: re-scored


def test_weekly_features_cover_every_course_week_and_stop_with_the_schedule() -> None:
    doc = run(None, [enrol(), login(0, START + DAY)], START + DAY).doc
    result = run(doc, [], START + 11 * WEEK + DAY)
    assert SCHEDULE.weeks == 12
    assert [week for _, week, _ in result.weeks] == list(range(1, 12))
    assert result.weeks[0][2]["course_week"] == 2.0  # as of the end of week 1: the first second of week 2
    rest = run(result.doc, [], START + 30 * WEEK)
    assert [week for _, week, _ in rest.weeks] == [12] and rest.next_due is None  # finished: nothing left


def test_no_clock_runs_before_the_flow_starts() -> None:
    early = START - 20 * DAY  # enrolled three weeks before the course begins
    result = run(None, [enrol(at=early)], START + 6 * DAY)
    assert result.alerts == [] and status(result) == ACTIVE
    later = run(result.doc, [], START + 8 * DAY)
    assert [a.at for a in later.alerts] == [START + 7 * DAY]  # 7 days after the start, not the enrolment


def test_nothing_is_scored_or_written_before_the_partition_has_a_watermark() -> None:
    """A worker that just took the partition over knows no event time yet: a row as of the
    newest fact would run ahead of the watermark and shadow every later, correct row."""
    scorer = CountingScorer()
    early = run(None, [enrol(), login(0, START + 40 * DAY)], None, scorer)
    assert early.stored and early.score_rows == [] and early.alerts == [] and scorer.calls == 0
    later = run(early.doc, [], START + 40 * DAY, scorer)
    (row,) = later.score_rows
    assert row.updated_at == START + 40 * DAY and row.status == ACTIVE and row.days_inactive == 0.0


def _login_with_id(offset: int, at: float, event_id: str, partition: int = 2) -> StudentEvent:
    record = {"user_id": 1, "ts": format_ts(at), "event_id": event_id}
    return StudentEvent(Topic.AUTHORIZATIONS, partition, offset, record, at)


def test_an_lms_copy_of_a_record_is_applied_once() -> None:
    """The LMS published the same login three times (offsets 1, 2, 3): its event id tells."""
    copies = [_login_with_id(offset, START + DAY, "lms-42") for offset in (1, 2, 3)]
    result = run(None, [enrol(), *copies], START + DAY)
    assert len(result.doc["facts"]["logins"]) == 1
    assert result.counts[("duplicate_event_id", Topic.AUTHORIZATIONS.value)] == 2


def test_fences_are_per_topic_partition() -> None:
    """A stray record on another partition must not fence off the student's own partition."""
    stray = _login_with_id(900, START + DAY, "stray", partition=3)
    own = _login_with_id(5, START + 2 * DAY, "own")
    result = run(None, [enrol(), stray, own], START + 3 * DAY)
    assert len(result.doc["facts"]["logins"]) == 2
    assert result.doc["offsets"] == {"lms.students:2": 0, "lms.authorizations:3": 900, "lms.authorizations:2": 5}


def test_records_behind_the_fence_that_were_never_applied_are_applied_and_counted() -> None:
    """After a log reset (topic recreated), offsets start again below the fence: new event ids
    are new facts; a redelivered one is still a duplicate."""
    first = run(None, [enrol(), _login_with_id(5000, START + DAY, "old")], START + DAY)
    after_reset = [_login_with_id(0, START + 2 * DAY, "new"), _login_with_id(1, START + DAY, "old")]
    result = run(first.doc, after_reset, START + 2 * DAY)
    assert len(result.doc["facts"]["logins"]) == 2
    assert result.counts[("behind_fence", Topic.AUTHORIZATIONS.value)] == 1
    assert result.counts[("duplicate_offset", Topic.AUTHORIZATIONS.value)] == 1
    assert result.doc["offsets"]["lms.authorizations:2"] == 5000  # the fence never moves back


def test_offline_students_are_kept_and_scored_but_never_alerted() -> None:
    first = run(None, [enrol(online=False), login(0, START + DAY)], START + DAY)
    later = run(first.doc, [], START + 30 * DAY)
    assert later.alerts == [] and status(later) == ASLEEP and later.score_rows  # tracked, silent


def test_a_risk_no_outcome_has_leveled_says_it_is_a_guess() -> None:
    """The risk sentence says where a label-free guess answered; the alert carries what answered each score."""
    events = [enrol(), login(0, START + DAY)]
    for basis, words in ((ScoreBasis("guess", "guess", "guess"), " (оценка по активности до первых итогов: "
                          "ранжирует учеников, но не частота)"),
                         (ScoreBasis("guess", "calibrated_guess", "learned"),
                          " (оценка по активности, уровень по уже известным итогам)"),
                         (ScoreBasis("learned", "learned", "learned"), "")):
        (warning,) = run(None, events, START + DAY, CountingScorer(0.7, basis)).alerts
        assert warning.reasons == (describe(LATE, "ru"), "риск отчисления 70%" + words)
        message = warning.to_message()
        assert message["basis"] == {"progress": basis.progress, "p_dropout": basis.p_dropout,
                                    "p_success": basis.p_success}
        fastjsonschema.compile(schema("alert"))(message)
        assert Scores.from_json(warning.scores.to_json()) == warning.scores
    (unsaid,) = run(None, events, START + DAY, CountingScorer(0.7)).alerts  # a scorer that does not say
    assert unsaid.to_message()["basis"] is None and Scores.from_json(unsaid.scores.to_json()).basis is None
    english = replace(CONFIG, language="en")
    (warning,) = step(1, None, events, {2: START + DAY}, schedules, english,
                      CountingScorer(0.7, ScoreBasis())).alerts
    assert warning.reasons[-1] == ("dropout risk 70% (estimated from activity before any outcome: it ranks "
                                   "students, it is not a frequency)")


def test_an_early_warning_once_per_episode_while_still_active() -> None:
    risky, calm = CountingScorer(p_dropout=0.7), CountingScorer(p_dropout=0.3)
    first = run(None, [enrol(), login(0, START + DAY)], START + DAY, risky)
    (warning,) = first.alerts
    assert (warning.kind, warning.from_status, warning.to_status) == ("at_risk", ACTIVE, ACTIVE)
    assert warning.at == START + DAY and warning.reasons == (describe(LATE, "ru"), "риск отчисления 70%")
    assert (warning.tg_bot, warning.time_zone) == (1, "+05:00")  # what a sender needs to reach them
    again = run(first.doc, [login(1, START + 2 * DAY)], START + 2 * DAY, risky)
    assert again.alerts == []  # the episode is open: no second warning
    cleared = run(again.doc, [login(2, START + 3 * DAY)], START + 3 * DAY, calm)
    assert cleared.alerts == [] and cleared.doc["enrolments"][KEY]["at_risk_since"] is None
    renewed = run(cleared.doc, [login(3, START + 4 * DAY)], START + 4 * DAY, risky)
    assert [a.kind for a in renewed.alerts] == ["at_risk"] and renewed.alerts[0].alert_id != warning.alert_id


def _busy_days(first_day: int, days: int, per_day: int, offset: int) -> list[StudentEvent]:
    """`per_day` logins with LMS event ids on each of `days` days, from course day `first_day`."""
    return [_login_with_id(offset + d * per_day + k, START + (first_day + d) * DAY + k * 60, f"id-{first_day + d}-{k}")
            for d in range(days) for k in range(per_day)]


def test_a_long_busy_history_leaves_a_document_of_flat_size() -> None:
    """Day after day of activity: old facts and their event ids are compacted as the watermark
    moves on, so the document after 10 weeks is about the size it had after 4, with the
    features of every fact; a copy of a recent record is still recognised by its id."""
    doc = run(None, [enrol()], START).doc
    sizes, offset = {}, 1
    for week in range(10):
        events = _busy_days(7 * week, 7, 30, offset)
        offset += len(events)
        doc = run(doc, events, START + (week + 1) * WEEK).doc
        sizes[week + 1] = len(json.dumps(doc))
    assert doc["facts"]["compacted"]["logins"] + len(doc["facts"]["logins"]) == 10 * 7 * 30
    assert sizes[10] < 1.3 * sizes[4] and sizes[10] < sizes[1] * 3
    copy = _login_with_id(offset, START + 69 * DAY + 60, "id-69-1")
    result = run(doc, [copy], START + 10 * WEEK)
    assert result.counts[("duplicate_event_id", Topic.AUTHORIZATIONS.value)] == 1


def test_event_ids_stored_as_a_list_before_are_still_recognised() -> None:
    doc = run(None, [enrol(), _login_with_id(1, START + DAY, "lms-7")], START + DAY).doc
    doc["seen"] = [event_key({"event_id": "lms-7"})]  # as documents were stored before days were kept
    result = run(doc, [_login_with_id(2, START + DAY, "lms-7")], START + 2 * DAY)
    assert result.counts[("duplicate_event_id", Topic.AUTHORIZATIONS.value)] == 1


def test_an_event_key_is_found_only_at_a_key_boundary() -> None:
    first, second = "0123456789abcdef", "fedcba9876543210"
    keys = first + second
    assert holds_key(keys, first) and holds_key(keys, second)
    assert not holds_key(keys, "89abcdeffedcba98")  # spans the two keys: not a key of its own
    assert not holds_key("", first)
