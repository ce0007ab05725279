"""The labelled enrolments an evaluation (and `scorer bootstrap`) replays: each one's schedule, outcome,
weekly feature snapshots and when the reference status machine took it to dozing and asleep, read from an
LMS export as the worker would have seen it; and the split into the forest's training flows and the test."""
from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from features import (
    ASLEEP,
    DEFAULT_THRESHOLDS,
    DOZING,
    WEEK,
    CourseSchedule,
    FeatureState,
    Thresholds,
    attempt_facts,
    compute,
    outcome,
    reference_transitions,
)
from features.schedule import ScheduleKey
from online_models.evaluation.history import load_history
from online_models.labels import Label, label_from_outcome
from online_models.learners import model_input
from streams.core.step import StepConfig, label_release

#: The share of the labelled students whose flows (the earliest) train the forest and the warm start.
TRAIN_SHARE = 0.5
#: An enrolment's lifecycle ends this long after its flow's last opening (the worker's default).
COURSE_GRACE = StepConfig.grace
#: A flow's outcomes reach the trainer at the latest this long after its schedule's end (the worker's default).
LEARN_AFTER = StepConfig.learn_after


def activity_times(state: FeatureState) -> list[float]:
    """Every login, page view, exercise attempt and webinar event time of a student."""
    times = [float(t) for t in state["logins"]]
    times += [float(t) for views in state["views"].values() for t in views]
    times += [float(a[0]) for attempts in attempt_facts(state).values() for a in attempts]
    times += [float(w[0]) for events in state["webinars"].values() for w in events]
    return sorted(times)


@dataclass(frozen=True)
class QuietTimes:
    """When the reference machine first took a student to dozing and to asleep (None: never)."""

    dozing: float | None
    asleep: float | None


def quiet_times(user_id: int, times: Sequence[float], start: float, end: float,
                thresholds: Thresholds = DEFAULT_THRESHOLDS) -> QuietTimes:
    transitions = reference_transitions(user_id, [start, *times], end, thresholds, start=start, end=end)
    first = {status: min((t.at for t in transitions if t.to_status == status), default=None)
             for status in (DOZING, ASLEEP)}
    return QuietTimes(first[DOZING], first[ASLEEP])


@dataclass
class Student:
    """One enrolment (a student on several courses or flows is several of these); `id` tells
    them apart, `user_id` says whose it is."""

    id: int
    user_id: int
    course_id: int
    flow: int | None
    schedule: CourseSchedule
    label: Label | None
    label_ts: float | None
    weekly: dict[int, dict[str, float]] = field(default_factory=dict)  # week -> model input
    #: when the reference machine took them to dozing / asleep
    quiet: QuietTimes = field(default_factory=lambda: QuietTimes(None, None))

    def week_end(self, week: int) -> float:
        """Last second of course week `week` of the student's flow."""
        return self.schedule.start + week * WEEK - 1

    def open_at(self, week: int) -> bool:
        """Is the outcome still unknown at the end of that week (so a prediction is worth making)?"""
        return self.label_ts is None or self.week_end(week) < self.label_ts

    def open_week_numbers(self) -> list[int]:
        """The course weeks that ended while the outcome was still unknown, in order."""
        return [w for w in sorted(self.weekly) if self.open_at(w)]

    def open_weeks(self) -> list[dict[str, float]]:
        """The snapshots the live trainer holds when the outcome arrives: those of `open_week_numbers`
        (what `ScoringModels.learn_weeks` learns with the label)."""
        return [self.weekly[w] for w in self.open_week_numbers()]

    def learned_at(self, done: Mapping[ScheduleKey, float]) -> float:
        """When the live trainer gets the outcome: with the rest of its flow's (step.label_release;
        `done`: the complete flows' last outcomes, `flows_done`)."""
        assert self.label_ts is not None
        return label_release(self.label_ts, self.schedule, LEARN_AFTER, done.get((self.course_id, self.flow)))


def flows_done(students: Iterable[Student]) -> dict[ScheduleKey, float]:
    """Each flow whose every enrolment has an outcome, with the last outcome's time (what the worker's
    flow index says once all of them arrived)."""
    last: dict[ScheduleKey, float] = {}
    open_flows: set[ScheduleKey] = set()
    for s in students:
        flow = (s.course_id, s.flow)
        if s.label_ts is None:
            open_flows.add(flow)
        else:
            last[flow] = max(last.get(flow, s.label_ts), s.label_ts)
    return {flow: at for flow, at in last.items() if flow not in open_flows}


def labels_of(students: Iterable[Student]) -> dict[int, Label]:
    """The label by student id, of each labelled one (with an outcome time): the only students the models
    learn from."""
    return {s.id: s.label for s in students if s.label is not None and s.label_ts is not None}


def in_learning_order(students: Iterable[Student], done: Mapping[ScheduleKey, float]) -> list[Student]:
    """The labelled students in the order the live trainer learns their outcomes (`Student.learned_at`
    with `done`, the `flows_done` of every student; ties by arrival, then id)."""
    return sorted((s for s in students if s.label is not None and s.label_ts is not None),
                  key=lambda s: (s.learned_at(done), s.label_ts, s.id))


def load_students(directory: Path, weeks: int, asleep_days: float = DEFAULT_THRESHOLDS.asleep_days,
                  *, online_only: bool = False) -> list[Student]:
    """Every student with a known course schedule, their label and weekly features (weeks 1..weeks
    of their course, as far as its schedule goes)."""
    history = load_history(Path(directory), online_only=online_only)
    students: list[Student] = []
    for enrolment in history.enrolments():
        if enrolment.key is None or enrolment.schedule is None:
            continue
        (course_id, flow), schedule, state = enrolment.key, enrolment.schedule, enrolment.state
        result = outcome(state)
        label = label_ts = None
        if result is not None:
            label_ts = result["ts"]
            inactive = compute(state, schedule, label_ts)["days_inactive"]
            label = label_from_outcome(result, inactive, asleep_days)
        end = min(schedule.end + COURSE_GRACE, label_ts if label_ts is not None else float("inf"))
        quiet = quiet_times(enrolment.user_id, activity_times(state), schedule.start, end)
        student = Student(len(students), enrolment.user_id, course_id, flow, schedule, label, label_ts, quiet=quiet)
        for week in range(1, min(weeks, schedule.weeks) + 1):  # the course's own weeks, as the worker keeps
            student.weekly[week] = model_input(compute(state, schedule, student.week_end(week)))
        students.append(student)
    return students


def split_by_flow(students: Sequence[Student], train_share: float = TRAIN_SHARE,
                  seed: int = 0) -> tuple[set[int], set[int]]:
    """(train ids, test ids) among labelled students: whole flows, earliest start first, go to
    train until `train_share` of the students; the later flows are the test set. With a single
    flow there is no "later", so the students are split at random instead."""
    labelled = [s for s in students if s.label is not None]
    flows: dict[tuple[int, int | None], list[Student]] = {}
    for s in labelled:
        flows.setdefault((s.course_id, s.flow), []).append(s)
    if len(flows) < 2:
        ids = sorted(s.id for s in labelled)
        random.Random(seed).shuffle(ids)
        cut = int(len(ids) * train_share)
        return set(ids[:cut]), set(ids[cut:])
    order = sorted(flows.values(), key=lambda group: (group[0].schedule.start, group[0].course_id))
    train: set[int] = set()
    for group in order[:-1]:
        if len(train) >= train_share * len(labelled):
            break
        train.update(s.id for s in group)
    return train, {s.id for s in labelled} - train
