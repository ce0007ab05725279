"""The scorer's producer: what it waits for before a send counts (no broker: the setting it hands aiokafka)."""
from __future__ import annotations

from streams.kafka.admin import new_producer
from streams.settings import Settings


async def test_a_send_counts_once_every_in_sync_replica_has_it() -> None:
    """A worker commits its offsets once its alerts and dead letters are acknowledged, and the LMS's door
    answers its client then: a leader's ack alone (acks=1) would lose them with the leader in a failover.
    On one broker the two cannot be told apart (Kafka caps min.insync.replicas at the replicas there are),
    so this reads the setting aiokafka's sender will put in each produce request."""
    producer = new_producer(Settings(kafka_url="kafka://127.0.0.1:9"))
    try:
        assert producer._sender._acks == -1  # "all"
    finally:
        await producer.stop()
