"""Delayed labels: keep each student's weekly feature snapshots until their outcome arrives,
then learn from all of them in one go.

A label arrives when a module ends, weeks after the features that should predict it. The
worker stores one snapshot per (student, course week); when the outcome comes, the Trainer
learns (x_week, label) for every stored week, so the one model learns what week-1 students
who ended like this looked like, and week-5 ones, and so on.

Exactly one process trains (a Redis lock, SET NX PX, renewed on use); the others only read
published versions through `ModelCache`.
"""
from __future__ import annotations

import json
import uuid

import redis

from online_models.labels import Label
from online_models.models import ScoringModels
from online_models.registry import ModelRegistry

#: Snapshots of students whose label never arrives expire instead of piling up.
SNAPSHOT_TTL_S = 400 * 86400

# Extend / drop the lock only if we still own it.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class SnapshotStore:
    """One Redis hash per student: field = course week, value = that week's model input (JSON).
    Writing the same week again overwrites it, so replays and redeliveries are harmless."""

    def __init__(self, redis_client: redis.Redis, prefix: str = "") -> None:
        self._redis = redis_client
        self._prefix = f"{prefix}snapshots:"

    def _key(self, user_id: int) -> str:
        return f"{self._prefix}{user_id}"

    def put(self, user_id: int, week: int, x: dict[str, float]) -> None:
        key = self._key(user_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(key, str(week), json.dumps(x))
        pipe.expire(key, SNAPSHOT_TTL_S)
        pipe.execute()

    def pop_all(self, user_id: int) -> dict[int, dict[str, float]]:
        """All of a student's snapshots, removed atomically (by week, ascending)."""
        key = self._key(user_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.hgetall(key)
        pipe.delete(key)
        raw, _ = pipe.execute()
        return {int(week): json.loads(x) for week, x in sorted(raw.items(), key=lambda item: int(item[0]))}


class LockHeldElsewhere(RuntimeError):
    """Another process is the trainer; this one must not touch the model."""


class Trainer:
    """The single writer of the model.

    Idempotency: a student's id is added to a Redis set *before* learning (SADD is the claim),
    so a redelivered outcome is skipped. The price is at-most-once: a crash between the claim
    and the next publish loses those labels' learning, which an online model shrugs off,
    whereas training twice on the same student would bias it silently.
    """

    def __init__(
        self,
        redis_client: redis.Redis,
        registry: ModelRegistry,
        snapshots: SnapshotStore,
        publish_every: int = 50,
        prefix: str = "",
        lock_ttl_ms: int = 30_000,
    ) -> None:
        self._redis = redis_client
        self._registry = registry
        self._snapshots = snapshots
        self._publish_every = publish_every
        self._lock_key = f"{prefix}trainer:lock"
        self._trained_key = f"{prefix}trainer:trained"
        self._lock_ttl_ms = lock_ttl_ms
        self._token = uuid.uuid4().hex
        self._renew = redis_client.register_script(_RENEW)
        self._release = redis_client.register_script(_RELEASE)
        self._holding = False
        self._labels_since_publish = 0
        self.models: ScoringModels = registry.load()

    def ensure_lock(self) -> None:
        """Renew our lock or take a free one; raise LockHeldElsewhere if another trainer has it.
        On (re)gaining the lock, switch to the latest version if someone else published meanwhile."""
        if self._holding and self._renew(keys=[self._lock_key], args=[self._token, self._lock_ttl_ms]):
            return
        self._holding = bool(self._redis.set(self._lock_key, self._token, nx=True, px=self._lock_ttl_ms))
        if not self._holding:
            raise LockHeldElsewhere(self._lock_key)
        if self._registry.latest_version() != self.models.version:
            self.models = self._registry.load()
            self._labels_since_publish = 0

    def release(self) -> None:
        """Give the lock up (on shutdown) so a standby trainer can take over at once."""
        if self._holding:
            self._release(keys=[self._lock_key], args=[self._token])
            self._holding = False

    def on_label(self, user_id: int, label: Label) -> bool:
        """Learn from every stored weekly snapshot of `user_id`; False if this student was already trained."""
        self.ensure_lock()
        if not self._redis.sadd(self._trained_key, str(user_id)):
            return False
        snapshots = list(self._snapshots.pop_all(user_id).values())
        if snapshots:
            self.models.learn_many(snapshots, label)
        self._labels_since_publish += 1
        return True

    def maybe_publish(self) -> int | None:
        """Publish a new version once `publish_every` labels have been learned since the last one."""
        if self._labels_since_publish < self._publish_every:
            return None
        self.ensure_lock()
        version = self._registry.publish(self.models)
        self._labels_since_publish = 0
        return version
