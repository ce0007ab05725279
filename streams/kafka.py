"""Topic administration and producing, shared by replay, the worker and the tests."""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from streams.contract import InvalidEvent, Topic
from streams.settings import Settings

log = logging.getLogger(__name__)


async def ensure_topics(settings: Settings, topics: tuple[Topic, ...] = tuple(Topic)) -> None:
    """Create every topic explicitly with the configured partition count.

    All student-keyed topics share one partition count so that a student's events land in
    the same partition number everywhere (co-partitioning), which the event-time watermark
    relies on. Brokers that auto-create topics would otherwise pick their own count.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(t.physical(settings.topic_prefix), settings.partitions, 1)
            for t in topics
            if t.physical(settings.topic_prefix) not in existing
        ]
        if wanted:
            try:
                await admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                pass  # another process won the race; the topic is what we need either way
            log.info("created %d topics", len(wanted))
    finally:
        await admin.close()


def new_producer(settings: Settings, **overrides: Any) -> AIOKafkaProducer:
    """A producer that waits for the leader's ack: nothing counted as sent is lost on our side.

    No idempotent producer or transactions: the embedded broker has neither, and every
    consumer of ours is idempotent instead.
    """
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "acks": 1,
        "linger_ms": 5,
        "max_batch_size": 256 * 1024,
        "compression_type": None,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


def dead_letter(
    source_topic: str, error: InvalidEvent, *, value: bytes | None, key: bytes | None,
    partition: int | None = None, offset: int | None = None,
) -> dict[str, Any]:
    """The dead-letter record: enough to find, fix and replay the original."""
    return {
        "topic": source_topic,
        "partition": partition,
        "offset": offset,
        "key": key.decode("utf-8", "backslashreplace") if key is not None else None,
        "value": value.decode("utf-8", "backslashreplace") if value is not None else "",
        "reason": error.reason,
        "error": error.detail,
        "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
