"""CourseSchedule: opening order, week clock, course position, deadlines, republished rows; FlowSchedules."""
from __future__ import annotations

import random

import pytest

from features import DAY, CourseSchedule, FlowSchedules, parse_ts


def row(activity_id: int, task_id: int, shown: str, *, ts: str = "2023-11-30T00:00:00", course_id: int = 3,
        activity_type: str | None = "exercise", required: int = 0) -> dict:
    return {"course_id": course_id, "ts": ts, "type": "активность", "task_id": task_id, "activity_id": activity_id,
            "activity_type": activity_type, "is_attestation": 0, "required": required, "date_shown": shown,
            "module": 2, "task_position": 1}


ROWS = [
    row(1, 10, "2023-12-04T10:00:00", activity_type="slide", required=1),
    row(2, 10, "2023-12-04T10:00:00"),
    row(3, 20, "2023-12-11T10:00"),
    row(4, 20, "2023-12-12 10:00:00", required=1),
    row(5, 30, "2023-12-18T10:00:00"),
]
START = parse_ts("2023-12-04T10:00:00")


def test_basic_shape() -> None:
    schedule = CourseSchedule.from_records(ROWS)
    assert schedule.course_id == 3 and set(schedule.activities) == {1, 2, 3, 4, 5}
    assert schedule.start == START and schedule.end == parse_ts("2023-12-18T10:00:00")
    assert schedule.weeks == 3  # the last row opens on the first day of week 3
    first = schedule.activities[1]
    assert first.type == "активность" and first.required and not first.is_attestation and first.module == 2
    assert schedule.exercises == {2, 3, 4, 5}


def test_opened_and_counts() -> None:
    schedule = CourseSchedule.from_records(ROWS)
    as_of = parse_ts("2023-12-12T10:00:00")
    assert schedule.opened_counts(START - 1) == (0, 0, 0, 0.0)
    assert schedule.position_at(as_of).activity_id == 4  # the latest row shown by then
    counts = schedule.opened_counts(as_of)
    assert (counts.total, counts.required, counts.attestation) == (4, 2, 0)
    assert counts.days_open == pytest.approx(8 + 8 + 1 + 0)


def test_week_clock_is_one_based_and_clamped() -> None:
    schedule = CourseSchedule.from_records(ROWS)
    assert schedule.week_of(START - 30 * DAY) == 1
    assert schedule.week_of(START) == 1
    assert schedule.week_of(START + 7 * DAY - 1) == 1
    assert schedule.week_of(START + 7 * DAY) == 2
    assert schedule.week_of(START + 15 * DAY) == 3


def test_position_is_the_latest_shown_row() -> None:
    schedule = CourseSchedule.from_records(ROWS)
    assert schedule.position_at(START - 1) is None
    assert schedule.position_at(START).activity_id == 2  # tie on date_shown: highest activity_id
    assert schedule.position_at(parse_ts("2023-12-12T09:59:59")).activity_id == 3
    assert schedule.position_at(parse_ts("2030-01-01T00:00:00")).activity_id == 5


def test_due_is_the_next_task_opening() -> None:
    schedule = CourseSchedule.from_records(ROWS)
    assert schedule.due == {10: parse_ts("2023-12-11T10:00:00"), 20: parse_ts("2023-12-18T10:00:00")}


def test_republished_row_newest_wins_in_any_order() -> None:
    newer = row(5, 30, "2023-12-19T10:00:00", ts="2023-12-01T00:00:00")
    tie_a = row(4, 20, "2023-12-13T10:00:00")  # same ts as the original row 4: larger canonical JSON wins
    records = [*ROWS, newer, tie_a]
    reference = CourseSchedule.from_records(records)
    assert reference.activities[5].date_shown == parse_ts("2023-12-19T10:00:00")
    assert reference.activities[4].date_shown == parse_ts("2023-12-13T10:00:00")
    rng = random.Random(7)
    for _ in range(50):
        rng.shuffle(records)
        assert CourseSchedule.from_records(records).activities == reference.activities


def test_one_course_only() -> None:
    with pytest.raises(ValueError):
        CourseSchedule.from_records([*ROWS, row(9, 90, "2023-12-04T10:00:00", course_id=4)])
    with pytest.raises(ValueError):
        CourseSchedule.from_records([])


def test_each_flow_follows_its_own_rows_and_the_rows_without_a_flow() -> None:
    shared, first, second = row(1, 10, "2023-12-04T10:00:00"), row(2, 20, "2023-12-11T10:00:00"), \
        row(3, 20, "2024-02-05T10:00:00")
    other_course = row(9, 90, "2024-03-04T10:00:00", course_id=4)
    schedules = FlowSchedules([{**first, "flows": 1}, {**second, "flows": 2}, shared, other_course])
    assert set(schedules.get((3, 1)).activities) == {1, 2}
    assert set(schedules.get((3, 2)).activities) == {1, 3}
    assert set(schedules.get((3, None)).activities) == {1, 2, 3}
    assert set(schedules.get((4, 7)).activities) == {9}  # no rows of its own: all
    assert schedules.get((5, 1)) is None
    assert schedules.get((3, 1)) is schedules.get((3, 1))  # built once
    assert sorted(s.end for s in schedules.flows()) == [parse_ts(t) for t in (
        "2023-12-11T10:00:00", "2024-02-05T10:00:00", "2024-03-04T10:00:00")]  # flows 1 and 2, and course 4


def test_more_rows_rebuild_only_their_course() -> None:
    schedules = FlowSchedules([*ROWS, row(9, 90, "2024-03-04T10:00:00", course_id=4)])
    before, other = schedules.get((3, None)), schedules.get((4, None))
    schedules.add([row(6, 40, "2023-12-25T10:00:00")])
    after = schedules.get((3, None))
    assert after is not before and set(after.activities) == {1, 2, 3, 4, 5, 6}
    assert schedules.get((4, None)) is other
