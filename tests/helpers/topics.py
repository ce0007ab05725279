"""Reading a topic back in tests, and leaving records on one with a consumer group part-way through them."""
from __future__ import annotations

import json
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.contract import Topic
from streams.kafka.connection import kafka_connection
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


async def records_committed(settings: Settings, partition: TopicPartition, records: int, group: str,
                            committed: int) -> None:
    """`records` records on `partition`, and `group` committed after the first `committed` of them (as a member
    assigned the partition, never joining the group)."""
    producer = AIOKafkaProducer(**kafka_connection(settings))
    await producer.start()
    try:
        for n in range(records):
            await producer.send_and_wait(partition.topic, b"{}", key=str(n).encode(), partition=partition.partition)
    finally:
        await producer.stop()
    member = AIOKafkaConsumer(**kafka_connection(settings), group_id=group, enable_auto_commit=False)
    member.assign([partition])
    await member.start()
    try:
        await member.commit({partition: committed})
    finally:
        await member.stop()
