"""An LMS export as the stream would know it: the contract records, every student's folded state
and the schedule each student follows, by the worker's own rules. The offline tools (evaluate,
dataset, hypotheses) all start here, so they measure exactly what the worker measures."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from features import CourseSchedule, FeatureState, ScheduleKey, fold, profile, schedule_key, select_flow
from streams.contract import TOPIC_SCHEMA
from streams.lms.events import export_to_events
from streams.lms.readers import load_export


class Schedules:
    """The schedule each (course, flow) follows, by the worker's rule (features.schedule.select_flow)."""

    def __init__(self, records: list[tuple[str, dict[str, Any]]]) -> None:
        self._rows: dict[int, list[dict[str, Any]]] = {}
        for kind, record in records:
            if kind == "schedule_activity":
                self._rows.setdefault(int(record["course_id"]), []).append(record)
        self._built: dict[ScheduleKey, CourseSchedule] = {}

    def get(self, key: ScheduleKey) -> CourseSchedule | None:
        course, flow = key
        if course not in self._rows:
            return None
        if key not in self._built:
            self._built[key] = CourseSchedule.from_records(select_flow(self._rows[course], flow))
        return self._built[key]


@dataclass
class History:
    records: list[tuple[str, dict[str, Any]]]  # (record kind, contract record) in event-time order
    states: dict[int, FeatureState]
    schedules: Schedules

    def schedule_of(self, user_id: int) -> tuple[ScheduleKey, CourseSchedule] | None:
        """The student's (course, flow) by their newest profile, and its schedule (None if either is unknown)."""
        known = profile(self.states[user_id], math.inf)
        key = None if known is None else schedule_key(known["course_id"], known["flow_num"])
        schedule = None if key is None else self.schedules.get(key)
        return None if key is None or schedule is None else (key, schedule)


def load_history(directory: Path, *, online_only: bool = False) -> History:
    """Read an export, turn it into contract records (as replay publishes them) and fold them.
    `online_only` keeps the students the school's online filter selects (SPEC section 3)."""
    events, _rejected = export_to_events(load_export(Path(directory)), online_only=online_only)
    records = [(TOPIC_SCHEMA[topic], record) for topic, record in events]
    return History(records, fold(records), Schedules(records))
