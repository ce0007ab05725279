"""`scorer notify`: build the notifier from Settings and run it until SIGTERM/SIGINT.

It needs the worker's broker and Redis (not embedded ones: those would be its own, empty), and
serves Prometheus `/metrics` on SCORER_NOTIFY_METRICS_PORT.
"""
from __future__ import annotations

import asyncio
import logging
import random
import signal
import time
from collections.abc import Callable

from features.eventtime import zone_named
from streams.contract.topics import Topic
from streams.followed import follow
from streams.kafka.admin import ensure_topics, new_producer
from streams.kafka.connection import followed_client_certificate, kafka_connection
from streams.metrics import serve as serve_metrics
from streams.notify import metrics
from streams.notify.consumer import NotifyConsumer
from streams.notify.notifier import Notifier, Rules
from streams.notify.policy import Policy
from streams.notify.quiet_hours import QuietHours
from streams.notify.senders import PrintSender, Sender, WebhookSender
from streams.notify.store import NotifyStore
from streams.redis_clients import async_redis_client
from streams.settings import Settings

log = logging.getLogger(__name__)


def rules(settings: Settings) -> Rules:
    """The school's notification rules; ValueError names a malformed setting."""
    return Rules(Policy.parse(settings.notify_policy), QuietHours.parse(settings.notify_quiet_hours),
                 zone_named(settings.school_time_zone), settings.reason_language,
                 settings.notify_max_age_hours * 3600 or None)


def sender(settings: Settings, clock: Callable[[], float] = time.time) -> Sender:
    if not settings.notify_webhook_url:
        return PrintSender()
    return WebhookSender(settings.notify_webhook_url, max_retries=settings.notify_max_retries,
                         first_backoff=settings.notify_backoff_seconds, secret=settings.notify_webhook_secret,
                         previous_secret=settings.notify_webhook_secret_previous, clock=clock, rng=random.Random())


async def run(settings: Settings, *, clock: Callable[[], float] = time.time,
              ready: Callable[[NotifyConsumer], None] | None = None) -> None:
    """Consume alerts until the consumer is stopped (`ready` receives it, to stop it or read it)."""
    kafka_tls = followed_client_certificate(settings, metrics.TLS_CERTIFICATE_EXPIRY, metrics.FOLLOWED_FILE_STALE)
    await ensure_topics(settings, (Topic.ALERTS, Topic.NOTIFY_DEAD_LETTERS))
    redis = async_redis_client(settings.redis_url)
    producer = new_producer(settings)
    await producer.start()
    out = sender(settings, clock)
    store = NotifyStore(redis, settings.topic_prefix, settings.redis_wait_replicas, settings.redis_wait_timeout_ms)
    notifier = Notifier(store, out, producer, rules(settings), clock=clock,
                        dead_letter_topic=Topic.NOTIFY_DEAD_LETTERS.physical(settings.topic_prefix),
                        give_up=settings.notify_give_up_hours * 3600)
    consumer = NotifyConsumer(kafka_connection(settings), Topic.ALERTS.physical(settings.topic_prefix),
                              settings.notify_group, notifier, store, clock)
    if ready is not None:
        ready(consumer)
    following = asyncio.create_task(follow(kafka_tls, settings.reload_seconds))
    try:
        await consumer.run()
    finally:
        following.cancel()
        await out.close()
        await producer.stop()
        await redis.aclose()


async def _serve(settings: Settings) -> None:
    def on_ready(consumer: NotifyConsumer) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, consumer.stop)
        log.info("notify ready: %s", "webhook" if settings.notify_webhook_url else "stdout")

    await run(settings, ready=on_ready)


def main(settings: Settings) -> int:
    """The `scorer notify` command."""
    if not settings.kafka_url or not settings.redis_url:
        log.error("scorer notify needs SCORER_KAFKA_URL and SCORER_REDIS_URL: the workers' own")
        return 2
    if settings.notify_webhook_url and not settings.notify_webhook_url.startswith(("http://", "https://")):
        log.error("SCORER_NOTIFY_WEBHOOK_URL must be an http:// or https:// URL")  # not echoed: it may hold a secret
        return 2
    try:
        rules(settings)
    except ValueError as error:
        log.error("scorer notify: %s", error)
        return 2
    serve_metrics(settings.notify_metrics_port, settings.web_bind, "SCORER_NOTIFY_METRICS_PORT", metrics.REGISTRY)
    asyncio.run(_serve(settings))
    log.info("notify stopped")
    return 0
