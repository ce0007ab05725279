"""The notifier's held messages on a real Redis: a backlog read late must not keep the messages whose time
has come (a student's morning) waiting behind it."""
from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import orjson
import redis.asyncio as aioredis

from streams.contract.outputs import Alert, Scores
from streams.notify.notifier import Notifier, Source
from streams.notify.process import rules
from streams.notify.senders import PrintSender
from streams.notify.store import NotifyStore
from streams.settings import Settings

MOSCOW_23H = datetime(2024, 1, 15, 20, 0, tzinfo=UTC).timestamp()
MOSCOW_23H30 = datetime(2024, 1, 15, 20, 30, tzinfo=UTC).timestamp()
MOSCOW_MORNING = datetime(2024, 1, 16, 6, 0, 1, tzinfo=UTC).timestamp()
BACKLOG = 150  # more than one pass of `due` takes


def dozing(user_id: int, zone: str) -> bytes:
    alert = Alert(f"{user_id}:5:1:status_change:dozing", user_id, 5, "active", "dozing", 1.7e9, 8.0, None,
                  Scores(p_dropout=0.7), ("Нет активности 8 дн.",), flow_num=1, time_zone=zone, tg_bot=1)
    return orjson.dumps(alert.to_message())


async def test_a_message_due_in_the_morning_goes_while_a_backlog_still_waits_to_be_caught_up(
        redis_url: str, prefix: str, tmp_path: Any) -> None:
    now = [MOSCOW_23H]
    out = io.StringIO()
    settings = Settings(redis_url=redis_url, topic_prefix=prefix, state_dir=str(tmp_path),
                        notify_quiet_hours="22:00-09:00", school_time_zone="Europe/Moscow",
                        notify_max_age_hours=0)  # the alerts are dated 2023
    redis = aioredis.Redis.from_url(redis_url)
    store = NotifyStore(redis, prefix)
    notifier = Notifier(store, PrintSender(out), producer=None, rules=rules(settings),  # type: ignore[arg-type]
                        dead_letter_topic="unused", give_up=3600, clock=lambda: now[0])
    try:
        await notifier.handle(Source("alerts", 0, 0, b"1", dozing(1, "+03:00")))  # 23:00: held for the morning
        now[0] = MOSCOW_23H30  # then the notifier fell behind: read late (afternoon in New York), they wait
        for n in range(BACKLOG):
            await notifier.handle(Source("alerts", 0, n + 1, b"2", dozing(100 + n, "-05:00"), catching_up=True))
        assert await store.backlog([0]) == BACKLOG + 1 and out.getvalue() == ""

        now[0] = MOSCOW_MORNING  # still catching up

        await notifier.release_due(0, caught_up=False)
        sent = [orjson.loads(line)["alert"]["user_id"] for line in out.getvalue().splitlines()]
        assert sent == [1]  # its morning came: it does not wait for the backlog
        assert await store.backlog([0]) == BACKLOG

        while await notifier.release_due(0, caught_up=True):
            pass
        sent = [orjson.loads(line)["alert"]["user_id"] for line in out.getvalue().splitlines()]
        assert sorted(sent) == [1, *range(100, 100 + BACKLOG)]  # each once
        assert await store.backlog([0]) == 0
    finally:
        await redis.aclose()


async def test_an_alert_about_a_moment_longer_ago_than_the_limit_is_stale_never_sent(
        redis_url: str, prefix: str, tmp_path: Any) -> None:
    """A backfill of history (or a rebuild after Redis lost its data) emits past alerts again with fresh Kafka
    timestamps. A student must not hear of a dozing from months ago: past SCORER_NOTIFY_MAX_AGE_HOURS of the
    alert's own time (the school's wall clock), it is `stale`, recorded and never sent; within it, sent."""
    from features.eventtime import local_to_utc, zone_named

    moment = local_to_utc(1.7e9, zone_named("Europe/Moscow"))  # the alerts' ts, in Moscow wall-clock time
    now = [moment + 8 * 86_400]
    out = io.StringIO()
    settings = Settings(redis_url=redis_url, topic_prefix=prefix, state_dir=str(tmp_path), notify_quiet_hours="",
                        school_time_zone="Europe/Moscow", notify_max_age_hours=7 * 24)
    redis = aioredis.Redis.from_url(redis_url)
    store = NotifyStore(redis, prefix)
    notifier = Notifier(store, PrintSender(out), producer=None, rules=rules(settings),  # type: ignore[arg-type]
                        dead_letter_topic="unused", give_up=3600, clock=lambda: now[0])
    try:
        await notifier.handle(Source("alerts", 0, 0, b"1", dozing(1, "+03:00")))  # 8 days after: stale
        await notifier.handle(Source("alerts", 0, 1, b"1", dozing(1, "+03:00")))  # redelivered: still nothing
        assert out.getvalue() == ""
        now[0] = moment + 6 * 86_400
        await notifier.handle(Source("alerts", 0, 2, b"2", dozing(2, "+03:00")))  # 6 days after: sent
        assert [orjson.loads(line)["alert"]["user_id"] for line in out.getvalue().splitlines()] == [2]
        unlimited = Notifier(store, PrintSender(out), producer=None,  # type: ignore[arg-type]
                             rules=rules(settings.copy(notify_max_age_hours=0)), dead_letter_topic="unused",
                             give_up=3600, clock=lambda: moment + 400 * 86_400)
        await unlimited.handle(Source("alerts", 0, 3, b"3", dozing(3, "+03:00")))
        assert [orjson.loads(line)["alert"]["user_id"] for line in out.getvalue().splitlines()] == [2, 3]
    finally:
        await redis.aclose()
