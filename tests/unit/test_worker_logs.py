"""The Kafka client's repeated errors are thinned out; everything else passes."""
from __future__ import annotations

import logging

from streams.worker import QuietKafkaClient


def _record(name: str, msg: str) -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, None, None)


def test_a_repeated_client_error_passes_once_per_interval() -> None:
    quiet = QuietKafkaClient(seconds=60)
    passed = [quiet.filter(_record("aiokafka.conn", "Unable connect to node %s")) for _ in range(100)]
    assert passed.count(True) == 1
    assert quiet.filter(_record("aiokafka.consumer.fetcher", "Failed fetch messages from %s: %s"))
    assert all(quiet.filter(_record("streams.runtime", "redis unavailable")) for _ in range(5))
