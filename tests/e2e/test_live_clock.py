"""Live mode: with nothing more arriving, a quiet student still falls asleep, on time."""
import asyncio
import time

import pytest

from features import DAY, format_ts
from helpers.topics import read_topic
from streams.contract import Topic, encode, key_of
from streams.kafka.admin import ensure_topics, new_producer
from streams.tools.embedded import free_port
from streams.tools.processes import stop, worker_process

pytestmark = pytest.mark.slow


async def test_wall_clock_moves_quiet_partitions(db, settings, tmp_path):
    settings = settings.copy(clock="live", allowed_lateness_hours=0.01)
    await ensure_topics(settings)
    login = time.time() - 25 * DAY  # last seen 25 days ago: dozing at +7 d, asleep at +20 d
    producer = new_producer(settings)
    await producer.start()
    for topic, record in ((Topic.STUDENTS, {"user_id": 42, "ts": format_ts(login - DAY), "course_id": 3}),
                          (Topic.AUTHORIZATIONS, {"user_id": 42, "ts": format_ts(login)})):
        await producer.send(topic.physical(settings.topic_prefix), encode(record), key=key_of(topic, record))
    await producer.stop()
    worker = worker_process(settings, free_port(), tmp_path / "worker.log")
    try:
        deadline, alerts = time.monotonic() + 120, []
        while time.monotonic() < deadline and len(alerts) < 2:
            await asyncio.sleep(2)
            alerts = await read_topic(settings, Topic.ALERTS)
    finally:
        stop([worker])
    assert [(a["from_status"], a["to_status"]) for a in alerts] == [("active", "dozing"), ("dozing", "asleep")]
    assert [a["ts"] for a in alerts] == [format_ts(login + 7 * DAY), format_ts(login + 20 * DAY)]
