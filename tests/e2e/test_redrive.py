"""`scorer redrive` against the real embedded broker and a worker process.

A producer with another partitioner (librdkafka's default is not Kafka's) put three students' records,
without event ids, on partitions their keys do not belong to: the worker dead-lettered them all as
`wrong_partition`. Once that producer is fixed, the letters are redriven: the second redrive, and the one
tried while another holds the lease, send nothing. A Caliper page view of a student the identifier mapping
did not know stays until the mapping knows them, then goes back as the command sends it. The worker then
holds exactly the fold of every record (each applied once, though all are older than the event-id fence
keeps ids for), every other student's alerts are the reference machine's, and Postgres agrees
(`check_results`). The redriven students' records come long after the watermark, as late records, in
more than one batch: a transition alerted from part of them is not withdrawn when the rest comes, so
their alerts are not compared one by one, only each enrolment's last status.
"""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest
import redis

from helpers.results import check_results
from helpers.topics import read_topic
from streams.contract import Topic, encode, key_of
from streams.ingest.files import map_item
from streams.ingest.mapping import IdMapping
from streams.kafka.admin import ensure_topics, new_producer
from streams.kafka.partitioning import partition_of
from streams.lms.synthetic import generate
from streams.tools.embedded import free_port
from streams.tools.processes import scrape, stop, wait_until_scored, worker_process
from streams.tools.redrive import Ledger, RedriveRunning, Selection, redrive
from streams.tools.replay import load_records, publish_records

pytestmark = pytest.mark.slow
MISPLACED_STUDENTS = 3
MAPPING = IdMapping()
EDU = "https://example.edu"
STRANGER = 990_001


def _unknown_students_view(first_ts: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A Caliper page view of a student the mapping does not know: the dead letter `scorer ingest` writes
    for it (it answers 200: stored), and the mapping that knows them."""
    at = datetime.fromisoformat(first_ts) + timedelta(days=3)
    view = {"@context": "http://purl.imsglobal.org/ctx/caliper/v1p2", "id": f"urn:uuid:{uuid.uuid4()}",
            "type": "NavigationEvent", "action": "NavigatedTo", "edApp": EDU,
            "actor": {"id": f"{EDU}/users/stranger", "type": "Person"},
            "object": {"id": f"{EDU}/pages/5", "type": "WebPage"}, "eventTime": f"{at.isoformat()}.000Z"}
    (mapped,) = map_item("caliper", view, IdMapping.from_dict({"numeric_fallback": []}))
    assert mapped.rejection is not None and mapped.rejection.kind == "unmapped"
    return mapped.rejection.dead_letter(), {"users": {f"{EDU}/users/stranger": STRANGER}}


async def test_misplaced_records_redriven_twice_are_applied_once(db, settings, tmp_path) -> None:
    dataset = tmp_path / "lms"
    generate(dataset, students=60, seed=5, bad_rows=3)
    events, rejected = load_records(dataset)
    students = sorted({r["user_id"] for t, r in events if t is Topic.STUDENTS})
    misplaced_ids = set(students[:MISPLACED_STUDENTS])
    misplaced = [(t, {k: v for k, v in r.items() if k != "event_id"}) for t, r in events
                 if t is not Topic.SCHEDULE and r["user_id"] in misplaced_ids]
    kept = [(t, r) for t, r in events if t is Topic.SCHEDULE or r["user_id"] not in misplaced_ids]
    unmapped_letter, known = _unknown_students_view(min(r["ts"] for _, r in events))
    mapping_file = tmp_path / "mapping.json"
    mapping_file.write_text(json.dumps(known))
    ((topic, view),) = [r for m in map_item("caliper", json.loads(unmapped_letter["value"]),
                                            IdMapping.from_dict(known)) for r in m.records]
    assert topic is Topic.PAGE_VIEWS and view["user_id"] == STRANGER

    await ensure_topics(settings)
    producer = new_producer(settings)
    await producer.start()
    try:
        for topic, record in misplaced:
            key = key_of(topic, record)
            await producer.send(topic.physical(settings.topic_prefix), encode(record), key=key,
                                partition=(partition_of(key, settings.partitions) + 1) % settings.partitions)
        await producer.send(Topic.DEAD_LETTERS.physical(settings.topic_prefix), encode(unmapped_letter))
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
        dry = await redrive(settings, only_misplaced, ledger, MAPPING, dry_run=True)
        assert dict(dry.redriven) == dict(expected) and not dry.kept
        assert dry.read == len(misplaced) + len(rejected) + 1  # the CSV rows and the statement: not chosen
        assert elsewhere.lease.take()
        with pytest.raises(RedriveRunning):
            await redrive(settings, only_misplaced, ledger, MAPPING)
        elsewhere.lease.release()
        sent = await redrive(settings, only_misplaced, ledger, MAPPING)
        assert dict(sent.redriven) == dict(expected) and sent.forgotten == 0
        again = await redrive(settings, only_misplaced, ledger, MAPPING)
        assert not again.redriven and dict(again.kept) == {"already_redriven": len(misplaced)}
        assert again.forgotten == 0  # their letters are still on the topic: the marks stay
        assert client.zcard(f"{settings.topic_prefix}redrive:sent-at") == len(misplaced)
        unmapped = Selection(reasons=frozenset({"unmapped_user"}))
        assert dict((await redrive(settings, unmapped, ledger, MAPPING, dry_run=True)).kept) == {"still_unmapped": 1}

        # the school adds the student to the mapping; the command, as an operator runs it
        env = {**os.environ, "SCORER_KAFKA_URL": settings.kafka_url, "SCORER_REDIS_URL": settings.redis_url,
               "SCORER_TOPIC_PREFIX": settings.topic_prefix, "SCORER_INGEST_MAPPING": str(mapping_file)}
        command = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "streams.cli", "redrive", "--reason", "unmapped_user",
                             "--since", "2000-01-01T00:00:00"], env=env, capture_output=True, text=True, timeout=120)
        assert command.returncode == 0, command.stderr
        assert json.loads(command.stdout)["redriven"] == {Topic.PAGE_VIEWS.value: 1}
        assert json.loads(command.stdout)["ledger_forgotten"] == 0
        everything = await redrive(settings, Selection(), ledger, MAPPING, dry_run=True)
        assert rejected and dict(everything.kept) == {"not_an_input_topic": len(rejected),  # CSV rows
                                                      "already_redriven": len(misplaced) + 1}

        await asyncio.to_thread(wait_until_scored, port, total + len(misplaced) + 1, worker,
                                report.final_watermark(settings), settings.partitions)
        metrics = scrape(port)
        assert metrics["scorer_events_consumed_total"] == total + len(misplaced) + 1  # once, whatever was tried
    finally:
        stop([worker])
    await check_results(settings, [*events, (Topic.PAGE_VIEWS, view)], dataset, late=frozenset(misplaced_ids))
