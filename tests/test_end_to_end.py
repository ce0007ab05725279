"""generate -> replay -> worker process, on the real embedded broker, Redis and Postgres.

Checks what the issues' "done when" ask: records per topic, bad rows on the dead-letter
topic, Redis state equal to the pure fold, alerts equal to the reference machine (each once),
statuses against the generator's ground truth, and a worker killed with SIGKILL mid-stream
that, restarted, loses nothing and double-counts nothing.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from aiokafka import AIOKafkaConsumer
from sqlalchemy import text

from features import canonical, fold
from features.activity_status import Thresholds, reference_transitions
from storage.db import shared_engine
from storage.migrate import upgrade
from storage.student_store import StudentStore
from streams.contract import ACTIVITY_TOPICS, TOPIC_SCHEMA, Topic, parse_ts
from streams.demo import scrape, wait_until_scored, worker_process
from streams.embedded import free_port
from streams.lms.synthetic import generate
from streams.replay import load_records, replay

pytestmark = pytest.mark.slow
STUDENTS = 120


async def read_topic(settings, topic: Topic) -> list[dict]:
    """Everything on a topic (reads until the broker has nothing more for 2 s)."""
    consumer = AIOKafkaConsumer(topic.physical(settings.topic_prefix), bootstrap_servers=settings.bootstrap_servers,
                                auto_offset_reset="earliest", enable_auto_commit=False, group_id=None)
    await consumer.start()
    out: list[dict] = []
    try:
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < 2.0:
            batch = await consumer.getmany(timeout_ms=300, max_records=10_000)
            for records in batch.values():
                out.extend(json.loads(r.value) for r in records)
                idle_since = time.monotonic()
    finally:
        await consumer.stop()
    return out


def expected_alert_ids(events, settings) -> set[str]:
    """The reference machine over each student's whole history, up to the final watermark."""
    watermark = max(parse_ts(r["ts"]) for t, r in events if t is not Topic.SCHEDULE) \
        - settings.allowed_lateness_hours * 3600
    times: dict[int, list[float]] = {}
    registered: dict[int, float] = {}
    for topic, record in events:
        if topic in ACTIVITY_TOPICS:
            times.setdefault(record["user_id"], []).append(parse_ts(record["ts"]))
        elif topic is Topic.STUDENTS:
            user = record["user_id"]
            registered[user] = min(registered.get(user, float("inf")), parse_ts(record["ts"]))
    ids = set()
    for user in set(times) | set(registered):
        points = times.get(user, []) + ([registered[user]] if user in registered else [])
        ids |= {t.alert_id for t in reference_transitions(user, points, watermark, Thresholds(
            settings.dozing_days, settings.asleep_days))}
    return ids


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lms")
    generate(out, students=STUDENTS, seed=11, bad_rows=6)
    return out


def _start_worker(settings, tmp_path: Path):
    port = free_port()
    return worker_process(settings, port, tmp_path / f"worker-{port}.log"), port


async def _check_results(settings, events, dataset: Path, tmp_path: Path) -> None:
    # Redis state equals the pure in-memory fold over the same records
    expected_states = fold((TOPIC_SCHEMA[t], r) for t, r in events if t is not Topic.SCHEDULE)
    store = StudentStore.from_url(settings.redis_url, settings.topic_prefix)
    loaded = await store.load(expected_states)
    mismatched = [u for u, s in expected_states.items() if loaded[u][1] is None
                  or canonical(loaded[u][1]["state"]) != canonical(s)]
    assert not mismatched, f"{len(mismatched)} students differ from the fold"
    counts = await store.status_counts()
    await store.close()

    # every reference transition alerted, none extra, none lost (duplicates share an id)
    alerts = await read_topic(settings, Topic.ALERTS)
    assert {a["alert_id"] for a in alerts} == expected_alert_ids(events, settings)
    assert Counter(a["to_status"] for a in alerts).keys() >= {"dozing", "asleep"}

    # Postgres has one current row per tracked student and every transition once
    engine = shared_engine(settings.database_url)
    with engine.connect() as connection:
        current = dict(connection.execute(text("select status, count(*) from students_current group by status")).all())
        transitions = connection.execute(text("select count(*) from status_transitions")).scalar()
    assert current == counts
    assert transitions == len({a["alert_id"] for a in alerts})

    # ground truth: students who dropped out end asleep far more often than those who did not
    truth = pd.read_csv(dataset / "ground_truth.csv")
    with engine.connect() as connection:
        status = dict(connection.execute(text("select user_id, status from students_current")).all())
    truth["asleep"] = truth["user_id"].map(lambda u: status.get(u) == "asleep")
    dropped, stayed = truth[truth["dropout"] == 1], truth[truth["dropout"] == 0]
    assert len(dropped) >= 5 and len(stayed) >= 5
    assert dropped["asleep"].mean() >= 0.8
    assert dropped["asleep"].mean() > stayed["asleep"].mean() + 0.3


async def test_generate_replay_score_end_to_end(settings, dataset, tmp_path):
    upgrade(settings.database_url)
    events, rejected = load_records(dataset)
    worker, port = _start_worker(settings, tmp_path)
    try:
        report = await replay(settings, dataset, progress=False)
        expected = Counter(t.value for t, _ in events)
        assert dict(report.published) == dict(expected)
        for topic in (Topic.AUTHORIZATIONS, Topic.WEBINAR_EVENTS, Topic.STUDENTS, Topic.SCHEDULE):
            assert len(await read_topic(settings, topic)) == expected[topic.value], topic
        dead = await read_topic(settings, Topic.DEAD_LETTERS)
        assert len(dead) == len(rejected) >= 6 and all(d["reason"] and d["error"] for d in dead)
        await asyncio.to_thread(wait_until_scored, port, sum(expected.values()), worker)
        assert scrape(port)["scorer_events_consumed_total"] == sum(expected.values())
    finally:
        worker.terminate()
        worker.wait(30)
    await _check_results(settings, events, dataset, tmp_path)


async def test_kill_9_mid_stream_loses_and_double_counts_nothing(settings, dataset, tmp_path):
    settings = replace(settings, topic_prefix=settings.topic_prefix + "k9.")
    upgrade(settings.database_url)
    with shared_engine(settings.database_url).begin() as connection:  # same database as the first test
        connection.execute(text("truncate students_current, score_history, status_transitions"))
    events, _ = load_records(dataset)
    worker, port = _start_worker(settings, tmp_path)
    replay_task = asyncio.create_task(replay(settings, dataset, speed=0, progress=False))
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # kill once it is well into the stream
            await asyncio.sleep(0.3)
            try:
                if scrape(port).get("scorer_events_applied_total", 0) > len(events) * 0.3:
                    break
            except OSError:
                pass
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
        await replay_task
        worker, port = _start_worker(settings, tmp_path)
        # the dead member's session must expire before the restarted worker gets its partitions
        await _eventually(lambda: _check_results(settings, events, dataset, tmp_path), seconds=180)
    finally:
        worker.terminate()
        worker.wait(30)


async def _eventually(check, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            return await check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(3)
