"""The scorer's producer and the topics it creates: what it waits for before a send counts, and how a topic is
asked for and the broker's per-topic answer read (no broker: what is handed to aiokafka and read back from it)."""
from __future__ import annotations

import pytest
from aiokafka.errors import InvalidReplicationFactorError, TopicAuthorizationFailedError
from aiokafka.protocol.admin import CreateTopicsResponse_v0, CreateTopicsResponse_v3

from streams.contract import Topic
from streams.kafka.admin import new_producer, new_topic, topics_created
from streams.settings import Settings, SettingsError


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


def test_a_created_topic_has_the_replicas_asked_for_and_from_three_two_in_sync() -> None:
    single = new_topic(Settings(topic_prefix="p.", partitions=6), Topic.ALERTS)
    assert (single.name, single.num_partitions, single.replication_factor) == ("p.scorer.alerts", 6, 1)
    assert single.topic_configs == {}, "one replica: nothing to ask of the in-sync set"
    replicated = new_topic(Settings(partitions=6, topic_replication_factor=3), Topic.PAGE_VIEWS)
    assert (replicated.num_partitions, replicated.replication_factor) == (6, 3)
    assert replicated.topic_configs == {"min.insync.replicas": "2"}
    assert new_topic(Settings(topic_replication_factor=2), Topic.ALERTS).topic_configs == {}
    with pytest.raises(SettingsError, match="SCORER_TOPIC_REPLICATION_FACTOR"):
        Settings(topic_replication_factor=0)


def test_the_brokers_answer_is_read_per_topic() -> None:
    answer = CreateTopicsResponse_v3(throttle_time_ms=0, topic_errors=[
        ("a", 0, None), ("b", 36, "Topic with this name already exists."), ("c", 0, None)])
    assert topics_created(answer) == 2, "one created meanwhile by another process: needed either way, not counted"
    refused = CreateTopicsResponse_v3(throttle_time_ms=0, topic_errors=[
        ("a", 0, None), ("b", 38, "Replication factor: 3 larger than available brokers: 1.")])
    with pytest.raises(InvalidReplicationFactorError, match="topic b not created: Replication factor: 3 larger"):
        topics_created(refused)
    with pytest.raises(TopicAuthorizationFailedError, match="topic d not created: "):
        topics_created(CreateTopicsResponse_v0(topic_errors=[("d", 29)]))  # no message in the oldest answer
