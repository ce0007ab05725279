"""Where Kafka's default partitioner (murmur2, the Java client's) puts a key.

The worker relies on a student's records sharing one partition number across the topics
(watermarks are per partition number; one worker owns them all), so it checks every record
against this rule. Producers on librdkafka must set `partitioner=murmur2_random` to match.
"""
from __future__ import annotations

from functools import lru_cache

from aiokafka.partitioner import murmur2


@lru_cache(maxsize=200_000)
def partition_of(key: bytes, partitions: int) -> int:
    """The partition a keyed record belongs in, for a topic of `partitions` partitions (cached:
    keys are student ids, which repeat)."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions
