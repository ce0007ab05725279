"""The worker's input: one aiokafka consumer-group member reading whole batches with getmany,
beside a group-less reader of the reference topics (the schedule) that every worker reads whole.

Why not a Faust agent: Faust's fetcher hands every record to its stream through
`wait_first(callback(message), ...)`, four asyncio tasks per record, which caps an agent far
below a `getmany` loop on the same broker (`scorer bench` measures both; figures in the README's
performance section). Faust still runs the process (lifecycle, signals, background tasks, the web
server); this class owns consumption and commits.

The schedule is keyed by course, so no student partition holds the rows its students' clocks are
measured against: each worker reads every schedule partition from the start (a global table,
nothing committed) and the watermark waits for all of them, so two workers never disagree on
when a course ends. A bad schedule row is dead-lettered by each worker that reads it (the same
topic, partition and offset).

A batch is processed, then its group offsets committed; only then is the next batch fetched.
A rebalance waits for the batch in hand (so revoked partitions are committed before another
worker takes them) and drops the revoked partitions' watermarks. A crash between processing
and commit redelivers the batch, which the pipeline's per-student fences skip.

When processing fails, the error decides (`dependency_of`): a dependency that is down (Redis,
Postgres, the broker) holds the batch until it is back, however long; any other error is
retried RECORD_ATTEMPTS times, then the batch is split in halves until the records that fail on
their own are found, and each of those is quarantined to the dead-letter topic with its error
(after a health check, so an outage is never mistaken for a poison pill). The worker moves on.
A poll the broker refuses (no Read on the group or a topic) is waited out the same way.
"""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple, Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from streams import metrics
from streams.contract.topics import GLOBAL_TOPICS, GROUP_TOPICS
from streams.kafka.connection import kafka_connection
from streams.kafka.refusals import REFUSALS, Refusals
from streams.kafka.retention import deleted_unread
from streams.settings import Settings

log = logging.getLogger(__name__)

BATCH_MAX = 5000  # a backlog coalesces into large batches: each student is loaded, scored
POLL_SECONDS = 0.5  # and committed once per batch, so per-record cost falls with batch size
#: How long a fetch may wait on the broker for records (aiokafka's default is 500 ms). A broker that
#: answers only at the end of that wait when the partition was empty at the request (the embedded
#: one does: measured, p99 produced -> scored 0.46 s at 500 records/s, 0.05 s with 50 ms) holds
#: fresh records that long; Apache Kafka answers at the first byte either way. The cost is an idle
#: worker's 20 empty fetches a second.
FETCH_MAX_WAIT_MS = 50
IDLE_PASS_SECONDS = 1.0  # with no records, still advance watermarks and due students this often
RETRY_SECONDS = (0.5, 1, 2, 5)  # waits between attempts; the last repeats (work resumes within it)
RECORD_ATTEMPTS = 3  # tries of a batch, and of a lone record, before it counts as a poison pill


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
#: Partitions of each topic, as the cluster metadata says.
PartitionCounts = dict[str, int]


class BatchHandler(Protocol):
    """What the consumer feeds (the pipeline)."""

    async def process(self, records: list[InputRecord], offsets: Offsets, partitions: PartitionCounts) -> None: ...
    async def quarantine(self, record: InputRecord, error: BaseException) -> None: ...
    async def forget(self, partitions: list[tuple[str, int]]) -> None: ...
    def note_history(self, committed: bool) -> None: ...


class Dependencies(Protocol):
    """How the worker tells a dependency outage from a bad record."""

    def dependency_of(self, error: BaseException) -> str | None:
        """The dependency an error says is unavailable ("redis", "postgres", "kafka"), or None."""

    async def healthy(self) -> bool:
        """Do all dependencies answer right now?"""


class BatchConsumer(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka ships no type hints
    def __init__(self, settings: Settings, handler: BatchHandler, dependencies: Dependencies) -> None:
        self.settings = settings
        self._handler = handler
        self._dependencies = dependencies
        self._batch_lock = asyncio.Lock()  # a rebalance waits for the batch in hand
        self._last_pass = 0.0
        self._owned: set[TopicPartition] = set()  # as the listener last said (aiokafka's view lags)
        self._global: set[TopicPartition] = set()  # every partition of the reference topics
        self.has_assignment = False  # the group has given this member its share (maybe none) at least once
        self._committed: dict[TopicPartition, int] = {}  # this member's last commit (or the group's at assignment)
        self._progress_at: dict[TopicPartition, float] = {}  # wall time a partition last committed or was read up
        self._poll_stamps: dict[TopicPartition, tuple[int, int | None]] = {}  # (latest, previous) fetch stamps, ms
        self._stopping = False
        self._refusals = Refusals(lambda refused: metrics.DEPENDENCY_UP.labels("kafka").set(0 if refused else 1),
                                  retry_waits)
        #: what a processed batch shows to be up (streams.failures.dependency_of names what is down)
        self._dependency_names = ("kafka", "redis", "postgres") + (("redis_replicas",) if settings.redis_wait_replicas
                                                                     else ())
        self.consumer = AIOKafkaConsumer(
            **kafka_connection(settings),
            group_id=settings.app_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # the same partition number of every student topic to the same worker: a student's
            # records are co-partitioned by key, and watermarks are per partition number
            partition_assignment_strategy=(RangePartitionAssignor,),
            max_partition_fetch_bytes=4 << 20,
            session_timeout_ms=10_000,
            heartbeat_interval_ms=1_000,
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        )
        self.reference = AIOKafkaConsumer(**kafka_connection(settings), group_id=None,
                                          enable_auto_commit=False, auto_offset_reset="earliest",
                                          max_partition_fetch_bytes=4 << 20, fetch_max_wait_ms=FETCH_MAX_WAIT_MS)

    def stop(self) -> None:
        """Finish the batch in hand, then leave the group (cancelling `run` works too)."""
        self._stopping = True

    async def run(self) -> None:
        """Consume until stopped or cancelled; leaves the group on the way out."""
        await self.consumer.start()
        await self.reference.start()
        self.consumer.subscribe([t.physical(self.settings.topic_prefix) for t in GROUP_TOPICS], listener=self)
        try:
            while not self._stopping and not _cancel_swallowed():
                batch, refusal = await self._poll()
                # a refusal is waited out as an outage: no idle pass either (streams.kafka.refusals)
                if batch or (refusal is None and time.monotonic() - self._last_pass >= IDLE_PASS_SECONDS):
                    async with self._batch_lock:
                        await self._handle(batch)
                if refusal is not None:
                    await asyncio.sleep(self._refusals.wait_after(refusal))
                else:
                    self._refusals.allowed()
        finally:
            await self.consumer.stop()
            await self.reference.stop()

    async def _poll(self) -> tuple[dict[TopicPartition, list[ConsumerRecord]], BaseException | None]:
        """The next records of the reference topics and of the group's, and the broker's refusal if it refused
        a poll (aiokafka raises one before it drains any records, so none is dropped)."""
        batch: dict[TopicPartition, list[ConsumerRecord]] = {}
        try:
            if not self._global:
                await self._assign_reference()
            if self._global:  # an unassigned consumer's getmany waits for an assignment, whatever the timeout
                batch = dict(await self.reference.getmany(timeout_ms=0, max_records=BATCH_MAX))
            batch.update(await self.consumer.getmany(timeout_ms=int(POLL_SECONDS * 1000), max_records=BATCH_MAX))
        except REFUSALS as error:
            return batch, error
        return batch, None

    async def _assign_reference(self) -> None:
        """Every partition of the reference topics, read from the start (once the metadata lists them).
        A consumer's own metadata covers only the topics it reads, so the cluster's is fetched."""
        cluster = await self.reference._client.fetch_all_metadata()
        names = [t.physical(self.settings.topic_prefix) for t in GLOBAL_TOPICS]
        tps = {TopicPartition(name, p) for name in names for p in cluster.partitions_for_topic(name) or ()}
        if {tp.topic for tp in tps} == set(names):
            self.reference.assign(sorted(tps))
            self._global = tps

    async def _handle(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        # a batch fetched before a rebalance may hold records of partitions revoked since: their new
        # owner reads them too, and here they would drive a watermark that no longer sees the
        # partition's other topics (a student could be advanced past events it has not applied)
        batch = {tp: rs for tp, rs in batch.items() if tp in self._owned or tp in self._global}
        await self._count_deleted_unread(batch)
        records = [InputRecord(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp / 1000)
                   for tp_records in batch.values() for r in tp_records]
        await self._settle(records, later=[], attempts=RECORD_ATTEMPTS)
        self._last_pass = time.monotonic()
        offsets = {tp: rs[-1].offset + 1 for tp, rs in batch.items() if tp in self._owned}
        if offsets:
            await self._commit(offsets)

    async def _settle(self, records: list[InputRecord], later: list[InputRecord], attempts: int) -> None:
        """Process `records` (`later` are the batch's records after them, not processed yet)
        until done, waiting out dependency outages; a part that keeps failing is split, and a
        lone record that keeps failing is quarantined."""
        failures = 0
        last_error: BaseException = RuntimeError("not attempted")
        for wait in retry_waits():
            try:
                await self._handler.process(records, await self.offsets(before=later), self._partition_counts())
                for name in self._dependency_names:
                    metrics.DEPENDENCY_UP.labels(name).set(1)
                return
            except Exception as error:  # noqa: BLE001 - classified below: an outage, or the records
                last_error = error
                dependency = self._dependencies.dependency_of(error)
                if dependency is not None:
                    metrics.PROCESSING_FAILURES.labels("dependency").inc()
                    metrics.DEPENDENCY_UP.labels(dependency).set(0)
                    log.warning("%s unavailable (%s); %d records wait %.1f s", dependency, type(error).__name__,
                                len(records), wait)
                    await asyncio.sleep(wait)
                    continue
                metrics.PROCESSING_FAILURES.labels("record").inc()
                failures += 1
                log.warning("processing %d records failed (%s: %s), attempt %d of %d", len(records),
                            type(error).__name__, summarize(error), failures, attempts)
                if failures >= attempts:
                    break
                await asyncio.sleep(wait)
        if len(records) > 1:  # the failure is in the records: find which, without their neighbours
            half = len(records) // 2
            await self._settle(records[:half], records[half:] + later, attempts=1)
            await self._settle(records[half:], later, attempts=1)
        elif attempts < RECORD_ATTEMPTS:  # a lone record gets its full tries before it is condemned
            await self._settle(records, later, attempts=RECORD_ATTEMPTS)
        elif not await self._dependencies.healthy():  # not the record: something is down
            await self._settle(records, later, attempts=RECORD_ATTEMPTS)
        else:
            (record,) = records
            log.error("quarantined the record at %s[%d] offset %d after %d failures: %s", record.topic,
                      record.partition, record.offset, failures, type(last_error).__name__)
            await self._handler.quarantine(record, last_error)

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        try:
            await self.consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError, KafkaError) as error:
            # the group moved on (session lost, rebalance): the new owner re-reads from the last
            # commit and the offset fence skips what this worker already applied
            log.warning("offset commit failed (%s); the partitions' new owner will redeliver", error)
            return
        now = time.time()
        for tp, offset in offsets.items():
            if offset > self._committed.get(tp, -1):
                self._committed[tp] = offset
                self._progress_at[tp] = now

    async def offsets(self, before: Sequence[InputRecord] = ()) -> Offsets:
        """(read position, log end, a time the broker read that log end after) per assigned
        partition and reference partition.

        The position is after the records handed to the pipeline with these offsets (so the
        watermark never passes a record it has not seen): the end of the batch in hand, or the
        first of `before`, the batch's records not handed over yet.

        The time is a lower bound the watermark can trust: aiokafka stamps a log end when it gets
        round to the fetch response, which on a busy event loop is well after the broker read it,
        so that stamp could pass a stale log end for a fresh one. But aiokafka sends a node's next
        fetch only after it has handled the previous response, so the broker read the newest log
        end after the previous response's stamp: that earlier stamp is the one reported (and no
        log end at all until a partition has two readings).

        Refreshes the lag (from the last commit) and progress gauges on the way.
        """
        first_later: dict[tuple[str, int], int] = {}
        for r in before:
            first_later.setdefault((r.topic, r.partition), r.offset)
        result: Offsets = {}
        now = time.time()
        for tp, consumer in self._readers():
            try:
                position = await consumer.position(tp)
            except IllegalStateError:  # revoked meanwhile
                continue
            key = (tp.topic, tp.partition)
            position = min(position, first_later.get(key, position))
            highwater, read_at = consumer.highwater(tp), self._read_after(tp, consumer)
            result[key] = (position, highwater if read_at is not None else None, read_at)
            if highwater is not None:
                committed = self._committed.get(tp, position)
                metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(0, highwater - committed))
                if committed >= highwater:
                    self._progress_at[tp] = now  # nothing waits: a quiet partition is not a stuck one
        return result

    def _readers(self) -> list[tuple[TopicPartition, AIOKafkaConsumer]]:
        """Each partition this worker reads, with the consumer that reads it."""
        return [(tp, self.consumer) for tp in self._owned] + [(tp, self.reference) for tp in self._global]

    def _read_after(self, tp: TopicPartition, consumer: AIOKafkaConsumer) -> float | None:
        """A wall time (seconds) the broker read `tp`'s current log end after: the stamp of the
        fetch response before the latest one (see `offsets`)."""
        stamp = consumer.last_poll_timestamp(tp)
        latest, previous = self._poll_stamps.get(tp, (None, None))
        if stamp and stamp != latest:
            latest, previous = stamp, latest
            self._poll_stamps[tp] = (latest, previous)
        return previous / 1000 if previous else None

    def _partition_counts(self) -> PartitionCounts:
        counts: PartitionCounts = {}
        for topic in {tp.topic for tp in self._owned | self._global}:
            partitions = self.consumer.partitions_for_topic(topic) or self.reference.partitions_for_topic(topic)
            if partitions:
                counts[topic] = len(partitions)
        return counts

    # -- rebalance listener (aiokafka awaits these inside the rebalance) -------------------
    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        async with self._batch_lock:  # the batch in hand finishes and commits first
            self._owned -= revoked
            metrics.ASSIGNED_PARTITIONS.set(len(self._owned))
            await self._handler.forget([(tp.topic, tp.partition) for tp in revoked])
            for tp in revoked:  # another worker reports these now
                self._committed.pop(tp, None)
                self._progress_at.pop(tp, None)
                self._poll_stamps.pop(tp, None)
                for gauge in (metrics.CONSUMER_LAG, metrics.SECONDS_SINCE_COMMIT):
                    with contextlib.suppress(KeyError):
                        gauge.remove(tp.topic, str(tp.partition))
        log.info("partitions revoked: %d", len(revoked))

    async def _count_deleted_unread(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        """Records retention deleted before the group read them (streams.kafka.retention): a partition's batch that
        starts past the offset this member expected (its last commit, or the group's at assignment), where the log
        start has moved past that offset too. aiokafka restarts such a partition at its first record without a
        word: after workers were down for longer than the topics keep records, or held a batch through a
        dependency outage as long. Counted and logged, since those records never reach the students' state."""
        first_read = {tp: records[0].offset for tp, records in batch.items() if tp in self._owned}
        for topic, records in (await deleted_unread(self.consumer, first_read, self._committed)).items():
            metrics.RECORDS_LOST_TO_RETENTION.labels(topic).inc(records)
            log.error("%d record(s) of %s were deleted (retention) before this consumer group read them; the "
                      "students' state lacks them (replay them from the LMS export)", records, topic)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        async with self._batch_lock:
            now = time.time()
            history = False
            for tp in assigned:
                with contextlib.suppress(KafkaError):
                    committed = await self.consumer.committed(tp)
                    if committed is not None:
                        self._committed[tp] = committed
                        history = history or committed > 0
                self._progress_at[tp] = now
                metrics.SECONDS_SINCE_COMMIT.labels(tp.topic, str(tp.partition)).set_function(
                    _since(self._progress_at, tp))
            self._owned |= assigned
            self.has_assignment = True
            self._handler.note_history(history)
            metrics.ASSIGNED_PARTITIONS.set(len(self._owned))
            metrics.ASSIGNED_AT.set_to_current_time()
        log.info("partitions assigned: %d", len(assigned))


def summarize(error: BaseException) -> str:
    """An error's summary without the details a database appends (Postgres's DETAIL quotes the
    row: a student's data must not reach the logs)."""
    return str(error).split("\n", 1)[0][:200]


def _cancel_swallowed() -> bool:
    """Was this task cancelled, and the cancellation lost on the way? An await that completes as
    its task is cancelled can return normally and drop the CancelledError (a race in the libraries
    under the loop: a worker once ignored SIGTERM, fetching on, until its broker went away); the
    task still counts the request, so the loop ends on that instead."""
    task = asyncio.current_task()
    if task is None or not task.cancelling():
        return False
    log.warning("the consumer's cancellation was lost in a library call; stopping at the batch boundary")
    return True


def retry_waits(seconds: Sequence[float] | None = None) -> Iterator[float]:
    """The waits between tries while a dependency is down: `seconds` (RETRY_SECONDS as it is when called), then
    its last value forever."""
    seconds = RETRY_SECONDS if seconds is None else seconds
    yield from seconds
    yield from itertools.repeat(seconds[-1])


def _since(progress_at: dict[TopicPartition, float], tp: TopicPartition) -> Callable[[], float]:
    """Seconds since the partition last made progress, read when Prometheus scrapes."""
    return lambda: time.time() - progress_at.get(tp, time.time())
