"""One batch of input records -> student state, statuses, scores, alerts, snapshots.

Kept free of Faust so that tests and the benchmark drive exactly the code the worker runs.
Order inside a batch is what makes a crash at any point safe:
dead letters and alerts are sent (and acknowledged) first, Postgres upserts next, and the
Redis commit of each student's document (with its offset fence) last. A crash before the
Redis commit redelivers the batch; everything before it is idempotent (alerts carry
deterministic ids, Postgres rows are upserts), and the fence skips what Redis already has.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, NamedTuple, Protocol

from features import engagement, state as student_state
from features.activity_status import DAY, NEW, StatusMachine, Thresholds, Transition
from features.schedule import CourseSchedule
from storage.student_store import Commit, StudentStore
from streams import metrics
from streams.contract import (
    ACTIVITY_TOPICS, TOPIC_SCHEMA, InvalidEvent, Topic, decode, encode, format_ts, key_of, parse_ts,
)
from streams.kafka import dead_letter
from streams.settings import Settings
from streams.watermark import WatermarkTracker

log = logging.getLogger(__name__)
WEEK = 7 * DAY

Send = Callable[[str, bytes, bytes], Awaitable[None]]


class InputRecord(NamedTuple):  # built per record: 0.57 µs, against 1.8 µs for a frozen dataclass
    topic: str  # physical topic name
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float  # Kafka record timestamp, seconds: when the LMS produced it


class Scoring(Protocol):
    """The model side, as the pipeline needs it (online_models adapts to this)."""

    def score(self, features: dict[str, float]) -> dict[str, Any]: ...  # progress, p_dropout, p_success, model_version
    async def snapshot(self, user_id: int, week: int, features: dict[str, float]) -> None: ...
    async def flush(self) -> None: ...  # snapshots durable before the batch's Redis commit
    async def label(self, user_id: int, outcome: dict[str, Any], days_inactive: float) -> None: ...


class SnapshotSink(Protocol):
    """Postgres side: idempotent upserts of current scores, score history and transitions."""

    async def write(self, scores: list[dict[str, Any]], transitions: list[dict[str, Any]]) -> None: ...


@dataclass
class BatchOutcome:
    """What a batch produced (counts of applied, duplicate and late records are metrics)."""

    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)


def new_doc() -> dict[str, Any]:
    return {"off": {}, "state": student_state.new_state(), "sm": None, "course": None, "flow": None,
            "prof_ts": None, "part": None, "snap": 0, "hist": None, "scores": {}, "scored_at": None}


def schedule_key(course_id: int | None, flow: float | None) -> tuple[int, int | None] | None:
    return None if course_id is None else (int(course_id), None if flow is None else int(flow))


def select_flow(records: list[dict[str, Any]], flow: int | None) -> list[dict[str, Any]]:
    """A course schedule has rows per flow (seed column `flows`); rows without a flow apply to all."""
    if flow is None:
        return records
    own = [r for r in records if r.get("flows") in (None, flow)]
    return own or records


class Pipeline:
    def __init__(self, settings: Settings, store: StudentStore, send: Send,
                 scoring: Scoring | None = None, sink: SnapshotSink | None = None) -> None:
        self.settings = settings
        self.store = store
        self.send = send
        self.scoring = scoring
        self.sink = sink
        self.thresholds = Thresholds(settings.dozing_days, settings.asleep_days)
        self.watermarks = WatermarkTracker(settings.allowed_lateness_hours * 3600, live=settings.clock == "live",
                                           shared=frozenset({Topic.SCHEDULE.value}))
        self._logical = {t.physical(settings.topic_prefix): t for t in Topic}
        self._schedules: dict[tuple[int, int | None], CourseSchedule | None] = {}
        self._schedule_version = -1
        self._lock = asyncio.Lock()
        self._tally: Counter[tuple[Any, str]] = Counter()  # (counter metric, topic) -> records this batch

    # -- entry point -------------------------------------------------------------------------
    async def process(self, records: list[InputRecord], offsets: dict[tuple[str, int], tuple]) -> BatchOutcome:
        """Handle a batch; `offsets` gives (resume position, highwater[, wall time the highwater
        was read]) of every assigned topic-partition."""
        async with self._lock:
            self._tally.clear()  # a failed attempt's counts are dropped; the retry counts once
            outcome = BatchOutcome()
            per_student, schedule_rows = await self._decode(records, outcome)
            if self.watermarks.newest is not None:
                self.watermarks.adopt_newest(*await self.store.raise_newest(*self.watermarks.newest))
            if schedule_rows:
                await self.store.put_schedule(schedule_rows)
            for (topic, partition), reading in offsets.items():
                if topic in self._logical:
                    self.watermarks.set_offsets(self._logical[topic].value, partition, *reading)
            await self._refresh_schedules()
            for attempt in range(5):
                conflicts = await self._run_students(per_student, outcome, first=attempt == 0)
                if not conflicts:
                    break
                per_student = {uid: per_student.get(uid, []) for uid in conflicts}
            else:
                raise RuntimeError(f"{len(conflicts)} students kept changing under this worker")
            scored_at = time.time()
            for record in records:
                metrics.PROCESSING_LATENCY.observe(max(0.0, scored_at - record.timestamp))
            metrics.BATCH_SIZE.observe(len(records))
            self._flush_tally()
            return outcome

    def _flush_tally(self) -> None:
        """Per-topic counters are summed per batch: a labelled inc per record cost 15% of a batch."""
        for (metric, topic), count in self._tally.items():
            metric.labels(topic).inc(count)
        self._tally.clear()

    async def forget(self, partitions: list[tuple[str, int]]) -> None:
        """Revoked partitions: their watermarks and due students are another worker's now."""
        async with self._lock:
            for topic, partition in partitions:
                if topic in self._logical:
                    self.watermarks.forget(self._logical[topic].value, partition)

    # -- decoding and dead letters -----------------------------------------------------------
    async def _decode(self, records: list[InputRecord], outcome: BatchOutcome):
        per_student: dict[int, list[tuple[Topic, int, int, dict[str, Any], float]]] = defaultdict(list)
        schedule_rows: list[dict[str, Any]] = []
        for r in records:
            topic = self._logical.get(r.topic)
            if topic is None:
                continue
            self._tally[metrics.EVENTS_CONSUMED, topic.value] += 1
            try:
                record = decode(topic, r.value)
                if r.key is not None and r.key != key_of(topic, record):
                    raise InvalidEvent("key_mismatch", f"key {r.key!r} does not match the record's id")
            except InvalidEvent as error:
                outcome.dead_letters.append(dead_letter(r.topic, error, value=r.value, key=r.key,
                                                        partition=r.partition, offset=r.offset))
                metrics.DEAD_LETTERS.labels(topic.value, error.reason).inc()
                self.watermarks.observe_offset(topic.value, r.partition, r.offset)
                continue
            ts = parse_ts(record["ts"])
            self.watermarks.observe(topic.value, r.partition, r.offset, ts, r.timestamp)
            if topic is Topic.SCHEDULE:
                schedule_rows.append(record)
                continue
            per_student[record["user_id"]].append((topic, r.partition, r.offset, record, ts))
        self._flush_tally()  # records read show now, not at the batch's end: progress is visible
        if outcome.dead_letters:
            dlq = Topic.DEAD_LETTERS.physical(self.settings.topic_prefix)
            await asyncio.gather(*(self.send(dlq, (d["key"] or "").encode(), encode(d)) for d in outcome.dead_letters))
        return per_student, schedule_rows

    async def _refresh_schedules(self) -> None:
        version = await self.store.schedule_version()
        if version != self._schedule_version:
            self._schedules.clear()
            self._schedule_version = version

    async def _schedule(self, key: tuple[int, int | None] | None) -> CourseSchedule | None:
        if key is None:
            return None
        if key not in self._schedules:
            records = select_flow(await self.store.schedule_records(key[0]), key[1])
            self._schedules[key] = CourseSchedule.from_records(records) if records else None
        return self._schedules[key]

    # -- students ----------------------------------------------------------------------------
    async def _run_students(self, per_student, outcome: BatchOutcome, *, first: bool) -> list[int]:
        watermarks = {p: self.watermarks.watermark(p) for p in self.watermarks.partitions()}
        for partition, mark in watermarks.items():
            if mark is not None:
                metrics.WATERMARK.labels(str(partition)).set(mark)
        due: set[int] = set()
        if first:
            for partition, mark in watermarks.items():
                if mark is not None:
                    due.update(await self.store.due(partition, mark))
        user_ids = set(per_student) | due
        if not user_ids:
            return []
        loaded = await self.store.load(user_ids)
        commits: list[Commit] = []
        score_rows: list[dict[str, Any]] = []
        transition_rows: list[dict[str, Any]] = []
        alerts: list[dict[str, Any]] = []
        for user_id in user_ids:
            version, doc = loaded[user_id]
            doc = doc or new_doc()
            old_status = (doc["sm"] or {}).get("st", NEW)
            machine = StatusMachine.from_json(user_id, doc["sm"])
            labels = self._apply(doc, machine, per_student.get(user_id, ()))
            if doc["part"] is None:
                continue  # only a redelivered duplicate of a student we never stored
            mark = watermarks.get(doc["part"])
            schedule = await self._schedule(schedule_key(doc["course"], doc["flow"]))
            if schedule is not None:  # the inactivity clock runs from the flow's start; the schedule may
                machine.start = schedule.start  # still be filling in, but no clock runs until it is read
            transitions = machine.advance(mark, self.thresholds) if mark is not None else []
            as_of = mark if mark is not None else student_state.last_activity(doc["state"]) or 0.0
            rescore = bool(transitions or labels) or doc.get("scored_at") is None \
                or as_of - doc["scored_at"] >= self.settings.score_every_minutes * 60
            scores = await self._score(user_id, doc, schedule, as_of) if rescore else doc["scores"]
            for label_outcome in labels:
                days = (parse_ts(label_outcome["ts"]) - (machine.last or parse_ts(label_outcome["ts"]))) / DAY
                if self.scoring is not None:
                    await self.scoring.label(user_id, label_outcome, max(0.0, days))
            for t in transitions:
                alert = self._alert(t, doc, scores)
                alerts.append(alert)
                transition_rows.append(self._transition_row(alert, t, schedule))
            doc["sm"] = machine.to_json()
            if machine.status != NEW and (rescore or transitions or machine.status != old_status):
                score_rows.append(self._score_row(user_id, doc, machine, scores, as_of))
            commits.append(Commit(user_id, doc["part"], version, doc, self._next_due(machine, schedule, doc),
                                  "" if old_status == NEW else old_status,
                                  "" if machine.status == NEW else machine.status))
        if self.scoring is not None:
            await self.scoring.flush()
        if alerts:
            topic = Topic.ALERTS.physical(self.settings.topic_prefix)
            await asyncio.gather(*(self.send(topic, str(a["user_id"]).encode(), encode(a)) for a in alerts))
        if self.sink is not None and (score_rows or transition_rows):
            await self.sink.write(score_rows, transition_rows)
        conflicts = await self.store.commit(commits)
        committed = [a for a in alerts if a["user_id"] not in conflicts]
        for a in committed:
            metrics.ALERTS.labels(a["from_status"], a["to_status"]).inc()
        outcome.alerts.extend(committed)
        return conflicts

    def _apply(self, doc: dict[str, Any], machine: StatusMachine, events) -> list[dict[str, Any]]:
        """Apply new events to the document; the offset fence skips what was applied before."""
        labels = []
        for topic, partition, offset, record, ts in events:
            if offset <= doc["off"].get(topic.value, -1):
                self._tally[metrics.EVENTS_DUPLICATE, topic.value] += 1
                continue
            doc["off"][topic.value] = offset
            doc["part"] = partition
            student_state.apply(doc["state"], TOPIC_SCHEMA[topic], record)
            if topic in ACTIVITY_TOPICS:
                if not machine.add(ts):
                    self._tally[metrics.LATE_EVENTS, topic.value] += 1
            elif topic is Topic.STUDENTS:
                if doc["prof_ts"] is None:
                    machine.add(ts)  # the inactivity clock starts at enrolment
                if doc["prof_ts"] is None or ts >= doc["prof_ts"]:
                    doc["prof_ts"], doc["course"], doc["flow"] = ts, record["course_id"], record.get("flow_num")
            elif topic is Topic.OUTCOMES:
                labels.append(record)
            self._tally[metrics.EVENTS_APPLIED, topic.value] += 1
        return labels

    async def _score(self, user_id: int, doc, schedule: CourseSchedule | None, as_of: float) -> dict[str, Any]:
        """Features and model scores as of `as_of` (~0.4 ms: the costliest step, hence the
        `score_every_minutes` throttle); also takes the weekly snapshots the trainer learns from."""
        features = engagement.compute(doc["state"], schedule, as_of)
        if schedule is not None and self.scoring is not None:
            finished_weeks = min(schedule.week_of(as_of) - 1, 10) if as_of >= schedule.start else 0
            for week in range(doc["snap"] + 1, finished_weeks + 1):
                week_end = schedule.start + week * WEEK
                await self.scoring.snapshot(user_id, week, engagement.compute(doc["state"], schedule, week_end))
            doc["snap"] = max(doc["snap"], finished_weeks)
        scores = self.scoring.score(features) if self.scoring is not None else {}
        doc["scores"], doc["scored_at"] = scores, as_of  # features are not kept: rows go out only when fresh
        return {"features": features, **scores}

    def _next_due(self, machine: StatusMachine, schedule: CourseSchedule | None, doc) -> float | None:
        due = machine.next_due(self.thresholds)
        if schedule is not None and self.scoring is not None and doc["snap"] < 10:
            week_end = schedule.start + (doc["snap"] + 1) * WEEK
            due = week_end if due is None else min(due, week_end)
        return due

    # -- outputs -----------------------------------------------------------------------------
    def _alert(self, t: Transition, doc, scores: dict[str, Any]) -> dict[str, Any]:
        features = scores.get("features", {})
        reasons = [f"no activity for {t.days_inactive:.0f} days"] if t.to_status != "active" else ["activity resumed"]
        if features.get("missed_deadlines"):
            reasons.append(f"{features['missed_deadlines']:.0f} deadlines missed")
        if scores.get("p_dropout") is not None and scores["p_dropout"] >= 0.5:
            reasons.append(f"dropout risk {scores['p_dropout']:.0%}")
        return {
            "alert_id": t.alert_id, "user_id": t.user_id, "course_id": doc["course"],
            "from_status": t.from_status, "to_status": t.to_status, "ts": format_ts(t.at),
            "days_inactive": round(t.days_inactive, 3), "last_activity_ts": format_ts(t.last_activity),
            "scores": {k: scores.get(k) for k in ("progress", "p_dropout", "p_success")},
            "model_version": scores.get("model_version"), "reasons": reasons,
        }

    def _transition_row(self, alert: dict[str, Any], t: Transition, schedule: CourseSchedule | None) -> dict[str, Any]:
        position = schedule.position_at(t.at) if schedule is not None else None
        return {
            "alert_id": alert["alert_id"], "user_id": t.user_id, "course_id": alert["course_id"],
            "from_status": t.from_status, "to_status": t.to_status, "at": t.at, "days_inactive": t.days_inactive,
            "last_activity_at": t.last_activity,
            "course_week": schedule.week_of(t.at) if schedule is not None else None,
            "module": position.module if position else None, "task_id": position.task_id if position else None,
            "activity_id": position.activity_id if position else None,
            "progress_pred": alert["scores"]["progress"], "p_dropout": alert["scores"]["p_dropout"],
            "p_success": alert["scores"]["p_success"], "model_version": alert["model_version"],
            "reasons": alert["reasons"],
        }

    def _score_row(self, user_id: int, doc, machine: StatusMachine, scores: dict[str, Any], as_of: float) -> dict[str, Any]:
        features = scores.get("features", {})
        return {
            "user_id": user_id, "course_id": doc["course"],
            "flow_num": None if doc["flow"] is None else int(doc["flow"]), "status": machine.status,
            "status_since": machine.since, "last_activity_at": machine.last,
            "days_inactive": (as_of - machine.last) / DAY if machine.last is not None else None,
            "progress_pred": scores.get("progress"), "p_dropout": scores.get("p_dropout"),
            "p_success": scores.get("p_success"), "model_version": scores.get("model_version"),
            "features": features, "updated_at": as_of, "history": self._new_history_day(doc, as_of),
        }

    @staticmethod
    def _new_history_day(doc, as_of: float) -> bool:
        """Score history keeps one row per student per event-time day, not one per batch."""
        day = int(as_of // DAY)
        if doc["hist"] == day:
            return False
        doc["hist"] = day
        return True
