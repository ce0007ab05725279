"""The worker end to end on a real Apache Kafka 4.x broker (single node, KRaft), not only Tansu:
generate -> replay -> worker -> the same invariants as test_end_to_end (Redis equals the fold,
alerts equal the reference machine's, Postgres agrees), then faults only a real broker can show:
the broker restarted mid-stream with its data kept, and the worker killed with SIGKILL mid-stream
and started again. Skipped, with the reason, where Java 17+ or Maven is missing.

The broker's JVM dies with the thread that started it (PR_SET_PDEATHSIG), so it is started and
restarted from the main thread, never from an executor thread.
"""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from features import parse_ts
from helpers.results import check_results, eventually
from helpers.topics import read_topic
from streams.contract import Topic
from streams.kafka.admin import ensure_topics
from streams.settings import Settings
from streams.tools.apache_kafka import ApacheKafkaBroker, missing_requirements
from streams.tools.embedded import free_port
from streams.tools.processes import scrape, scrape_if_up, stop, wait_until_scored, worker_process
from streams.tools.replay import load_records, replay

pytestmark = pytest.mark.slow
STUDENTS = 100
REPLAY_SECONDS = 30.0  # paced replays last about this long, so a fault lands mid-stream
BROKER_DOWN_SECONDS = 15.0  # between the broker's stop and its start (what `restart()` does, with a gap)


@pytest.fixture(scope="module")
def apache_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApacheKafkaBroker]:
    reason = missing_requirements()
    if reason is not None:
        pytest.skip(f"no Apache Kafka broker here: {reason}")
    with ApacheKafkaBroker(tmp_path_factory.mktemp("apache-kafka-worker")) as broker:
        yield broker


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from streams.lms.synthetic import generate

    out = tmp_path_factory.mktemp("lms-apache")
    generate(out, students=STUDENTS, seed=31, bad_rows=4)
    return out


@pytest.fixture
async def on_apache(db: str, settings: Settings, apache_kafka: ApacheKafkaBroker) -> Settings:
    """The test's settings on the Apache broker, every topic created by the project's own admin code."""
    moved = settings.copy(kafka_url=apache_kafka.url)
    await ensure_topics(moved)
    admin = AIOKafkaAdminClient(bootstrap_servers=moved.bootstrap_servers)
    await admin.start()
    try:
        described = await admin.describe_topics([t.physical(moved.topic_prefix) for t in Topic])
    finally:
        await admin.close()
    assert {len(topic["partitions"]) for topic in described} == {moved.partitions}
    return moved


def _pace(events) -> float:
    times = [parse_ts(r["ts"]) for _, r in events]
    return (max(times) - min(times)) / REPLAY_SECONDS


async def _until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not await asyncio.to_thread(condition):
        assert time.monotonic() < deadline, f"{what}: not within {seconds:.0f} s"
        await asyncio.sleep(0.3)


async def _no_poison_and_only_csv_rejects(settings: Settings, rejected: list) -> None:
    dead = await read_topic(settings, Topic.DEAD_LETTERS)
    assert not [d for d in dead if d["reason"] == "processing_failed"], "a record was taken for a poison pill"
    assert len(dead) == len(rejected) and all(d["reason"].startswith("csv_") for d in dead), Counter(
        d["reason"] for d in dead)


async def test_end_to_end_on_apache_kafka(on_apache: Settings, dataset: Path, tmp_path: Path) -> None:
    settings = on_apache
    events, rejected = load_records(dataset)
    port = free_port()
    worker = worker_process(settings, port, tmp_path / "worker.log")
    try:
        report = await replay(settings, dataset, progress=False)
        assert dict(report.published) == dict(Counter(t.value for t, _ in events))
        await asyncio.to_thread(wait_until_scored, port, len(events), worker, report.final_watermark(settings),
                                settings.partitions, 300)
        assert scrape(port)["scorer_events_consumed_total"] == len(events)
        await check_results(settings, events, dataset)
        await _no_poison_and_only_csv_rejects(settings, rejected)
        assert worker.poll() is None
    finally:
        stop([worker])


async def test_broker_restart_mid_stream_loses_and_doubles_nothing(on_apache: Settings, apache_kafka: ApacheKafkaBroker,
                                                                   dataset: Path, tmp_path: Path) -> None:
    """The broker stops (SIGTERM, a controlled shutdown), stays down BROKER_DOWN_SECONDS and starts
    again on the same ports and data (`restart()` with a gap) while the export is replayed and
    scored: the worker waits it out and rejoins its group; records, committed offsets and alerts
    survive; the replay's producer retries what it had in flight (a record it sent twice carries
    the same LMS event id, which the worker applies once)."""
    settings = on_apache
    events, rejected = load_records(dataset)
    port = free_port()
    worker = worker_process(settings, port, tmp_path / "worker.log")
    replay_task = asyncio.create_task(replay(settings, dataset, speed=_pace(events), progress=False))
    try:
        await _until(lambda: scrape_if_up(port).get("scorer_events_applied_total", 0) >= len(events) * 0.10, 180,
                     "the worker applying records")
        assert not replay_task.done(), "the replay was over before the restart: not mid-stream"
        began = time.monotonic()
        apache_kafka.stop()  # SIGTERM: a controlled shutdown that flushes the logs
        await asyncio.sleep(BROKER_DOWN_SECONDS)  # the worker and the replay's producer keep trying
        apache_kafka.start()  # same ports, same data dir; from this (the main) thread: see the module docstring
        down = time.monotonic() - began
        assert worker.poll() is None, "the worker exited while the broker was down"
        report = await replay_task
        await asyncio.to_thread(wait_until_scored, port, len(events), worker, report.final_watermark(settings),
                                settings.partitions, 300)
        await eventually(lambda: check_results(settings, events, dataset), seconds=120)
        await _no_poison_and_only_csv_rejects(settings, rejected)
        found = scrape(port)
        assert worker.poll() is None, "the worker exited"
        print(f"\nApache Kafka restarted mid-stream: broker unavailable {down:.1f} s; worker consumed "
              f"{found['scorer_events_consumed_total']:.0f} records for {len(events)} published; "
              f"processing failures {found.get('scorer_processing_failures_total', 0):.0f}")
        assert found["scorer_events_consumed_total"] >= len(events)
    finally:
        if not replay_task.done():
            replay_task.cancel()
        stop([worker])


async def test_worker_kill_9_mid_stream_on_apache_kafka(on_apache: Settings, dataset: Path, tmp_path: Path) -> None:
    """SIGKILL mid-stream, a new worker process in the same group: nothing lost, nothing doubled."""
    settings = on_apache
    events, rejected = load_records(dataset)
    port = free_port()
    worker: subprocess.Popen[bytes] = worker_process(settings, port, tmp_path / "worker-1.log")
    replay_task = asyncio.create_task(replay(settings, dataset, speed=_pace(events), progress=False))
    try:
        await _until(lambda: scrape_if_up(port).get("scorer_events_applied_total", 0) >= len(events) * 0.3, 180,
                     "the worker applying records")
        assert not replay_task.done(), "the replay was over before the kill: not mid-stream"
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
        worker = worker_process(settings, free_port(), tmp_path / "worker-2.log")
        await replay_task
        # the dead member's session must expire before the new worker gets its partitions
        await eventually(lambda: check_results(settings, events, dataset), seconds=240)
        await _no_poison_and_only_csv_rejects(settings, rejected)
        assert worker.poll() is None
    finally:
        if not replay_task.done():
            replay_task.cancel()
        stop([worker])


async def test_redrive_reads_every_letter_and_ends_on_apache_kafka(on_apache: Settings) -> None:
    """`scorer redrive` finds the dead-letter topic's end from fetch responses (Tansu answers ListOffsets
    wrongly): on the broker production runs it reads every letter, an empty partition included, and ends."""
    import redis

    from streams.contract import InvalidEvent, dead_letter, encode
    from streams.ingest.mapping import IdMapping
    from streams.kafka.admin import new_producer
    from streams.tools.redrive import Ledger, Selection, redrive

    logins = [{"user_id": user, "ts": "2024-01-10T10:00:00"} for user in (11, 12, 13)]
    producer = new_producer(on_apache)
    await producer.start()
    try:
        for number, login in enumerate(logins):  # partitions 0-2; partition 3 holds none
            letter = dead_letter(Topic.AUTHORIZATIONS.physical(on_apache.topic_prefix),
                                 InvalidEvent("processing_failed", "ValueError: x"), value=encode(login),
                                 key=str(login["user_id"]).encode(), partition=0, offset=number)
            await producer.send_and_wait(Topic.DEAD_LETTERS.physical(on_apache.topic_prefix), encode(letter),
                                         partition=number)
    finally:
        await producer.stop()
    ledger = Ledger(redis.Redis.from_url(on_apache.redis_url), on_apache.topic_prefix)
    sent = await asyncio.wait_for(redrive(on_apache, Selection(), ledger, IdMapping()), 60)
    assert sent.read == 3 and dict(sent.redriven) == {Topic.AUTHORIZATIONS.value: 3}
    again = await asyncio.wait_for(redrive(on_apache, Selection(), ledger, IdMapping()), 60)
    assert again.read == 3 and dict(again.kept) == {"already_redriven": 3}
    back = await read_topic(on_apache, Topic.AUTHORIZATIONS)
    assert sorted(r["user_id"] for r in back) == [11, 12, 13]
    assert all(r["event_id"].startswith("dead-letter:") for r in back)
