"""Which log-end reading the consumer lets the watermark trust.

aiokafka stamps a partition's log end (highwater) when it handles the fetch response, which on
a busy event loop is well after the broker read it. A stamp later than the newest record's
production time made a stale log end pass for a fresh one, and the watermark then passed records
that were in the log but not read yet. The consumer reports the previous response's stamp: the
broker read the newest log end after it, since a node's next fetch is sent only after the
previous response was handled."""
from __future__ import annotations

from aiokafka import TopicPartition

from streams.core.watermark import WatermarkTracker
from streams.kafka.consumer import BatchConsumer
from streams.settings import Settings

X = TopicPartition("lms.page_views", 0)


class FetchedLog:
    """What aiokafka knows of one partition: the position, the log end and its stamp (ms)."""

    def __init__(self) -> None:
        self.position_, self.highwater_, self.stamp_ms = 0, 0, 0

    async def position(self, tp: TopicPartition) -> int:
        return self.position_

    def highwater(self, tp: TopicPartition) -> int:
        return self.highwater_

    def last_poll_timestamp(self, tp: TopicPartition) -> int:
        return self.stamp_ms

    def response(self, highwater: int, handled_at: float) -> None:
        self.highwater_, self.stamp_ms = highwater, int(handled_at * 1000)


class Dependencies:
    def dependency_of(self, error: BaseException) -> None:
        return None

    async def healthy(self) -> bool:
        return True


async def test_a_log_end_handled_late_is_not_trusted_until_the_next_fetch() -> None:
    consumer = BatchConsumer(Settings(kafka_url="kafka://127.0.0.1:9"), handler=None, dependencies=Dependencies())  # type: ignore[arg-type]
    log = FetchedLog()
    consumer.consumer = log  # type: ignore[assignment]
    consumer._owned = {X}
    tracker = WatermarkTracker(lateness=0.0)

    async def feed() -> None:
        for (topic, partition), reading in (await consumer.offsets()).items():
            tracker.set_offsets(topic, partition, *reading)

    log.response(highwater=10, handled_at=90.0)  # an earlier fetch
    await feed()
    tracker.observe("lms.page_views", 0, 9, ts=1_000.0, produced_at=89.0)
    log.position_ = 10
    # the broker read the log end (10) at 100 s, before the record at offset 10 was produced
    # (103 s); the loop was busy and handled the response at 105 s
    log.response(highwater=10, handled_at=105.0)
    tracker.observe("lms.authorizations", 0, 0, ts=5_000.0, produced_at=103.0)  # the newest record, elsewhere
    await feed()
    # page_views[0] may hold records produced after its log end was read: it must hold the
    # watermark at its own latest event time, not let it run to the other topic's 5,000
    assert tracker.watermark(0) == 1_000.0
    log.response(highwater=12, handled_at=110.0)  # the next fetch was sent after 105 s: trusted
    await feed()
    assert tracker.watermark(0) == 1_000.0  # 12 > position 10: records are waiting
    log.position_ = 12
    tracker.observe("lms.page_views", 0, 11, ts=4_000.0, produced_at=104.0)
    await feed()
    assert tracker.watermark(0) == 5_000.0  # read up to a log end read after every record produced
