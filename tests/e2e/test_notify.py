"""`scorer notify` on the embedded broker and a real Redis, delivering to a webhook receiver run by the
test (aiohttp): the kind policy, holdout, duplicates, retries, dead letters, a kill -9 restart and
quiet hours with an injected clock.

The receiver records every POST; like a real one it deduplicates by `Idempotency-Key`, the header
that closes the one window in which notify may send twice (killed after POSTing, before recording).
"""
from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiohttp import web
from redis import Redis

from helpers.servers import RedisProcess
from helpers.topics import read_topic
from streams.contract import Topic
from streams.contract.outputs import Alert, CoursePosition, Scores
from streams.kafka.admin import ensure_topics, new_producer
from streams.notify import metrics
from streams.notify.process import run
from streams.notify.signing import HEADER, verify
from streams.settings import Settings
from streams.tools.embedded import free_port
from streams.tools.notify_load import alerts as notify_load_alerts
from streams.tools.notify_load import measure
from streams.tools.processes import notify_process, scrape_if_up, stop

pytestmark = pytest.mark.slow

Reply = Callable[[str, int], tuple[int, dict[str, str]]]  # (alert id, attempt number) -> (status, headers)


def _ok(alert_id: str, attempt: int) -> tuple[int, dict[str, str]]:
    return 200, {}


@dataclass
class Receiver:
    """The notification service's side: answers as `reply` says and records every POST."""

    reply: Reply = _ok
    delay: float = 0.0
    posts: list[tuple[str, dict[str, Any], float]] = field(default_factory=list)  # (key, body, when)
    url: str = ""
    secrets: tuple[str, ...] = ()  # signing secrets each POST's signature is checked against, one by one
    signed: list[bool] = field(default_factory=list)  # per POST: did every one of them verify it?

    async def handle(self, request: web.Request) -> web.Response:
        key = request.headers["Idempotency-Key"]
        body = await request.json()
        if self.secrets:
            raw, header = await request.read(), request.headers.get(HEADER)
            self.signed.append(all(verify(secret, header, raw, time.time()) for secret in self.secrets))
        await asyncio.sleep(self.delay)
        status, headers = self.reply(key, sum(1 for k, _, _ in self.posts if k == key) + 1)
        self.posts.append((key, body, time.monotonic()))
        return web.Response(status=status, headers=headers, text="" if status < 300 else "no such student")

    def delivered(self) -> dict[str, dict[str, Any]]:
        """What reached the service, deduplicated by Idempotency-Key: key -> first accepted body."""
        out: dict[str, dict[str, Any]] = {}
        for key, body, _ in self.posts:
            out.setdefault(key, body)
        return out

    def accepted(self) -> Counter[str]:
        return Counter(key for key, _, _ in self.posts)


@contextlib.asynccontextmanager
async def receiving(receiver: Receiver) -> AsyncIterator[Receiver]:
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    receiver.url = f"http://127.0.0.1:{port}/hook?token=s3cret"
    try:
        yield receiver
    finally:
        await runner.cleanup()


def _settings(kafka_url: str, redis_url: str, prefix: str, tmp_path, **changes: Any) -> Settings:
    return Settings(**{"kafka_url": kafka_url, "redis_url": redis_url, "topic_prefix": prefix, "partitions": 4,
                       "state_dir": str(tmp_path), "notify_group": f"notify-{prefix}", "notify_quiet_hours": "",
                       "notify_backoff_seconds": 0.05, "notify_max_retries": 3,
                       "notify_max_age_hours": 0, **changes})  # the alerts here are dated 2023-2024


def alert(n: int, to_status: str = "dozing", *, kind: str = "status_change", zone: str | None = "+03:00",
          **extra: Any) -> dict[str, Any]:
    """A real Alert's message for student `n` (`extra` adds fields, e.g. another engineer's `holdout`)."""
    record = Alert(f"{n}:5:1:{kind}:{to_status}", n, 5, "active", to_status, 1.7e9, 8.0, None,
                   Scores(p_dropout=0.7), ("Нет активности 8 дн.",), CoursePosition(task_name="Циклы"),
                   flow_num=1, kind=kind, time_zone=zone, tg_bot=1)
    return {**record.to_message(), **extra}


async def produce(settings: Settings, records: list[dict[str, Any] | bytes]) -> None:
    await ensure_topics(settings, (Topic.ALERTS, Topic.NOTIFY_DEAD_LETTERS))
    producer = new_producer(settings)
    await producer.start()
    try:
        for record in records:
            key = str(record["user_id"]).encode() if isinstance(record, dict) else b"0"
            value = orjson.dumps(record) if isinstance(record, dict) else record
            await producer.send_and_wait(Topic.ALERTS.physical(settings.topic_prefix), value, key=key)
    finally:
        await producer.stop()


async def until(check: Callable[[], bool | Awaitable[bool]], timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if await result if asyncio.iscoroutine(result) else result:
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"waited {timeout} s for {what}")


def count(outcome: str, kind: str = "status_change") -> float:
    return metrics.REGISTRY.get_sample_value("notify_alerts_total", {"kind": kind, "outcome": outcome}) or 0.0


def backlog() -> float | None:
    return metrics.REGISTRY.get_sample_value("notify_quiet_hours_backlog")


@contextlib.asynccontextmanager
async def notifying(settings: Settings, clock: Callable[[], float] = time.time) -> AsyncIterator[Any]:
    """`scorer notify`'s loop in this process (the clock injectable), stopped on the way out."""
    started: list[Any] = []
    task = asyncio.create_task(run(settings, clock=clock, ready=started.append))
    await until(lambda: bool(started) or task.done(), what="notify to start")
    consumer = started[0]
    try:
        yield consumer
    finally:
        consumer.stop()
        await asyncio.wait_for(task, 30)


async def committed(consumer: Any) -> int:
    """Alert records this group has committed past, over the partitions it owns."""
    return sum([await consumer.consumer.committed(tp) or 0 for tp in consumer.consumer.assignment()])


async def test_each_alert_is_sent_once_as_the_policy_says_and_holdouts_never(kafka_url, redis_url, prefix,
                                                                             tmp_path):
    records: list[dict[str, Any] | bytes] = [
        alert(1, "dozing"), alert(2, "asleep"), alert(3, "active"), alert(4, "active", kind="at_risk"),
        alert(5, "finished", kind="finished"), alert(6, "dozing", holdout=True), alert(7, "asleep", holdout=False),
        alert(1, "dozing"), alert(2, "asleep"),  # the worker sent these twice (a crash before its commit)
        b"{not an alert",
    ]
    before = {o: count(o) for o in ("delivered", "held_out", "suppressed", "deduplicated")}
    async with receiving(Receiver()) as receiver:
        settings = _settings(kafka_url, redis_url, prefix, tmp_path, notify_webhook_url=receiver.url)
        await produce(settings, records)
        async with notifying(settings) as consumer:
            await until(lambda: _equal(committed(consumer), len(records)), what="every record committed")
    delivered = receiver.delivered()
    actions = {body["alert"]["user_id"]: body["action"] for body in delivered.values()}
    assert actions == {1: "nudge", 2: "urge", 4: "curator", 5: "cancel", 7: "urge"}
    assert len(receiver.posts) == len(delivered) == 5  # none twice, even without the receiver's dedupe
    assert set(delivered["2:5:1:status_change:asleep"]["texts"]) == {"student", "curator"}
    assert delivered["1:5:1:status_change:dozing"]["channel"] == "telegram"
    assert "«Циклы»" in delivered["1:5:1:status_change:dozing"]["texts"]["student"]
    after = {o: count(o) for o in before}
    assert {o: after[o] - before[o] for o in before} == {"delivered": 3, "held_out": 1, "suppressed": 1,
                                                           "deduplicated": 2}
    dead = await read_topic(settings, Topic.NOTIFY_DEAD_LETTERS)
    assert [(d["reason"], d["value"]) for d in dead] == [("malformed_json", "{not an alert")]


async def _equal(value: Awaitable[int], expected: int) -> bool:
    return await value == expected


async def test_a_failing_receiver_gets_each_alert_once_after_retries_and_a_refusal_of_it_is_dead_lettered(
        kafka_url, redis_url, prefix, tmp_path):
    def reply(key: str, attempt: int) -> tuple[int, dict[str, str]]:
        user = int(key.split(":")[0])
        if user == 1:  # down twice, then back
            return (500, {}) if attempt <= 2 else (200, {})
        if user == 2:  # rate-limited once, asking for a second
            return (429, {"Retry-After": "1"}) if attempt == 1 else (200, {})
        if user == 3:  # does not know this student: permanent
            return 400, {}
        if user == 5:  # a wrong path (not deployed yet), then the sender refused (its token was rotated): the
            return ((404, {}), (401, {}), (200, {}))[min(attempt, 3) - 1]  # sender's to fix, not the message's
        return 503, {}  # user 4: never back

    # mid-rotation: the receiver may check either secret, so each POST must verify with both
    async with receiving(Receiver(reply, secrets=("signing-s3cret", "old-s3cret"))) as receiver:
        settings = _settings(kafka_url, redis_url, prefix, tmp_path, notify_webhook_url=receiver.url,
                             notify_webhook_secret="signing-s3cret", notify_webhook_secret_previous="old-s3cret",
                             notify_give_up_hours=0)  # no parking: out of retries is dead-lettered at once
        await produce(settings, [alert(1), alert(2), alert(3), alert(4), alert(5)])
        async with notifying(settings) as consumer:
            await until(lambda: _equal(committed(consumer), 5), what="every record committed")
    tries = receiver.accepted()
    assert tries == {"1:5:1:status_change:dozing": 3, "2:5:1:status_change:dozing": 2,
                     "3:5:1:status_change:dozing": 1, "4:5:1:status_change:dozing": 4,  # 1 + max_retries
                     "5:5:1:status_change:dozing": 3}
    times = [when for key, _, when in receiver.posts if key.startswith("2:")]
    assert times[1] - times[0] >= 0.95  # Retry-After honoured over the 0.05 s backoff
    dead = {d["key"]: d for d in await read_topic(settings, Topic.NOTIFY_DEAD_LETTERS)}
    assert set(dead) == {"3", "4"}
    assert dead["3"]["reason"] == "rejected" and "HTTP 400" in dead["3"]["error"]
    assert dead["4"]["reason"] == "retries_exhausted" and "4 attempts" in dead["4"]["error"]
    assert orjson.loads(dead["3"]["value"])["alert_id"] == "3:5:1:status_change:dozing"
    assert all("s3cret" not in d["error"] for d in dead.values())  # the webhook URL's secret stays out
    assert receiver.signed == [True] * len(receiver.posts)  # each attempt signed, retries at their own time


async def test_a_receiver_that_is_down_gets_the_messages_when_it_is_back_but_no_stale_one(
        kafka_url, redis_url, prefix, tmp_path):
    """The webhook is down at 21:00 in Moscow: three nudges are parked (the first after its retries,
    the others after one attempt each), student 2 comes back meanwhile, a try at 21:01 fails again,
    and at 21:03 the webhook is back: students 1 and 3 get their nudges, student 2 none. Then the
    webhook refuses student 5 for good with 503s: tried until 21:59, its next try would fall in the
    quiet hours, so it waits for 09:00, and then, past `give_up` (6 h), it is dead-lettered."""
    moscow = lambda hour, minute, second=0, day=15: datetime(  # noqa: E731
        2024, 1, day, hour, minute, second, tzinfo=UTC).timestamp() - 3 * 3600
    now = [moscow(21, 0)]
    up = [False]
    accepted: list[int] = []

    def reply(key: str, attempt: int) -> tuple[int, dict[str, str]]:
        if up[0] and not key.startswith("5:"):
            accepted.append(int(key.split(":")[0]))
            return 200, {}
        return 503, {}

    def failing() -> float | None:
        return metrics.REGISTRY.get_sample_value("notify_receiver_failing")

    dozing = {n: alert(n, zone="+03:00") for n in (1, 2, 3)}
    parked, superseded, dead_lettered = count("parked"), count("superseded"), count("dead_lettered")
    async with receiving(Receiver(reply)) as receiver:
        settings = _settings(kafka_url, redis_url, prefix, tmp_path, notify_webhook_url=receiver.url,
                             notify_quiet_hours="22:00-09:00", school_time_zone="Europe/Moscow",
                             notify_give_up_hours=6)
        await produce(settings, [dozing[1]])
        async with notifying(settings, lambda: now[0]) as consumer:
            await until(lambda: count("parked") - parked == 1, what="the first parked")
            await produce(settings, [dozing[2], dozing[3]])
            await until(lambda: _equal(committed(consumer), 3), what="three parked")
            await until(lambda: backlog() == 3, what="the backlog gauge")
            assert count("parked") - parked == 3 and failing() == 1
            assert len(receiver.posts) == 4 + 1 + 1  # the first: 1 + max_retries; then one attempt each
            await produce(settings, [later(dozing[2], "active", 0.01)])
            await until(lambda: count("superseded") - superseded == 1, what="student 2's nudge dropped")
            await until(lambda: backlog() == 2, what="two parked")

            now[0] = moscow(21, 1, 1)
            await until(lambda: count("parked") - parked == 5, what="one more try each, failed")
            assert len(receiver.posts) == 8
            up[0] = True
            now[0] = moscow(21, 3, 2)  # the second failure waits 2 min
            await until(lambda: sorted(accepted) == [1, 3] and backlog() == 0, what="the webhook back")
            assert failing() == 0

            await produce(settings, [alert(5, zone="+03:00")])
            await until(lambda: count("parked") - parked == 6, what="student 5's nudge parked")
            now[0] = moscow(21, 59, 30)
            await until(lambda: count("parked") - parked == 7, what="tried again, and parked past 22:00")
            now[0] = moscow(23, 30)
            await asyncio.sleep(2.5)  # two passes of the release loop: nothing is due in the quiet hours
            assert count("parked") - parked == 7 and backlog() == 1
            now[0] = moscow(9, 0, 1, day=16)
            await until(lambda: count("dead_lettered") - dead_lettered == 1, what="given up after 6 h")
            await until(lambda: backlog() == 0, what="an empty backlog")
    assert sorted(accepted) == [1, 3]  # each once, never student 2
    assert sum(1 for key, _, _ in receiver.posts if key.startswith("1:")) == 4 + 1 + 1
    assert sum(1 for key, _, _ in receiver.posts if key.startswith("5:")) == 4 + 1 + 1
    (dead,) = [d for d in await read_topic(settings, Topic.NOTIFY_DEAD_LETTERS) if d["key"] == "5"]
    assert dead["reason"] == "retries_exhausted" and "tried since 2024-01-15 18:03 UTC" in dead["error"]


async def test_killed_mid_stream_and_restarted_every_alert_arrives_exactly_once(kafka_url, redis_url, prefix,
                                                                                tmp_path):
    n = 40
    async with receiving(Receiver(delay=0.05)) as receiver:
        port = free_port()
        settings = _settings(kafka_url, redis_url, prefix, tmp_path, notify_webhook_url=receiver.url,
                             notify_metrics_port=port)
        await produce(settings, [alert(i) for i in range(n)])
        log = tmp_path / "notify.log"
        first = notify_process(settings, log)
        try:
            await until(lambda: len(receiver.posts) >= 10, what="the first deliveries")
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        at_kill = len(receiver.posts)
        second = notify_process(settings, log)
        try:
            await until(lambda: len(receiver.delivered()) == n, what="the rest after the restart")
            await until(lambda: scrape_if_up(port).get("notify_alerts_consumed_total", 0) > 0, what="metrics")
            await asyncio.sleep(1.0)  # anything sent twice would arrive by now
            found = scrape_if_up(port)
        finally:
            await asyncio.to_thread(stop, [second])
    assert second.returncode == 0, log.read_text()
    assert at_kill < n  # the kill did fall mid-stream
    assert set(receiver.delivered()) == {f"{i}:5:1:status_change:dozing" for i in range(n)}
    repeated = [key for key, times in receiver.accepted().items() if times > 1]
    # only a POST in flight at the kill (one per partition at most) is repeated, with the same key
    assert len(repeated) <= settings.partitions, repeated
    assert found["notify_alerts_total"] >= n - at_kill
    assert "s3cret" not in log.read_text() and "5:1:status_change" not in log.read_text()


async def test_quiet_hours_hold_a_message_until_the_students_morning_even_across_a_restart(
        kafka_url, redis_url, prefix, tmp_path):
    now = [datetime(2024, 1, 15, 20, 0, tzinfo=UTC).timestamp()]  # 23:00 in Moscow, 06:00 in Vladivostok
    clock = lambda: now[0]  # noqa: E731
    async with receiving(Receiver()) as receiver:
        settings = _settings(kafka_url, redis_url, prefix, tmp_path, notify_webhook_url=receiver.url,
                             notify_quiet_hours="22:00-09:00", school_time_zone="Europe/Moscow")
        await produce(settings, [alert(1, zone="+03:00"), alert(2, zone="UTC+10"), alert(3, zone="-05:00"),
                                 alert(4, zone=None), alert(5, "active", kind="at_risk", zone="+03:00")])
        async with notifying(settings, clock) as consumer:
            await until(lambda: _equal(committed(consumer), 5), what="every record committed")
            await until(lambda: backlog() == 3, what="three held")
        assert {b["alert"]["user_id"] for b in receiver.delivered().values()} == {3, 5}  # 15:00 in New York; a curator

        now[0] = datetime(2024, 1, 15, 23, 0, 1, tzinfo=UTC).timestamp()  # 09:00:01 in Vladivostok, 02:00 in Moscow
        # A new process, in a new group so that it also reads every alert again (as after an offset
        # reset; a restart in the same group waits out the old member's session on the embedded
        # broker, whose first generation aiokafka never leaves): the held ones come from Redis.
        settings = settings.copy(notify_group=f"{settings.notify_group}-2")
        deduplicated = count("deduplicated") + count("deduplicated", "at_risk")
        async with notifying(settings, clock) as consumer:
            await until(lambda: _equal(committed(consumer), 5), what="every record read again")
            assert count("deduplicated") + count("deduplicated", "at_risk") - deduplicated == 5
            await until(lambda: len(receiver.delivered()) == 3, what="Vladivostok's morning")
            await until(lambda: backlog() == 2, what="two still held")
            assert {b["alert"]["user_id"] for b in receiver.delivered().values()} == {2, 3, 5}
            now[0] = datetime(2024, 1, 16, 6, 0, 1, tzinfo=UTC).timestamp()  # 09:00:01 in Moscow
            await until(lambda: len(receiver.delivered()) == 5, what="Moscow's morning")
            await until(lambda: backlog() == 0, what="an empty backlog")
    assert len(receiver.posts) == 5  # each once
    held = [b for b in receiver.delivered().values() if b["alert"]["user_id"] in (1, 2, 4)]
    assert all(b["action"] == "nudge" and b["texts"]["student"] for b in held)


async def test_a_held_message_is_committed_only_once_a_redis_replica_holds_it(kafka_url, prefix, tmp_path):
    """SCORER_REDIS_WAIT_REPLICAS=1: a nudge held for the morning lives only in Redis once its offset is
    committed, so the offset waits while the replica does not answer (a failover then would lose it), and
    is committed once it does."""
    now = datetime(2024, 1, 15, 20, 0, tzinfo=UTC).timestamp()  # 23:00 in Moscow: held
    with RedisProcess(tmp_path / "primary") as primary, \
            RedisProcess(tmp_path / "replica", replica_of=primary.port) as replica:
        await until(lambda: primary.replicas_in_sync() == 1, what="the replica in sync")
        settings = _settings(kafka_url, primary.url, prefix, tmp_path, notify_quiet_hours="22:00-09:00",
                             school_time_zone="Europe/Moscow", redis_wait_replicas=1, redis_wait_timeout_ms=200)
        await produce(settings, [alert(1, zone="+03:00")])
        replica.pause()
        try:
            async with notifying(settings, lambda: now) as consumer:
                await until(lambda: _held(primary.port, prefix), what="the nudge held")
                await asyncio.sleep(2.0)  # several waits for the replica
                assert await committed(consumer) == 0
                replica.resume()
                await until(lambda: _equal(committed(consumer), 1), what="the offset committed")
        finally:
            replica.resume()
        assert _held(replica.port, prefix), "the replica holds the nudge"


def _held(port: int, prefix: str) -> bool:
    """Does the Redis on `port` hold a message for the end of quiet hours?"""
    client = Redis(host="127.0.0.1", port=port)
    try:
        return any(client.zcard(key) for key in client.scan_iter(f"{prefix}notify:held:*")
                   if client.type(key) == b"zset")
    finally:
        client.close()

def later(record: dict[str, Any], to_status: str, hours: float, **extra: Any) -> dict[str, Any]:
    """The same enrolment's next status change, `hours` after `record`'s."""
    ts = datetime.fromisoformat(record["ts"]) + timedelta(hours=hours)
    return {**record, "alert_id": f"{record['alert_id']}->{to_status}", "from_status": record["to_status"],
            "to_status": to_status, "ts": ts.isoformat(timespec="seconds"), **extra}


async def test_a_held_message_is_dropped_when_its_enrolment_changes_status_before_morning(
        kafka_url, redis_url, prefix, tmp_path):
    """At 23:00 in Moscow four students go dozing; their nudges wait for 09:00. Before morning student 1
    comes back, student 2 goes asleep, student 3 comes back in another course, and student 4's course ends.
    In the morning student 2 gets the urge alone, student 3 the nudge; students 1 and 4 get nothing (4, a
    cancel, sent at once). Read again by a new group (as after an offset reset), nothing changes."""
    now = [datetime(2024, 1, 15, 20, 0, tzinfo=UTC).timestamp()]  # 23:00 in Moscow
    clock = lambda: now[0]  # noqa: E731
    dozing = {n: alert(n, zone="+03:00") for n in (1, 2, 3, 4)}
    records: list[dict[str, Any] | bytes] = [
        *dozing.values(), later(dozing[1], "active", 2), later(dozing[2], "asleep", 3),
        later(dozing[3], "active", 2, course_id=6), later(dozing[4], "finished", 4, kind="finished")]
    superseded = count("superseded")
    async with receiving(Receiver()) as receiver:
        settings = _settings(kafka_url, redis_url, prefix, tmp_path, notify_webhook_url=receiver.url,
                             notify_quiet_hours="22:00-09:00", school_time_zone="Europe/Moscow")
        await produce(settings, records)
        async with notifying(settings, clock) as consumer:
            await until(lambda: _equal(committed(consumer), len(records)), what="every record committed")
            await until(lambda: backlog() == 2, what="the urge and student 3's nudge held, the rest dropped")
            assert count("superseded") - superseded == 3
            assert [b["action"] for b in receiver.delivered().values()] == ["cancel"]  # not held: at once
            now[0] = datetime(2024, 1, 16, 6, 0, 1, tzinfo=UTC).timestamp()  # 09:00:01 in Moscow
            await until(lambda: len(receiver.delivered()) == 3, what="the morning")
            await until(lambda: backlog() == 0, what="an empty backlog")
        settings = settings.copy(notify_group=f"{settings.notify_group}-2")
        async with notifying(settings, clock) as consumer:
            await until(lambda: _equal(committed(consumer), len(records)), what="every record read again")
    sent = {(b["alert"]["user_id"], b["alert"]["to_status"]): b["action"] for b in receiver.delivered().values()}
    assert sent == {(2, "asleep"): "urge", (3, "dozing"): "nudge", (4, "finished"): "cancel"}
    assert len(receiver.posts) == 3  # each once, the second reading included


async def test_a_backlog_read_late_sends_no_nudge_its_own_later_alerts_made_stale(
        kafka_url, redis_url, prefix, tmp_path):
    """The notifier was down for an hour: student 1 went dozing and came back, student 3 went dozing
    and got an early warning, student 2 went dozing. Read late, the nudges wait until each partition
    is caught up: student 1's is superseded by the return, the others go; the curator's note at once."""
    dozing = {n: alert(n, zone="+03:00") for n in (1, 2, 3)}
    records: list[dict[str, Any] | bytes] = [
        dozing[1], dozing[3], later(dozing[1], "active", 0.5), alert(3, "active", kind="at_risk"), dozing[2]]
    superseded = count("superseded")
    async with receiving(Receiver()) as receiver:
        settings = _settings(kafka_url, redis_url, prefix, tmp_path, notify_webhook_url=receiver.url)
        await produce(settings, records)
        async with notifying(settings, lambda: time.time() + 3600) as consumer:  # every record an hour old
            await until(lambda: _equal(committed(consumer), len(records)), what="every record committed")
            await until(lambda: len(receiver.delivered()) == 3 and backlog() == 0, what="the backlog sent")
    sent = sorted((b["alert"]["user_id"], b["action"]) for b in receiver.delivered().values())
    assert sent == [(2, "nudge"), (3, "curator"), (3, "nudge")]  # none for student 1, who came back
    assert count("superseded") - superseded == 1 and len(receiver.posts) == 3


async def test_the_load_test_counts_what_the_policy_sends(kafka_url, redis_url, prefix, tmp_path):
    """`scorer notify-load`'s figures: every message the policy sends arrives once, and it is timed."""
    report = await measure(_settings(kafka_url, redis_url, prefix, tmp_path), 200)
    records = notify_load_alerts(200)
    returns = sum(a["kind"] == "status_change" and a["to_status"] == "active" for a in records)  # policy: none
    assert report["alerts"] == len(records) >= 200 and returns
    assert report["received"] == report["sent_by_policy"] == report["alerts"] - returns
    assert report["alerts_per_second"] > 0
