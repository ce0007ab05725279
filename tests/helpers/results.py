"""What a run of the worker must have produced, checked against the pure functions: Redis state
equal to the fold, alerts equal to the reference machine's (each transition once by alert_id),
Postgres rows agreeing with Redis. Shared by the end-to-end and fault-injection tests."""
from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
from sqlalchemy import text

from features import (
    CourseSchedule,
    Thresholds,
    canonical,
    fold,
    parse_ts,
    reference_transitions,
    schedule_key,
    select_flow,
)
from helpers.topics import read_topic
from storage.postgres.critical_points import critical_points
from storage.postgres.db import shared_engine
from storage.students import RedisStudentStore
from streams.contract import ACTIVITY_TOPICS, TOPIC_SCHEMA, Topic

T = TypeVar("T")


def expected_alert_ids(events, settings) -> set[str]:
    """The reference machine over each student's whole history, up to the final watermark."""
    watermark = max(parse_ts(r["ts"]) for t, r in events if t is not Topic.SCHEDULE) - settings.allowed_lateness_seconds
    times: dict[int, list[float]] = {}
    registered: dict[int, float] = {}
    flow_of: dict[int, tuple[int, int | None]] = {}
    schedules: dict[int, list[dict]] = {}
    for topic, record in events:
        if topic in ACTIVITY_TOPICS:
            times.setdefault(record["user_id"], []).append(parse_ts(record["ts"]))
        elif topic is Topic.STUDENTS:
            user = record["user_id"]
            registered[user] = min(registered.get(user, float("inf")), parse_ts(record["ts"]))
            flow_of.setdefault(user, schedule_key(record["course_id"], record.get("flow_num")))
        elif topic is Topic.SCHEDULE:
            schedules.setdefault(record["course_id"], []).append(record)
    ids = set()
    for user in set(times) | set(registered):
        points = times.get(user, []) + ([registered[user]] if user in registered else [])
        course, flow = flow_of.get(user, (None, None))
        start = CourseSchedule.from_records(select_flow(schedules[course], flow)).start if course in schedules else None
        ids |= {t.alert_id for t in reference_transitions(user, points, watermark, Thresholds(
            settings.dozing_days, settings.asleep_days), start=start)}
    return ids


@dataclass
class Results:
    """What `check_results` read, for further checks by the caller."""

    alerts: list[dict[str, Any]] = field(default_factory=list)
    status_counts: dict[str, int] = field(default_factory=dict)


async def check_results(settings, events, dataset: Path, *, ground_truth: bool = True) -> Results:
    """Redis equals the fold of `events`, the alerts topic equals the reference (duplicates of an id
    allowed, nothing extra, nothing missing), Postgres agrees with Redis and has a model version;
    with `ground_truth`, dropped-out students of the generated `dataset` end asleep far more often."""
    # Redis state equals the pure in-memory fold over the same records
    expected_states = fold((TOPIC_SCHEMA[t], r) for t, r in events if t is not Topic.SCHEDULE)
    store = RedisStudentStore.from_url(settings.redis_url, settings.topic_prefix)
    try:
        loaded = await store.load(expected_states)
        counts = await store.status_counts()
    finally:
        await store.close()
    mismatched = [u for u, s in expected_states.items() if loaded[u][1] is None
                  or canonical(loaded[u][1]["facts"]) != canonical(s)]
    assert not mismatched, f"{len(mismatched)} students differ from the fold, e.g. {mismatched[:3]}"

    # every reference transition alerted, none extra, none lost (duplicates share an id)
    alerts = await read_topic(settings, Topic.ALERTS)
    expected_ids = expected_alert_ids(events, settings)
    extra = [a for a in alerts if a["alert_id"] not in expected_ids]
    missing = expected_ids - {a["alert_id"] for a in alerts}
    assert not extra and not missing, (len(extra), len(missing), [
        (a["user_id"], a["from_status"], a["to_status"], a["ts"], a["last_activity_ts"]) for a in extra[:4]])
    assert Counter(a["to_status"] for a in alerts).keys() >= {"dozing", "asleep"}

    # Postgres has one current row per tracked student and every transition once
    engine = shared_engine(settings.database_url)
    with engine.connect() as connection:
        current = dict(connection.execute(text("select status, count(*) from students_current group by status")).all())
        transitions = connection.execute(text("select count(*) from status_transitions")).scalar()
    assert current == counts
    assert transitions == len({a["alert_id"] for a in alerts})
    # and each student's row says what their Redis document says (no row left behind by a crash)
    with engine.connect() as connection:
        rows = {u: (st, last) for u, st, last in connection.execute(
            text("select user_id, status, last_activity_at from students_current"))}
    stale = [u for u, (_, doc) in loaded.items() if doc is not None and doc["machine"] is not None
             and doc["machine"]["status"] != "new" and rows.get(u, (None,))[0] != doc["machine"]["status"]]
    assert not stale, f"{len(stale)} students' rows disagree with their state, e.g. {stale[:3]}"
    with engine.connect() as connection:
        versions = connection.execute(text("select count(*) from model_versions")).scalar()
    assert versions >= 1  # labels arrived, the trainer published, the version reached Postgres
    worst = critical_points(settings.database_url, limit=5)
    assert worst and worst[0]["to_asleep"] + worst[0]["to_dozing"] > 0

    if ground_truth:
        # students who dropped out end asleep far more often than those who did not
        truth = pd.read_csv(dataset / "ground_truth.csv")
        with engine.connect() as connection:
            status = dict(connection.execute(text("select user_id, status from students_current")).all())
        truth["asleep"] = truth["user_id"].map(lambda u: status.get(u) == "asleep")
        dropped, stayed = truth[truth["dropout"] == 1], truth[truth["dropout"] == 0]
        assert len(dropped) >= 5 and len(stayed) >= 5
        assert dropped["asleep"].mean() >= 0.8
        assert dropped["asleep"].mean() > stayed["asleep"].mean() + 0.3
    return Results(alerts=alerts, status_counts=counts)


async def eventually(check: Callable[[], Awaitable[T]], seconds: float, pause: float = 3.0) -> T:
    """`check()` once it stops failing its assertions; its last AssertionError after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return await check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(pause)
