"""Everything a worker process connects to, built from Settings on start and closed on stop.

The consumer, the training loop and the HTTP views share one Runtime. `start` builds the
adapters and hands them to the pipeline; `stop` closes every one of them, whatever state
`start` reached, so nothing leaks (the trainer's lock is released for a standby at once).
"""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import cast

from aiokafka import AIOKafkaProducer

from features.activity_status import Thresholds
from features.eventtime import DAY, zone_named
from features.hypotheses import Language
from online_models.scoring import OnlineScoring
from storage.postgres import queries
from storage.postgres.db import dispose_shared_engines
from storage.postgres.sink import PostgresSink
from storage.students import RedisStudentStore
from streams import failures
from streams.core.step import StepConfig
from streams.kafka.admin import ensure_topics, new_producer
from streams.kafka.consumer import BatchConsumer, summarize
from streams.pipeline import Pipeline, PipelineConfig
from streams.settings import Settings

log = logging.getLogger(__name__)

#: A readiness check that takes longer than this counts as failed (a hung broker or database).
CHECK_TIMEOUT_SECONDS = 2.0


def pipeline_config(settings: Settings) -> PipelineConfig:
    """The part of the settings the pipeline uses."""
    return PipelineConfig(
        topic_prefix=settings.topic_prefix,
        step=StepConfig(Thresholds(settings.dozing_days, settings.asleep_days), settings.score_every_minutes * 60,
                        grace=settings.course_grace_days * DAY, at_risk_on=settings.at_risk_threshold,
                        learn_after=None if settings.learn_outcomes_after_days < 0
                        else settings.learn_outcomes_after_days * DAY,
                        at_risk_off=settings.at_risk_clear, online_only=settings.alerted_students == "online",
                        language=cast("Language", settings.reason_language),
                        holdout_share=settings.holdout_share, holdout_salt=settings.holdout_salt),
        lateness=settings.allowed_lateness_seconds,
        live_clock=settings.clock == "live",
        max_skew=settings.max_clock_skew_minutes * 60,
        zone=zone_named(settings.school_time_zone),
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
        self.consumer: BatchConsumer | None = None

    @property
    def ready(self) -> bool:
        return self.started.is_set()

    async def start(self) -> Pipeline:
        settings = self.settings
        await ensure_topics(settings)
        self.store = RedisStudentStore.from_url(settings.redis_url, settings.topic_prefix, settings.redis_wait_replicas,
                                                settings.redis_wait_timeout_ms)
        eviction = await self.store.may_evict()
        if eviction is not None and eviction[0]:
            log.warning("Redis may evict keys (maxmemory-policy %s, with a memory limit): students' documents and "
                        "queued labels would vanish without a word once memory runs short; set noeviction",
                        eviction[1])
        self.producer = new_producer(settings)
        await self.producer.start()
        self.sink = await PostgresSink.open(settings.database_url)
        self.scoring = OnlineScoring.connect(settings.redis_url, settings.models_key_prefix,
                                             settings.asleep_days, on_publish=self.sink.write_model_version,
                                             trains=settings.trainer == "inline",
                                             surrogate_every_s=settings.surrogate_every_minutes * 60)
        self.pipeline = Pipeline(pipeline_config(settings), self.store, self._send, self.scoring, self.sink)
        self.consumer = BatchConsumer(settings, self.pipeline, self)
        self.started.set()
        log.info("worker ready: partitions=%d clock=%s", settings.partitions, settings.clock)
        return self.pipeline

    async def start_when_possible(self) -> Pipeline:
        """`start`, retried with backoff until every dependency answers: a worker started while
        Redis, Postgres or the broker is down waits for it (not ready meanwhile) instead of dying."""
        for attempt in itertools.count():
            try:
                return await self.start()
            except Exception as error:  # noqa: BLE001 - reported, then tried again
                await self.stop()
                pause = min(30.0, 2.0 ** attempt)
                log.warning("worker could not start (%s: %s); retrying in %.0f s", type(error).__name__,
                            summarize(error), pause)
                await asyncio.sleep(pause)
        raise AssertionError("unreachable")

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
        self.producer = self.scoring = self.sink = self.store = self.pipeline = self.consumer = None

    async def train(self) -> None:
        """One round of the training loop: learn queued labels, pick up new model versions. A failure
        (Redis down, say) is logged and retried on the next round: it must not stop the worker."""
        if not self.ready or self.scoring is None:
            return
        try:
            await self.scoring.train_pending()
        except Exception as error:  # noqa: BLE001 - logged, counted, retried next tick
            failures.training_round(error)
        else:
            failures.training_round(None)

    # -- what the consumer asks (streams.kafka.consumer.Dependencies) ----------------------------
    dependency_of = staticmethod(failures.dependency_of)

    async def healthy(self) -> bool:
        checks = await self.readiness()
        return all(checks[name] for name in ("kafka", "redis", "postgres"))

    async def readiness(self) -> dict[str, bool]:
        """Can this worker do its job right now? Each check asks the dependency itself (with a
        timeout), not a cached view: started, partitions assigned by the group (an empty share
        counts: more workers than partitions), the broker, Redis and Postgres answering."""
        checks = {"started": self.ready,
                  "assigned": self.consumer is not None and self.consumer.has_assignment,
                  "kafka": False, "redis": False, "postgres": False}
        probes = {
            "kafka": self.producer.client.fetch_all_metadata() if self.producer else None,
            "redis": self.store.ping() if self.store else None,
            "postgres": asyncio.to_thread(queries.ping, self.settings.database_url) if self.ready else None,
        }
        for name, probe in probes.items():
            if probe is None:
                continue
            try:
                checks[name] = bool(await asyncio.wait_for(probe, CHECK_TIMEOUT_SECONDS))
            except Exception:  # noqa: BLE001 - any failure or timeout: not ready
                checks[name] = False
        return checks

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
