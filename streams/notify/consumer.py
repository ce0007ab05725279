"""The alerts topic in, in `scorer notify`'s own consumer group: at-least-once, committed per partition.

A fetched batch is handled partition by partition (partitions side by side, each in order), and a
partition's offset is committed only after each of its records was delivered, recorded, held in
Redis or dead-lettered: a crash redelivers, and the Redis record of each alert id turns the
redelivery into a skip. A failing dependency (Redis, the broker) holds the partition and retries
until it is back, and a broker refusing the notifier its group or topic (a missing ACL) holds the
polls. Beside it, a loop sends the held alerts of the owned partitions whose quiet hours are over
or whose next try after a failed delivery is due. A rebalance waits for both (one lock), so a
revoked partition is settled first.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from redis.exceptions import RedisError

from streams.kafka.consumer import retry_waits
from streams.kafka.refusals import REFUSALS, Refusals
from streams.kafka.retention import deleted_unread
from streams.notify import metrics
from streams.notify.notifier import Notifier, Source
from streams.notify.store import NotifyStore

log = logging.getLogger(__name__)

BATCH_MAX = 50
#: An alert record older than this (its Kafka timestamp), with later ones of its partition waiting, is
#: read while catching up: its message waits until the partition is caught up (streams.notify.notifier).
CATCH_UP_SECONDS = 60.0
#: A batch may take long (a webhook that is down: each alert retries with backoff before it is
#: dead-lettered), so the group must not drop a member that is busy; a dead one goes within 6 s
#: (Kafka's smallest session timeout by default), and its partitions to the others.
MAX_BUSY_MS = 3_600_000
SESSION_MS = 6_000
POLL_MS = 500
RELEASE_SECONDS = 1.0  # how often held alerts are looked at: quiet hours end on the minute
RETRY_SECONDS = (0.5, 1, 2, 5)  # waits while a dependency is down; the last repeats
POISON_ATTEMPTS = 3  # failures of one alert, not caused by an outage, before it is dead-lettered


class NotifyConsumer(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka ships no type hints
    def __init__(self, connection: dict[str, Any], topic: str, group: str, notifier: Notifier,
                 store: NotifyStore, clock: Callable[[], float] = time.time) -> None:
        self._topic = topic
        self._notifier = notifier
        self._store = store
        self._clock = clock
        self._caught_up: dict[int, bool] = {}
        self._expected: dict[TopicPartition, int] = {}  # each partition's next offset: the last commit
        self._busy = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._refusals = Refusals(lambda refused: metrics.BROKER_REFUSING.set(int(refused)),
                                  lambda: retry_waits(RETRY_SECONDS))
        self.consumer = AIOKafkaConsumer(**connection, group_id=group,
                                         enable_auto_commit=False, auto_offset_reset="earliest",
                                         session_timeout_ms=SESSION_MS, heartbeat_interval_ms=1_000,
                                         max_poll_interval_ms=MAX_BUSY_MS)

    def stop(self) -> None:
        """Finish the records in hand, commit them, then leave the group."""
        self._stopping.set()

    async def run(self) -> None:
        await self.consumer.start()
        self.consumer.subscribe([self._topic], listener=self)
        releaser = asyncio.create_task(self._release_loop())
        try:
            while not self._stopping.is_set():
                try:
                    batch = await self.consumer.getmany(timeout_ms=POLL_MS, max_records=BATCH_MAX)
                except REFUSALS as error:  # waited out as an outage (streams.kafka.refusals)
                    await asyncio.sleep(self._refusals.wait_after(error))
                    continue
                self._refusals.allowed()
                if batch:
                    async with self._busy:
                        await asyncio.gather(*(self._partition(tp, records) for tp, records in batch.items()))
        finally:
            releaser.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await releaser
            await self.consumer.stop()

    async def _partition(self, tp: TopicPartition, records: list[ConsumerRecord]) -> None:
        end = self.consumer.highwater(tp)  # the partition's next offset, as the last fetch saw it
        await self._count_deleted_unread(tp, records[0].offset)

        def catching_up(record: ConsumerRecord) -> bool:
            late = self._clock() - record.timestamp / 1000 > CATCH_UP_SECONDS
            return bool(late and end is not None and record.offset + 1 < end)

        for record in records:
            source = Source(record.topic, record.partition, record.offset, record.key, record.value,
                            catching_up(record))
            await settle(self._notifier, source)
        self._caught_up[tp.partition] = not catching_up(records[-1])
        await self._replicated()
        try:
            await self.consumer.commit({tp: records[-1].offset + 1})
        except (CommitFailedError, IllegalStateError, KafkaError) as error:
            # revoked meanwhile: the new owner redelivers, and the Redis records make that a skip
            log.warning("offset commit failed (%s); the partition's new owner will redeliver", type(error).__name__)
            return
        self._expected[tp] = records[-1].offset + 1

    async def _count_deleted_unread(self, tp: TopicPartition, first_read: int) -> None:
        """Alerts retention deleted before the notifier read them (streams.kafka.retention): records read from past
        the offset expected, where the log start has moved past it too. aiokafka restarts such a partition at its
        first record without a word (the notifier down, or holding its records through an outage, for longer than
        the alerts topic keeps them)."""
        lost = sum((await deleted_unread(self.consumer, {tp: first_read}, self._expected)).values())
        if lost:
            metrics.LOST_TO_RETENTION.inc(lost)
            log.error("%d alert(s) were deleted (retention) before the notifier read them: those students were "
                      "never told; lengthen the alerts topic's retention beyond the notifier's longest outage", lost)


    async def _replicated(self) -> None:
        """Wait, however long, until Redis' replicas hold what the records left there (SCORER_REDIS_WAIT_REPLICAS):
        once the offset is committed, an alert held for the morning is only in Redis, and a failover to a
        replica without it would lose it."""
        for wait in retry_waits(RETRY_SECONDS):
            try:
                await self._store.replicated()
                return
            except RedisError as error:
                log.warning("Redis or its replicas failing (%s); the alerts' offset waits %.1f s",
                            type(error).__name__, wait)
                await asyncio.sleep(wait)

    async def _release_loop(self) -> None:
        while True:
            await asyncio.sleep(RELEASE_SECONDS)
            try:
                async with self._busy:
                    partitions = sorted(tp.partition for tp in self.consumer.assignment())
                    for partition in partitions:
                        await self._notifier.release_due(partition, self._caught_up.get(partition, True))
                    metrics.BACKLOG.set(await self._store.backlog(partitions))
            except Exception as error:  # noqa: BLE001 - a Redis blip: the next pass retries
                log.warning("releasing held alerts failed (%s); retrying", type(error).__name__)

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        async with self._busy:  # the records in hand are settled and committed first
            for tp in revoked:
                self._expected.pop(tp, None)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("assigned %d alert partitions", len(assigned))
        for tp in assigned:
            with contextlib.suppress(KafkaError):  # unknown: nothing is counted for the partition's first records
                if (offset := await self.consumer.committed(tp)) is not None:
                    self._expected[tp] = offset


class Handler(Protocol):
    async def handle(self, source: Source) -> None: ...
    async def quarantine(self, source: Source, error: BaseException) -> None: ...


async def settle(notifier: Handler, source: Source, waits: Sequence[float] = RETRY_SECONDS) -> None:
    """Handle one record, waiting out a dependency outage however long (the alert must not be lost);
    an error that is no outage, POISON_ATTEMPTS times over, sends the record to the dead letters."""
    pending = retry_waits(waits)
    failures: list[BaseException] = []
    while True:
        try:
            if len(failures) >= POISON_ATTEMPTS:
                await notifier.quarantine(source, failures[-1])
            else:
                await notifier.handle(source)
            return
        except Exception as error:  # noqa: BLE001 - logged and retried: an outage must not lose the alert
            if not _dependency_down(error):
                failures.append(error)
            wait = next(pending)
            # the type only: a message may quote the webhook URL (a secret) or an alert's content
            log.warning("handling an alert failed (%s); retrying in %.1f s", type(error).__name__, wait)
            await asyncio.sleep(wait)


def _dependency_down(error: BaseException) -> bool:
    """Redis or the broker failing (wait for it), as opposed to an alert this code cannot handle."""
    return isinstance(error, RedisError | KafkaError | OSError | TimeoutError)
