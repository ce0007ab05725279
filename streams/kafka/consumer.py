"""The worker's input: one aiokafka consumer-group member reading whole batches with getmany.

Why not a Faust agent: Faust's fetcher hands every record to its stream through
`wait_first(callback(message), ...)`, four asyncio tasks per record, which caps an agent far
below a `getmany` loop on the same broker (`scorer bench` measures both; figures in the README's
performance section). Faust still runs the process (lifecycle, signals, timers, the web
server); this class owns consumption and commits.

A batch is processed, then its offsets committed; only then is the next batch fetched.
A rebalance waits for the batch in hand (so revoked partitions are committed before another
worker takes them) and drops the revoked partitions' watermarks. A crash between processing
and commit redelivers the batch, which the pipeline's per-student offset fence skips.
"""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import NamedTuple

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from streams import metrics
from streams.contract.topics import INPUT_TOPICS
from streams.settings import Settings

log = logging.getLogger(__name__)

BATCH_MAX = 5000  # a backlog coalesces into large batches: each student is loaded, scored
POLL_SECONDS = 0.5  # and committed once per batch, so per-record cost falls with batch size
IDLE_PASS_SECONDS = 1.0  # with no records, still advance watermarks and due students this often
RETRY_SECONDS = (0.5, 1, 2, 5, 10)


class InputRecord(NamedTuple):
    """One consumed record (a named tuple: built per record, it is the cheapest record type)."""

    topic: str  # physical topic name
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float  # Kafka record timestamp, seconds: when the LMS produced it


#: (read position, log end, wall time that log end was read) per assigned (topic, partition).
Offsets = dict[tuple[str, int], tuple[int | None, int | None, float | None]]
Process = Callable[[list[InputRecord], Offsets], Awaitable[object]]
Forget = Callable[[list[tuple[str, int]]], Awaitable[None]]


class BatchConsumer(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka ships no type hints
    def __init__(self, settings: Settings, process: Process, forget: Forget) -> None:
        self.settings = settings
        self._process = process
        self._forget = forget
        self._batch_lock = asyncio.Lock()  # a rebalance waits for the batch in hand
        self._last_pass = 0.0
        self._owned: set[TopicPartition] = set()  # as the listener last said (aiokafka's view lags)
        self._stopping = False
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.bootstrap_servers,
            group_id=settings.app_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # the same partition number of every student topic to the same worker: a student's
            # records are co-partitioned by key, and watermarks are per partition number
            partition_assignment_strategy=(RangePartitionAssignor,),
            max_partition_fetch_bytes=4 << 20,
            session_timeout_ms=10_000,
            heartbeat_interval_ms=1_000,
        )

    def stop(self) -> None:
        """Finish the batch in hand, then leave the group (cancelling `run` works too)."""
        self._stopping = True

    async def run(self) -> None:
        """Consume until stopped or cancelled; leaves the group on the way out."""
        await self.consumer.start()
        self.consumer.subscribe([t.physical(self.settings.topic_prefix) for t in INPUT_TOPICS], listener=self)
        try:
            while not self._stopping:
                batch = await self.consumer.getmany(timeout_ms=int(POLL_SECONDS * 1000), max_records=BATCH_MAX)
                if batch or time.monotonic() - self._last_pass >= IDLE_PASS_SECONDS:
                    async with self._batch_lock:
                        await self._handle(batch)
        finally:
            await self.consumer.stop()

    async def _handle(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        # a batch fetched before a rebalance may hold records of partitions revoked since: their new
        # owner reads them too, and here they would drive a watermark that no longer sees the
        # partition's other topics (a student could be advanced past events it has not applied)
        batch = {tp: rs for tp, rs in batch.items() if tp in self._owned}
        records = [InputRecord(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp / 1000)
                   for tp_records in batch.values() for r in tp_records]
        await self._process_until_done(records)
        self._last_pass = time.monotonic()
        if batch:
            await self._commit({tp: rs[-1].offset + 1 for tp, rs in batch.items()})

    async def _process_until_done(self, records: list[InputRecord]) -> None:
        """An unprocessed batch is never committed: retry it, forever, with backoff."""
        for attempt in itertools.count():
            try:
                await self._process(records, await self.offsets())
                return
            except Exception:
                pause = RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)]
                log.exception("batch of %d records failed (attempt %d); retrying in %.1fs",
                              len(records), attempt + 1, pause)
                await asyncio.sleep(pause)

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        try:
            await self.consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError, KafkaError) as error:
            # the group moved on (session lost, rebalance): the new owner re-reads from the last
            # commit and the offset fence skips what this worker already applied
            log.warning("offset commit failed (%s); the partitions' new owner will redeliver", error)

    async def offsets(self) -> Offsets:
        """(read position, log end, wall time that log end was read) per assigned partition.

        The position is after the batch in hand: the pipeline observes a batch's records
        before it reads these, so the watermark never passes a record it has not seen.
        """
        result: Offsets = {}
        for tp in self._owned:
            try:
                position = await self.consumer.position(tp)
            except IllegalStateError:  # revoked meanwhile
                continue
            highwater, read_ms = self.consumer.highwater(tp), self.consumer.last_poll_timestamp(tp)
            result[(tp.topic, tp.partition)] = (position, highwater, read_ms / 1000 if read_ms else None)
            if highwater is not None:
                metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(0, highwater - position))
        return result

    # -- rebalance listener (aiokafka awaits these inside the rebalance) -------------------
    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        async with self._batch_lock:  # the batch in hand finishes and commits first
            self._owned -= revoked
            metrics.ASSIGNED_PARTITIONS.set(len(self._owned))
            await self._forget([(tp.topic, tp.partition) for tp in revoked])
            for tp in revoked:  # another worker reports these now
                with contextlib.suppress(KeyError):
                    metrics.CONSUMER_LAG.remove(tp.topic, str(tp.partition))
        log.info("partitions revoked: %d", len(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        async with self._batch_lock:
            self._owned |= assigned
            metrics.ASSIGNED_PARTITIONS.set(len(self._owned))
            metrics.ASSIGNED_AT.set_to_current_time()
        log.info("partitions assigned: %d", len(assigned))

