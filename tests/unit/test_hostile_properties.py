"""Property-based hostile input on the in-memory pipeline (no servers).

Arbitrary byte strings, arbitrary JSON values and valid records mutated at random (fields
deleted, replaced by arbitrary JSON, added; keys missing, random or right; partitions right or
random; Kafka timestamps now, ahead of the clock or at the epoch) are slipped at random
positions into a valid school history's topic-partitions, which are then fed to the pipeline in
random batches with redeliveries. Whatever Hypothesis draws:

(i)   `Pipeline.process` never raises;
(ii)  every hostile record is dead-lettered (with its size and hash) unless the contract accepts
      it, in which case it is applied as the valid record it happens to be; no valid record of
      the history is dead-lettered;
(iii) the history's students' facts equal the pure fold of the history alone, their alerts equal
      the reference machine's, each once, and no alert goes to anyone else.

A hostile record that happens to be valid is kept only where it cannot move the history's clock
(a student of its own, dated no later than the history's start, not a schedule row): a valid record
of a history student is not hostile, it is that student's data. Such students' facts must equal
the fold of their accepted records.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import random
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features import DAY, DEFAULT_THRESHOLDS, canonical, fold, format_ts, parse_ts, reference_transitions
from helpers.facts import folded_as_stored
from helpers.pipeline_cases import ENROLMENT, LATENESS, PARTITIONS, START, Sent, activity_times, history
from online_models.scoring import NoScoring
from storage.row_sink import MemoryRowSink
from storage.students import InMemoryStudentStore
from streams.contract import (
    INPUT_TOPICS,
    TOPIC_SCHEMA,
    InvalidEvent,
    Topic,
    check_event_time,
    decode,
    encode,
    key_of,
    schema,
)
from streams.core.step import StepConfig
from streams.kafka.consumer import InputRecord
from streams.kafka.partitioning import partition_of
from streams.pipeline import Pipeline, PipelineConfig

pytestmark = pytest.mark.heavy

PREFIX = "hp."
MAX_SKEW = 600.0
CONFIG = PipelineConfig(topic_prefix=PREFIX, step=StepConfig(DEFAULT_THRESHOLDS, 3600.0), lateness=LATENESS,
                        live_clock=False, max_skew=MAX_SKEW)
NOW = float(int(time.time()))
HISTORY = history(random.Random(2024), students=5)  # one valid history for every example (built once)
HISTORY_USERS = {r["user_id"] for _, r in HISTORY}
EXPECTED_FACTS = fold((TOPIC_SCHEMA[t], r) for t, r in HISTORY)


def _reference_ids() -> list[str]:
    watermark = max(parse_ts(r["ts"]) for _, r in HISTORY) - LATENESS
    ids = []
    for user in HISTORY_USERS:
        times = activity_times(HISTORY, user)
        registered = min(parse_ts(r["ts"]) for t, r in HISTORY if r["user_id"] == user and t is Topic.STUDENTS)
        ids += [t.alert_id for t in reference_transitions(user, [registered, *times], watermark, DEFAULT_THRESHOLDS,
                                                          scope=ENROLMENT)]
    return sorted(ids)


REFERENCE_ALERT_IDS = _reference_ids()

# -- what Hypothesis draws ------------------------------------------------------------------------
FRESH_USER = 1_000_000  # students of the hostile records' own: ids from here up
INJECTION = "'; DROP TABLE students_current; --"
NASTY_TEXT = st.sampled_from([INJECTION, "\x00", "a\x00b", "\u202e\u200f", "\U0001f600\u200d\U0001f4bb", "", " ",
                              "\ufeff", "\\", '"', "Ω" * 600, "2100-01-01T00:00:00", "1970-01-01T00:00:00",
                              "2023-12-01T10:00:00\n", "2023-02-30T10:00", "0000-01-01T00:00"])
NASTY_NUMBER = st.sampled_from([0, -1, 1, 2**31, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**30, 1.0, 0.5, -0.0,
                                1e10, 1e308, float("inf"), float("nan"), True, False])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20), NASTY_TEXT,
                    NASTY_NUMBER)
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=8)
TIMES = st.one_of(st.sampled_from([START - 3 * DAY, START, START + 30 * DAY, 946_684_799.0, 0.0, NOW,
                                   NOW + MAX_SKEW / 2, NOW + 2 * MAX_SKEW, 4_102_444_800.0]),
                  st.floats(min_value=946_684_800.0, max_value=4_102_444_800.0))


def _templates() -> list[tuple[Topic, dict[str, Any]]]:
    """Valid records to mutate: some of the history's, and each topic's record for a fresh student
    dated before the history starts."""
    picked = random.Random(7).sample(HISTORY, 30)
    old = format_ts(START - DAY)
    fresh = FRESH_USER + 1
    return [*picked,
            (Topic.AUTHORIZATIONS, {"user_id": fresh, "ts": old, "user_agent": INJECTION}),
            (Topic.PAGE_VIEWS, {"user_id": fresh, "ts": old, "page_type": "активность", "page_id": 3, "module": 2}),
            (Topic.EXERCISE_RESULTS, {"user_id": fresh, "ts": old, "activity_id": 4, "result": 40, "success": 1}),
            (Topic.WEBINAR_EVENTS, {"user_id": fresh, "ts": old, "event": "Подключение", "webinar_id": 5,
                                    "conn_format": "онлайн"}),
            (Topic.STUDENTS, {"event_id": "e\x00", "user_id": fresh, "ts": old, "course_id": 3, "flow_num": 1,
                              "payment": 1, "tags": ["#онлайн", INJECTION], "online": True, "time_zone": "\u202e"}),
            (Topic.OUTCOMES, {"user_id": fresh, "ts": old, "course_id": 3, "module": 2, "progress": 50.0}),
            (Topic.SCHEDULE, {"course_id": 77, "ts": old, "type": "занятие", "task_id": 1, "activity_id": 1,
                              "is_attestation": 0, "required": 0, "flows": 1, "date_shown": old})]


TEMPLATES = _templates()


@dataclass(frozen=True)
class Hostile:
    topic: Topic
    key: bytes | None
    partition: int
    value: bytes | None
    produced: float  # Kafka timestamp, seconds
    position: int  # where in its topic-partition it is slipped in (modulo the length)


_TIME_FIELDS = ("ts", "date_shown", "attestation_date")


@st.composite
def mutated(draw: st.DrawFn) -> tuple[Topic, Any]:
    """A valid record with one to three fields deleted, replaced, re-timed or added."""
    topic, template = draw(st.sampled_from(TEMPLATES))
    record: dict[str, Any] = dict(template)
    fields = sorted({*schema(TOPIC_SCHEMA[topic])["properties"], *record})
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["delete", "set", "set", "time", "add"]))
        name = draw(st.sampled_from(fields))
        if action == "delete":
            record.pop(name, None)
        elif action == "set":
            record[name] = draw(JSON_VALUES)
        elif action == "time":
            record[name] = format_ts(draw(TIMES)) if draw(st.booleans()) else draw(NASTY_TEXT)
        else:
            record[draw(st.text(max_size=10))] = draw(JSON_VALUES)
    return topic, record


@st.composite
def retimed(draw: st.DrawFn) -> tuple[Topic, Any]:
    """A valid record as it is, or with its times moved anywhere from 1970 to 2100 (or to nonsense),
    or with an extra field the contract allows."""
    topic, template = draw(st.sampled_from(TEMPLATES))
    record: dict[str, Any] = dict(template)
    for name in _TIME_FIELDS:
        if name in record and draw(st.booleans()):
            record[name] = format_ts(draw(TIMES)) if draw(st.integers(0, 4)) else draw(NASTY_TEXT)
    if draw(st.integers(0, 3)) == 0:
        record["x_" + draw(st.text(max_size=6))] = draw(JSON_VALUES)
    return topic, record


def _user_key(draw: st.DrawFn) -> bytes:
    return str(draw(st.sampled_from([*sorted(HISTORY_USERS), FRESH_USER + 1, 2**63]))).encode()


@st.composite
def hostile(draw: st.DrawFn) -> Hostile:
    kind = draw(st.sampled_from(["bytes", "json", "mutated", "mutated", "retimed", "retimed", "padded"]))
    record: Any = None
    if kind in ("mutated", "retimed", "padded"):
        topic, record = draw(mutated() if kind == "mutated" else retimed())
        value: bytes | None = json.dumps(record, ensure_ascii=draw(st.booleans())).encode()
        if kind == "padded":  # valid JSON, but past the size limit
            value = value[:1] + b" " * (64 * 1024) + value[1:]
    else:
        topic = draw(st.sampled_from(INPUT_TOPICS))
        value = draw(st.binary(max_size=200)) if kind == "bytes" else json.dumps(draw(JSON_VALUES)).encode()
        if draw(st.integers(0, 19)) == 0:
            value = None
    key_kind = draw(st.sampled_from(["right"] * 6 + ["none", "random", "user"]))
    key: bytes | None
    if key_kind == "none":
        key = None
    elif key_kind == "random":
        key = draw(st.binary(max_size=12))
    elif key_kind == "right" and isinstance(record, dict) and ("course_id" if topic is Topic.SCHEDULE
                                                               else "user_id") in record:
        # the key a producer would derive from the record's id, whatever that id has become
        key = str(record["course_id" if topic is Topic.SCHEDULE else "user_id"]).encode("utf-8", "surrogatepass")
    else:
        key = _user_key(draw)
    home = partition_of(key, PARTITIONS) if key is not None else 0
    partition = home if draw(st.integers(0, 5)) else (home + draw(st.integers(1, PARTITIONS - 1))) % PARTITIONS
    produced = draw(st.sampled_from([NOW] * 6 + [NOW + 2 * DAY, 0.0]))
    return Hostile(topic, key, partition, value, produced, draw(st.integers(0, 10_000)))


# -- the oracle: what the contract accepts --------------------------------------------------------
def accepted(h: Hostile) -> dict[str, Any] | None:
    """The record, if the contract accepts it on its topic, key, partition and timestamps; else None."""
    if h.key is None:
        return None
    try:
        record = decode(h.topic, h.value)
        if h.key != key_of(h.topic, record) or partition_of(h.key, PARTITIONS) != h.partition:
            return None
        check_event_time(parse_ts(record["ts"]), h.produced, time.time(), MAX_SKEW)
    except InvalidEvent:
        return None
    return record


def harmless(h: Hostile, record: dict[str, Any]) -> bool:
    """A valid record kept in the case: it cannot change the history's students or clock."""
    return (h.topic is not Topic.SCHEDULE and record["user_id"] not in HISTORY_USERS
            and parse_ts(record["ts"]) <= START)


# -- the driver --------------------------------------------------------------------------------
@dataclass
class Run:
    sent: Sent
    store: InMemoryStudentStore
    sink: MemoryRowSink
    refused: dict[tuple[str, int, int], Hostile]  # where each record the contract refuses sits
    applied: list[tuple[Topic, dict[str, Any]]]  # hostile records the contract accepts (kept: harmless)
    history_at: set[tuple[str, int, int]]  # where the history's records sit


async def run(hostiles: list[Hostile], seed: int) -> Run:
    rng = random.Random(seed)
    #: each topic-partition's log: (record, None for the history's / the hostile spec, accepted?)
    parts: dict[tuple[str, int], list[tuple[InputRecord, Hostile | None, bool]]] = defaultdict(list)
    for topic, record in HISTORY:
        key = key_of(topic, record)
        name, partition = topic.physical(PREFIX), partition_of(key, PARTITIONS)
        parts[name, partition].append((InputRecord(name, partition, 0, key, encode(record), NOW), None, True))
    applied = []
    event_ids: set[tuple[int, str]] = set()
    for h in hostiles:
        record = accepted(h)
        if record is not None:
            if not harmless(h, record):
                continue  # valid data of the history's students or clock: not what this test is about
            if "event_id" in record:
                if (record["user_id"], record["event_id"]) in event_ids:
                    continue  # the LMS's own duplicate: applied once by design, whichever copy comes first
                event_ids.add((record["user_id"], record["event_id"]))
            applied.append((h.topic, record))
        name = h.topic.physical(PREFIX)
        log = parts[name, h.partition]
        log.insert(h.position % (len(log) + 1),
                   (InputRecord(name, h.partition, 0, h.key, h.value, h.produced), h, record is not None))
    refused: dict[tuple[str, int, int], Hostile] = {}
    history_at: set[tuple[str, int, int]] = set()
    logs: dict[tuple[str, int], list[InputRecord]] = {}
    for (name, partition), entries in parts.items():
        logs[name, partition] = [r._replace(offset=offset) for offset, (r, _, _) in enumerate(entries)]
        for offset, (_, h, ok) in enumerate(entries):
            if h is None:
                history_at.add((name, partition, offset))
            elif not ok:
                refused[name, partition, offset] = h

    store, sink, sent = InMemoryStudentStore(), MemoryRowSink(), Sent()
    pipeline = Pipeline(CONFIG, store, sent.send, NoScoring(), sink)
    counts = {name: PARTITIONS for name, _ in logs}
    positions = dict.fromkeys(logs, 0)
    while any(positions[tp] < len(log) for tp, log in logs.items()):
        tp = rng.choice([tp for tp, log in logs.items() if positions[tp] < len(log)])
        batch = logs[tp][positions[tp]:positions[tp] + rng.randint(1, 40)]
        positions[tp] += len(batch)
        offsets = {t: (positions[t], len(log), None) for t, log in logs.items()}
        await pipeline.process(batch, offsets, counts)  # (i): never raises
        if rng.random() < 0.2:  # a crash before the offset commit: the batch again
            await pipeline.process(batch, offsets, counts)
    await pipeline.process([], {t: (len(log), len(log), None) for t, log in logs.items()}, counts)
    return Run(sent, store, sink, refused, applied, history_at)


@settings(max_examples=100, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(hostiles=st.lists(hostile(), min_size=1, max_size=25), seed=st.integers(0, 2**16))
def test_hostile_records_never_harm_the_others(hostiles: list[Hostile], seed: int) -> None:
    result = asyncio.run(run(hostiles, seed))

    # (ii) every refused record dead-lettered with a reason, its size and hash; nothing else is
    dead = result.sent.on("scorer.dead_letters")
    letters = {(d["topic"], d["partition"], d["offset"]): d for d in dead}
    assert set(letters) == set(result.refused), "dead letters differ from the records the contract refuses"
    for where, h in result.refused.items():
        letter, raw = letters[where], h.value or b""
        assert letter["reason"] and letter["error"], letter
        assert letter["value_bytes"] == len(raw) and letter["value_sha256"] == hashlib.sha256(raw).hexdigest()
    assert not result.history_at & set(letters)

    # (iii) the history's students exactly as without the hostile records
    loaded = asyncio.run(result.store.load(EXPECTED_FACTS))
    for user_id, facts in EXPECTED_FACTS.items():
        doc = loaded[user_id][1]
        assert doc is not None and canonical(doc["facts"]) == folded_as_stored(facts, doc["facts"]), user_id
    alerts = result.sent.on("scorer.alerts")
    assert sorted(a["alert_id"] for a in alerts if a["user_id"] in HISTORY_USERS) == REFERENCE_ALERT_IDS
    applied_facts = fold((TOPIC_SCHEMA[t], r) for t, r in result.applied)
    assert {a["user_id"] for a in alerts} <= HISTORY_USERS | set(applied_facts)
    assert set(result.sink.transitions) == {a["alert_id"] for a in alerts}

    # a hostile record the contract accepts is applied as the record it is
    if applied_facts:
        stored = asyncio.run(result.store.load(applied_facts))
        for user_id, facts in applied_facts.items():
            doc = stored[user_id][1]
            assert doc is not None and canonical(doc["facts"]) == folded_as_stored(facts, doc["facts"]), user_id
    counted = asyncio.run(result.store.status_counts())
    everyone = asyncio.run(result.store.load(HISTORY_USERS | set(applied_facts)))
    tracked = [key for _, doc in everyone.values() if doc for key, e in doc["enrolments"].items()
               if e["machine"] and e["machine"]["status"] != "new"]
    assert sum(counted.values()) == len(tracked) >= len(HISTORY_USERS)
