"""Topic administration and producers, shared by the worker, replay and the tests."""
from __future__ import annotations

import logging
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from streams.contract.topics import Topic
from streams.kafka.connection import kafka_connection
from streams.settings import Settings

log = logging.getLogger(__name__)


async def ensure_topics(settings: Settings, topics: tuple[Topic, ...] = tuple(Topic)) -> None:
    """Create every topic explicitly with the configured partition count.

    All student-keyed topics share one partition count so that a student's events land in
    the same partition number everywhere (co-partitioning), which the event-time watermark
    relies on. Brokers that auto-create topics would otherwise pick their own count.
    """
    admin = AIOKafkaAdminClient(**kafka_connection(settings))
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
    """A producer whose sends are acknowledged once every in-sync replica has them (`acks=all`): a worker
    commits its offsets once its alerts and dead letters are acknowledged, and the LMS's door answers its
    client then, so a record the leader alone held, lost with it in a failover, would be lost for good.
    Topics with a replication factor of 3 and `min.insync.replicas` 2 make that mean two copies
    (deploy/README.md).

    No idempotent producer or transactions: the embedded broker has neither, and every
    consumer of ours is idempotent instead.
    """
    options: dict[str, Any] = {
        **kafka_connection(settings),
        "acks": "all",
        "linger_ms": 5,
        "max_batch_size": 256 * 1024,
        "compression_type": None,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)
