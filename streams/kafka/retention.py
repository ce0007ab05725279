"""Records the broker deleted (retention) before a consumer group read them.

A group whose committed offset lies before its partition's first record starts at that record
(auto_offset_reset), without a word: the records in between are gone. The worker and the notifier count
them when a partition's records start past the offset they expected, since nothing else would show them."""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition


async def deleted_unread(consumer: AIOKafkaConsumer, committed: Mapping[TopicPartition, int]) -> Counter[str]:
    """Per topic, the records between each partition's `committed` offset and its first record, where the first
    lies beyond (topics with none are left out). The broker's KafkaError, if it does not answer, propagates."""
    if not committed:
        return Counter()
    starts = await consumer.beginning_offsets(list(committed))
    lost: Counter[str] = Counter()
    for tp, offset in committed.items():
        if starts.get(tp, offset) > offset:
            lost[tp.topic] += starts[tp] - offset
    return lost
