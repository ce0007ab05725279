"""The faust-streaming worker: one agent over every input topic, batching into the Pipeline.

Faust supplies consumer-group membership, partition assignment, offset commits and the web
server; the scoring logic lives in streams.pipeline. Per-student state is in Redis, not in
Faust tables (their changelog restore loses updates on the embedded broker).
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import time
from pathlib import Path
import faust

from streams import metrics
from streams.contract import INPUT_TOPICS
from streams.pipeline import InputRecord
from streams.runtime import Runtime
from streams.settings import Settings

log = logging.getLogger(__name__)

BATCH_MAX = 5000  # a backlog coalesces into fewer, larger batches: each student is loaded,
BATCH_WITHIN = 0.5  # scored and committed once per batch, so per-record cost falls with size
RETRY_SECONDS = (0.5, 1, 2, 5, 10)


def build_app(settings: Settings) -> faust.App:
    Path(settings.state_dir).mkdir(parents=True, exist_ok=True)  # faust creates only the last level
    app = faust.App(
        settings.app_id,
        broker=settings.kafka_url,
        store="memory://",
        topic_partitions=settings.partitions,
        topic_allow_declare=False,  # topics are created explicitly (streams.kafka.ensure_topics)
        topic_disable_leader=True,  # no leader-only work, so no extra topic to create on real clusters
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=10,
        broker_heartbeat_interval=1,
        producer_acks=1,
        web_port=settings.web_port,
        web_bind="0.0.0.0",
        web_enabled=True,
        datadir=f"{settings.state_dir}/faust-{settings.web_port}",
    )
    runtime = Runtime(settings)
    app.conf.runtime = runtime  # type: ignore[attr-defined]
    source = app.topic(*(t.physical(settings.topic_prefix) for t in INPUT_TOPICS),
                       key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")

    @app.task(on_leader=False)
    async def _start() -> None:
        await runtime.start()

    @app.agent(source)
    async def score(stream: faust.StreamT) -> None:
        async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN):
            records = [InputRecord(e.message.topic, e.message.partition, e.message.offset, e.message.key,
                                   e.message.value, e.message.timestamp) for e in events]
            await _process_until_done(app, runtime, records)
            runtime.last_batch_at = time.monotonic()

    @app.timer(interval=1.0)
    async def tick() -> None:
        """Advance watermarks and due students when no records arrive (a busy agent does it anyway)."""
        if runtime.ready and time.monotonic() - runtime.last_batch_at > 1.0:
            await _process_until_done(app, runtime, [])
        if runtime.ready:
            await runtime.scoring.train_pending()

    from streams.web import register_views

    register_views(app, runtime)
    return app


def _offsets(app: faust.App) -> dict[tuple[str, int], tuple[int | None, int | None, float | None]]:
    """(resume position, log end, when the log end was read) per assigned topic-partition.

    The position given here is only the committed offset (where a restarted worker resumes):
    what this worker has read since is known to the pipeline from the records it processed.
    Reporting a batch as read before processing it would let the watermark pass its records.
    """
    consumer = app.consumer
    kafka = consumer._thread._ensure_consumer()  # the aiokafka consumer: it knows when it fetched
    result = {}
    for tp in consumer.assignment():
        try:
            highwater, read_ms = kafka.highwater(tp), kafka.last_poll_timestamp(tp)
        except Exception:  # noqa: BLE001 - not fetched yet
            highwater, read_ms = None, None
        committed = consumer._committed_offset.get(tp)
        result[(tp.topic, tp.partition)] = (committed, highwater, read_ms / 1000 if read_ms else None)
        if highwater is not None and committed is not None:
            metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(0, highwater - committed))
    return result


async def _process_until_done(app: faust.App, runtime: Runtime, records: list[InputRecord]) -> None:
    """Faust acks a batch once we return, so we only return when it is processed."""
    await runtime.started.wait()
    for attempt in itertools.count():  # forever: unprocessed work is never acked
        pause = RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)]
        try:
            await runtime.pipeline.process(records, _offsets(app))
            return
        except Exception:  # noqa: BLE001 - any failure: keep the batch, retry, never ack unprocessed work
            log.exception("batch of %d records failed (attempt %d); retrying in %.1fs", len(records), attempt + 1, pause)
            await asyncio.sleep(pause)


def run_worker(settings: Settings, loglevel: str = "info") -> int:
    """Run until stopped (SIGTERM/SIGINT); faust handles rebalances and commits."""
    app = build_app(settings)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()
    return 0
