"""The faust-streaming worker process: lifecycle, background tasks and the web server around the consumer.

Faust starts and stops the process's services, runs the trainer's loop and serves HTTP; its
own Kafka consumer is switched off (see streams.kafka.consumer for why and what reads the topics).
Per-student state is in Redis, not in Faust tables (their changelog restore loses updates on
the embedded broker).
"""
from __future__ import annotations

import asyncio
import gc
import logging
import time
from pathlib import Path

import faust
from faust.app.base import BootStrategy

from streams.console.routes import register_console
from streams.followed import follow
from streams.kafka.connection import followed_client_certificate
from streams.loop_lag import watch_event_loop
from streams.metrics import EVENT_LOOP_LAG, EVENT_LOOP_LAG_MAX, FOLLOWED_FILE_STALE, TLS_CERTIFICATE_EXPIRY
from streams.runtime import Runtime
from streams.settings import Settings
from streams.tls import serving
from streams.web import api_tokens, register_views

LOOP_PROBE_SECONDS = 0.25
#: Between two rounds of `Runtime.train` (learn queued labels, pick up new model versions).
TRAIN_PAUSE_SECONDS = 1.0


class _Boot(BootStrategy):
    """No Faust consumer, conductor or tables: streams.kafka.consumer reads the input topics."""

    enable_kafka = False


class ScorerApp(faust.App):
    BootStrategy = _Boot


def build_app(settings: Settings) -> faust.App:
    Path(settings.state_dir).mkdir(parents=True, exist_ok=True)  # faust creates only the last level
    certificate = serving(settings.web_tls_cert_file, settings.web_tls_key_file, "SCORER_WEB_TLS", "web",
                          TLS_CERTIFICATE_EXPIRY, FOLLOWED_FILE_STALE)
    tokens = api_tokens(settings)  # the read API's and the console's, the people's file followed for both
    kafka_tls = followed_client_certificate(settings, TLS_CERTIFICATE_EXPIRY, FOLLOWED_FILE_STALE)
    app = ScorerApp(
        settings.app_id,
        store="memory://",
        web_port=settings.web_port,
        web_bind=settings.web_bind,  # 127.0.0.1 unless deployed (containers set 0.0.0.0)
        web_ssl_context=None if certificate is None else certificate.context,
        web_enabled=True,
        # Faust's own pages show cluster topology, tables, sensors and the service graph:
        # none of them is ours to serve (the read API has its own pages and token).
        web_router_enabled=False,
        web_tables_enabled=False,
        web_stats_enabled=False,
        web_graph_enabled=False,
        web_metrics_enabled=False,
        datadir=f"{settings.state_dir}/faust-{settings.web_port}",
    )
    runtime = Runtime(settings)

    @app.task  # type: ignore[untyped-decorator]  # faust types the returned decorator as a bare Callable
    async def consume() -> None:
        quiet = QuietKafkaClient()
        for handler in logging.getLogger().handlers:  # set up by the Faust worker by now
            handler.addFilter(quiet)
        try:
            await runtime.start_when_possible()
            assert runtime.consumer is not None
            # everything alive now (modules, clients, the first model) lives as long as the worker:
            # kept out of the collector, a full collection no longer walks it, which held the event
            # loop 90-140 ms at a time (measured; see the README's performance section)
            gc.freeze()
            await runtime.consumer.run()
        finally:
            await runtime.stop()

    @app.task  # type: ignore[untyped-decorator]  # faust types the returned decorator as a bare Callable
    async def probe_event_loop() -> None:
        """`scorer_event_loop_lag_seconds`: how long the loop keeps a sleeping task waiting."""
        longest = 0.0

        def record(lag: float) -> None:
            nonlocal longest
            EVENT_LOOP_LAG.observe(lag)
            if lag > longest:
                longest = lag
                EVENT_LOOP_LAG_MAX.set(lag)

        await watch_event_loop(LOOP_PROBE_SECONDS, record)

    @app.task  # type: ignore[untyped-decorator]  # faust types the returned decorator as a bare Callable
    async def train() -> None:
        """Learn from queued labels and publish a new model version when due (never raises), a pause after
        each round. Not a Faust timer: a round that learns a backlog outlasts any interval, and the timer
        logged every such round as an overlap WARNING (rounds of 1.3 and 4.7 s in two demo runs)."""
        while True:
            await runtime.train()
            await asyncio.sleep(TRAIN_PAUSE_SECONDS)

    @app.task  # type: ignore[untyped-decorator]  # faust types the returned decorator as a bare Callable
    async def follow_files() -> None:
        """A renewed certificate is served (and a renewed Kafka client certificate shown), and a changed people's
        file read, without a restart."""
        await follow([*([] if certificate is None else [certificate.files]), tokens, *kafka_tls],
                     settings.reload_seconds)

    register_views(app, runtime, tokens)
    register_console(app, runtime, tokens)
    return app


class QuietKafkaClient(logging.Filter):
    """Lets each distinct Kafka-client message through at most once per `seconds`: while the broker
    is down, aiokafka logs the same connection error ~100 times a second, which would bury
    everything else (the worker's own warnings and metrics say what is down)."""

    def __init__(self, seconds: float = 30.0) -> None:
        super().__init__()
        self.seconds = seconds
        self._last: dict[tuple[str, object], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("aiokafka"):
            return True
        key, now = (record.name, record.msg), time.monotonic()
        if now - self._last.get(key, -self.seconds) < self.seconds:
            return False
        self._last[key] = now
        return True


def run_worker(settings: Settings, loglevel: str = "info") -> int:
    """Run until stopped (SIGTERM/SIGINT)."""
    app = build_app(settings)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()
    return 0
