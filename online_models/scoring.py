"""The pipeline's model side: score with the newest published version, keep weekly
snapshots, and hand late labels to the single trainer (online_models.trainer).
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

import redis

from online_models.labels import label_from_outcome
from online_models.models import model_input
from online_models.registry import ModelCache, ModelRegistry
from online_models.trainer import LockHeldElsewhere, SnapshotStore, Trainer
from streams import metrics

log = logging.getLogger(__name__)


class OnlineScoring:
    def __init__(self, client: redis.Redis, prefix: str, asleep_days: float,
                 on_publish: Callable[[dict[str, Any]], None] | None = None, publish_every: int = 50) -> None:
        self.asleep_days = asleep_days
        self.registry = ModelRegistry(client, prefix=prefix, on_publish=on_publish)
        self.cache = ModelCache(self.registry)
        self.snapshots = SnapshotStore(client, prefix=prefix)
        self.trainer = Trainer(client, self.registry, self.snapshots, publish_every=publish_every, prefix=prefix)
        self._unsaved: list[tuple[int, int, dict[str, float]]] = []

    @classmethod
    def connect(cls, redis_url: str, prefix: str, asleep_days: float, **kwargs: Any) -> "OnlineScoring":
        return cls(redis.Redis.from_url(redis_url), prefix, asleep_days, **kwargs)

    def score(self, features: dict[str, float]) -> dict[str, Any]:
        models = self.cache.current()
        scores = models.predict(model_input(features))
        metrics.MODEL_VERSION.labels(models.family).set(models.version)
        return {"progress": scores.progress, "p_dropout": scores.p_dropout, "p_success": scores.p_success,
                "model_version": scores.model_version}

    async def snapshot(self, user_id: int, week: int, features: dict[str, float]) -> None:
        """Buffered: written by `flush`, before the batch that took them is committed."""
        self._unsaved.append((user_id, week, model_input(features)))

    async def flush(self) -> None:
        unsaved, self._unsaved = self._unsaved, []
        await asyncio.to_thread(self.snapshots.put_many, unsaved)

    async def label(self, user_id: int, outcome: dict[str, Any], days_inactive: float) -> None:
        label = label_from_outcome(outcome, days_inactive, self.asleep_days)
        await asyncio.to_thread(self.trainer.enqueue, user_id, label)

    async def train_pending(self, limit: int = 1000) -> int:
        """Learn from queued labels if this process is the trainer; returns students learned."""
        return await asyncio.to_thread(self._train_pending, limit)

    def _train_pending(self, limit: int) -> int:
        try:
            learned = self.trainer.drain(limit)
        except LockHeldElsewhere:
            return 0
        metrics.LABELS.inc(learned)
        version = self.trainer.maybe_publish()
        if version is not None:
            for name, value in self.trainer.models.metrics().items():
                metrics.MODEL_ROLLING_ERROR.labels(self.trainer.models.family, name).set(value)
            log.info("published model version %d", version)
        return learned
