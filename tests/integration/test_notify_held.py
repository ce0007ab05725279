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
                        notify_quiet_hours="22:00-09:00", school_time_zone="Europe/Moscow")
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
