"""Everything a worker process connects to, built once from Settings and shared by the consumer,
the timer and the HTTP views."""
from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaProducer

from storage.student_store import StudentStore
from streams.kafka import ensure_topics, new_producer
from streams.pipeline import Pipeline
from streams.settings import Settings

log = logging.getLogger(__name__)


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.started = asyncio.Event()
        self.store: StudentStore | None = None
        self.producer: AIOKafkaProducer | None = None
        self.pipeline: Pipeline | None = None
        self.scoring = None

    @property
    def ready(self) -> bool:
        return self.started.is_set()

    async def start(self) -> None:
        from online_models.scoring import OnlineScoring
        from storage.sink import PostgresSink

        settings = self.settings
        await ensure_topics(settings)
        self.store = StudentStore.from_url(settings.redis_url, settings.topic_prefix)
        self.producer = new_producer(settings)
        await self.producer.start()
        sink = await PostgresSink.open(settings.database_url)
        self.scoring = OnlineScoring.connect(settings.redis_url, f"{settings.topic_prefix}scorer:",
                                             settings.asleep_days, on_publish=sink.write_model_version)
        self.pipeline = Pipeline(settings, self.store, self._send, scoring=self.scoring, sink=sink)
        self.started.set()
        log.info("worker ready: partitions=%d clock=%s", settings.partitions, settings.clock)

    async def stop(self) -> None:
        """Flush what is in flight (alerts, dead letters) and close connections."""
        self.started.clear()
        if self.producer is not None:
            await self.producer.stop()
        if self.store is not None:
            await self.store.close()

    async def _send(self, topic: str, key: bytes, value: bytes) -> None:
        assert self.producer is not None
        await (await self.producer.send(topic, value, key=key))
