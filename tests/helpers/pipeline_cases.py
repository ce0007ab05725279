"""A random school history, laid out in topic-partitions as Kafka would hold it, and a driver
that feeds it to a Pipeline in random batches with redeliveries: the same case runs against
in-memory stores (unit) and real Redis and Postgres (integration)."""
from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

from features import DAY, DEFAULT_THRESHOLDS, canonical, fold, format_ts, parse_ts, reference_transitions
from helpers.facts import folded_as_stored
from storage.students import StudentStore
from streams.contract import ACTIVITY_TOPICS, TOPIC_SCHEMA, Topic, encode, enrolment_key, key_of
from streams.kafka.consumer import InputRecord
from streams.kafka.partitioning import partition_of
from streams.pipeline import Pipeline

START = 1_701_388_800.0  # 2023-12-01
ENROLMENT = enrolment_key(3, 1)  # every student of `history` is in course 3, flow 1
LATENESS = 3600.0
PARTITIONS = 4
Event = tuple[Topic, dict[str, Any]]


def _record(topic: Topic, user_id: int, ts: float, rng: random.Random) -> dict[str, Any]:
    base: dict[str, Any] = {"user_id": user_id, "ts": format_ts(ts)}
    if topic is Topic.AUTHORIZATIONS:
        return base
    if topic is Topic.PAGE_VIEWS:
        return {**base, "page_type": "активность", "page_id": rng.randint(1, 20), "module": 2}
    if topic is Topic.EXERCISE_RESULTS:
        return {**base, "activity_id": rng.randint(1, 20), "result": rng.choice([None, 40, 100]),
                "success": rng.randint(0, 1)}
    return {**base, "event": rng.choice(["Подключение", "Отключение"]), "webinar_id": 5, "conn_format": "онлайн"}


def history(rng: random.Random, students: int) -> list[Event]:
    """Students with bursts of activity and silences of up to 25 days, in event-time order."""
    events: list[Event] = []
    for user_id in range(1, students + 1):
        events.append((Topic.STUDENTS, {"user_id": user_id, "ts": format_ts(START), "course_id": 3, "flow_num": 1,
                                        "payment": 1, "tags": ["#онлайн"], "online": True}))
        t = START + rng.uniform(0, 2) * DAY
        while t < START + 90 * DAY:
            topic = rng.choice(ACTIVITY_TOPICS)
            events.append((topic, _record(topic, user_id, t, rng)))
            if topic is Topic.EXERCISE_RESULTS and rng.random() < 0.3:
                events += _graded_by_a_teacher(events.pop()[1], t, rng)
            t += rng.choice([0.1, 0.5, 1, 2, 9, 25]) * DAY * rng.random()
    events.sort(key=lambda item: parse_ts(item[1]["ts"]))
    return events


def _graded_by_a_teacher(record: dict[str, Any], ts: float, rng: random.Random) -> list[Event]:
    """An attempt the LMS names, graded a fail a day after it was handed in and a pass days later, in
    records dated then (as Moodle's user_graded is): no grade is the student's activity. Either the
    first grade says when the work was handed in (`graded_at`, as a Caliper grade does), or the
    hand-in came as a record of its own (`pending`), and the student handed the work in again
    before the pass."""
    named = {**record, "attempt_id": f"a{record['user_id']}-{ts:.0f}", "result": 40, "success": 0}
    regraded = ts + rng.uniform(2, 30) * DAY
    regrade = {**named, "ts": format_ts(regraded), "graded_at": format_ts(regraded), "result": 90, "success": 1}
    if rng.random() < 0.5:
        return [(Topic.EXERCISE_RESULTS, {**named, "graded_at": format_ts(ts + DAY)}),
                (Topic.EXERCISE_RESULTS, regrade)]
    hand_in = {**named, "result": None, "success": 0, "pending": True}
    again = format_ts(rng.uniform(ts + DAY, regraded))
    return [(Topic.EXERCISE_RESULTS, hand_in), (Topic.EXERCISE_RESULTS, {**named, "ts": format_ts(ts + DAY)}),
            (Topic.EXERCISE_RESULTS, {**hand_in, "ts": again}), (Topic.EXERCISE_RESULTS, regrade)]


def activity_times(events: list[Event], user_id: int) -> list[float]:
    """The student's activity: every activity record's time but a grade's after its attempt's first
    record (a teacher's doing); every hand-in counts."""
    handed_in: dict[str, float] = {}
    for _, record in events:
        if record["user_id"] == user_id and "attempt_id" in record:
            at = parse_ts(record["ts"])
            handed_in[record["attempt_id"]] = min(at, handed_in.get(record["attempt_id"], at))
    return [parse_ts(r["ts"]) for t, r in events if r["user_id"] == user_id and t in ACTIVITY_TOPICS
            and ("attempt_id" not in r or r.get("pending") or parse_ts(r["ts"]) == handed_in[r["attempt_id"]])]


@dataclass
class Sent:
    """What the pipeline sent, by topic suffix."""

    records: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    async def send(self, topic: str, key: bytes, value: bytes) -> None:
        self.records.append((topic, json.loads(value)))

    def on(self, suffix: str) -> list[dict[str, Any]]:
        return [r for topic, r in self.records if topic.endswith(suffix)]


async def drive(pipeline: Pipeline, prefix: str, events: list[Event], rng: random.Random, *,
                redeliver: bool, bad: int = 0, largest_chunk: int = 40) -> None:
    """Feed `events` (PARTITIONS partitions, keyed as Kafka's default partitioner would) to the
    pipeline in random chunks (up to `largest_chunk` records) of random topic-partitions; with
    `redeliver`, some batches are processed twice (a crash before the offset commit); `bad`
    schema-invalid records are slipped in."""
    produced = time.time()
    parts: dict[tuple[str, int], list[InputRecord]] = {}
    for topic, record in events:
        key = key_of(topic, record)
        name, partition = topic.physical(prefix), partition_of(key, PARTITIONS)
        log = parts.setdefault((name, partition), [])
        log.append(InputRecord(name, partition, len(log), key, encode(record), produced))
    for _ in range(bad):
        name, partition = Topic.PAGE_VIEWS.physical(prefix), partition_of(b"1", PARTITIONS)
        part = parts.setdefault((name, partition), [])
        part.insert(rng.randrange(len(part) + 1),
                    InputRecord(name, partition, -1, b"1", b'{"user_id": "oops"}', produced))
    for part in parts.values():  # renumber offsets after inserting bad records
        for offset, r in enumerate(part):
            part[offset] = r._replace(offset=offset)
    positions = {tp: 0 for tp in parts}
    while any(positions[tp] < len(recs) for tp, recs in parts.items()):
        tp = rng.choice([tp for tp, recs in parts.items() if positions[tp] < len(recs)])
        batch = parts[tp][positions[tp]:positions[tp] + rng.randint(1, largest_chunk)]
        positions[tp] += len(batch)
        offsets = {t: (positions[t], len(recs), None) for t, recs in parts.items()}
        counts = {name: PARTITIONS for name, _ in parts}
        await pipeline.process(batch, offsets, counts)
        if redeliver and rng.random() < 0.2:
            await pipeline.process(batch, offsets, counts)
    await pipeline.process([], {t: (len(recs), len(recs), None) for t, recs in parts.items()},
                           {name: PARTITIONS for name, _ in parts})


async def assert_equals_fold_and_reference(store: StudentStore, sent: Sent, events: list[Event], bad: int) -> None:
    """Stored facts equal the pure fold; alerts equal the reference machine's, each once; bad records
    are dead-lettered; every student is counted under one status."""
    expected_states = fold((TOPIC_SCHEMA[t], r) for t, r in events)
    loaded = await store.load(expected_states)
    for user_id, state in expected_states.items():
        doc = loaded[user_id][1]
        assert doc is not None and canonical(doc["facts"]) == folded_as_stored(state, doc["facts"]), user_id

    watermark = max(parse_ts(r["ts"]) for _, r in events) - LATENESS
    expected_alerts = []
    for user_id in expected_states:
        times = activity_times(events, user_id)
        registration = min(parse_ts(r["ts"]) for t, r in events if r["user_id"] == user_id and t is Topic.STUDENTS)
        expected_alerts += reference_transitions(user_id, [registration, *times], watermark, DEFAULT_THRESHOLDS,
                                                 scope=ENROLMENT)
    alerts = sent.on("scorer.alerts")
    assert sorted(a["alert_id"] for a in alerts) == sorted(t.alert_id for t in expected_alerts)
    assert len(expected_alerts) > 5  # the history really has dozing and asleep spells
    assert sum("graded" in state for state in expected_states.values()) > len(expected_states) // 2  # and regrades
    assert {a["to_status"] for a in alerts} >= {"dozing", "asleep", "active"}

    dead = sent.on("scorer.dead_letters")
    # at-least-once: a redelivered bad record may be dead-lettered twice, with the same source offset
    assert len({(d["partition"], d["offset"]) for d in dead}) == bad
    assert {d["reason"] for d in dead} == ({"missing_field"} if bad else set())
    assert sum((await store.status_counts()).values()) == len(expected_states)
