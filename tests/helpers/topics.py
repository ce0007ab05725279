"""Reading a topic back in tests."""
from __future__ import annotations

import json
import time

from aiokafka import AIOKafkaConsumer

from streams.contract import Topic
from streams.settings import Settings


async def read_topic(settings: Settings, topic: Topic) -> list[dict]:
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
