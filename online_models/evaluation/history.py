"""An LMS export as the stream would know it: the contract records, every student's folded state
and the schedule each student follows, by the worker's own rules. The offline tools (evaluate,
dataset, hypotheses, bootstrap) all start here, so they measure exactly what the worker measures.

A school's history is large (the whole OULAD: 32,593 students, 10.6 million click rows), and its
records and folded states take far more memory than its tables, so they are built for
PART_STUDENTS students at a time: every record of a student depends on that student's rows, the
course tables and the export's time span alone, so a part's records are exactly the whole's."""
from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from features import CourseSchedule, FeatureState, FlowSchedules, ScheduleKey, apply, fold, profile, schedule_key
from features.eventtime import parse_ts
from streams.contract import TOPIC_SCHEMA
from streams.core.step import outcome_owner
from streams.lms.events import export_span, export_to_events
from streams.lms.readers import LmsExport, load_export

#: Students whose records and states are in memory at once. Measured loading 7,068 OULAD-shaped
#: students: peak 0.77 GB with parts of 250, 0.86 with 500, 1.56 with 2,000, 2.52 all at once, in
#: the same time; smaller parts save little more.
PART_STUDENTS = 500


@dataclass(frozen=True)
class Enrolment:
    """One (student, course, flow), as the worker keeps it: the student's facts (features are
    computed from all of them, against this enrolment's schedule), with this enrolment's own
    profiles and outcome only. `key`/`schedule` are None when unknown."""

    user_id: int
    key: ScheduleKey | None
    schedule: CourseSchedule | None
    state: FeatureState


@dataclass
class HistoryPart:
    """Some students' contract records (with every course's schedule), folded."""

    records: list[tuple[str, dict[str, Any]]]  # (record kind, contract record) in event-time order
    states: dict[int, FeatureState]
    schedules: FlowSchedules

    def enrolments(self) -> list[Enrolment]:
        """Every enrolment, by user id then start. A student with one enrolment (or no course known)
        keeps the whole state; one with several gets a state per enrolment whose profiles are that
        enrolment's and whose outcome is assigned by the worker's rule (streams.core.step.outcome_owner)."""
        outcomes: dict[int, list[dict[str, Any]]] = {}
        for kind, record in self.records:
            if kind == "outcome":
                outcomes.setdefault(int(record["user_id"]), []).append(record)
        found = []
        for user_id, state in sorted(self.states.items()):
            starts = _enrolment_starts(state)
            if len(starts) < 2:
                found.append(self._enrolment(user_id, state))
                continue
            mine: dict[ScheduleKey, list[dict[str, Any]]] = {}
            for record in outcomes.get(user_id, []):
                key = outcome_owner(record, parse_ts(record["ts"]), starts)
                if key is not None:
                    mine.setdefault(key, []).append(record)
            for key in sorted(starts, key=lambda k: (starts[k][0], k)):
                own: FeatureState = {**state, "outcomes": {}, "profiles": {
                    ts: version for ts, version in state["profiles"].items()
                    if schedule_key(version[0], version[5]) == key}}
                for record in mine.get(key, []):
                    apply(own, "outcome", record)
                found.append(self._enrolment(user_id, own))
        return found

    def _enrolment(self, user_id: int, state: FeatureState) -> Enrolment:
        known = profile(state, math.inf)
        key = None if known is None else schedule_key(known["course_id"], known["flow_num"])
        return Enrolment(user_id, key, None if key is None else self.schedules.get(key), state)


def _enrolment_starts(state: FeatureState) -> dict[ScheduleKey, tuple[float, int | None, int | None]]:
    """(earliest profile time, course, flow) of each (course, flow) the student's profiles name."""
    starts: dict[ScheduleKey, tuple[float, int | None, int | None]] = {}
    for ts, version in state["profiles"].items():
        key = schedule_key(version[0], version[5])
        if key is not None:
            starts[key] = (min(starts.get(key, (math.inf,))[0], float(ts)), *key)
    return starts


@dataclass(frozen=True)
class History:
    """An export's enrolments, folded PART_STUDENTS students at a time (see the module docstring)."""

    export: LmsExport
    online_only: bool = False
    part_students: int = PART_STUDENTS

    def parts(self) -> Iterator[HistoryPart]:
        """The students in ascending id order, part by part; `online_only` keeps the students the
        school's online filter selects (SPEC section 3)."""
        span, ids = export_span(self.export), self.export.user_ids()
        for first in range(0, len(ids), self.part_students):
            part = self.export.users_between(ids[first], ids[min(first + self.part_students, len(ids)) - 1])
            events, _rejected = export_to_events(part, online_only=self.online_only, span=span)
            records = [(TOPIC_SCHEMA[topic], record) for topic, record in events]
            schedules = FlowSchedules(record for kind, record in records if kind == "schedule_activity")
            yield HistoryPart(records, fold(records), schedules)

    def enrolments(self) -> Iterator[Enrolment]:
        """Every enrolment, by user id then start (HistoryPart.enrolments), one part in memory at a time."""
        for part in self.parts():
            yield from part.enrolments()


def load_history(directory: Path, *, online_only: bool = False) -> History:
    """Read an export; its records are made and folded as History.enrolments goes."""
    return History(load_export(Path(directory)), online_only)
