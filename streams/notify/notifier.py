"""One alert's way through `scorer notify`: dedupe, policy, holdout, quiet hours, send, record.

Order of the checks, for an alert read from Kafka:

1. unreadable (not JSON, no alert_id) -> notify dead-letter topic;
2. its id already has a final state or is held -> skipped (`deduplicated`);
   a status change drops its enrolment's messages held from earlier statuses (`superseded`): the
   student came back, went from dozing to asleep, or finished, before their morning;
3. about a moment longer ago than `Rules.max_age` (SCORER_NOTIFY_MAX_AGE_HOURS; the alert's own time:
   a backfill of history or a rebuild emits past alerts again, with fresh Kafka timestamps) ->
   recorded `stale`, never sent;
4. the policy says `none` -> recorded `suppressed`;
5. `"holdout": true` -> recorded `held_out`, not sent (the experiment's control group);
6. a message to the student inside their quiet hours -> `held` in Redis until the hours end; one
   read while catching up (a backlog after the notifier was down) -> `held` until its partition is
   caught up: a student's alerts share a partition, so by then their later status changes were
   read and have superseded it (no "we miss you" to a student who came back meanwhile);
7. sent: state `delivering`, then `delivered`; refused for good -> dead-lettered. Out of retries
   (the receiver is down) -> parked: held again until its next try (retry.park_wait, and out of the
   recipient's quiet hours), while later status changes can still supersede it, until
   `give_up` seconds after its first failure; then dead-lettered. While the receiver is failing
   each message gets one attempt before it is parked, so an outage does not stall the partitions.

The caller commits the record's offset only after `handle` returns, so every alert ends in one
of these records before Kafka forgets it. Nothing here logs a student or alert id at INFO.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any, NamedTuple

import orjson
from aiokafka import AIOKafkaProducer

from streams.contract.codec import InvalidEvent
from streams.contract.dead_letters import dead_letter
from streams.contract.topics import Topic
from streams.notify import metrics
from streams.notify.policy import AUDIENCE, Action, Policy, channel, part, reaches_student
from streams.notify.quiet_hours import QuietHours, parse_zone
from streams.notify.retry import park_wait
from streams.notify.senders import RETRIES_EXHAUSTED, Sender
from streams.notify.store import DELIVERING, FINAL, HELD, STALE, SUPERSEDED, NotifyStore
from streams.notify.templates import language_of, render

log = logging.getLogger(__name__)

MAX_ALERT_ID = 200
#: Alert kinds that give an enrolment a new status (an early warning does not).
STATUS_KINDS = ("status_change", "finished")


class Source(NamedTuple):
    """Where an alert came from, for its dead letter; `catching_up`: it was read late, with later
    records of its partition already waiting (the notifier was down or behind)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    catching_up: bool = False


@dataclass(frozen=True)
class Rules:
    """The school's choices (from Settings): what to send, when not to, and the language fallback."""

    policy: Policy
    quiet: QuietHours
    school_zone: tzinfo
    language: str
    max_age: float | None = None  # seconds: an alert about a moment longer ago is `stale`, never sent


def decode(value: bytes | None) -> dict[str, Any]:
    """The alert record, or InvalidEvent: bad input is dead-lettered, never a crash."""
    try:
        alert = orjson.loads(value or b"")
    except orjson.JSONDecodeError as error:
        raise InvalidEvent("malformed_json", str(error)[:200]) from None
    if not isinstance(alert, dict):
        raise InvalidEvent("not_an_object", type(alert).__name__)
    alert_id = alert.get("alert_id")
    if not isinstance(alert_id, str) or not 0 < len(alert_id) <= MAX_ALERT_ID:
        raise InvalidEvent("missing_field", "alert_id must be a non-empty string")
    return alert


def _written_ts(alert: dict[str, Any]) -> datetime | None:
    """The alert's `ts` as written: naive (the school's wall clock, as the scorer writes it) or with an
    offset; None if it does not say readably."""
    try:
        return datetime.fromisoformat(str(alert.get("ts")))
    except ValueError:
        return None


def _moment(alert: dict[str, Any]) -> datetime | None:
    """When the alert's status change happened, naive (one with an offset taken to UTC), so any two compare."""
    moment = _written_ts(alert)
    return moment.astimezone(UTC).replace(tzinfo=None) if moment is not None and moment.tzinfo else moment


def notification(alert: dict[str, Any], action: Action, language: str) -> dict[str, Any]:
    """The webhook body: the chosen action, audience, channel and texts, and the alert itself."""
    return {"alert_id": alert["alert_id"], "action": action, "audience": list(AUDIENCE[action]),
            "channel": channel(alert), "language": language, "texts": render(action, alert, language),
            "alert": alert}


class Notifier:
    def __init__(self, store: NotifyStore, sender: Sender, producer: AIOKafkaProducer, rules: Rules,
                 *, dead_letter_topic: str, give_up: float, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._sender = sender
        self._producer = producer
        self._rules = rules
        self._dead_letter_topic = dead_letter_topic
        self._give_up = give_up
        self._clock = clock
        self._receiver_failing = False

    async def handle(self, source: Source) -> None:
        """Decide and act on one alert record (see the module docstring for the order)."""
        try:
            alert = decode(source.value)
        except InvalidEvent as error:
            metrics.CONSUMED.labels("other").inc()
            await self._dead_letter(source, error, "other")
            return
        kind = metrics.kind_label(alert.get("kind"))
        metrics.CONSUMED.labels(kind).inc()
        alert_id: str = alert["alert_id"]
        state, held = await self._store.state_and_held(alert_id, alert.get("user_id"))
        if state in FINAL or state == HELD:
            metrics.OUTCOMES.labels(kind, "deduplicated").inc()
            return
        if held and alert.get("kind", "status_change") in STATUS_KINDS:
            await self._supersede_held(alert, held, source.partition)
        if state is None and self._too_old(alert):
            await self._record(alert_id, kind, STALE)
            return
        action = self._rules.policy.action_for(alert)
        if action == "none":
            await self._record(alert_id, kind, "suppressed")
            return
        if alert.get("holdout") is True:
            await self._record(alert_id, kind, "held_out")
            return
        body = notification(alert, action, language_of(alert, self._rules.language))
        if state is None:  # else a send began before a crash: it is repeated at once
            now = self._clock()
            release_at = self._quiet_until(body, now)
            catching_up = source.catching_up and reaches_student(action)
            if release_at is not None or catching_up:
                await self._store.hold(alert_id, source.partition, release_at or now, _entry(body, source),
                                       catching_up=catching_up)
                metrics.OUTCOMES.labels(kind, "held").inc()
                return
        await self._deliver(body, kind, source)

    def _too_old(self, alert: dict[str, Any]) -> bool:
        """Is the alert about a moment longer ago than the school's limit? A backfill of history, or a rebuild
        after Redis lost its data, emits past alerts again with fresh Kafka timestamps: only their own time
        tells them from today's."""
        if self._rules.max_age is None:
            return False
        moment = _written_ts(alert)
        if moment is None:
            return False  # the policy and the receiver see it as it is
        at = (moment if moment.tzinfo else moment.replace(tzinfo=self._rules.school_zone)).timestamp()
        return self._clock() - at > self._rules.max_age

    def _quiet_until(self, body: dict[str, Any], at: float) -> float | None:
        """When the recipient's quiet hours end, if `at` falls in them and the message reaches the student."""
        if not reaches_student(body["action"]):
            return None
        alert = body["alert"]
        zone = parse_zone(str(part(alert, "recipient").get("time_zone") or "")) or self._rules.school_zone
        return self._rules.quiet.release_at(at, zone)

    async def _supersede_held(self, alert: dict[str, Any], held_ids: list[str], partition: int) -> None:
        """Drop the messages held for the alert's enrolment from before its new status: a nudge held
        overnight must not reach a student who came back before morning."""
        enrolment, now = (alert.get("course_id"), alert.get("flow_num")), _moment(alert)
        held = [(alert_id, entry["body"]["alert"]) for alert_id, entry in await self._store.held_entries(held_ids)]
        stale = [(alert_id, message) for alert_id, message in held
                 if (message.get("course_id"), message.get("flow_num")) == enrolment
                 and now is not None and (then := _moment(message)) is not None and then < now]
        await self._store.supersede([alert_id for alert_id, _ in stale], partition, alert["user_id"],
                                    none_left=len(stale) == len(held))
        for _, message in stale:
            metrics.OUTCOMES.labels(metrics.kind_label(message.get("kind")), SUPERSEDED).inc()

    async def release_due(self, partition: int, caught_up: bool = True) -> int:
        """Send the held alerts of `partition` whose quiet hours are over or whose next try is due, and
        once the partition is `caught_up` those held for that; how many were handled."""
        now = self._clock()
        due = await self._store.due(partition, now)
        if caught_up:
            due += await self._store.due(partition, now, caught_up=True)
        for alert_id, entry in due:
            body = entry["body"]
            parked = False
            if await self._store.state(alert_id) not in FINAL:  # else sent already, then a crash before release
                key = entry.get("key")
                source = Source(entry["topic"], partition, entry["offset"], None if key is None else key.encode(),
                                orjson.dumps(body["alert"]))
                parked = await self._deliver(body, metrics.kind_label(body["alert"].get("kind")), source, entry)
            if not parked:
                await self._store.release(alert_id, partition)
        return len(due)

    async def quarantine(self, source: Source, error: BaseException) -> None:
        """An alert this code failed on again and again: dead-lettered with the error, and the consumer moves on."""
        # the error's type only: its message may quote the webhook URL, which can hold a secret
        await self._dead_letter(source, InvalidEvent("notify_error", type(error).__name__), "other")

    async def _deliver(self, body: dict[str, Any], kind: str, source: Source,
                       held: dict[str, Any] | None = None) -> bool:
        """Send `body` (`held`: its entry, when it was held); True when it was parked for a later try."""
        alert_id = body["alert_id"]
        await self._store.mark(alert_id, DELIVERING)
        result = await self._sender.send(body, alert_id, once=self._receiver_failing)
        if result.delivered:
            self._receiver_is_failing(False)
            await self._record(alert_id, kind, "delivered")
            return False
        now = self._clock()
        failing_since = (held or {}).get("failing_since", now)
        if result.reason == RETRIES_EXHAUSTED:
            self._receiver_is_failing(True)
            if now - failing_since < self._give_up:
                failures = (held or {}).get("failures", 0) + 1
                release_at = now + park_wait(failures)
                release_at = self._quiet_until(body, release_at) or release_at
                entry = {**_entry(body, source), "failures": failures, "failing_since": failing_since}
                await self._store.hold(alert_id, source.partition, release_at, entry, listed=held is not None)
                metrics.OUTCOMES.labels(kind, "parked").inc()
                return True
        detail = result.detail if held is None or "failures" not in held else (
            f"{result.detail}; tried since {datetime.fromtimestamp(failing_since, UTC):%Y-%m-%d %H:%M} UTC")
        await self._dead_letter(source, InvalidEvent(result.reason, detail), kind)
        await self._store.mark(alert_id, "dead_lettered")
        return False

    def _receiver_is_failing(self, failing: bool) -> None:
        if failing == self._receiver_failing:
            return
        if failing:
            log.warning("the webhook is failing: messages are parked and tried again later")
        else:
            log.info("the webhook is back")
        metrics.RECEIVER_FAILING.set(int(failing))
        self._receiver_failing = failing

    async def _record(self, alert_id: str, kind: str, outcome: str) -> None:
        await self._store.mark(alert_id, outcome)
        metrics.OUTCOMES.labels(kind, outcome).inc()

    async def _dead_letter(self, source: Source, error: InvalidEvent, kind: str) -> None:
        record = dead_letter(source.topic, error, value=source.value, key=source.key, partition=source.partition,
                             offset=source.offset)
        await self._producer.send_and_wait(self._dead_letter_topic, orjson.dumps(record), key=source.key)
        metrics.OUTCOMES.labels(kind, "dead_lettered").inc()
        log.warning("alert dead-lettered: %s", error.reason)


def _entry(body: dict[str, Any], source: Source) -> dict[str, Any]:
    """What a held message keeps: the notification, and where its alert came from (for its dead letter)."""
    return {"body": body, "topic": source.topic, "offset": source.offset,
            "key": None if source.key is None else source.key.decode("utf-8", "replace")}


def dead_letter_topic(prefix: str) -> str:
    return Topic.NOTIFY_DEAD_LETTERS.physical(prefix)
