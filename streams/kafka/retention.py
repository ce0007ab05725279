"""Records the broker deleted (retention) before a consumer group read them.

A group whose committed offset lies before its partition's first record starts at that record
(auto_offset_reset), without a word: the records in between are gone. The worker and the notifier count
them when a partition's records start past the offset they expected, and `scorer check` when a group's
committed offset lies before the log start, since nothing else would show them."""
from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

log = logging.getLogger(__name__)


def unread(committed: Mapping[TopicPartition, int], starts: Mapping[TopicPartition, int]) -> Counter[str]:
    """Per topic, the records between each partition's `committed` offset and its first record (`starts`), where
    the first lies beyond (topics with none are left out)."""
    lost: Counter[str] = Counter()
    for tp, offset in committed.items():
        if starts.get(tp, offset) > offset:
            lost[tp.topic] += starts[tp] - offset
    return lost


async def deleted_unread(consumer: AIOKafkaConsumer, first_read: Mapping[TopicPartition, int],
                         expected: Mapping[TopicPartition, int]) -> Counter[str]:
    """`unread` where a partition's records were read from `first_read`, past the offset `expected` (its last
    commit): the log start is asked only then, so a gap of another cause is not counted, and the usual read costs
    no request. A broker that does not answer leaves it unsaid (a warning), never the read undone."""
    gaps = {tp: expected[tp] for tp, first in first_read.items() if tp in expected and first > expected[tp]}
    if not gaps:
        return Counter()
    try:
        starts = await consumer.beginning_offsets(list(gaps))
    except KafkaError as error:
        log.warning("could not read the partitions' first offsets (%s)", type(error).__name__)
        return Counter()
    return unread(gaps, starts)
