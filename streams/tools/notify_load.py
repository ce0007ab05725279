"""`scorer notify-load`: how many alerts a second `scorer notify` handles, to a webhook on loopback.

Publishes a school's alerts to the alerts topic first (each student's status changes in order: dozing,
then back to active or on to asleep, some early warnings and course ends), then starts the notifier in
this process, in a fresh consumer group, against a receiver that answers 200 at once, and times it from
the first message received to the last (joining the group, a few seconds, is reported apart). Quiet
hours are off, so every message goes at once. Receiver and notifier share one process and one event
loop, so the figure is a floor for the notifier alone. Empty SCORER_KAFKA_URL / SCORER_REDIS_URL: embedded servers.
"""
from __future__ import annotations

import asyncio
import contextlib
import random
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from streams.contract import Topic
from streams.contract.outputs import Alert, CoursePosition, Scores
from streams.kafka.admin import ensure_topics, new_producer
from streams.notify import process
from streams.settings import Settings
from streams.tools.embedded import free_port

#: Where a student goes after dozing, and how often.
NEXT_AFTER_DOZING = (("asleep", 0.5), ("active", 0.4), ("finished", 0.1))


def alerts(count: int, seed: int = 0) -> list[dict[str, Any]]:
    """About `count` alert records, each student's in the order the worker emits them."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    user_id = 0
    while len(out) < count:
        user_id += 1
        at = 1.7e9 + rng.uniform(0, 30) * 86_400
        changes = [("active", "dozing", "status_change")]
        after = rng.choices([s for s, _ in NEXT_AFTER_DOZING], [w for _, w in NEXT_AFTER_DOZING])[0]
        changes.append(("dozing", after, "finished" if after == "finished" else "status_change"))
        if rng.random() < 0.3:
            changes.insert(0, ("active", "active", "at_risk"))
        for number, (old, new, kind) in enumerate(changes):
            at += rng.uniform(1, 14) * 86_400
            alert = Alert(f"{user_id}:5:1:{number}:{kind}:{new}", user_id, 5, old, new, at, 8.0, None,
                          Scores(p_dropout=rng.random()), ("Нет активности 8 дн.",),
                          CoursePosition(task_name="Циклы"), flow_num=1, kind=kind, time_zone="+03:00",
                          tg_bot=rng.randint(0, 1))
            out.append(alert.to_message())
    return out


async def measure(settings: Settings, count: int, seed: int = 0) -> dict[str, Any]:
    records = alerts(count, seed)
    policy = process.rules(settings).policy
    expected = {r["alert_id"] for r in records if policy.action_for(r) != "none"}
    received: dict[str, float] = {}

    async def receive(request: web.Request) -> web.Response:
        received.setdefault(request.headers["Idempotency-Key"], time.monotonic())
        await request.read()
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/hook", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    settings = settings.copy(notify_webhook_url=f"http://127.0.0.1:{port}/hook", notify_quiet_hours="",
                             notify_group=f"notify-load-{uuid.uuid4().hex[:8]}",
                             notify_max_age_hours=0)  # the alerts are dated in 2023: none would be sent
    await ensure_topics(settings, (Topic.ALERTS, Topic.NOTIFY_DEAD_LETTERS))
    producer = new_producer(settings)
    await producer.start()
    try:
        for record in records:
            await producer.send(Topic.ALERTS.physical(settings.topic_prefix), orjson.dumps(record),
                                key=str(record["user_id"]).encode())
        await producer.flush()
    finally:
        await producer.stop()
    consumers: list[Any] = []
    started = time.monotonic()
    task = asyncio.create_task(process.run(settings, ready=consumers.append))
    try:
        while not expected <= received.keys() and not task.done():
            await asyncio.sleep(0.05)
    finally:
        if consumers:
            consumers[0].stop()
        await asyncio.wait_for(task, 60)
        await runner.cleanup()
    first, last = min(received.values(), default=started), max(received.values(), default=started)
    return {"alerts": len(records), "sent_by_policy": len(expected), "received": len(received),
            "seconds_to_join": round(first - started, 2), "seconds": round(last - first, 2),
            "alerts_per_second": round(len(records) / (last - first), 1) if last > first else None}


def run(settings: Settings, count: int = 2000, seed: int = 0) -> dict[str, Any]:
    """The load test's JSON report: alerts read, messages the policy sends and received, seconds, alerts/s."""
    with contextlib.ExitStack() as stack:
        if not settings.kafka_url:
            from streams.tools.embedded import kafka_broker

            settings = settings.copy(kafka_url=stack.enter_context(kafka_broker()))
        if not settings.redis_url:
            from streams.tools.embedded import redis_server

            directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="notify-load-")))
            settings = settings.copy(redis_url=stack.enter_context(redis_server(directory)))
        settings = settings.copy(topic_prefix=settings.topic_prefix or f"load{uuid.uuid4().hex[:6]}.")
        return asyncio.run(measure(settings, count, seed))
