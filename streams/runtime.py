"""Everything a worker process connects to, built from Settings on start and closed on stop.

The consumer, the training timer and the HTTP views share one Runtime. `start` builds the
adapters and hands them to the pipeline; `stop` closes every one of them, whatever state
`start` reached, so nothing leaks (the trainer's lock is released for a standby at once).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiokafka import AIOKafkaProducer

from features.activity_status import Thresholds
from online_models.scoring import OnlineScoring
from storage.postgres.db import dispose_shared_engines
from storage.postgres.sink import PostgresSink
from storage.students import RedisStudentStore
from streams.core.step import StepConfig
from streams.kafka.admin import ensure_topics, new_producer
from streams.pipeline import Pipeline, PipelineConfig
from streams.settings import Settings

log = logging.getLogger(__name__)


def pipeline_config(settings: Settings) -> PipelineConfig:
    """The part of the settings the pipeline uses."""
    return PipelineConfig(
        topic_prefix=settings.topic_prefix,
        step=StepConfig(Thresholds(settings.dozing_days, settings.asleep_days), settings.score_every_minutes * 60),
        lateness=settings.allowed_lateness_seconds,
        live_clock=settings.clock == "live",
    )


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.started = asyncio.Event()
        self.store: RedisStudentStore | None = None
        self.producer: AIOKafkaProducer | None = None
        self.sink: PostgresSink | None = None
        self.scoring: OnlineScoring | None = None
        self.pipeline: Pipeline | None = None

    @property
    def ready(self) -> bool:
        return self.started.is_set()

    async def start(self) -> Pipeline:
        settings = self.settings
        await ensure_topics(settings)
        self.store = RedisStudentStore.from_url(settings.redis_url, settings.topic_prefix)
        self.producer = new_producer(settings)
        await self.producer.start()
        self.sink = await PostgresSink.open(settings.database_url)
        self.scoring = OnlineScoring.connect(settings.redis_url, f"{settings.topic_prefix}scorer:",
                                             settings.asleep_days, on_publish=self.sink.write_model_version)
        self.pipeline = Pipeline(pipeline_config(settings), self.store, self._send, self.scoring, self.sink)
        self.started.set()
        log.info("worker ready: partitions=%d clock=%s", settings.partitions, settings.clock)
        return self.pipeline

    async def stop(self) -> None:
        """Flush what is in flight (alerts, dead letters, rows), give up the trainer's lock, close
        every connection. Each step runs even if an earlier one failed."""
        self.started.clear()
        closers: list[tuple[str, Callable[[], Awaitable[None]] | None]] = [
            ("producer", self.producer.stop if self.producer else None),
            ("scoring", self.scoring.close if self.scoring else None),
            ("postgres", self.sink.close if self.sink else None),
            ("redis", self.store.close if self.store else None),
        ]
        for name, close in closers:
            if close is None:
                continue
            try:
                await close()
            except Exception:
                log.exception("closing %s failed", name)
        await asyncio.to_thread(dispose_shared_engines)  # the read API's pooled connections
        self.producer = self.scoring = self.sink = self.store = self.pipeline = None

    async def _send(self, topic: str, key: bytes, value: bytes) -> None:
        assert self.producer is not None
        await (await self.producer.send(topic, value, key=key))


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Runtime]:
    """A started Runtime, stopped on the way out (for the benchmark and tests)."""
    runtime = Runtime(settings)
    try:
        await runtime.start()
        yield runtime
    finally:
        await runtime.stop()
