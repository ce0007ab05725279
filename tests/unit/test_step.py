"""The per-student step in memory: what one student's events and the watermark imply."""
from __future__ import annotations

from typing import Any

from features import ACTIVE, ASLEEP, DAY, DEFAULT_THRESHOLDS, DOZING, NEW, WEEK, CourseSchedule, format_ts
from streams.contract import Scores, Topic
from streams.core.step import StepConfig, StudentEvent, step

START = 1_701_424_800.0  # 2023-12-01T10:00, the course start
CONFIG = StepConfig(DEFAULT_THRESHOLDS, score_every=3600.0)


def _row(activity_id: int, task_id: int, shown: float, module: int = 2) -> dict[str, Any]:
    return {"course_id": 3, "ts": "2023-11-01T00:00:00", "type": "активность", "task_id": task_id,
            "activity_id": activity_id, "activity_type": "exercise", "is_attestation": 0, "required": 1,
            "date_shown": format_ts(shown), "module": module, "task_position": 1}


SCHEDULE = CourseSchedule.from_records([_row(10 + w, 100 + w, START + w * WEEK) for w in range(12)])


def schedules(key: tuple[int, int | None]) -> CourseSchedule | None:
    return SCHEDULE if key[0] == 3 else None


class CountingScorer:
    """Scores every student alike and counts the calls (the step decides when to re-score)."""

    def __init__(self, p_dropout: float = 0.7) -> None:
        self.calls = 0
        self.p_dropout = p_dropout

    def score(self, features: dict[str, float]) -> Scores:
        self.calls += 1
        return Scores(progress=42.0, p_dropout=self.p_dropout, p_success=0.2, model_version=3)


def enrol(offset: int = 0, at: float = START) -> StudentEvent:
    record = {"user_id": 1, "ts": format_ts(at), "course_id": 3, "flow_num": 1.0}
    return StudentEvent(Topic.STUDENTS, 2, offset, record, at)


def login(offset: int, at: float) -> StudentEvent:
    return StudentEvent(Topic.AUTHORIZATIONS, 2, offset, {"user_id": 1, "ts": format_ts(at)}, at)


def test_silence_gives_dozing_then_asleep_with_course_position_and_reasons() -> None:
    scorer = CountingScorer()
    first = step(1, None, [enrol(), login(0, START + DAY)], {2: START + DAY}, schedules, CONFIG, scorer)
    assert (first.old_status, first.new_status, first.alerts) == (NEW, ACTIVE, [])  # enrolment is no alert
    assert first.score_row is not None and first.score_row.scores.model_version == 3
    assert first.next_due == START + WEEK  # the end of course week 1 comes before dozing (day 8)

    later = step(1, first.doc, [], {2: START + 30 * DAY}, schedules, CONFIG, scorer)
    assert [(a.from_status, a.to_status) for a in later.alerts] == [(ACTIVE, DOZING), (DOZING, ASLEEP)]
    dozing, asleep = later.alerts
    assert dozing.at == START + 8 * DAY and asleep.at == START + 21 * DAY  # 7 / 20 days after the login
    assert dozing.position.course_week == 2 and dozing.position.task_id == 101  # where the course stood
    assert dozing.reasons[0] == "no activity for 7 days" and "dropout risk 70%" in dozing.reasons
    assert (later.old_status, later.new_status) == (ACTIVE, ASLEEP)
    assert [week for week, _ in later.weeks] == [1, 2, 3, 4]  # each finished course week, once
    assert later.doc["weeks_kept"] == 4


def test_a_redelivered_event_changes_nothing_and_is_counted() -> None:
    scorer = CountingScorer()
    first = step(1, None, [enrol(), login(5, START + DAY)], {2: START + DAY}, schedules, CONFIG, scorer)
    facts = repr(first.doc["facts"])
    again = step(1, first.doc, [login(5, START + DAY), login(4, START + 2 * DAY)], {2: START + DAY},
                 schedules, CONFIG, scorer)
    assert repr(again.doc["facts"]) == facts  # offset 5 and older were applied before
    assert again.counts[("duplicate_offset", Topic.AUTHORIZATIONS.value)] == 2
    assert again.counts[("applied", Topic.AUTHORIZATIONS.value)] == 0


def test_only_duplicates_of_an_unknown_student_store_nothing() -> None:
    result = step(1, None, [], {2: START}, schedules, CONFIG, CountingScorer())
    assert not result.stored and result.alerts == [] and result.score_row is None


def test_activity_older_than_the_watermark_is_late_and_never_back_dated() -> None:
    scorer = CountingScorer()
    first = step(1, None, [enrol(), login(0, START + DAY)], {2: START + 10 * DAY}, schedules, CONFIG, scorer)
    assert [a.to_status for a in first.alerts] == [DOZING]
    late = step(1, first.doc, [login(1, START + 5 * DAY)], {2: START + 10 * DAY + 60}, schedules, CONFIG, scorer)
    assert late.counts[("late", Topic.AUTHORIZATIONS.value)] == 1
    (woke,) = late.alerts
    assert (woke.from_status, woke.to_status) == (DOZING, ACTIVE)
    assert woke.at == START + 10 * DAY  # counted at the watermark it missed, not at its own time


def test_scores_are_refreshed_at_most_every_score_every_unless_something_happens() -> None:
    scorer = CountingScorer()
    doc = step(1, None, [enrol(), login(0, START + DAY)], {2: START + DAY}, schedules, CONFIG, scorer).doc
    assert scorer.calls == 1
    quiet = step(1, doc, [login(1, START + DAY + 60)], {2: START + DAY + 120}, schedules, CONFIG, scorer)
    assert scorer.calls == 1 and quiet.score_row is None  # a minute later: the stored scores stand
    step(1, quiet.doc, [], {2: START + DAY + 2 * 3600}, schedules, CONFIG, scorer)
    assert scorer.calls == 2  # an hour of event time later: re-scored


def test_an_outcome_becomes_a_label_with_the_inactivity_at_its_time() -> None:
    scorer = CountingScorer()
    doc = step(1, None, [enrol(), login(0, START + DAY)], {2: START + DAY}, schedules, CONFIG, scorer).doc
    outcome = {"user_id": 1, "ts": format_ts(START + 26 * DAY), "module": 2, "progress": 30, "attestation": None}
    result = step(1, doc, [StudentEvent(Topic.OUTCOMES, 2, 0, outcome, START + 26 * DAY)], {2: START + 26 * DAY},
                  schedules, CONFIG, scorer)
    (label,) = result.labels
    assert label.outcome["progress"] == 30 and label.days_inactive == 25.0


def test_weekly_features_cover_every_course_week_and_stop_with_the_schedule() -> None:
    """The schedule opens rows in weeks 1..12 (a course longer than the seed's ten weeks)."""
    scorer = CountingScorer()
    doc = step(1, None, [enrol(), login(0, START + DAY)], {2: START + DAY}, schedules, CONFIG, scorer).doc
    result = step(1, doc, [], {2: START + 15 * WEEK}, schedules, CONFIG, scorer)
    assert SCHEDULE.weeks == 12
    assert [week for week, _ in result.weeks] == list(range(1, 13))
    assert result.weeks[0][1]["course_week"] == 2.0  # as of the end of week 1: the first second of week 2
    assert result.next_due is None  # asleep, every week kept: nothing left to wake up for


def test_no_clock_runs_before_the_flow_starts() -> None:
    early = START - 20 * DAY  # enrolled three weeks before the course begins
    scorer = CountingScorer()
    result = step(1, None, [enrol(at=early)], {2: START + 6 * DAY}, schedules, CONFIG, scorer)
    assert result.alerts == [] and result.new_status == ACTIVE
    later = step(1, result.doc, [], {2: START + 8 * DAY}, schedules, CONFIG, scorer)
    assert [a.at for a in later.alerts] == [START + 7 * DAY]  # 7 days after the start, not the enrolment


def _login_with_id(offset: int, at: float, event_id: str, partition: int = 2) -> StudentEvent:
    record = {"user_id": 1, "ts": format_ts(at), "event_id": event_id}
    return StudentEvent(Topic.AUTHORIZATIONS, partition, offset, record, at)


def test_an_lms_copy_of_a_record_is_applied_once() -> None:
    """The LMS published the same login three times (offsets 1, 2, 3): its event id tells."""
    copies = [_login_with_id(offset, START + DAY, "lms-42") for offset in (1, 2, 3)]
    result = step(1, None, [enrol(), *copies], {2: START + DAY}, schedules, CONFIG, CountingScorer())
    assert len(result.doc["facts"]["logins"]) == 1
    assert result.counts[("duplicate_event_id", Topic.AUTHORIZATIONS.value)] == 2


def test_fences_are_per_topic_partition() -> None:
    """A stray record on another partition must not fence off the student's own partition."""
    stray = _login_with_id(900, START + DAY, "stray", partition=3)
    own = _login_with_id(5, START + 2 * DAY, "own")
    result = step(1, None, [enrol(), stray, own], {2: START + 3 * DAY}, schedules, CONFIG, CountingScorer())
    assert len(result.doc["facts"]["logins"]) == 2
    assert result.doc["offsets"] == {"lms.students:2": 0, "lms.authorizations:3": 900, "lms.authorizations:2": 5}


def test_records_behind_the_fence_that_were_never_applied_are_applied_and_counted() -> None:
    """After a log reset (topic recreated), offsets start again below the fence: new event ids
    are new facts; a redelivered one is still a duplicate."""
    first = step(1, None, [enrol(), _login_with_id(5000, START + DAY, "old")], {2: START + DAY}, schedules,
                 CONFIG, CountingScorer())
    after_reset = [_login_with_id(0, START + 2 * DAY, "new"), _login_with_id(1, START + DAY, "old")]
    result = step(1, first.doc, after_reset, {2: START + 2 * DAY}, schedules, CONFIG, CountingScorer())
    assert len(result.doc["facts"]["logins"]) == 2
    assert result.counts[("behind_fence", Topic.AUTHORIZATIONS.value)] == 1
    assert result.counts[("duplicate_offset", Topic.AUTHORIZATIONS.value)] == 1
    assert result.doc["offsets"]["lms.authorizations:2"] == 5000  # the fence never moves back


def test_nothing_is_scored_or_written_before_the_partition_has_a_watermark() -> None:
    """A worker that just took the partition over knows no event time yet: a row as of the
    newest fact would run ahead of the watermark and shadow every later, correct row."""
    scorer = CountingScorer()
    early = step(1, None, [enrol(), login(0, START + 40 * DAY)], {}, schedules, CONFIG, scorer)
    assert early.stored and early.score_row is None and early.alerts == [] and scorer.calls == 0
    later = step(1, early.doc, [], {2: START + 40 * DAY}, schedules, CONFIG, scorer)
    assert later.score_row is not None and later.score_row.updated_at == START + 40 * DAY
    assert later.score_row.status == ACTIVE and later.score_row.days_inactive == 0.0
