"""Records that must not harm other students, on the in-memory pipeline: each is dead-lettered
with its reason, counted once, and moves no watermark; the others are applied as usual."""
from __future__ import annotations

import json
import random
import time

import orjson
import pytest
from sqlalchemy.exc import OperationalError

from features import DEFAULT_THRESHOLDS, format_ts
from helpers.pipeline_cases import PARTITIONS, Event, Sent, drive, history
from online_models.scoring import NoScoring
from storage.row_sink import MemoryRowSink
from storage.students import InMemoryStudentStore
from streams.contract import Topic, encode, key_of
from streams.contract.outputs import Alert, ScoreRow
from streams.core.step import StepConfig
from streams.ingest.mapping import IdMapping
from streams.kafka.consumer import InputRecord
from streams.kafka.partitioning import partition_of
from streams.metrics import REGISTRY
from streams.pipeline import Pipeline, PipelineConfig
from streams.tools.redrive import redrivable

PREFIX = "h."
CONFIG = PipelineConfig(topic_prefix=PREFIX, step=StepConfig(DEFAULT_THRESHOLDS, 3600.0), lateness=3600.0,
                        live_clock=False, max_skew=600.0)
LOGINS = Topic.AUTHORIZATIONS.physical(PREFIX)
NOW = float(int(time.time()))  # whole seconds: event times travel as ISO text


def _record(user_id: int, ts: float, offset: int, *, key: bytes | None = b"", partition: int | None = None,
            value: bytes | None = None, produced: float = NOW) -> InputRecord:
    record = {"user_id": user_id, "ts": format_ts(ts)}
    key = key_of(Topic.AUTHORIZATIONS, record) if key == b"" else key
    partition = partition_of(key_of(Topic.AUTHORIZATIONS, record), PARTITIONS) if partition is None else partition
    return InputRecord(LOGINS, partition, offset, key, encode(record) if value is None else value, produced)


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def _process(pipeline: Pipeline, records: list[InputRecord]) -> None:
    offsets = {(LOGINS, p): (max((r.offset + 1 for r in records if r.partition == p), default=0), None, None)
               for p in range(PARTITIONS)}
    await pipeline.process(records, offsets, {LOGINS: PARTITIONS})


World = tuple[Pipeline, InMemoryStudentStore, Sent]


@pytest.fixture
def world() -> World:
    store, sent = InMemoryStudentStore(), Sent()
    return Pipeline(CONFIG, store, sent.send, NoScoring(), MemoryRowSink()), store, sent


async def test_each_bad_record_is_dead_lettered_with_its_reason(world: World) -> None:
    pipeline, store, sent = world
    good_ts = NOW - 86_400
    home = partition_of(b"7", PARTITIONS)
    records = [
        _record(7, good_ts, 0),
        _record(7, good_ts + 60, 1, key=None),  # no key: it could be on any partition
        _record(7, good_ts + 60, 0, partition=(home + 1) % PARTITIONS),  # a partition the key does not map to
        _record(7, NOW + 86_400 * 365 * 80, 2),  # dated 2100-ish: would carry every watermark into the future
        _record(7, good_ts, 3, produced=NOW + 7200),  # produced "in the future"
        _record(7, good_ts, 4, value=b'{"user_id": 7.0, "ts": "2023-12-01T10:00:00"}'),
    ]
    await _process(pipeline, records)
    reasons = [d["reason"] for d in sent.on("scorer.dead_letters")]
    assert reasons == ["missing_key", "wrong_partition", "event_time_in_future", "produced_in_future",
                       "not_an_integer"]
    doc = (await store.load([7]))[7][1]
    assert doc is not None and len(doc["facts"]["logins"]) == 1  # only the good login
    assert pipeline.watermarks.newest is not None and pipeline.watermarks.newest[0] == good_ts


async def test_a_retried_batch_is_counted_once(world: World) -> None:
    pipeline, _, _ = world
    consumed = _sample("scorer_events_consumed_total", topic=Topic.AUTHORIZATIONS.value)
    dead = _sample("scorer_dead_letters_total", topic=Topic.AUTHORIZATIONS.value, reason="missing_key")
    batch = [_record(8, NOW - 3600, 0), _record(8, NOW - 3500, 1, key=None)]
    for _ in range(3):  # a crash after processing: the consumer hands the batch over again
        await _process(pipeline, batch)
    assert _sample("scorer_events_consumed_total", topic=Topic.AUTHORIZATIONS.value) == consumed + 2
    assert _sample("scorer_dead_letters_total", topic=Topic.AUTHORIZATIONS.value, reason="missing_key") == dead + 1


async def test_a_quarantined_record_reaches_the_dead_letters_with_the_error(world: World) -> None:
    pipeline, _, sent = world
    poison = _record(9, NOW - 60, 41)
    await pipeline.quarantine(poison, ValueError("integer out of range"))
    (letter,) = sent.on("scorer.dead_letters")
    assert letter["reason"] == "processing_failed" and "integer out of range" in letter["error"]
    assert (letter["topic"], letter["offset"]) == (LOGINS, 41)


async def test_live_records_of_a_school_east_of_utc_are_not_from_the_future() -> None:
    """Event times are the school's wall clock: at +03:00 a login made now is dated three hours
    ahead of UTC, and must be judged in the school's zone, not refused."""
    from dataclasses import replace

    from features.eventtime import utc_to_local, zone_named

    moscow = zone_named("Europe/Moscow")
    store, sent = InMemoryStudentStore(), Sent()
    pipeline = Pipeline(replace(CONFIG, zone=moscow), store, sent.send, NoScoring(), MemoryRowSink())
    local_now = float(int(utc_to_local(NOW, moscow)))
    await _process(pipeline, [_record(11, local_now, 0), _record(11, local_now + 4 * 3600, 1)])
    assert [d["reason"] for d in sent.on("scorer.dead_letters")] == ["event_time_in_future"]  # 4 h ahead
    doc = (await store.load([11]))[11][1]
    assert doc is not None and len(doc["facts"]["logins"]) == 1


async def test_the_watermark_gauge_is_a_unix_time_in_a_school_east_of_utc() -> None:
    """The dashboard and operators read the gauge against the wall clock (time() minus it). It held the
    school's wall clock read as UTC, so a Moscow worker fully caught up showed its watermark two hours
    ahead of now instead of its hour of allowed lateness behind."""
    from dataclasses import replace

    from features.eventtime import utc_to_local, zone_named

    moscow = zone_named("Europe/Moscow")
    pipeline = Pipeline(replace(CONFIG, zone=moscow), InMemoryStudentStore(), Sent().send, NoScoring(),
                        MemoryRowSink())
    login = _record(12, float(int(utc_to_local(NOW, moscow))), 0)
    read = {(LOGINS, p): (int(p == login.partition), int(p == login.partition), NOW + 1) for p in range(PARTITIONS)}
    await pipeline.process([login], read, {LOGINS: PARTITIONS})  # every partition read to its end
    assert _sample("scorer_event_time_watermark_seconds", partition=str(login.partition)) == NOW - CONFIG.lateness


async def test_the_first_batch_tells_the_store_whether_the_group_had_read_history(
        caplog: pytest.LogCaptureFixture) -> None:
    """A store without the state of what the group had committed (Redis restarted empty) must be reported at
    the first batch, not found out weeks later from students who never doze: the pipeline tells the store
    whether offsets had been committed, once, and logs the loss it reports."""
    class Claimed(InMemoryStudentStore):
        def __init__(self, lost_at: float | None) -> None:
            super().__init__()
            self.claims: list[bool] = []
            self.lost_at = lost_at

        async def claim(self, history_read: bool, now: float) -> float | None:
            self.claims.append(history_read)
            return self.lost_at

    fresh = Claimed(None)
    pipeline = Pipeline(CONFIG, fresh, Sent().send, NoScoring(), MemoryRowSink())
    pipeline.note_history(False)  # nothing committed before: a new group
    await _process(pipeline, [_record(5, NOW - 60, 0)])
    pipeline.note_history(True)  # a later rebalance: the store was asked already
    await _process(pipeline, [_record(5, NOW - 30, 1)])
    assert fresh.claims == [False]

    wiped = Claimed(NOW - 5)
    pipeline = Pipeline(CONFIG, wiped, Sent().send, NoScoring(), MemoryRowSink())
    pipeline.note_history(False)
    pipeline.note_history(True)  # some partition had committed offsets
    with caplog.at_level("ERROR", logger="streams.pipeline"):
        await _process(pipeline, [_record(6, NOW - 60, 40)])
    assert wiped.claims == [True]
    assert "holds none of the history" in caplog.text and "accept-state-loss" in caplog.text


async def test_a_document_the_step_cannot_read_harms_no_other_student(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    """A student due on a partition whose document the step cannot read (a bug on some state, a document a newer
    release wrote) used to fail every batch of the partition, and the consumer then quarantined every record
    there, anyone's. Now that student is set aside, their events dead-lettered with the error, until their
    document changes; the others are processed as usual."""
    pipeline, store, sent = world
    await _process(pipeline, [_record(7, NOW - 86_400 * 3, 0)])
    version, _ = store.docs[7]
    store.docs[7] = (version, orjson.dumps({"written_by": "a newer release"}))
    store.due_at.setdefault(partition_of(b"7", PARTITIONS), {})[7] = NOW - 86_400 * 2  # due, with no record
    failed = {"topic": Topic.AUTHORIZATIONS.value, "reason": "processing_failed"}
    dead = _sample("scorer_dead_letters_total", **failed)

    with caplog.at_level("DEBUG", logger="streams.pipeline"):
        await _process(pipeline, [_record(8, NOW - 3600, 1)])  # raised KeyError: 'enrolments'
        batch = [_record(8, NOW - 3000, 2), _record(7, NOW - 2900, 3)]
        await _process(pipeline, batch)
        await _process(pipeline, batch)  # the same batch again (redelivered): dead-lettered, counted once
    facts = (await store.load([8]))[8][1]
    assert facts is not None and len(facts["facts"]["logins"]) == 2  # both of its logins applied
    letters = sent.on("scorer.dead_letters")
    assert [(d["offset"], d["reason"]) for d in letters] == [(3, "processing_failed")] * 2
    assert letters[0]["error"] == "KeyError: 'enrolments'" and '"user_id":7' in letters[0]["value"]
    assert _sample("scorer_dead_letters_total", **failed) == dead + 1
    assert _sample("scorer_students_set_aside") == 1
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors == ["a student cannot be processed (KeyError): set aside, their events dead-lettered, until "
                      "their document changes"] and "7" not in errors[0]  # logged once, and names no student

    await store.forget([7])  # erased on request: their next event starts a new document
    await _process(pipeline, [_record(7, NOW - 600, 4)])
    doc = (await store.load([7]))[7][1]
    assert doc is not None and len(doc["facts"]["logins"]) == 1 and _sample("scorer_students_set_aside") == 0
    assert len(sent.on("scorer.dead_letters")) == 2


class _Refusing(MemoryRowSink):
    """The snapshot store refusing one student's rows: a bad value (of the batch's own), or an outage."""

    def __init__(self, refused: int, error: Exception) -> None:
        super().__init__()
        self.refused, self.error = refused, error

    async def write(self, scores: list[ScoreRow], transitions: list[Alert]) -> None:
        if any(row.user_id == self.refused for row in scores):
            raise self.error
        await super().write(scores, transitions)


async def _school(sink: MemoryRowSink, events: list[Event]) -> tuple[InMemoryStudentStore, Sent]:
    store, sent = InMemoryStudentStore(), Sent()
    await drive(Pipeline(CONFIG, store, sent.send, NoScoring(), sink), PREFIX, events, random.Random(4),
                redeliver=False)
    return store, sent


async def test_a_row_the_snapshot_store_refuses_sets_aside_its_student_only() -> None:
    """A commit failing for one student's own reason (here Postgres refusing their row) failed the batches of
    every student beside them, whom the consumer then quarantined. Now the commit is split down to that student,
    who is set aside; the others end exactly as without the refusal. An outage still holds the batch."""
    events = history(random.Random(3), 6)
    refused = 2
    control, _ = await _school(MemoryRowSink(), events)
    sink = _Refusing(refused, ValueError("integer out of range"))
    store, sent = await _school(sink, events)
    others = [u for u in range(1, 7) if u != refused]
    assert {u: doc for u, (_, doc) in (await store.load(others)).items()} == {
        u: doc for u, (_, doc) in (await control.load(others)).items()}
    assert {row.user_id for row in sink.current.values()} == set(others)
    letters = sent.on("scorer.dead_letters")
    assert letters and {(d["reason"], d["error"]) for d in letters} == {("processing_failed",
                                                                      "ValueError: integer out of range")}
    assert {json.loads(d["value"])["user_id"] for d in letters} == {refused}
    assert _sample("scorer_students_set_aside") == 1

    outage = _Refusing(refused, OperationalError("SELECT 1", {}, Exception("server closed the connection")))
    with pytest.raises(OperationalError):  # not the student's fault: the consumer waits for Postgres
        await _school(outage, events)


def _redriven(letters: list[dict[str, object]], first_offset: int) -> list[InputRecord]:
    """The letters' records as a redrive publishes them: on their key's partition, after the log's end."""
    out = []
    for number, letter in enumerate(letters):
        back = redrivable(letter, PREFIX, IdMapping())
        assert not isinstance(back, str), back
        ((topic, key, value),) = back
        assert key is not None
        out.append(InputRecord(topic.physical(PREFIX), partition_of(key, PARTITIONS), first_offset + number, key,
                               value, NOW))
    return out


async def test_a_set_aside_students_records_redriven_after_the_fix_end_as_if_nothing_failed() -> None:
    """A store refused one student's rows, so their records from then on were dead-lettered. After the fix (a
    restart with a store that takes the rows) the letters are redriven, and resent as a crash between the acks
    and the redrive's ledger would: the student's facts, statuses and alerts end equal to a run without the
    refusal, and every copy is dropped by the event-id fence (these records are recent enough for it)."""
    events = history(random.Random(3), 6)
    refused = 2
    control, control_sent = await _school(MemoryRowSink(), events)
    store, sent = await _school(_Refusing(refused, ValueError("integer out of range")), events)
    letters = sent.on("scorer.dead_letters")
    assert letters and {orjson.loads(d["value"])["user_id"] for d in letters} == {refused}

    restarted = Pipeline(CONFIG, store, sent.send, NoScoring(), MemoryRowSink())
    duplicates_before = sum(_sample("scorer_events_duplicate_total", topic=t.value, by="event_id")
                            for t in Topic)
    for first_offset in (1_000_000, 2_000_000):  # the same letters redriven twice
        records = _redriven(letters, first_offset)
        ends = {(r.topic, r.partition): (r.offset + 1, r.offset + 1, None) for r in records}
        await restarted.process(records, ends, {r.topic: PARTITIONS for r in records})
    duplicates = sum(_sample("scorer_events_duplicate_total", topic=t.value, by="event_id")
                            for t in Topic) - duplicates_before
    assert duplicates == len(letters)

    (_, fixed), (_, expected) = (await store.load([refused]))[refused], (await control.load([refused]))[refused]
    assert fixed is not None and expected is not None
    assert fixed["facts"] == expected["facts"]
    assert {k: e["machine"] for k, e in fixed["enrolments"].items()} == {
        k: e["machine"] for k, e in expected["enrolments"].items()}
    alert_ids = {a["alert_id"] for a in sent.on("scorer.alerts") if a["user_id"] == refused}
    assert alert_ids and alert_ids == {a["alert_id"] for a in control_sent.on("scorer.alerts")
                                       if a["user_id"] == refused}
