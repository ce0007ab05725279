"""A run of refused polls: the waits between them, the gauge, and one log line at each end of the run."""
from __future__ import annotations

import logging

import pytest
from aiokafka.errors import GroupAuthorizationFailedError, KafkaConnectionError

from streams.failures import dependency_of
from streams.kafka.consumer import retry_waits
from streams.kafka.refusals import REFUSALS, Refusals


def test_a_run_of_refusals_backs_off_sets_the_gauge_and_logs_its_start_and_end(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "streams.kafka.refusals")
    gauge: list[bool] = []
    refusals = Refusals(gauge.append, lambda: retry_waits((1.0, 2.0)))
    refusals.allowed()  # no run yet: nothing to end
    error = GroupAuthorizationFailedError("edu-scorer")
    assert [refusals.wait_after(error) for _ in range(4)] == [1.0, 2.0, 2.0, 2.0]
    refusals.allowed()
    refusals.allowed()
    assert refusals.wait_after(error) == 1.0  # a new run starts its waits again
    assert gauge == [True] * 4 + [False] + [True]
    logged = [(r.levelname, r.getMessage().split(" (")[0].split(",")[0]) for r in caplog.records]
    assert logged == [("WARNING", "the broker refuses this process"), ("INFO", "the broker allows this process again"),
                      ("WARNING", "the broker refuses this process")]


def test_every_refusal_is_a_kafka_outage_and_a_lost_connection_is_not_a_refusal() -> None:
    assert all(dependency_of(kind("x")) == "kafka" for kind in REFUSALS)
    assert not isinstance(KafkaConnectionError(), REFUSALS)
