"""One batch of input records -> decoded events -> per-student steps -> alerts, rows and commits.

The decisions are the pure per-student step's (streams.core.step); the pipeline only decodes,
loads, steps, sends, writes and commits, through the interfaces it is given (a StudentStore,
a RowSink, a Scoring and a send function), so tests drive it with in-memory ones and the
benchmark drives exactly the code the worker runs. `_commit` is the one place that knows the
order of the writes, which is what makes a crash anywhere safe.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any, cast

from features.eventtime import local_to_utc, parse_ts, utc_to_local
from features.schedule import CourseSchedule, FlowSchedules, ScheduleKey
from online_models.scoring import Scoring
from storage.row_sink import RowSink
from storage.students import Commit, FlowRecord, StudentStore
from streams import failures, metrics
from streams.contract import GLOBAL_TOPICS, InvalidEvent, Topic, check_event_time, dead_letter, decode, encode, key_of
from streams.core.documents import StudentDoc, StudentEvent
from streams.core.step import StepConfig, StepResult, step
from streams.core.watermark import WatermarkTracker
from streams.kafka.consumer import InputRecord, Offsets, PartitionCounts, summarize
from streams.kafka.partitioning import partition_of

log = logging.getLogger(__name__)

Send = Callable[[str, bytes, bytes], Awaitable[None]]

#: Which counter (and extra label values) a step's count goes to.
_STEP_COUNTERS: dict[str, tuple[Any, tuple[str, ...]]] = {
    "applied": (metrics.EVENTS_APPLIED, ()),
    "duplicate_offset": (metrics.EVENTS_DUPLICATE, ("offset",)),
    "duplicate_event_id": (metrics.EVENTS_DUPLICATE, ("event_id",)),
    "late": (metrics.LATE_EVENTS, ()),
    "behind_fence": (metrics.OFFSET_RESETS, ()),
    "outcome_held": (metrics.OUTCOMES_HELD, ()),
    "outcome_released": (metrics.OUTCOMES_RELEASED, ()),
}
#: Tries of a batch's students before giving up (their documents keep changing under this worker).
_COMMIT_TRIES = 5
#: Tries of one student's commit, failing for a reason of its own, before the student is set aside.
COMMIT_ATTEMPTS = 3
#: A batch's CPU-bound loops (decoding records, stepping students) hand the event loop back this
#: often, so heartbeats, HTTP, timers and the next fetch are not held up by a 5,000-record batch.
YIELD_EVERY_SECONDS = 0.02


class _Slices:
    """Yield to the event loop once `YIELD_EVERY_SECONDS` of uninterrupted work has passed."""

    def __init__(self) -> None:
        self._began = time.monotonic()

    async def tick(self) -> None:
        if time.monotonic() - self._began >= YIELD_EVERY_SECONDS:
            await asyncio.sleep(0)
            self._began = time.monotonic()


@dataclass(frozen=True)
class PipelineConfig:
    """What the pipeline needs of the settings (built by streams.runtime.pipeline_config)."""

    topic_prefix: str
    step: StepConfig
    lateness: float  # seconds of event time the watermark trails the newest record
    live_clock: bool  # quiet, fully read partitions also follow the wall clock
    max_skew: float  # seconds an event time may lead its Kafka timestamp, and that the wall clock
    zone: tzinfo = UTC  # the school's: event times are its wall-clock times


class ScheduleCache:
    """Course schedules as the store holds them, rebuilt when the store's schedule version moves.
    Fetching is async (the store), lookups are not: the per-student step is a plain function."""

    def __init__(self, store: StudentStore) -> None:
        self._store = store
        self._version = -1
        self._fetched: set[int] = set()
        self._schedules = FlowSchedules()

    async def prefetch(self, course_ids: set[int]) -> None:
        """Make `get` answer for these courses, with every row stored by now."""
        version = await self._store.schedule_version()
        if version != self._version:
            self._fetched, self._schedules, self._version = set(), FlowSchedules(), version
        for course_id in course_ids - self._fetched:
            self._schedules.add(await self._store.schedule_records(course_id))
            self._fetched.add(course_id)

    def get(self, key: ScheduleKey) -> CourseSchedule | None:
        return self._schedules.get(key)


class Pipeline:
    def __init__(self, config: PipelineConfig, store: StudentStore, send: Send, scoring: Scoring,
                 sink: RowSink) -> None:
        self.config = config
        self.store = store
        self.send = send
        self.scoring = scoring
        self.sink = sink
        self.watermarks = WatermarkTracker(config.lateness, live=config.live_clock,
                                           shared=frozenset(t.value for t in GLOBAL_TOPICS),
                                           local_now=lambda: utc_to_local(time.time(), config.zone))
        self._logical = {t.physical(config.topic_prefix): t for t in Topic}
        self._schedules = ScheduleCache(store)
        self._lock = asyncio.Lock()
        #: (counter metric, label values) -> records of this batch; flushed once the batch is done
        self._tally: Counter[tuple[Any, tuple[str, ...]]] = Counter()
        #: highest offset per (topic, partition) already counted as read: a retried batch counts once
        self._counted: dict[tuple[str, int], int] = {}
        self._counted_before: dict[tuple[str, int], int] = {}  # as it stood before this batch
        #: students whose step or commit fails for a reason of their own: (the version that failed, why), skipped
        #: until it changes
        self._set_aside: dict[int, tuple[int, str]] = {}
        self._claimed = False  # the store was told, at this process's first batch, whether history was read
        self._history_read = False  # an assignment found offsets the group had committed

    # -- entry points (the consumer's) --------------------------------------------------------
    async def process(self, records: list[InputRecord], offsets: Offsets, partitions: PartitionCounts) -> None:
        """Handle a batch; `offsets` gives (resume position, highwater, wall time the highwater
        was read) of every assigned topic-partition, `partitions` each topic's partition count."""
        async with self._lock:
            if not self._claimed:
                await self._claim_store()
            self._tally.clear()  # a failed attempt's counts are dropped; the retry counts once
            per_student, schedule_rows = await self._decode(records, partitions)
            if self.watermarks.newest is not None:
                self.watermarks.adopt_newest(*await self.store.raise_newest(*self.watermarks.newest))
            if schedule_rows:
                await self.store.put_schedule(schedule_rows)
            for (topic, partition), reading in offsets.items():
                if topic in self._logical:
                    self.watermarks.set_offsets(self._logical[topic].value, partition, *reading)
            await self._run_students(per_student)
            await self.store.replicated()  # before the consumer commits the offsets: a retry redoes nothing
            scored_at = time.time()
            for record in records:
                metrics.PROCESSING_LATENCY.observe(max(0.0, scored_at - record.timestamp))
            metrics.BATCH_SIZE.observe(len(records))
            self._flush_tally()

    def note_history(self, committed: bool) -> None:
        """The consumer, at an assignment: had the group committed offsets on those partitions?"""
        self._history_read = self._history_read or committed

    async def _claim_store(self) -> None:
        """At the first batch: a group that committed offsets before expects their state in the store. A store
        holding none (Redis restarted empty, say) would go on from those offsets with every student's history
        gone and nobody told: it is reported (an error here, `scorer_student_state_lost` until accepted)."""
        lost_at = await self.store.claim(self._history_read, time.time())
        self._claimed = True
        if lost_at is not None:
            log.error("the student store holds none of the history this consumer group has read (found at %s): "
                      "students' documents, statuses and due times are gone; restore Redis, or rebuild from the "
                      "topics, then `scorer accept-state-loss` (deploy/README.md, ScorerStudentStateLost)",
                      datetime.fromtimestamp(lost_at, UTC).isoformat(timespec="seconds"))

    async def forget(self, partitions: list[tuple[str, int]]) -> None:
        """Revoked partitions: their watermarks and due students are another worker's now (and so may be the
        students set aside: those still here are found again at their next step)."""
        async with self._lock:
            for topic, partition in partitions:
                if topic in self._logical:
                    self.watermarks.forget(self._logical[topic].value, partition)
            if partitions:
                self._set_aside.clear()
                metrics.STUDENTS_SET_ASIDE.set(0)

    async def quarantine(self, record: InputRecord, error: BaseException) -> None:
        """A record that failed processing again and again (a poison pill) goes to the dead-letter
        topic with the error, so the records after it can be processed."""
        async with self._lock:
            topic = self._logical.get(record.topic)
            failure = InvalidEvent("processing_failed", f"{type(error).__name__}: {error}")
            await self._send_dead_letters([dead_letter(record.topic, failure, value=record.value, key=record.key,
                                                       partition=record.partition, offset=record.offset)])
            if topic is not None:
                metrics.DEAD_LETTERS.labels(topic.value, failure.reason).inc()
                self.watermarks.observe_offset(topic.value, record.partition, record.offset)

    def _flush_tally(self) -> None:
        """Counters are summed per batch, not incremented per record (a hot path)."""
        for (metric, labels), count in self._tally.items():
            metric.labels(*labels).inc(count)
            if metric is metrics.OFFSET_RESETS:
                log.warning("%d records of %s were behind their students' offset fences but never applied: the "
                            "log was reset (topic recreated, broker data lost); applied as new", count, labels[0])
        self._tally.clear()

    # -- decoding and dead letters -----------------------------------------------------------
    async def _decode(self, records: list[InputRecord],
                      partitions: PartitionCounts) -> tuple[dict[int, list[StudentEvent]], list[dict[str, Any]]]:
        """Records -> each student's valid events and the schedule rows; the rest are dead letters."""
        per_student: dict[int, list[StudentEvent]] = defaultdict(list)
        schedule_rows: list[dict[str, Any]] = []
        dead_letters: list[dict[str, Any]] = []
        now = time.time()
        self._counted_before = dict(self._counted)
        slices = _Slices()
        for r in records:
            await slices.tick()
            topic = self._logical.get(r.topic)
            if topic is None:
                continue
            fresh = r.offset > self._counted.get((r.topic, r.partition), -1)
            if fresh:
                self._tally[metrics.EVENTS_CONSUMED, (topic.value,)] += 1
            try:
                record, ts = checked_record(topic, r, partitions, now, self.config.zone, self.config.max_skew)
            except InvalidEvent as error:
                dead_letters.append(dead_letter(r.topic, error, value=r.value, key=r.key,
                                                partition=r.partition, offset=r.offset))
                if fresh:
                    self._tally[metrics.DEAD_LETTERS, (topic.value, error.reason)] += 1
                self.watermarks.observe_offset(topic.value, r.partition, r.offset)
                continue
            self.watermarks.observe(topic.value, r.partition, r.offset, ts, r.timestamp)
            if topic is Topic.SCHEDULE:
                schedule_rows.append(record)
                continue
            per_student[record["user_id"]].append(StudentEvent(topic, r.partition, r.offset, record, ts))
        for r in records:
            tp = (r.topic, r.partition)
            self._counted[tp] = max(self._counted.get(tp, -1), r.offset)
        self._flush_tally()  # records read show now, not at the batch's end: progress is visible
        await self._send_dead_letters(dead_letters)
        return per_student, schedule_rows

    async def _send_dead_letters(self, dead_letters: list[dict[str, Any]]) -> None:
        if dead_letters:
            dlq = Topic.DEAD_LETTERS.physical(self.config.topic_prefix)
            await asyncio.gather(*(self.send(dlq, (d["key"] or "").encode(), encode(d)) for d in dead_letters))

    # -- students ----------------------------------------------------------------------------
    async def _run_students(self, per_student: dict[int, list[StudentEvent]]) -> None:
        """Step every student with new events or whose due time has come; students whose document
        changed under this worker meanwhile (another worker took the partition) are redone."""
        watermarks = {p: mark for p in self.watermarks.partitions()
                      if (mark := self.watermarks.watermark(p)) is not None}
        for partition, mark in watermarks.items():
            metrics.WATERMARK.labels(str(partition)).set(local_to_utc(mark, self.config.zone))
        user_ids = set(per_student)
        for partition, mark in watermarks.items():
            user_ids.update(await self.store.due(partition, mark))
        for _ in range(_COMMIT_TRIES):
            if not user_ids:
                return
            loaded = await self.store.load(user_ids)
            failed = {user_id: (version, self._set_aside[user_id][1]) for user_id, (version, _) in loaded.items()
                      if self._set_aside.get(user_id, (None,))[0] == version}
            courses, waiting = set(), set()
            for user_id in loaded.keys() - failed.keys():
                try:
                    courses |= _courses(loaded[user_id][1], per_student.get(user_id, ()))
                    waiting |= _waiting_flows(loaded[user_id][1])
                except Exception as error:  # noqa: BLE001 - one student's document must not stop the others
                    failed[user_id] = (loaded[user_id][0], _why(error))
            await self._schedules.prefetch(courses)
            flows_done = await self.store.flows_done(waiting)
            stepped: dict[int, tuple[int, StepResult]] = {}
            slices = _Slices()
            for user_id in user_ids - failed.keys():
                await slices.tick()
                version, raw = loaded[user_id]
                doc = cast("StudentDoc | None", raw)  # the store keeps the documents `step` returned, as JSON
                try:
                    result = step(user_id, doc, per_student.get(user_id, ()), watermarks,
                                  self._schedules.get, self.config.step, self.scoring, flows_done.get)
                except Exception as error:  # noqa: BLE001 - the step is pure: it fails the same way every time
                    failed[user_id] = (version, _why(error))
                    continue
                self._set_aside.pop(user_id, None)
                for (kind, topic), count in result.counts.items():
                    metric, labels = _STEP_COUNTERS[kind]
                    self._tally[metric, (topic, *labels)] += count
                if result.stored:
                    stepped[user_id] = (version, result)
            conflicts, refused = await self._commit_apart(stepped)
            await self._set_students_aside(failed | refused, per_student)
            user_ids = set(conflicts)
        raise RuntimeError(f"{len(user_ids)} students kept changing under this worker")

    async def _commit_apart(self, stepped: dict[int, tuple[int, StepResult]]
                            ) -> tuple[list[int], dict[int, tuple[int, str]]]:
        """`_commit`, and when it fails for a reason of the batch's own (a row a store refuses, say; not an
        outage), its halves apart, down to the student it fails for, who is set aside: one student's commit
        must not fail a partition's batches, as one student's step must not. A half committed before the
        other fails is what a crash there would leave (`_commit` says why that is safe). A lone student's
        commit is tried COMMIT_ATTEMPTS times first."""
        why = ""
        for _ in range(COMMIT_ATTEMPTS):
            try:
                return await self._commit(stepped), {}
            except Exception as error:
                if failures.dependency_of(error) is not None or not stepped:
                    raise  # an outage: the consumer waits for the dependency, then hands the batch over again
                if len(stepped) > 1:
                    items = list(stepped.items())
                    first, first_refused = await self._commit_apart(dict(items[:len(items) // 2]))
                    second, second_refused = await self._commit_apart(dict(items[len(items) // 2:]))
                    return first + second, first_refused | second_refused
                why = _why(error)
        ((user_id, (version, _)),) = stepped.items()
        return [], {user_id: (version, why)}

    async def _set_students_aside(self, failed: dict[int, tuple[int, str]],
                                  per_student: dict[int, list[StudentEvent]]) -> None:
        """Students whose step or commit fails for a reason of their own (a bug on some state, a document written
        by a newer release, a row a store refuses): their events of the batch go to the dead letters with the
        error, and the others' batch goes on. Before, one such student due on a partition failed every batch of
        it, and the consumer then quarantined every record there, anyone's. The student is skipped until their
        document changes (erased with `scorer forget`, or repaired) or this worker lets their partition go or
        restarts, when they are tried again; `scorer_students_set_aside` counts them."""
        letters = []
        for user_id, (version, why) in failed.items():
            failure = InvalidEvent("processing_failed", why)  # the dead letter carries the error
            for event in per_student.get(user_id, ()):
                physical = event.topic.physical(self.config.topic_prefix)
                letters.append(dead_letter(physical, failure, value=encode(event.record),
                                           key=key_of(event.topic, event.record), partition=event.partition,
                                           offset=event.offset))
                if event.offset > self._counted_before.get((physical, event.partition), -1):
                    self._tally[metrics.DEAD_LETTERS, (event.topic.value, failure.reason)] += 1
            if self._set_aside.get(user_id) != (version, why):  # its message may quote the document: not logged
                log.error("a student cannot be processed (%s): set aside, their events dead-lettered, until their "
                          "document changes", why.split(":", 1)[0])
                log.debug("student %d set aside: %s", user_id, why)
            self._set_aside[user_id] = (version, why)
        metrics.STUDENTS_SET_ASIDE.set(len(self._set_aside))
        await self._send_dead_letters(letters)

    async def _commit(self, stepped: dict[int, tuple[int, StepResult]]) -> list[int]:
        """Make a batch's results durable, in this order; returns the students to redo.

        1. labels queued and finished weeks' features stored for the trainer; enrolments and
           outcomes recorded in the flow index;
        2. alerts sent to the alerts topic and acknowledged;
        3. score rows and transitions upserted to Postgres;
        4. each student's document (with its offset fence) swapped into the store, if its version
           is still the one loaded;
        5. the students of each flow that became complete made due, so their outcomes are released
           (after 4, which would otherwise put back a later due time stepped without knowing it).
        A crash before 4 redelivers the batch: 1-3 are idempotent (the trainer learns an enrolment
        once, alerts carry deterministic ids, rows are upserts, the flow index is keyed by student)
        and the fence skips what 4 stored. A crash between 4 and 5 leaves the flow's outcomes to
        their `learn_after` release.
        """
        results = [result for _, result in stepped.values()]
        for result in results:
            for label in result.labels:
                await self.scoring.label(label.learner, label.outcome, label.days_inactive)
            self.scoring.keep_weeks(result.weeks)
        await self.scoring.flush()
        completed = await self.store.record_flows([
            FlowRecord((mark.course_id, mark.flow), user_id, _partition(result), mark.outcome_at)
            for user_id, (_, result) in stepped.items() for mark in result.flow_marks])
        alerts = [alert for result in results for alert in result.alerts]
        if alerts:
            topic = Topic.ALERTS.physical(self.config.topic_prefix)
            await asyncio.gather(*(self.send(topic, str(a.user_id).encode(), encode(a.to_message())) for a in alerts))
        score_rows = [row for result in results for row in result.score_rows]
        if score_rows or alerts:
            await self.sink.write(score_rows, alerts)
        conflicts = await self.store.commit([_commit_of(user_id, version, result)
                                             for user_id, (version, result) in stepped.items()])
        for alert in alerts:
            if alert.user_id not in conflicts:
                metrics.ALERTS.labels(alert.from_status, alert.to_status).inc()
        if completed:
            await self.store.wake_flows(completed)
        return conflicts


def checked_record(topic: Topic, r: InputRecord, partitions: PartitionCounts, now: float, zone: tzinfo,
                   max_skew: float) -> tuple[dict[str, Any], float]:
    """The record and its event time, if the scorer can use it; else InvalidEvent with the reason (the worker's
    check of every record it reads, and `scorer replay --dry-run`'s of every record it would publish)."""
    if r.key is None:
        raise InvalidEvent("missing_key", "records are keyed by student id (the schedule by course id)")
    record = decode(topic, r.value)
    if r.key != key_of(topic, record):
        raise InvalidEvent("key_mismatch", f"key {r.key[:40]!r} does not match the record's id")
    count = partitions.get(r.topic)
    if count is not None and partition_of(r.key, count) != r.partition:
        raise InvalidEvent("wrong_partition", f"key belongs in partition {partition_of(r.key, count)} of "
                           f"{count} (Kafka's default partitioner), not {r.partition}")
    ts = parse_ts(record["ts"])
    check_event_time(local_to_utc(ts, zone), r.timestamp, now, max_skew)
    if record.get("graded_at"):  # when a grade counts from (features.state): no more in the future than ts
        check_event_time(local_to_utc(parse_ts(record["graded_at"]), zone), r.timestamp, now, max_skew)
    return record, ts


def _courses(doc: dict[str, Any] | None, events: Iterable[StudentEvent]) -> set[int]:
    """Every course a student may follow: their enrolments' and any new profile's."""
    courses = {e["course_id"] for e in doc["enrolments"].values()} if doc is not None else set()
    courses.update(e.record["course_id"] for e in events if e.topic is Topic.STUDENTS)
    return courses


def _waiting_flows(doc: dict[str, Any] | None) -> set[ScheduleKey]:
    """The flows a student holds outcomes of (their release may be the flow's completion)."""
    return set() if doc is None else {(e["course_id"], e["flow"]) for e in doc["enrolments"].values()
                                      if e.get("held_labels")}


def _why(error: Exception) -> str:
    return f"{type(error).__name__}: {summarize(error)}"


def _partition(result: StepResult) -> int:
    partition = result.doc["partition"]
    assert partition is not None  # a stored student has had an event
    return partition


def _commit_of(user_id: int, version: int, result: StepResult) -> Commit:
    return Commit(user_id, _partition(result), version, result.doc, result.next_due, result.status_delta)
