"""The ingest service without its HTTP: request bodies in, broker-acknowledged records out.

`Ingestor` takes a request body (xAPI statements, a Caliper Envelope of events, or native
contract records), maps and checks every item, and answers with a status, a JSON body and
headers; the HTTP layer
(streams.ingest.server) only authenticates, reads bodies and writes answers, so the rules below
are tested without sockets.

- **All or nothing per request** (xAPI 1.0.3 requires it of a batch): if any item is invalid the
  answer is 400 with a reason per invalid item, those items are dead-lettered, and nothing else of
  the request is produced. Unmappable and unsupported items are valid input: they are
  dead-lettered and acknowledged (200); ignored ones are only counted.
- **Acknowledged means durable**: the answer is sent only after the broker acknowledged every
  record and dead letter of the request (every in-sync replica, see streams.kafka.admin.new_producer); a send that
  fails or times out answers 503 and the client resends.
- **Idempotent by id**: an item whose id (statement id; Caliper event id; a native record's event_id) was
  acknowledged recently (a bounded LRU, `Limits.seen_ids`) is acknowledged again without being
  produced; one still being produced by another request is waited for. The same id with other
  content is a conflict (409). Beyond the LRU's memory the worker still drops copies by event_id.
- **Back-pressure**: records sent and not yet acknowledged are bounded in number and bytes; a
  request that does not fit is answered 503 with Retry-After, before anything is sent.
- **Event times**: a record dated more than the worker's allowed clock skew ahead of now would be
  dead-lettered by the worker (`event_time_in_future`), so it is refused here, at the door.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from features.eventtime import local_to_utc, parse_ts
from streams.contract import INPUT_TOPICS, TOPIC_SCHEMA, InvalidEvent, Topic, encode, key_of, validate
from streams.contract.codec import MAX_RECORD_BYTES
from streams.ingest import caliper, metrics
from streams.ingest.base import INVALID, Mapped, Reject, Rejection, digest
from streams.ingest.files import FORMATS
from streams.ingest.mapping import IdMapping
from streams.ingest.xapi import map_statement

log = logging.getLogger(__name__)

XAPI_VERSION = "1.0.3"
#: Puts a record on a topic: (physical topic, key, value) -> the broker's acknowledgement to await.
Enqueue = Callable[[str, bytes | None, bytes], Awaitable["asyncio.Future[Any]"]]


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 1024 * 1024  # a larger body: 413
    max_items: int = 1000  # statements, events or records per request; more: 413
    max_inflight_records: int = 20_000  # sent, not yet acknowledged; beyond: 503 + Retry-After
    max_inflight_bytes: int = 32 * 1024 * 1024
    produce_timeout: float = 30.0  # seconds for the broker to acknowledge a request's records; beyond: 503
    retry_after_seconds: int = 1
    seen_ids: int = 100_000  # ids remembered for idempotency
    dead_letters_seen: int = 10_000  # dead letters remembered, so a resent bad batch is dead-lettered once


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Pending:
    digest: str
    done: asyncio.Event = field(default_factory=asyncio.Event)
    ok: bool = False


class Ledger:
    """Ids acknowledged recently (bounded, least recently used first out) with their content
    digests, and the ids being produced right now."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._done: OrderedDict[str, str] = OrderedDict()
        self._pending: dict[str, _Pending] = {}

    def __len__(self) -> int:
        return len(self._done)

    def state(self, key: str, content: str) -> tuple[str, _Pending | None]:
        """`new`, `done`, `pending` (with what to wait for) or `conflict` (same id, other content)."""
        pending = self._pending.get(key)
        if pending is not None:
            return ("pending", pending) if pending.digest == content else ("conflict", None)
        known = self._done.get(key)
        if known is None:
            return "new", None
        self._done.move_to_end(key)
        return ("done", None) if known == content else ("conflict", None)

    def claim(self, key: str, content: str) -> None:
        self._pending[key] = _Pending(content)

    def settle(self, key: str, ok: bool) -> None:
        pending = self._pending.pop(key)
        if ok:
            self._done[key] = pending.digest
            self._done.move_to_end(key)
            while len(self._done) > self.size:
                self._done.popitem(last=False)
        pending.ok = ok
        pending.done.set()


@dataclass
class _Item:
    index: int
    mapped: Mapped
    key: str | None  # ledger key (None: not deduplicated)
    content: str  # digest of the input, for conflicts


class Ingestor:
    def __init__(self, mapping: IdMapping, topic_prefix: str, enqueue: Enqueue, limits: Limits | None = None,
                 max_skew_seconds: float = 600.0, clock: Callable[[], float] = time.time) -> None:
        self.mapping = mapping
        self.prefix = topic_prefix
        self.enqueue = enqueue
        self.limits = limits or Limits()
        self.max_skew = max_skew_seconds
        self.clock = clock
        self.ledger = Ledger(self.limits.seen_ids)
        self.inflight_records = 0
        self.inflight_bytes = 0
        self._dead_seen: OrderedDict[str, None] = OrderedDict()
        self.last_ack = 0.0
        self.last_failure = 0.0
        self.last_error = ""

    # -- public ---------------------------------------------------------------------------------
    def overloaded(self) -> bool:
        return (self.inflight_records >= self.limits.max_inflight_records
                or self.inflight_bytes >= self.limits.max_inflight_bytes)

    def busy(self) -> Answer:
        after = str(self.limits.retry_after_seconds)
        return Answer(503, {"error": "too many records waiting for the broker; retry later"}, {"Retry-After": after})

    def health(self) -> Answer:
        failing = self.last_failure > self.last_ack
        body = {"status": "failing" if failing else "ok", "inflight_records": self.inflight_records,
                "inflight_bytes": self.inflight_bytes, "ids_remembered": len(self.ledger)}
        if failing:
            body["last_error"] = self.last_error
        return Answer(503 if failing else 200, body)

    async def statements(self, body: bytes, statement_id: str | None = None) -> Answer:
        """POST /xapi/statements (a statement or an array; 200 with the ids), or PUT with
        `statement_id` (one statement; 204)."""
        parsed = _json(body)
        if isinstance(parsed, Answer):
            return await self._malformed("xapi", body, parsed)
        if statement_id is not None:
            if not isinstance(parsed, dict):
                return Answer(400, {"error": "PUT takes one statement object"})
            given = parsed.get("id")
            if given is not None and (not isinstance(given, str) or given.lower() != statement_id):
                return Answer(400, {"error": "the statement's id differs from the statementId parameter"})
            parsed = {**parsed, "id": statement_id}
        statements = parsed if isinstance(parsed, list) else [parsed]
        if len(statements) > self.limits.max_items:
            return Answer(413, {"error": f"{len(statements)} statements; at most {self.limits.max_items} a request"})
        received = datetime.fromtimestamp(self.clock(), UTC)
        items = []
        for index, statement in enumerate(statements):
            mapped = map_statement(statement, self.mapping, received)
            items.append(_Item(index, mapped, mapped.ref, digest(statement)))
        seen: set[str] = set()
        for item in items:
            if item.key is not None and item.key in seen:
                return Answer(400, {"error": "a batch holds one statement per id",
                                    "rejected": [{"index": item.index, "id": item.key,
                                                  "reason": "duplicate_id_in_batch"}]})
            if item.key is not None:
                seen.add(item.key)
        answer = await self._accept("xapi", items)
        if answer.status == 200:
            answer.body = [item.key for item in items]
            if statement_id is not None:
                answer.status, answer.body = 204, None
        return answer

    async def records(self, topic_name: str, body: bytes) -> Answer:
        """POST /events/{topic}: native contract records (an object or an array)."""
        topic = _input_topic(topic_name)
        if topic is None:
            return Answer(404, {"error": f"no input topic {topic_name[:100]!r}",
                                "topics": [t.value for t in INPUT_TOPICS]})
        source = topic.physical(self.prefix)
        parsed = _json(body)
        if isinstance(parsed, Answer):
            return await self._malformed(source, body, parsed)
        values = parsed if isinstance(parsed, list) else [parsed]
        if len(values) > self.limits.max_items:
            return Answer(413, {"error": f"{len(values)} records; at most {self.limits.max_items} a request"})
        items: list[_Item] = []
        for index, value in enumerate(values):
            event_id = value.get("event_id") if isinstance(value, dict) else None
            ref = event_id if isinstance(event_id, str) else None
            try:
                record = validate(topic, value)
                mapped = Mapped(ref, value, [(topic, record)])
            except InvalidEvent as error:
                rejection = Rejection(error.reason, error.detail, value, INVALID, source, ref)
                mapped = Mapped(ref, value, rejection=rejection)
            items.append(_Item(index, mapped, f"{topic.value}|{ref}" if ref is not None else None, digest(value)))
        answer = await self._accept(source, _once_per_id(items, source), topic_label=topic.value)
        if answer.status == 200:
            answer.body = {"accepted": len(items), **answer.body}
        return answer

    async def caliper(self, body: bytes) -> Answer:
        """POST /caliper: one Caliper Envelope, as sensors send it. As the Caliper specification asks of an
        endpoint: 200 with an empty body once stored; 400 for a body that is no Envelope or a malformed one;
        422 for a dataVersion other than 1.1 or 1.2."""
        parsed = _json(body)
        if isinstance(parsed, Answer):
            return await self._malformed(caliper.SOURCE, body, parsed)
        try:
            events = caliper.envelope(parsed)
        except Reject as rejected:
            status = 422 if rejected.reason == "unsupported_version" else 400
            return await self._malformed(caliper.SOURCE, body, Answer(status, {"error": rejected.detail}),
                                         rejected.reason)
        if len(events) > self.limits.max_items:
            return Answer(413, {"error": f"{len(events)} events; at most {self.limits.max_items} a request"})
        items = []
        for index, event in enumerate(events):
            mapped = caliper.map_event(event, self.mapping)
            items.append(_Item(index, mapped, f"caliper|{mapped.ref}" if mapped.ref else None, digest(event)))
        answer = await self._accept(caliper.SOURCE, _once_per_id(items, caliper.SOURCE))
        if answer.status == 200:
            answer.body = None
        return answer

    # -- the rules ------------------------------------------------------------------------------
    async def _malformed(self, source: str, body: bytes, answer: Answer, reason: str = "malformed_json") -> Answer:
        """A body refused whole (not JSON, not an Envelope): dead-lettered, counted, answered."""
        rejection = Rejection(reason, str(answer.body["error"]), body, INVALID, source)
        metrics.REJECTED.labels(_label(source), INVALID, reason).inc()
        await self._dead_letter_quietly([rejection])
        return answer

    def _check(self, mapped: Mapped, now: float) -> None:
        """Refuse what the worker would refuse: a record dated ahead of the clock, or too large."""
        for _, record in mapped.records:
            if local_to_utc(parse_ts(record["ts"]), self.mapping.time_zone) > now + self.max_skew:
                mapped.records = []
                mapped.rejection = Rejection(
                    "event_time_in_future", f"ts {record['ts']} ({self.mapping.zone_name}) is ahead of the clock; "
                    f"the worker allows {self.max_skew:.0f} s", mapped.raw, INVALID, "", mapped.ref)
                return
            if len(encode(record)) > MAX_RECORD_BYTES:
                mapped.records = []
                mapped.rejection = Rejection("too_large", f"a record over {MAX_RECORD_BYTES} bytes", mapped.raw,
                                             INVALID, "", mapped.ref)
                return

    async def _accept(self, source: str, items: list[_Item], topic_label: str | None = None) -> Answer:
        now = self.clock()
        for item in items:
            self._check(item.mapped, now)
        invalid = [item for item in items if item.mapped.rejection and item.mapped.rejection.kind == INVALID]
        if invalid:
            rejections = [_sourced(item.mapped.rejection, source) for item in invalid if item.mapped.rejection]
            for rejection in rejections:
                metrics.REJECTED.labels(_label(source), rejection.kind, rejection.reason).inc()
            await self._dead_letter_quietly(rejections)
            return Answer(400, {
                "error": f"{len(invalid)} of {len(items)} items are invalid; nothing of this request was stored "
                         "(the invalid items were dead-lettered)",
                "rejected": [{"index": item.index, "id": item.mapped.ref, "reason": r.reason, "detail": r.detail}
                             for item, r in zip(invalid, rejections)]})
        fresh: list[_Item] = []
        waits: list[_Pending] = []
        duplicates = 0
        for item in items:
            if item.key is None:
                if item.mapped.records or item.mapped.rejection:
                    fresh.append(item)
                else:
                    duplicates += 1  # a copy of an earlier item of the same request
                continue
            state, pending = self.ledger.state(item.key, item.content)
            if state == "conflict":
                return Answer(409, {"error": "an item with this id and other content was already received",
                                    "index": item.index, "id": item.mapped.ref})
            if state == "new":
                fresh.append(item)
            else:
                duplicates += 1
                if pending is not None:
                    waits.append(pending)
        sends, letters = self._sends(fresh, source)
        size = sum(len(value) for _, _, value, _ in sends)
        if not self._reserve(len(sends), size):
            return self.busy()
        claimed = [item.key for item in fresh if item.key is not None]
        for key in claimed:
            self.ledger.claim(key, next(i.content for i in fresh if i.key == key))
        try:
            ok = await self._produce(sends)
        finally:
            self._release(len(sends), size)
            for key in claimed:
                self.ledger.settle(key, ok)
        if not ok:
            self._forget_dead_letters(letters)
            return Answer(503, {"error": "the broker did not acknowledge the records; resend the request"},
                          {"Retry-After": str(self.limits.retry_after_seconds)})
        if waits:
            try:
                await asyncio.wait_for(asyncio.gather(*(p.done.wait() for p in waits)), self.limits.produce_timeout)
            except TimeoutError:
                return Answer(503, {"error": "a copy of these items is still being stored; resend the request"},
                              {"Retry-After": str(self.limits.retry_after_seconds)})
            if not all(p.ok for p in waits):
                return Answer(503, {"error": "a copy of these items failed to be stored; resend the request"},
                              {"Retry-After": str(self.limits.retry_after_seconds)})
        return self._accepted(source, items, fresh, sends, duplicates, topic_label)

    def _accepted(self, source: str, items: list[_Item], fresh: list[_Item],
                  sends: list[tuple[str, bytes | None, bytes, str]], duplicates: int,
                  topic_label: str | None) -> Answer:
        label = _label(source)
        metrics.ITEMS.labels(label).inc(len(items))
        if duplicates:
            metrics.DUPLICATES.labels(label).inc(duplicates)
        produced: Counter[str] = Counter(kind for _, _, _, kind in sends)
        for topic, count in produced.items():
            if topic != "dead_letter":
                metrics.PRODUCED.labels(topic).inc(count)
        if produced["dead_letter"]:
            metrics.DEAD_LETTERS.labels(label).inc(produced["dead_letter"])
        rejected: Counter[str] = Counter()
        for item in fresh:
            rejection = item.mapped.rejection
            if rejection is not None:
                metrics.REJECTED.labels(label, rejection.kind, rejection.reason).inc()
                rejected[rejection.kind] += 1
        records = sum(count for topic, count in produced.items() if topic != "dead_letter")
        headers = {"X-Ingest-Records": str(records), "X-Ingest-Duplicates": str(duplicates),
                   **{f"X-Ingest-{kind.capitalize()}": str(count) for kind, count in rejected.items()}}
        body = {"records": records, "duplicates": duplicates, "rejected": dict(rejected)}
        if topic_label is not None:
            body["event_ids"] = [item.mapped.ref for item in items]
        return Answer(200, body, headers)

    def _sends(self, items: Sequence[_Item], source: str) -> tuple[list[tuple[str, bytes | None, bytes, str]],
                                                                  list[str]]:
        """(physical topic, key, value, logical topic or `dead_letter`) for every record and dead letter
        not sent recently, and the memory keys of those dead letters."""
        out: list[tuple[str, bytes | None, bytes, str]] = []
        letters: list[str] = []
        dlq = Topic.DEAD_LETTERS.physical(self.prefix)
        for item in items:
            for topic, record in item.mapped.records:
                out.append((topic.physical(self.prefix), key_of(topic, record), encode(record), topic.value))
            rejection = item.mapped.rejection
            if rejection is not None and rejection.dead_lettered:
                letter = _sourced(rejection, source).dead_letter()
                key = self._remember_dead_letter(letter)
                if key is not None:
                    letters.append(key)
                    out.append((dlq, (rejection.ref or "").encode() or None, encode(letter), "dead_letter"))
        return out, letters

    def _remember_dead_letter(self, letter: dict[str, Any]) -> str | None:
        """None for a dead letter sent recently (a client resending a bad batch), else its memory key
        (remembered now; forgotten again if sending it fails)."""
        key = f"{letter['topic']}|{letter['reason']}|{letter['value_sha256']}"
        if key in self._dead_seen:
            self._dead_seen.move_to_end(key)
            return None
        self._dead_seen[key] = None
        while len(self._dead_seen) > self.limits.dead_letters_seen:
            self._dead_seen.popitem(last=False)
        return key

    def _forget_dead_letters(self, keys: list[str]) -> None:
        for key in keys:
            self._dead_seen.pop(key, None)

    async def _dead_letter_quietly(self, rejections: Sequence[Rejection]) -> None:
        """Dead letters of a refused request: sent and awaited, but a failure only logs (the
        client is told its input is invalid either way)."""
        dlq = Topic.DEAD_LETTERS.physical(self.prefix)
        sends, letters = [], []
        for rejection in rejections:
            letter = rejection.dead_letter()
            key = self._remember_dead_letter(letter)
            if key is not None:
                letters.append(key)
                sends.append((dlq, (rejection.ref or "").encode() or None, encode(letter), "dead_letter"))
        if not sends:
            return
        if await self._produce(sends):
            metrics.DEAD_LETTERS.labels(_label(rejections[0].source)).inc(len(sends))
        else:
            self._forget_dead_letters(letters)

    def _reserve(self, records: int, size: int) -> bool:
        idle = self.inflight_records == 0
        if not idle and (self.inflight_records + records > self.limits.max_inflight_records
                         or self.inflight_bytes + size > self.limits.max_inflight_bytes):
            return False
        self.inflight_records += records
        self.inflight_bytes += size
        metrics.INFLIGHT_RECORDS.set(self.inflight_records)
        metrics.INFLIGHT_BYTES.set(self.inflight_bytes)
        return True

    def _release(self, records: int, size: int) -> None:
        self.inflight_records -= records
        self.inflight_bytes -= size
        metrics.INFLIGHT_RECORDS.set(self.inflight_records)
        metrics.INFLIGHT_BYTES.set(self.inflight_bytes)

    async def _produce(self, sends: list[tuple[str, bytes | None, bytes, str]]) -> bool:
        """Send everything and wait for every acknowledgement, within produce_timeout."""
        if not sends:
            return True
        deadline = time.monotonic() + self.limits.produce_timeout
        acks: list[asyncio.Future[Any]] = []
        try:
            async with asyncio.timeout(self.limits.produce_timeout):
                for topic, key, value, _ in sends:
                    acks.append(await self.enqueue(topic, key, value))
            done, pending = await asyncio.wait(acks, timeout=max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            return self._failed("timeout", "the broker did not take the records in time", acks)
        except Exception as error:  # the producer's errors (no broker, closed producer): answered 503
            log.warning("sending to the broker failed", exc_info=True)
            return self._failed("error", f"{type(error).__name__}: {error}", acks)
        if pending:
            return self._failed("timeout", "the broker did not acknowledge in time", acks)
        errors = [ack.exception() for ack in done if ack.exception() is not None]
        if errors:
            return self._failed("error", f"{type(errors[0]).__name__}: {errors[0]}", acks)
        self.last_ack = time.monotonic()
        return True

    def _failed(self, reason: str, detail: str, acks: list[asyncio.Future[Any]]) -> bool:
        for ack in acks:  # acknowledgements that come later are read, so none is reported unread
            ack.add_done_callback(_consume)
        metrics.PRODUCE_FAILURES.labels(reason).inc()
        self.last_failure = time.monotonic()
        self.last_error = detail[:300]
        log.warning("produce failed (%s): %s", reason, detail)
        return False


def _consume(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _json(body: bytes) -> Any:
    """The body's JSON value, or a 400 Answer."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        return Answer(400, {"error": f"the body is not JSON: {str(error)[:200]}"})


def _input_topic(name: str) -> Topic | None:
    for topic in INPUT_TOPICS:
        if name in (topic.value, TOPIC_SCHEMA[topic]):
            return topic
    return None


def _label(source: str) -> str:
    """The metric label of a source: an LMS format's name (`FORMATS`), or native (any topic name)."""
    return source if source in FORMATS else "native"


def _once_per_id(items: list[_Item], source: str) -> list[_Item]:
    """A batch with each id once: a later copy of an item is kept empty and unkeyed (acknowledged as a
    duplicate), a later item with the same id and other content is `invalid` `conflicting_event_id`."""
    first: dict[str, str] = {}
    out = []
    for item in items:
        if item.key is None:
            out.append(item)
        elif item.key not in first:
            first[item.key] = item.content
            out.append(item)
        else:
            raw, ref = item.mapped.raw, item.mapped.ref
            mapped = Mapped(ref, raw) if first[item.key] == item.content else Mapped(ref, raw, rejection=Rejection(
                "conflicting_event_id", "another item of this batch has the same id", raw, INVALID, source, ref))
            out.append(_Item(item.index, mapped, None, item.content))
    return out


def _sourced(rejection: Rejection, source: str) -> Rejection:
    if rejection.source:
        return rejection
    return Rejection(rejection.reason, rejection.detail, rejection.raw, rejection.kind, source, rejection.ref)
