"""`scorer redrive`: put dead-lettered records back on the topics they came from, once the cause is fixed.

The dead-letter topic is the only copy of a record the scorer could not use: a student set aside
(`processing_failed`: a bug on some state, a store refusing a row), a record an older release
refused, an LMS statement whose ids the mapping lacked. After the fix (a release, `scorer forget` of
a broken document, the ids added) the matching letters' records are republished to their topics with
their keys, and the worker applies them as it applies any late record. Letters are chosen by reason,
topic and the time they were written; never one written after the redrive began, so a letter the
redrive itself causes is not read back.

A record goes back once, however often it was dead-lettered (a batch retried, a schedule row each
worker refuses) or redriven: each is named by where the scorer read it (topic, partition, offset),
and a ledger in Redis (`<prefix>redrive:sent-at`) keeps the names of those sent, marked once the
broker acknowledged them, for as long as a letter of theirs is on the topic; a lease there lets one
redrive run at a time. Each record also goes back
with an event id (the LMS's own, or its name), so if a crash between an ack and its mark resends a
batch (SEND_BATCH records), the students' event-id fence drops the copies it still holds ids for.
The fence alone would not do: it keeps ids only for the days a document keeps facts one by one
(streams.core.event_ids), and a redriven record is usually older.

Letters of an LMS adapter (`scorer ingest`, `scorer replay --format`) that were stored and answered
for (an id the identifier mapping lacked, a verb or event this release did not map) are mapped again
with today's mapping (SCORER_INGEST_MAPPING): their records go back, or the letter stays, counted as
`still_unmapped` or `still_unsupported`. An invalid statement stays: its source was told.

Only letters that hold their whole record go back. One cut to its first 16 KiB, one whose text no
longer matches its SHA-256 (bytes that were not UTF-8), or one that is not a JSON object could not be
applied by any release, and is counted by why.
"""
from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson
import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from streams.contract import Topic, encode, key_of
from streams.contract.topics import INPUT_TOPICS
from streams.ingest.base import UNMAPPED, UNSUPPORTED
from streams.ingest.files import FORMATS, map_item
from streams.ingest.mapping import IdMapping
from streams.kafka.admin import new_producer
from streams.kafka.connection import kafka_connection
from streams.lease import RedisLease
from streams.settings import Settings

#: An event id a redrive derives: this prefix and 32 hex digits (the contract allows 128 characters).
DERIVED_ID_PREFIX = "dead-letter:"
#: Records sent, acknowledged and marked together: a crash resends at most this many.
SEND_BATCH = 500
#: The redrive's lease lapses this long after its last batch (a crashed redrive frees it so).
LEASE_MS = 60_000
#: Letters read between renewals of the lease (reading a long topic may take longer than it lasts).
RENEW_EVERY = 1_000
#: How long one read of the dead-letter topic waits for letters.
FETCH_MS = 500


@dataclass(frozen=True)
class Selection:
    """Which letters go back: those matching every filter given (an empty set: any)."""

    reasons: frozenset[str] = frozenset()
    #: input topics by name (`lms.page_views`) and LMS formats (`xapi`: what the door could not map)
    topics: frozenset[str] = frozenset()
    since: datetime | None = None
    until: datetime | None = None  # None: the moment the redrive began


class Out(NamedTuple):
    """A record as it goes back."""

    topic: Topic
    key: bytes | None
    value: bytes


@dataclass
class RedriveReport:
    read: int = 0  # letters on the dead-letter topic
    matched: Counter[str] = field(default_factory=Counter)  # "topic reason" -> letters selected
    redriven: Counter[str] = field(default_factory=Counter)  # logical topic -> records republished
    kept: Counter[str] = field(default_factory=Counter)  # why a selected letter cannot go back -> letters
    forgotten: int = 0  # the ledger's marks of records whose letters have left the topic

    def as_dict(self) -> dict[str, Any]:
        return {"dead_letters_read": self.read, "matched": dict(sorted(self.matched.items())),
                "redriven": dict(sorted(self.redriven.items())), "not_redriven": dict(sorted(self.kept.items())),
                "ledger_forgotten": self.forgotten}


def parse_moment(text: str) -> datetime:
    """An ISO time for --since/--until; one without an offset is UTC, as the letters' `at` is."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def source_topic(letter: dict[str, Any], prefix: str) -> Topic | None:
    """The input topic a letter's record was read from, if it was one."""
    physical = letter.get("topic")
    return next((t for t in INPUT_TOPICS if t.physical(prefix) == physical), None)


def selected(letter: dict[str, Any], selection: Selection, prefix: str, until: datetime) -> bool:
    try:
        at = parse_moment(str(letter.get("at")))
    except ValueError:
        return False
    topic = source_topic(letter, prefix)
    name = topic.value if topic is not None else letter.get("topic") if letter.get("topic") in FORMATS else None
    return ((not selection.reasons or letter.get("reason") in selection.reasons)
            and (not selection.topics or name in selection.topics)
            and at < until and (selection.since is None or at >= selection.since))


def redrivable(letter: dict[str, Any], prefix: str, mapping: IdMapping) -> tuple[Out, ...] | str:
    """The records to republish (an LMS statement may map to several), or why this letter cannot go back."""
    topic = source_topic(letter, prefix)
    if topic is None and letter.get("topic") not in FORMATS:
        return "not_an_input_topic"
    if letter.get("value_truncated"):
        return "truncated"
    value = str(letter.get("value", "")).encode("utf-8", "surrogatepass")
    if hashlib.sha256(value).hexdigest() != letter.get("value_sha256"):
        return "not_the_bytes_read"
    try:
        item = orjson.loads(value)
    except orjson.JSONDecodeError:
        return "not_a_json_object"
    if not isinstance(item, dict):
        return "not_a_json_object"
    if topic is None:
        return _mapped_again(letter, item, mapping)
    if not isinstance(item.get("event_id"), str):
        item["event_id"] = read_at(letter)
        value = encode(item)
    key = None if letter.get("key") is None else str(letter["key"]).encode("utf-8", "surrogatepass")
    return (Out(topic, key, value),)


def _mapped_again(letter: dict[str, Any], item: dict[str, Any], mapping: IdMapping) -> tuple[Out, ...] | str:
    """An LMS adapter's letter: the statement (event, row) mapped again with today's identifier mapping. Only
    those `scorer ingest` stored and answered for (unmapped ids, a verb or event this release did not map); an
    invalid one was refused, and its source told so."""
    if letter.get("kind") not in (UNMAPPED, UNSUPPORTED):
        return "invalid_input"
    mapped = map_item(str(letter["topic"]), item, mapping, parse_moment(str(letter.get("at"))))
    refused = [m.rejection for m in mapped if m.rejection is not None and m.rejection.dead_lettered]
    if refused:
        return f"still_{refused[0].kind}"
    records = tuple(Out(t, key_of(t, record), encode(record)) for m in mapped for t, record in m.records)
    return records if records else "maps_to_nothing"


def read_at(letter: dict[str, Any]) -> str:
    """The same name for every letter of one record read at one place (without a place: of its bytes)."""
    if letter.get("partition") is not None and letter.get("offset") is not None:
        place = f"{letter['topic']}:{letter['partition']}:{letter['offset']}"
    else:
        place = f"{letter['topic']}:{letter['value_sha256']}"
    return DERIVED_ID_PREFIX + hashlib.blake2b(place.encode(), digest_size=16).hexdigest()


class Ledger:
    """What earlier redrives republished (each record by where it was read), and a lease so that one
    redrive runs at a time: a second redrive skips what the first sent, even records older than the
    event-id fence. A record is marked once its batch is acknowledged, so a crash resends at most one
    batch; those the fence still holds are dropped by it.

    Each mark is scored with the start of the last redrive that read one of its record's letters; a
    complete run then drops the marks it did not read (`trim`): their letters have left the topic
    (its retention), so no redrive can meet them again, and the ledger stays as large as the topic.
    """

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._client = client
        self._sent = f"{prefix}redrive:sent-at"
        self._unscored = f"{prefix}redrive:sent"  # the marks of releases before `trim`: a set
        self._unscored_left: bool | None = None  # whether that set is still there (asked once a run)
        self.lease = RedisLease(client, f"{prefix}redrive:lease", LEASE_MS)

    def sent(self, place_ids: list[str]) -> list[bool]:
        if not place_ids:
            return []
        if self._unscored_left is None:
            self._unscored_left = bool(self._client.exists(self._unscored))
        if not self._unscored_left:
            return [score is not None for score in self._client.zmscore(self._sent, place_ids)]
        with self._client.pipeline(transaction=False) as pipe:
            pipe.zmscore(self._sent, place_ids)
            pipe.smismember(self._unscored, place_ids)
            scores, unscored = pipe.execute()
        return [score is not None or bool(old) for score, old in zip(scores, unscored)]

    def mark(self, place_ids: list[str], run: float) -> None:
        if place_ids:
            self._client.zadd(self._sent, dict.fromkeys(place_ids, run))

    def read_again(self, place_ids: list[str], run: float) -> None:
        """These records' letters are still on the topic: keep their marks (those there are)."""
        if place_ids:
            self._client.zadd(self._sent, dict.fromkeys(place_ids, run), xx=True)

    def adopt_unscored(self) -> None:
        """Before a run: the marks of an earlier release join the scored ones (a one-time move), scored
        0, so the run keeps those it reads and drops the rest as it does any."""
        if self._client.exists(self._unscored):
            with self._client.pipeline(transaction=True) as pipe:
                pipe.zunionstore(self._sent, {self._sent: 1, self._unscored: 0}, aggregate="MAX")
                pipe.delete(self._unscored)
                pipe.execute()
        self._unscored_left = False

    def trim(self, run: float) -> int:
        """After a run that read the whole topic: drop the marks it did not read; how many."""
        return int(self._client.zremrangebyscore(self._sent, "-inf", f"({run!r}"))


class RedriveRunning(RuntimeError):
    """Another redrive holds the lease (or this one lost it): two at once could both send a record."""


async def redrive(settings: Settings, selection: Selection, ledger: Ledger, mapping: IdMapping, *,
                  dry_run: bool = False) -> RedriveReport:
    """Read the dead-letter topic from its beginning to where it ended when this began, and republish
    the selected letters' records that no redrive sent before (with `dry_run`, only count them)."""
    began = time.time()
    until = selection.until or datetime.fromtimestamp(began, UTC)
    prefix = settings.topic_prefix
    if not dry_run:
        if not ledger.lease.take():
            raise RedriveRunning(ledger.lease.key)
        ledger.adopt_unscored()
    report = RedriveReport()
    producer = None if dry_run else new_producer(settings)
    consumer = AIOKafkaConsumer(**kafka_connection(settings), group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    try:
        await consumer.start()
        if producer is not None:
            await producer.start()
        batch: dict[str, dict[str, Any]] = {}  # where each was read -> letter
        seen: set[str] = set()  # places of this run's letters: a record dead-lettered twice goes back once
        read: list[str] = []  # places of the letters read since the ledger last heard of them
        async for letter in read_letters(consumer, settings, Topic.DEAD_LETTERS.physical(prefix), began):
            report.read += 1
            place_id = read_at(letter)
            if not dry_run:  # a dry run writes nothing, so it keeps no list of places either
                read.append(place_id)
                if report.read % RENEW_EVERY == 0:
                    if not ledger.lease.renew():
                        raise RedriveRunning(ledger.lease.key)
                    ledger.read_again(read, began)
                    read.clear()
            if not selected(letter, selection, prefix, until):
                continue
            report.matched[f"{letter.get('topic')} {letter.get('reason')}"] += 1
            if place_id in seen:
                report.kept["already_redriven"] += 1
                continue
            seen.add(place_id)
            batch[place_id] = letter
            if len(batch) >= SEND_BATCH:
                await _send(batch, ledger, producer, prefix, mapping, report, began)
        await _send(batch, ledger, producer, prefix, mapping, report, began)
        if not dry_run:
            ledger.read_again(read, began)
            report.forgotten = ledger.trim(began)
    finally:
        await consumer.stop()
        if producer is not None:
            await producer.stop()
        ledger.lease.release()
    return report


async def _send(batch: dict[str, dict[str, Any]], ledger: Ledger, producer: AIOKafkaProducer | None, prefix: str,
                mapping: IdMapping, report: RedriveReport, run: float) -> None:
    """Republish the records of a batch's letters no redrive sent before, wait for every ack, then mark
    those letters sent."""
    ids = list(batch)
    fresh = [place_id for place_id, sent in zip(ids, ledger.sent(ids)) if not sent]
    if len(fresh) < len(ids):
        report.kept["already_redriven"] += len(ids) - len(fresh)
    going: list[str] = []
    records: list[Out] = []
    for place_id in fresh:
        outcome = redrivable(batch[place_id], prefix, mapping)
        if isinstance(outcome, str):
            report.kept[outcome] += 1
        else:
            going.append(place_id)
            records.extend(outcome)
    report.redriven.update(out.topic.value for out in records)
    if producer is not None:
        if not ledger.lease.renew():
            raise RedriveRunning(ledger.lease.key)
        await asyncio.gather(*[await producer.send(r.topic.physical(prefix), r.value, key=r.key) for r in records])
        ledger.mark(going, run)
    batch.clear()


async def _partitions(settings: Settings, topic: str) -> list[int]:
    """The topic's partitions (none if it does not exist). Asked of the cluster: a consumer that subscribes
    to nothing knows no topic's partitions on Apache Kafka."""
    admin = AIOKafkaAdminClient(**kafka_connection(settings))
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return [] if described["error_code"] else sorted(p["partition"] for p in described["partitions"])


async def read_letters(consumer: AIOKafkaConsumer, settings: Settings, topic: str,
                       began: float) -> AsyncIterator[dict[str, Any]]:
    """Every letter on `topic` up to its end as of `began` (one that is not JSON is skipped: it holds
    no record). A partition's end is its log end in the first fetch answered after `began` (the
    embedded broker answers ListOffsets 'latest' wrongly, so it is not asked); letters written after
    that are not waited for, so the redrive ends while workers go on writing."""
    partitions = [TopicPartition(topic, p) for p in await _partitions(settings, topic)]
    if not partitions:
        return
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)
    ends: dict[TopicPartition, int] = {}
    while True:
        batch = await consumer.getmany(*partitions, timeout_ms=FETCH_MS, max_records=10 * SEND_BATCH)
        for records in batch.values():
            for record in records:
                try:
                    letter = orjson.loads(record.value or b"")
                except orjson.JSONDecodeError:
                    continue
                if isinstance(letter, dict):
                    yield letter
        for tp in partitions:
            end, answered_ms = consumer.highwater(tp), consumer.last_poll_timestamp(tp)
            if tp not in ends and end is not None and (answered_ms or 0) >= began * 1000:
                ends[tp] = end
        if len(ends) == len(partitions) and all([await consumer.position(tp) >= end for tp, end in ends.items()]):
            return
