"""The model side of the pipeline: the `Scoring` interface, a no-op one, and the online one.

OnlineScoring scores with the newest published model version, keeps each student's weekly
features for the trainer, and hands late labels to the single trainer (online_models.trainer).
"""
from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

import redis

from online_models.labels import label_from_outcome
from online_models.learners import ScoringModels, model_input
from online_models.registry import ModelCache, ModelRegistry, UnreadableVersion
from online_models.trainer import SURROGATE_EVERY_S, LockHeldElsewhere, OncePerVersion, Trainer
from online_models.weekly_features import WeeklyFeatureStore
from streams import metrics
from streams.contract.outputs import Scores
from streams.redis_clients import redis_client

log = logging.getLogger(__name__)

#: Version 0: the label-free priors, what answers where the version in use fails to score.
PRIORS_ONLY = ScoringModels()


def _report(models: ScoringModels) -> None:
    """The published version's prequential metrics as gauges, global and per course week (an
    undefined one, e.g. AUC while a window holds one class, loses its sample), and its surrogate's rows."""
    for name, value in models.metrics().items():
        metrics.set_or_remove(metrics.MODEL_ROLLING_ERROR, value, models.family, name)
    for week, values in models.metrics_by_week().items():
        for name, value in values.items():
            metrics.set_or_remove(metrics.MODEL_WEEK_METRIC, value, models.family, name, str(week))
    metrics.MODEL_SURROGATE_ROWS.labels(models.family).set(0 if models.surrogate is None else models.surrogate.rows)


class Scoring(Protocol):
    """What the pipeline asks of the models."""

    def score(self, features: dict[str, float]) -> Scores:
        """Predictions for one student's features (as the per-student step's Scorer)."""

    def keep_weeks(self, weeks: list[tuple[str, int, dict[str, float]]]) -> None:
        """Buffer finished course weeks' features, (learner, week, features), for the trainer; `flush`
        makes them durable. A learner is an enrolment (streams.core.documents.learner_key)."""

    async def label(self, learner: str, outcome: dict[str, Any], days_inactive: float) -> None:
        """An outcome arrived: queue the enrolment's label for the trainer."""

    async def flush(self) -> None:
        """Weekly features durable (before the batch that took them is committed)."""

    async def train_pending(self) -> int:
        """Learn from queued labels if this process trains; returns students learned."""

    async def close(self) -> None:
        """Give up the trainer's lock and release connections."""


class NoScoring:
    """Scores nothing and learns nothing (tests, and the pipeline benchmarked without models)."""

    def score(self, features: dict[str, float]) -> Scores:
        return Scores()

    def keep_weeks(self, weeks: list[tuple[str, int, dict[str, float]]]) -> None:
        return None

    async def label(self, learner: str, outcome: dict[str, Any], days_inactive: float) -> None:
        return None

    async def flush(self) -> None:
        return None

    async def train_pending(self) -> int:
        return 0

    async def close(self) -> None:
        return None


class OnlineScoring:
    """`trains`: False in workers when a `scorer train` process does the learning (they then only
    queue labels and pick up the versions it publishes)."""

    def __init__(self, client: redis.Redis, prefix: str, asleep_days: float,
                 on_publish: Callable[[dict[str, Any]], None] | None = None, publish_every: int = 50,
                 trains: bool = True, surrogate_every_s: float = SURROGATE_EVERY_S) -> None:
        self.asleep_days = asleep_days
        self.trains = trains
        self._redis = client
        self.registry = ModelRegistry(client, prefix=prefix, on_publish=on_publish)
        self.cache = ModelCache(self.registry)
        self.weeks = WeeklyFeatureStore(client, prefix=prefix)
        self.trainer = Trainer(client, self.registry, self.weeks, publish_every=publish_every, prefix=prefix,
                               surrogate_every_s=surrogate_every_s)
        self._unsaved: list[tuple[str, int, dict[str, float]]] = []
        #: held by a training round and by `close`: a round still running in its thread when the process stopped
        #: took the trainer's lock again after `close` had given it up, and a standby trainer (or `scorer bootstrap`)
        #: waited out its 30 s
        self._round = threading.Lock()
        self._closed = False
        self._failure_log = OncePerVersion()
        self._waiting_log = OncePerVersion()

    @classmethod
    def connect(cls, redis_url: str, prefix: str, asleep_days: float, **kwargs: Any) -> OnlineScoring:
        return cls(redis_client(redis_url), prefix, asleep_days, **kwargs)

    def score(self, features: dict[str, float]) -> Scores:
        models = self.cache.current()
        metrics.MODEL_VERSION.labels(models.family).set(models.version)
        x = model_input(features)
        try:
            prediction = models.predict(x)
            factors = models.explain(x, prediction.p_dropout)
        except Exception as error:  # noqa: BLE001 - whatever a version does wrong, the student's step goes on
            self._report_failure(models, error)
            prediction = PRIORS_ONLY.predict(x)
            factors = PRIORS_ONLY.explain(x, prediction.p_dropout)
        for score, basis in prediction.basis.to_json().items():
            metrics.SCORES_BY_BASIS.labels(models.family, score, basis).inc()
        return Scores(prediction.progress, prediction.p_dropout, prediction.p_success, prediction.model_version,
                      factors, prediction.basis)

    def _report_failure(self, models: ScoringModels, error: Exception) -> None:
        """Counted every time, logged once per version (OncePerVersion). Scoring is part of the per-student step,
        so a raise there failed the whole batch and, retried, sent the student's valid events to the dead-letter
        topic, their status and alerts stalled with them."""
        metrics.MODEL_SCORING_FAILURES.labels(models.family).inc()
        if self._failure_log.first(models.version):
            log.error("model version %d failed to score a student (%s: %s); the priors answer for whom it fails",
                      models.version, type(error).__name__, error, exc_info=error)

    def keep_weeks(self, weeks: list[tuple[str, int, dict[str, float]]]) -> None:
        self._unsaved.extend((learner, week, model_input(features)) for learner, week, features in weeks)

    async def flush(self) -> None:
        unsaved, self._unsaved = self._unsaved, []
        await asyncio.to_thread(self.weeks.put_many, unsaved)

    async def label(self, learner: str, outcome: dict[str, Any], days_inactive: float) -> None:
        label = label_from_outcome(outcome, days_inactive, self.asleep_days)
        await asyncio.to_thread(self.trainer.enqueue, learner, label)

    async def train_pending(self, limit: int = 1000) -> int:
        if not self.trains:
            await asyncio.to_thread(self.cache.refresh)  # the trainer process publishes
            return 0
        return await asyncio.to_thread(self.train_once, limit)

    def train_once(self, limit: int) -> int:
        """Learn up to `limit` queued labels if this process holds the trainer's lock, and publish
        when due; returns how many enrolments were learned (0 while another process trains, or once closed)."""
        with self._round:
            return 0 if self._closed else self._train_round(limit)

    def _train_round(self, limit: int) -> int:
        self.cache.refresh()  # a version another worker's trainer published
        try:
            learned = self.trainer.drain(limit)
            metrics.LABELS.inc(learned)
            metrics.LABELS_QUEUED.set(self.trainer.queued())
            self.trainer.maybe_refit_surrogate()
            version = self.trainer.maybe_publish()
        except LockHeldElsewhere:
            return 0
        except UnreadableVersion as error:
            self._wait_for_readable(error)
            return 0
        if version is not None:
            _report(self.trainer.models)
            log.info("published model version %d", version)
        return learned

    def _wait_for_readable(self, error: UnreadableVersion) -> None:
        """The latest version is one this code cannot read (a rollback, a damaged blob): learning on top of an
        older one would publish over it, so the trainer learns nothing and the labels stay queued until a
        version it can read is published. Not a failure of Redis, which answered: the callers would report
        Redis down and warn every tick. Logged once per version; the queue's gauge shows the labels waiting."""
        metrics.LABELS_QUEUED.set(self.trainer.queued())
        if self._waiting_log.first(error.version):
            log.error("%s; the trainer learns nothing until a version this code can read is published, and the "
                      "labels stay queued", error)

    async def close(self) -> None:
        def release() -> None:
            with self._round:  # after the round in flight, if any
                self._closed = True
                try:
                    self.trainer.release()
                finally:
                    self._redis.close()

        await asyncio.to_thread(release)
