"""A course's timetable: which activity opens when, and what counts as due.

Built from `schedule_activity` records of one course. Everything here is static for a
course, so it is precomputed once (sorted opening times, prefix counts) and every
question asked per student snapshot is a bisect.
"""
from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, NamedTuple

from features.eventtime import DAY, WEEK, parse_ts

LESSON = "занятие"
ACTIVITY = "активность"
#: Activity types graded by an exercise_result (seed activities_guide: CodeExercise,
#: exercise, interactive; question/quiz/test for other providers). Compared lower-case.
EXERCISE_TYPES = frozenset({"exercise", "codeexercise", "interactive", "question", "quiz", "test"})


def page_key(page_type: str, page_id: int) -> str:
    """Short name of a viewable page: 't<task_id>' for a lesson, 'a<activity_id>' for an activity."""
    return f"{'t' if page_type == LESSON else 'a'}{page_id}"


#: Which schedule a student follows: (course_id, flow number or None).
ScheduleKey = tuple[int, int | None]


def schedule_key(course_id: int | None, flow: float | None) -> ScheduleKey | None:
    """The schedule a student with this course and flow follows (None without a course)."""
    return None if course_id is None else (int(course_id), None if flow is None else int(flow))


def _select_flow(records: list[dict[str, Any]], flow: int | None) -> list[dict[str, Any]]:
    """A course's rows that apply to one flow (seed column `flows`): the flow's own rows and the
    rows without a flow; a flow with no rows of its own follows the whole course."""
    if flow is None:
        return records
    own = [r for r in records if r.get("flows") in (None, flow)]
    return own or records


@dataclass(frozen=True)
class Activity:
    """One schedule row. `type` is the page kind: 'занятие' (lesson page, viewed by task_id)
    or 'активность' (activity page, viewed by activity_id)."""

    course_id: int
    activity_id: int
    task_id: int
    type: str
    activity_type: str | None
    is_attestation: bool
    required: bool
    date_shown: float
    module: int | None
    task_position: int | None
    theme_id: int | None = None
    theme: str | None = None  # the activities guide's name of the theme
    task_name: str | None = None

    @property
    def page(self) -> str:
        """The page_key a view of this row lands on."""
        return page_key(self.type, self.task_id if self.type == LESSON else self.activity_id)


class Opened(NamedTuple):
    """Counts over the rows shown by a moment; `days_open` sums, over them, the days since shown."""

    total: int
    required: int
    attestation: int
    days_open: float


def _activity(record: dict[str, Any]) -> Activity:
    return Activity(
        course_id=int(record["course_id"]),
        activity_id=int(record["activity_id"]),
        task_id=int(record["task_id"]),
        type=record["type"],
        activity_type=record.get("activity_type"),
        is_attestation=bool(record["is_attestation"]),
        required=bool(record["required"]),
        date_shown=parse_ts(record["date_shown"]),
        module=record.get("module"),
        task_position=record.get("task_position"),
        theme_id=record.get("theme_id"),
        theme=record.get("theme"),
        task_name=record.get("task_name"),
    )


def _newest(records: Iterable[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Per activity_id the record with the greatest (ts, canonical JSON): republished rows
    replace older ones whatever order they arrive in."""
    chosen: dict[int, tuple[float, str, dict[str, Any]]] = {}
    for record in records:
        rank = (parse_ts(record["ts"]), json.dumps(record, sort_keys=True, ensure_ascii=False))
        current = chosen.get(record["activity_id"])
        if current is None or rank > current[:2]:
            chosen[record["activity_id"]] = (*rank, record)
    return {key: value[2] for key, value in chosen.items()}


class CourseSchedule:
    """The rows of one course with indexes for as-of questions.

    `exercises` are the ids of graded rows (type 'активность' with an EXERCISE_TYPES
    activity_type); a course that names none of those types treats every 'активность'
    row as an exercise so that progress still has a denominator.
    `due[task_id]` is when the next task opens (the first task opening strictly later):
    the seed's "deadline" for the task's exercises. The last task has no due time.
    """

    def __init__(self, course_id: int, activities: dict[int, Activity]) -> None:
        if not activities:
            raise ValueError(f"course {course_id} has no scheduled activities")
        self.course_id = course_id
        self.activities = activities
        rows = sorted(activities.values(), key=lambda a: (a.date_shown, a.activity_id))
        self._rows = rows
        self._shown = [a.date_shown for a in rows]
        self._required = list(accumulate(int(a.required) for a in rows))
        self._attestation = list(accumulate(int(a.is_attestation) for a in rows))
        self.start = self._shown[0]
        self._offset_sum = list(accumulate(t - self.start for t in self._shown))
        self.end = self._shown[-1]
        self.pages: dict[str, tuple[Activity, ...]] = {}
        for row in rows:
            self.pages[row.page] = (*self.pages.get(row.page, ()), row)
        self.exercises = self._exercise_ids(rows)
        self.due = self._due_times(rows)

    @classmethod
    def from_records(cls, records: Iterable[dict[str, Any]]) -> CourseSchedule:
        """Schedule of ONE course from its schedule_activity records (any order, republished rows allowed)."""
        rows = {key: _activity(record) for key, record in _newest(records).items()}
        courses = {a.course_id for a in rows.values()}
        if len(courses) != 1:
            raise ValueError(f"expected the records of one course, got courses {sorted(courses)}")
        return cls(courses.pop(), rows)

    @staticmethod
    def _exercise_ids(rows: list[Activity]) -> frozenset[int]:
        pages = [a for a in rows if a.type == ACTIVITY]
        graded = [a for a in pages if (a.activity_type or "").lower() in EXERCISE_TYPES]
        return frozenset(a.activity_id for a in (graded or pages))

    @staticmethod
    def _due_times(rows: list[Activity]) -> dict[int, float]:
        opens: dict[int, float] = {}
        for row in rows:  # sorted by date_shown, so the first seen is the task's opening
            opens.setdefault(row.task_id, row.date_shown)
        order = sorted(opens.items(), key=lambda item: (item[1], item[0]))
        times = [when for _, when in order]
        due: dict[int, float] = {}
        for task_id, when in order:
            later = bisect_right(times, when)
            if later < len(times):
                due[task_id] = times[later]
        return due

    def opened_counts(self, as_of: float) -> Opened:
        """Counts of opened rows in O(log n), for the per-snapshot features."""
        n = bisect_right(self._shown, as_of)
        if n == 0:
            return Opened(0, 0, 0, 0.0)
        days_open = (n * (as_of - self.start) - self._offset_sum[n - 1]) / DAY
        return Opened(n, self._required[n - 1], self._attestation[n - 1], days_open)

    def week_of(self, ts: float) -> int:
        """1-based course week of a moment (week 1 starts at the first opening), never below 1."""
        return max(1, int((ts - self.start) // WEEK) + 1)

    @property
    def weeks(self) -> int:
        """How many course weeks the schedule spans: up to the week of its last opening."""
        return self.week_of(self.end)

    def next_due_after(self, ts: float) -> tuple[int, float] | None:
        """(task_id, due time) of the first task falling due after `ts`: what was due next for a
        student who stopped then."""
        upcoming = [(due, task) for task, due in self.due.items() if due > ts]
        if not upcoming:
            return None
        due, task = min(upcoming)
        return task, due

    def position_at(self, ts: float) -> Activity | None:
        """Where the course is at ts: the latest row shown by then (ties: highest activity_id)."""
        n = bisect_right(self._shown, ts)
        return self._rows[n - 1] if n else None


class FlowSchedules:
    """The schedule of each (course, flow) by `_select_flow`'s rule, from schedule_activity records:
    built when first asked and kept, as a build sorts and indexes every row of the course."""

    def __init__(self, records: Iterable[dict[str, Any]] = ()) -> None:
        self._rows: dict[int, list[dict[str, Any]]] = {}
        self._built: dict[ScheduleKey, CourseSchedule] = {}
        self.add(records)

    def add(self, records: Iterable[dict[str, Any]]) -> None:
        """More rows; the schedules of their courses are built again when next asked."""
        courses: set[int] = set()
        for record in records:
            course = int(record["course_id"])
            courses.add(course)
            self._rows.setdefault(course, []).append(record)
        self._built = {key: built for key, built in self._built.items() if key[0] not in courses}

    def get(self, key: ScheduleKey) -> CourseSchedule | None:
        """The schedule a (course, flow) follows; None for a course without rows."""
        if key not in self._built:
            rows = self._rows.get(key[0])
            if not rows:
                return None
            self._built[key] = CourseSchedule.from_records(_select_flow(rows, key[1]))
        return self._built[key]

    def flows(self) -> list[CourseSchedule]:
        """The schedule of every flow the rows name; a course that names none, its whole schedule."""
        keys = [(course, flow) for course, rows in self._rows.items()
                for flow in ({row.get("flows") for row in rows} - {None} or {None})]
        return [schedule for key in keys if (schedule := self.get(key)) is not None]
