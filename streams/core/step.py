"""The per-student step: (document, new events, watermark, schedule, settings, scorer) -> (document, outputs).

Everything the worker decides about one student happens here, as a plain function with no
I/O, so it is tested in memory and the pipeline around it only loads, sends, writes and
commits (the shape of bytewax's `stateful_map`). In order:

1. apply the new events to the student's facts, skipping what the offset fence says was
   applied before (a redelivery) and collecting outcomes (late labels);
2. advance the status machine to the watermark: every transition that happened by then;
3. re-score when something changed or `score_every` of event time passed, and hand the
   trainer each finished course week's features;
4. build the alerts (critical points) and the score row, and say when the student next
   needs a look (`next_due`), so inactivity is found without scanning students.
"""
from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, TypedDict

from features import engagement
from features.activity_status import ACTIVE, NEW, MachineState, StatusMachine, Thresholds, Transition
from features.eventtime import DAY, WEEK, parse_ts
from features.schedule import CourseSchedule, ScheduleKey, schedule_key
from features.state import FeatureState, apply, new_state
from streams.contract.outputs import Alert, CoursePosition, ScoreRow, Scores
from streams.contract.topics import ACTIVITY_TOPICS, TOPIC_SCHEMA, Topic


class StudentDoc(TypedDict):
    """One student's stored document (a JSON object in the student store)."""

    offsets: dict[str, int]  # "topic:partition" -> highest applied offset: the Kafka redelivery fence
    seen: list[str]  # event_key of every applied record that carried an LMS event id
    facts: FeatureState
    machine: MachineState | None
    course_id: int | None  # from the newest profile
    flow: float | None
    profile_ts: float | None  # event time of that profile
    partition: int | None  # where the student's records are (their watermark)
    weeks_kept: int  # course weeks whose features went to the trainer
    history_day: int | None  # event-time day of the last score-history row
    scores: dict[str, Any]  # the last Scores, as JSON
    scored_at: float | None  # event time of those scores


def new_doc() -> StudentDoc:
    return {"offsets": {}, "seen": [], "facts": new_state(), "machine": None, "course_id": None, "flow": None,
            "profile_ts": None, "partition": None, "weeks_kept": 0, "history_day": None, "scores": {},
            "scored_at": None}


class StudentEvent(NamedTuple):
    """A decoded, valid record of one student."""

    topic: Topic
    partition: int
    offset: int
    record: dict[str, Any]
    ts: float  # event time


class Scorer(Protocol):
    """The model, as the step needs it."""

    def score(self, features: dict[str, float]) -> Scores: ...


@dataclass(frozen=True)
class StepConfig:
    thresholds: Thresholds
    score_every: float  # seconds of event time between re-scorings


@dataclass(frozen=True)
class OutcomeLabel:
    """A module outcome that arrived, with how long the student had been inactive by then."""

    outcome: dict[str, Any]
    days_inactive: float


@dataclass
class StepResult:
    doc: StudentDoc
    alerts: list[Alert] = field(default_factory=list)
    score_row: ScoreRow | None = None
    weeks: list[tuple[int, dict[str, float]]] = field(default_factory=list)  # (course week, its features)
    labels: list[OutcomeLabel] = field(default_factory=list)
    next_due: float | None = None  # when the student next needs a look (None: at their next event)
    old_status: str = NEW
    new_status: str = NEW
    #: ("applied" | "duplicate_offset" | "duplicate_event_id" | "late" | "behind_fence", topic) -> records
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    stored: bool = True  # False: nothing to keep (only a redelivered copy of a student never stored)


Schedules = Callable[[ScheduleKey], "CourseSchedule | None"]


def step(user_id: int, doc: StudentDoc | None, events: Sequence[StudentEvent], watermarks: dict[int, float],
         schedules: Schedules, config: StepConfig, scorer: Scorer) -> StepResult:
    """One student's new events and the watermarks of the worker's partitions -> the new document
    and everything it implies. `doc` is changed in place (and returned)."""
    doc = doc or new_doc()
    machine = StatusMachine.from_json(user_id, doc["machine"])
    old_status = machine.status  # the stored status, NEW without a stored machine
    result = StepResult(doc, old_status=old_status)
    outcomes = _apply(doc, machine, events, result.counts)
    if doc["partition"] is None:
        result.stored = False
        return result
    mark = watermarks.get(doc["partition"])
    key = schedule_key(doc["course_id"], doc["flow"])
    schedule = schedules(key) if key is not None else None
    if schedule is not None:  # the inactivity clock runs from the flow's start; the schedule may
        machine.start = schedule.start  # still be filling in, but no clock runs until it is read
    if mark is None:
        # no event time is known for the partition yet (the worker just started or took it over):
        # the facts are kept, but nothing is advanced, scored or written until there is one (a
        # score row as of a fact's time would run ahead of the watermark and shadow later rows)
        result.labels = _labels(outcomes, machine)
        doc["machine"] = machine.to_json()
        result.new_status = machine.status
        result.next_due = machine.next_due(config.thresholds)
        return result
    transitions = machine.advance(mark, config.thresholds)
    as_of = mark
    scored_at = doc["scored_at"]
    rescore = bool(transitions or outcomes) or scored_at is None or as_of - scored_at >= config.score_every
    features: dict[str, float] = {}
    if rescore:
        features = engagement.compute(doc["facts"], schedule, as_of)
        result.weeks = _finished_weeks(doc, schedule, as_of)
        doc["scores"], doc["scored_at"] = scorer.score(features).to_json(), as_of
    scores = Scores.from_json(doc["scores"])
    result.labels = _labels(outcomes, machine)
    result.alerts = [_alert(t, doc, schedule, scores, features) for t in transitions]
    doc["machine"] = machine.to_json()
    result.new_status = machine.status
    if machine.status != NEW and (rescore or transitions or machine.status != old_status):
        result.score_row = _score_row(user_id, doc, machine, scores, features, as_of)
    result.next_due = _next_due(machine, schedule, doc, config.thresholds)
    return result


def _labels(outcomes: list[dict[str, Any]], machine: StatusMachine) -> list[OutcomeLabel]:
    """Each arrived outcome, with how long the student had been inactive at its time."""
    labels = []
    for outcome in outcomes:
        at = parse_ts(outcome["ts"])
        labels.append(OutcomeLabel(outcome, max(0.0, (at - (machine.last or at)) / DAY)))
    return labels


def event_key(record: dict[str, Any]) -> str | None:
    """A short, fixed-size name for the record's LMS event id (None without one)."""
    event_id = record.get("event_id")
    return None if event_id is None else hashlib.blake2b(event_id.encode(), digest_size=8).hexdigest()


def _apply(doc: StudentDoc, machine: StatusMachine, events: Sequence[StudentEvent],
           counts: Counter[tuple[str, str]]) -> list[dict[str, Any]]:
    """Apply new events to the document, each once; returns the outcomes (labels) among them.

    Two fences: Kafka redelivers what a crashed worker read (offset at or behind this student's
    highest applied offset of that topic-partition), and an LMS may publish a record twice
    (same event id, another offset). A record behind the offset fence whose event id was never
    applied is new: the partition's log was reset (topic recreated, broker data lost), and it
    is applied and counted as `behind_fence`. Without an event id, the offset fence decides."""
    outcomes = []
    seen = set(doc["seen"])
    for topic, partition, offset, record, ts in events:
        fence_key = f"{topic.value}:{partition}"
        fence = doc["offsets"].get(fence_key, -1)
        key = event_key(record)
        if key is not None and key in seen:
            counts["duplicate_event_id" if offset > fence else "duplicate_offset", topic.value] += 1
            continue
        if offset <= fence:
            if key is None:
                counts["duplicate_offset", topic.value] += 1
                continue
            counts["behind_fence", topic.value] += 1
        if key is not None:
            seen.add(key)
            doc["seen"].append(key)
        doc["offsets"][fence_key] = max(fence, offset)
        doc["partition"] = partition
        apply(doc["facts"], TOPIC_SCHEMA[topic], record)
        if topic in ACTIVITY_TOPICS:
            if not machine.add(ts):
                counts["late", topic.value] += 1
        elif topic is Topic.STUDENTS:
            if doc["profile_ts"] is None:
                machine.add(ts)  # the inactivity clock starts at enrolment
            if doc["profile_ts"] is None or ts >= doc["profile_ts"]:
                doc["profile_ts"], doc["course_id"], doc["flow"] = ts, record["course_id"], record.get("flow_num")
        elif topic is Topic.OUTCOMES:
            outcomes.append(record)
        counts["applied", topic.value] += 1
    return outcomes


def _finished_weeks(doc: StudentDoc, schedule: CourseSchedule | None,
                    as_of: float) -> list[tuple[int, dict[str, float]]]:
    """Each course week that ended since the last look, up to the schedule's last week, with the
    features as of its end: the trainer learns (week's features, final outcome) pairs from them
    when the label arrives."""
    if schedule is None:
        return []
    finished = min(schedule.week_of(as_of) - 1, schedule.weeks) if as_of >= schedule.start else 0
    weeks = [(week, engagement.compute(doc["facts"], schedule, schedule.start + week * WEEK))
             for week in range(doc["weeks_kept"] + 1, finished + 1)]
    doc["weeks_kept"] = max(doc["weeks_kept"], finished)
    return weeks


def _next_due(machine: StatusMachine, schedule: CourseSchedule | None, doc: StudentDoc,
              thresholds: Thresholds) -> float | None:
    due = machine.next_due(thresholds)
    if schedule is not None and doc["weeks_kept"] < schedule.weeks:
        week_end = schedule.start + (doc["weeks_kept"] + 1) * WEEK
        due = week_end if due is None else min(due, week_end)
    return due


def _reasons(t: Transition, scores: Scores, features: dict[str, float]) -> tuple[str, ...]:
    reasons = [f"no activity for {t.days_inactive:.0f} days"] if t.to_status != ACTIVE else ["activity resumed"]
    if features.get("missed_deadlines"):
        reasons.append(f"{features['missed_deadlines']:.0f} deadlines missed")
    if scores.p_dropout is not None and scores.p_dropout >= 0.5:
        reasons.append(f"dropout risk {scores.p_dropout:.0%}")
    return tuple(reasons)


def _alert(t: Transition, doc: StudentDoc, schedule: CourseSchedule | None, scores: Scores,
           features: dict[str, float]) -> Alert:
    return Alert(
        alert_id=t.alert_id, user_id=t.user_id, course_id=doc["course_id"], from_status=t.from_status,
        to_status=t.to_status, at=t.at, days_inactive=t.days_inactive, last_activity=t.last_activity,
        scores=scores, reasons=_reasons(t, scores, features), position=_position(schedule, t.at),
    )


def _position(schedule: CourseSchedule | None, at: float) -> CoursePosition:
    if schedule is None:
        return CoursePosition()
    row = schedule.position_at(at)
    if row is None:
        return CoursePosition(course_week=schedule.week_of(at))
    return CoursePosition(schedule.week_of(at), row.module, row.task_id, row.activity_id)


def _score_row(user_id: int, doc: StudentDoc, machine: StatusMachine, scores: Scores,
               features: dict[str, float], as_of: float) -> ScoreRow:
    return ScoreRow(
        user_id=user_id, course_id=doc["course_id"], flow_num=None if doc["flow"] is None else int(doc["flow"]),
        status=machine.status, status_since=machine.since, last_activity_at=machine.last,
        days_inactive=(as_of - machine.last) / DAY if machine.last is not None else None,
        scores=scores, features=features, updated_at=as_of, new_history_day=_new_history_day(doc, as_of),
    )


def _new_history_day(doc: StudentDoc, as_of: float) -> bool:
    """Score history keeps one row per student per event-time day, not one per batch."""
    day = int(as_of // DAY)
    if doc["history_day"] == day:
        return False
    doc["history_day"] = day
    return True
