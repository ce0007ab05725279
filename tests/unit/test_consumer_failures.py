"""How the worker's consumer handles failures, with the broker and the pipeline stood in for:
an outage holds the batch until it is over; a poison record is found and quarantined alone,
and its neighbours are processed; an outage is never mistaken for a poison record."""
from __future__ import annotations

import asyncio

import pytest
import redis.exceptions
from aiokafka import TopicPartition
from aiokafka.errors import SaslAuthenticationFailed, TopicAuthorizationFailedError

from streams import failures
from streams.kafka import consumer as consumer_module
from streams.kafka.consumer import BatchConsumer, InputRecord, Offsets, PartitionCounts
from streams.settings import Settings

TOPIC = "lms.page_views"


class FakeKafka:
    """The aiokafka consumer calls `offsets()` makes: position at 8, log end 8."""

    async def position(self, tp: TopicPartition) -> int:
        return 8

    def highwater(self, tp: TopicPartition) -> int:
        return 8

    def last_poll_timestamp(self, tp: TopicPartition) -> int:
        return 0

    def partitions_for_topic(self, topic: str) -> set[int]:
        return {0, 1, 2, 3}


class Handler:
    def __init__(self, fail: object) -> None:
        self.fail = fail  # (records) -> exception to raise, or None
        self.done: list[int] = []
        self.positions: list[int | None] = []
        self.quarantined: list[tuple[int, str]] = []

    async def process(self, records: list[InputRecord], offsets: Offsets, partitions: PartitionCounts) -> None:
        error = self.fail(records)  # type: ignore[operator]
        if error is not None:
            raise error
        self.done += [r.offset for r in records]
        self.positions.append(offsets[(TOPIC, 0)][0])

    async def quarantine(self, record: InputRecord, error: BaseException) -> None:
        self.quarantined.append((record.offset, type(error).__name__))

    async def forget(self, partitions: list[tuple[str, int]]) -> None:
        return None

    def note_history(self, committed: bool) -> None:
        pass


class Dependencies:
    def __init__(self, healthy_after: int = 0) -> None:
        self.checks = 0
        self.healthy_after = healthy_after

    dependency_of = staticmethod(failures.dependency_of)

    async def healthy(self) -> bool:
        self.checks += 1
        return self.checks > self.healthy_after


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(consumer_module, "RETRY_SECONDS", (0.0,))


def _consumer(handler: Handler, dependencies: Dependencies) -> BatchConsumer:
    consumer = BatchConsumer(Settings(kafka_url="kafka://127.0.0.1:9"), handler, dependencies)
    consumer.consumer = FakeKafka()
    consumer._owned = {TopicPartition(TOPIC, 0)}
    return consumer


BATCH = [InputRecord(TOPIC, 0, offset, b"1", b"{}", 0.0) for offset in range(8)]


async def test_an_outage_holds_the_batch_until_it_is_over() -> None:
    calls = []

    def fail(records: list[InputRecord]) -> Exception | None:
        calls.append(1)
        return redis.exceptions.ConnectionError("Connection refused") if len(calls) <= 5 else None

    handler = Handler(fail)
    await _consumer(handler, Dependencies())._settle(BATCH, later=[], attempts=3)
    assert handler.done == list(range(8)) and handler.quarantined == []
    assert len(calls) == 6  # five failed attempts, whatever the retry limit for bad records


@pytest.mark.parametrize("refusal", [TopicAuthorizationFailedError, SaslAuthenticationFailed])
async def test_a_broker_refusing_the_principal_holds_the_batch_until_it_is_allowed(refusal: type) -> None:
    """An ACL removed or a password rotated is the deployment's, not the records': aiokafka calls these errors not
    retriable, and as the records' own they would have dead-lettered every student's records in turn."""
    calls = []

    def fail(records: list[InputRecord]) -> Exception | None:
        calls.append(1)
        return refusal() if len(calls) <= 60 else None  # longer than a record's tries

    handler = Handler(fail)
    await _consumer(handler, Dependencies())._settle(BATCH, later=[], attempts=3)
    assert handler.done == list(range(8)) and handler.quarantined == []


async def test_a_poison_record_is_quarantined_alone_and_its_neighbours_processed() -> None:
    handler = Handler(lambda records: ValueError("integer out of range") if any(r.offset == 5 for r in records)
                      else None)
    await _consumer(handler, Dependencies())._settle(BATCH, later=[], attempts=3)
    assert sorted(handler.done) == [0, 1, 2, 3, 4, 6, 7]
    assert handler.quarantined == [(5, "ValueError")]
    # a part processed before the rest of the batch never reports a position past its own records
    assert handler.positions[0] == 4 and max(handler.positions) == 8


async def test_an_unexplained_failure_during_an_outage_is_not_a_poison_pill() -> None:
    """The error is not one `dependency_of` knows, but the health check says something is down:
    the record waits instead of being quarantined."""
    outage = {"left": 12}

    def fail(records: list[InputRecord]) -> Exception | None:
        if outage["left"] > 0:
            outage["left"] -= 1
            return RuntimeError("connection pool exhausted")
        return None

    handler = Handler(fail)
    await _consumer(handler, Dependencies(healthy_after=100))._settle(BATCH[:1], later=[], attempts=3)
    assert handler.quarantined == [] and handler.done == [0]


class LosesOneCancellation(FakeKafka):
    """A fetch that, like a library racing its task's cancellation, returns normally instead of
    raising the CancelledError it was interrupted with."""

    def __init__(self) -> None:
        self.fetching = asyncio.Event()
        self.fetches = 0
        self.lost = False
        self.stopped = False

    async def start(self) -> None:
        return None

    def subscribe(self, topics: list[str], listener: object) -> None:
        return None

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[object]]:
        self.fetches += 1
        self.fetching.set()
        try:
            await asyncio.sleep(timeout_ms / 1000)
        except asyncio.CancelledError:
            if self.lost:
                raise
            self.lost = True
        return {}

    async def stop(self) -> None:
        self.stopped = True


async def test_a_cancellation_lost_in_a_fetch_still_stops_the_consumer() -> None:
    """SIGTERM cancels the consuming task; should a library drop the CancelledError, the loop
    still ends at the batch boundary and leaves the group, instead of fetching on for ever."""
    consumer = _consumer(Handler(lambda records: None), Dependencies())
    kafka = LosesOneCancellation()
    consumer.consumer = consumer.reference = kafka
    consumer._global = {TopicPartition("lms.schedule", 0)}  # read already: no metadata lookup
    task = asyncio.create_task(consumer.run())
    await asyncio.wait_for(kafka.fetching.wait(), 5)
    task.cancel()
    await asyncio.wait_for(task, 5)
    assert kafka.stopped and kafka.fetches <= 3


@pytest.mark.parametrize(("error", "down", "own"), [
    (None, None, 0),
    (redis.exceptions.ConnectionError("connection refused"), "redis", 0),
    (RuntimeError("a bug in a fit"), None, 1),
])
def test_a_training_round_reports_an_outage_as_one_and_its_own_failure_as_its_own(error, down, own) -> None:
    """Before, every failed round set scorer_dependency_up{dependency="redis"} to 0: a bug read as a Redis outage."""
    from streams import metrics

    def value(name: str, **labels: str) -> float:
        return metrics.REGISTRY.get_sample_value(name, labels) or 0.0

    metrics.DEPENDENCY_UP.labels("redis").set(1)
    before = value("scorer_training_failures_total")
    failures.training_round(error)
    assert value("scorer_dependency_up", dependency="redis") == (0 if down == "redis" else 1)
    assert value("scorer_training_failures_total") == before + own
    failures.training_round(None)  # the next round goes through
    assert value("scorer_dependency_up", dependency="redis") == 1


def test_a_dependency_a_failed_round_reported_down_is_up_again_after_one_that_goes_through() -> None:
    """`scorer train` reports nothing else about Postgres: without this, one refused publish left it down for good."""
    from sqlalchemy.exc import OperationalError

    from streams import metrics

    failures.training_round(OperationalError("INSERT", {}, Exception("server closed the connection")))
    assert metrics.REGISTRY.get_sample_value("scorer_dependency_up", {"dependency": "postgres"}) == 0
    failures.training_round(None)
    assert metrics.REGISTRY.get_sample_value("scorer_dependency_up", {"dependency": "postgres"}) == 1
