"""The pipeline's model side: score with the newest published version, keep weekly
snapshots, and hand late labels to the single trainer.

Labels go through a Redis list so any worker can receive an outcome while only the process
holding the trainer lock learns from it (see online_models.trainer).
"""
from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Callable

import redis

from online_models.labels import label_from_outcome
from online_models.models import model_input
from online_models.registry import ModelCache, ModelRegistry
from online_models.trainer import LockHeldElsewhere, SnapshotStore, Trainer
from streams import metrics

log = logging.getLogger(__name__)
DAY = 86_400.0


class OnlineScoring:
    def __init__(self, client: redis.Redis, prefix: str, asleep_days: float,
                 on_publish: Callable[[dict[str, Any]], None] | None = None, publish_every: int = 50) -> None:
        self.redis = client
        self.asleep_days = asleep_days
        self.registry = ModelRegistry(client, prefix=prefix, on_publish=on_publish)
        self.cache = ModelCache(self.registry)
        self.snapshots = SnapshotStore(client, prefix=prefix)
        self.trainer = Trainer(client, self.registry, self.snapshots, publish_every=publish_every, prefix=prefix)
        self._queue = f"{prefix}labels:pending"

    @classmethod
    def connect(cls, redis_url: str, prefix: str, asleep_days: float, **kwargs: Any) -> "OnlineScoring":
        return cls(redis.Redis.from_url(redis_url), prefix, asleep_days, **kwargs)

    def score(self, features: dict[str, float]) -> dict[str, Any]:
        models = self.cache.current()
        scores = models.predict(_x(features))
        metrics.MODEL_VERSION.labels(models.family).set(models.version)
        return {"progress": scores.progress, "p_dropout": scores.p_dropout, "p_success": scores.p_success,
                "model_version": scores.model_version}

    async def snapshot(self, user_id: int, week: int, features: dict[str, float]) -> None:
        await asyncio.to_thread(self.snapshots.put, user_id, week, _x(features))

    async def label(self, user_id: int, outcome: dict[str, Any], days_inactive: float) -> None:
        label = label_from_outcome(outcome, days_inactive, self.asleep_days)
        payload = json.dumps({"user_id": user_id, "progress": label.progress, "dropout": label.dropout,
                              "success": label.success})
        await asyncio.to_thread(self.redis.rpush, self._queue, payload)

    async def train_pending(self, limit: int = 1000) -> int:
        """Learn from queued labels if this process is the trainer; returns labels learned."""
        return await asyncio.to_thread(self._train_pending, limit)

    def _train_pending(self, limit: int) -> int:
        from online_models.labels import Label

        try:
            self.trainer.ensure_lock()
        except LockHeldElsewhere:
            return 0
        learned = 0
        for _ in range(limit):
            raw = self.redis.lpop(self._queue)
            if raw is None:
                break
            item = json.loads(raw)
            if self.trainer.on_label(item["user_id"], Label(item["progress"], item["dropout"], item["success"])):
                learned += 1
                metrics.LABELS.inc()
        version = self.trainer.maybe_publish()
        if version is not None:
            for name, value in self.trainer.models.metrics().items():
                metrics.MODEL_ROLLING_ERROR.labels(self.trainer.models.family, name).set(value)
            log.info("published model version %d", version)
        return learned


def _x(features: dict[str, float]) -> dict[str, float]:
    return model_input(features)
