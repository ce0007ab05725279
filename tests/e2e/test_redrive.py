"""`scorer redrive` against the real embedded broker and a worker process.

A producer with another partitioner (librdkafka's default is not Kafka's) put three students' records,
without event ids, on partitions their keys do not belong to: the worker dead-lettered them all as
`wrong_partition`. Once that producer is fixed, the letters are redriven: the second redrive, and the one
tried while another holds the lease, send nothing. The worker then holds exactly the fold of every record
(each applied once, though all are older than the event-id fence keeps ids for), the alerts are the
reference machine's, and Postgres agrees (`check_results`).
"""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections import Counter

import pytest
import redis

from helpers.results import check_results
from helpers.topics import read_topic
from streams.contract import Topic, encode, key_of
from streams.kafka.admin import ensure_topics, new_producer
from streams.kafka.partitioning import partition_of
from streams.lms.synthetic import generate
from streams.tools.embedded import free_port
from streams.tools.processes import scrape, stop, wait_until_scored, worker_process
from streams.tools.redrive import Ledger, RedriveRunning, Selection, redrive
from streams.tools.replay import load_records, publish_records

pytestmark = pytest.mark.slow
MISPLACED_STUDENTS = 3


async def test_misplaced_records_redriven_twice_are_applied_once(db, settings, tmp_path) -> None:
    dataset = tmp_path / "lms"
    generate(dataset, students=60, seed=5, bad_rows=3)
    events, rejected = load_records(dataset)
    students = sorted({r["user_id"] for t, r in events if t is Topic.STUDENTS})
    misplaced_ids = set(students[:MISPLACED_STUDENTS])
    misplaced = [(t, {k: v for k, v in r.items() if k != "event_id"}) for t, r in events
                 if t is not Topic.SCHEDULE and r["user_id"] in misplaced_ids]
    kept = [(t, r) for t, r in events if t is Topic.SCHEDULE or r["user_id"] not in misplaced_ids]

    await ensure_topics(settings)
    producer = new_producer(settings)
    await producer.start()
    try:
        for topic, record in misplaced:
            key = key_of(topic, record)
            await producer.send(topic.physical(settings.topic_prefix), encode(record), key=key,
                                partition=(partition_of(key, settings.partitions) + 1) % settings.partitions)
        await producer.flush()
    finally:
        await producer.stop()
    report = await publish_records(settings, kept, rejected, progress=False)

    port = free_port()
    worker = worker_process(settings, port, tmp_path / "worker.log")
    try:
        total = len(events)
        await asyncio.to_thread(wait_until_scored, port, total, worker, report.final_watermark(settings),
                                settings.partitions)
        letters = [d for d in await read_topic(settings, Topic.DEAD_LETTERS) if d["reason"] == "wrong_partition"]
        assert len(letters) == len(misplaced)

        expected = Counter(t.value for t, _ in misplaced)
        only_misplaced = Selection(reasons=frozenset({"wrong_partition"}))
        client = redis.Redis.from_url(settings.redis_url)
        ledger, elsewhere = Ledger(client, settings.topic_prefix), Ledger(client, settings.topic_prefix)
        dry = await redrive(settings, only_misplaced, ledger, dry_run=True)
        assert dict(dry.redriven) == dict(expected) and not dry.kept
        assert dry.read == len(misplaced) + len(rejected)  # the export's bad rows are letters too, not chosen
        assert elsewhere.lease.take()
        with pytest.raises(RedriveRunning):
            await redrive(settings, only_misplaced, ledger)
        elsewhere.lease.release()
        sent = await redrive(settings, only_misplaced, ledger)
        assert dict(sent.redriven) == dict(expected)
        again = await redrive(settings, only_misplaced, ledger)
        assert not again.redriven and dict(again.kept) == {"already_redriven": len(misplaced)}
        everything = await redrive(settings, Selection(), ledger, dry_run=True)
        assert rejected and dict(everything.kept) == {"not_an_input_topic": len(rejected),  # CSV rows
                                                      "already_redriven": len(misplaced)}

        env = {**os.environ, "SCORER_KAFKA_URL": settings.kafka_url, "SCORER_REDIS_URL": settings.redis_url,
               "SCORER_TOPIC_PREFIX": settings.topic_prefix}
        command = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "streams.cli", "redrive", "--topic", Topic.STUDENTS.value,
                             "--since", "2000-01-01T00:00:00"], env=env, capture_output=True, text=True, timeout=120)
        assert command.returncode == 0, command.stderr
        assert json.loads(command.stdout)["not_redriven"] == {"already_redriven": expected[Topic.STUDENTS.value]}

        await asyncio.to_thread(wait_until_scored, port, total + len(misplaced), worker,
                                report.final_watermark(settings), settings.partitions)
        metrics = scrape(port)
        assert metrics["scorer_events_consumed_total"] == total + len(misplaced)  # once, whatever was tried
    finally:
        stop([worker])
    await check_results(settings, events, dataset)
