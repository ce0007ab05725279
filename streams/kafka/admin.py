"""Topic administration and producers, shared by the worker, replay and the tests."""
from __future__ import annotations

import logging
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

from streams.contract.topics import Topic
from streams.kafka.connection import kafka_connection
from streams.settings import Settings

log = logging.getLogger(__name__)


#: With this many replicas or more, a created topic asks for two in-sync replicas: with `acks=all` a send then
#: waits for two brokers even once the in-sync set has shrunk, where one alone could lose it in a failover.
MIN_IN_SYNC_FROM = 3


def new_topic(settings: Settings, topic: Topic) -> NewTopic:
    """`topic` as the scorer creates it: SCORER_PARTITIONS partitions, SCORER_TOPIC_REPLICATION_FACTOR replicas."""
    replicas = settings.topic_replication_factor
    configs = {"min.insync.replicas": "2"} if replicas >= MIN_IN_SYNC_FROM else None
    return NewTopic(topic.physical(settings.topic_prefix), settings.partitions, replicas, topic_configs=configs)


async def ensure_topics(settings: Settings, topics: tuple[Topic, ...] = tuple(Topic)) -> None:
    """Create every missing topic explicitly (`new_topic`).

    All student-keyed topics share one partition count so that a student's events land in
    the same partition number everywhere (co-partitioning), which the event-time watermark
    relies on. Brokers that auto-create topics would otherwise pick their own count, and one
    replica: a broker's loss would take records the scorer had acknowledged with it.
    """
    admin = AIOKafkaAdminClient(**kafka_connection(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [new_topic(settings, t) for t in topics if t.physical(settings.topic_prefix) not in existing]
        if wanted:
            created = topics_created(await admin.create_topics(wanted))
            log.info("created %d topics", created)
    finally:
        await admin.close()


def topics_created(response: Any) -> int:
    """How many topics a CreateTopics answer created; raises the first refusal. The broker answers per topic and
    aiokafka hands the answer back as it is, so a refused topic (too many replicas for the brokers, a policy, no
    permission) went unnoticed: the worker went on to read a topic that was never made. One that exists already
    was created by another process meanwhile: what is needed either way."""
    created = 0
    for topic, code, *message in response.topic_errors:
        if code == TopicAlreadyExistsError.errno:
            continue
        if code:
            error = for_code(code)
            raise error(f"topic {topic} not created: {message[0] if message and message[0] else error.description}")
        created += 1
    return created


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
