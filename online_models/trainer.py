"""Delayed labels: learn from each student's weekly features (online_models.weekly_features)
when their outcome arrives, all weeks in one go.

A label arrives when a module ends, weeks after the features that should predict it; when the
outcome comes, the Trainer learns (x_week, label) for every stored week, so the one model
learns what week-1 students who ended like this looked like, and week-5 ones, and so on.

Exactly one process trains (a Redis lock, SET NX PX, renewed on use); the others only read
published versions through `ModelCache`. Learning is exactly-once across crashes: labels wait in
a Redis queue and weekly features stay where they are until a published version contains them; the
publish, "these students are trained", the queue trim and the weekly-features clean-up are one
transaction. A trainer that dies before publishing leaves all of it for its successor, which
relearns from the last published version.

Before outcomes arrive, the stored weeks still teach: every SURROGATE_EVERY_S the trainer refits the
label-free guess on a sample of them (online_models.surrogate) and publishes it with the next version.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Collection, Iterable
from typing import NamedTuple

import redis

from online_models.labels import Label
from online_models.learners import ScoringModels
from online_models.registry import ModelRegistry
from online_models.surrogate import MAX_ENROLMENTS
from online_models.weekly_features import WeeklyFeatureStore
from streams import metrics
from streams.core.documents import learner_cohort
from streams.lease import RedisLease
from streams.settings import redis_text

log = logging.getLogger(__name__)

#: Wall seconds between refits of the surrogate (online_models.surrogate): a fit of at most MAX_ENROLMENTS
#: enrolments takes about a second of the trainer's CPU, and a school's running flows change by the day.
SURROGATE_EVERY_S = 600.0


class OncePerVersion:
    """Says yes once per model version: failures are counted every time and logged once per version, since a
    version that fails for everyone would flood the log."""

    def __init__(self) -> None:
        self._version: int | None = None

    def first(self, version: int) -> bool:
        if self._version == version:
            return False
        self._version = version
        return True


class TrainerKeys(NamedTuple):
    """The trainer's Redis keys under the workers' prefix: its lock; the learned enrolments (a label that
    comes again is skipped); the labels waiting to be learned and those the model failed to learn, each
    entry `[learner, progress, dropout, success]` as JSON."""

    lock: str
    trained: str
    queue: str
    failed: str

    @classmethod
    def under(cls, prefix: str) -> TrainerKeys:
        return cls(*(f"{prefix}trainer:{name}" for name in ("lock", "trained", "labels", "labels_failed")))


def _entries(client: redis.Redis, key: str) -> list[str]:
    """A label list's entries as text (the client does not decode replies)."""
    return [redis_text(raw) for raw in client.lrange(key, 0, -1)]


def _learner_of(item: str) -> str:
    return str(json.loads(item)[0])


class StudentEntries(NamedTuple):
    """A student's entries in the trainer's keys: enrolments learned, labels failed and labels queued (as
    stored: JSON text)."""

    trained: list[str]
    failed: list[str]
    queued: list[str]


def student_entries(client: redis.Redis, keys: TrainerKeys, user_ids: Collection[int]) -> dict[int, StudentEntries]:
    """Each student's entries, in one pass over each key whatever their number."""
    wanted = {str(user_id): user_id for user_id in user_ids}

    def by_student(items: Iterable[tuple[str, str]]) -> dict[int, list[str]]:
        """(learner, stored item) pairs grouped by the wanted student the learner is an enrolment of."""
        mine: dict[int, list[str]] = {user_id: [] for user_id in wanted.values()}
        for learner, item in items:
            if (user_id := wanted.get(learner.split(":", 1)[0])) is not None:
                mine[user_id].append(item)
        return mine

    trained = by_student((text, text) for text in map(redis_text, client.sscan_iter(keys.trained, count=1000)))
    failed, queued = (by_student((_learner_of(item), item) for item in _entries(client, key))
                      for key in (keys.failed, keys.queue))
    return {user_id: StudentEntries(sorted(trained[user_id]), failed[user_id], queued[user_id])
            for user_id in wanted.values()}


def forget_learners(client: redis.Redis, keys: TrainerKeys, user_ids: Collection[int],
                    dry_run: bool = False) -> dict[int, tuple[int, int]]:
    """Take the students' enrolments out of the trained set and the failed labels; per student, (entries
    removed, labels still queued). A queued label is left where it is, since the trainer counts the queue by
    position while it learns: it is learned within a round, from no weekly features once those are gone, and
    its enrolment enters the trained set again (`scorer forget` run again after that takes it out)."""
    found = student_entries(client, keys, user_ids)
    if not dry_run:
        trained = [learner for entries in found.values() for learner in entries.trained]
        for start in range(0, len(trained), 1000):
            client.srem(keys.trained, *trained[start:start + 1000])
        for item in {item for entries in found.values() for item in entries.failed}:
            client.lrem(keys.failed, 0, item)
    return {user_id: (len(entries.trained) + len(entries.failed), len(entries.queued))
            for user_id, entries in found.items()}


class LockHeldElsewhere(RuntimeError):
    """Another process is the trainer; this one must not touch the model."""


class Trainer:
    """The single writer of the model; see the module docstring for why learning is exactly-once."""

    def __init__(
        self,
        redis_client: redis.Redis,
        registry: ModelRegistry,
        weeks: WeeklyFeatureStore,
        publish_every: int = 50,
        prefix: str = "",
        lock_ttl_ms: int = 30_000,
        publish_after_s: float = 30.0,
        surrogate_every_s: float = SURROGATE_EVERY_S,
    ) -> None:
        self._redis = redis_client
        self._registry = registry
        self._weeks = weeks
        self._publish_every = publish_every
        self._publish_after_s = publish_after_s
        lock_key, self._trained_key, self._queue_key, self._failed_key = TrainerKeys.under(prefix)
        self._lease = RedisLease(redis_client, lock_key, lock_ttl_ms)
        self._learned: set[str] = set()  # learners in self.models but not yet in a published version
        self._queued_read = 0  # queue entries this trainer has consumed since the last publish
        self._set_aside: list[bytes | str] = []  # consumed, failed to learn: to _failed_key at the publish
        self._failure_log = OncePerVersion()
        self._first_unpublished_at: float | None = None
        self._surrogate_every_s = surrogate_every_s
        self._surrogate_at: float | None = None  # monotonic time of the last refit attempt
        self._refitted = False  # self.models has a surrogate no published version has
        self._published = 0  # the newest version this process published: the next goes above it, whatever Redis lost
        #: the latest published version replaces it when this process takes the lock (`ensure_lock`): a process
        #: that never trains never reads a version, and one it cannot read stops no worker from starting
        self.models: ScoringModels = registry.load(0)

    def ensure_lock(self) -> None:
        """Renew our lock or take a free one; raise LockHeldElsewhere if another trainer has it.
        On (re)gaining the lock, start again from the latest published version: whatever was learned
        and not published is still queued and will be learned again."""
        if self._lease.renew():
            return
        if not self._lease.take():
            raise LockHeldElsewhere(self._lease.key)
        if self._learned or self._registry.latest_version() != self.models.version:
            self.models = self._load_or_let_go(None)
        self._forget_unpublished()

    def _load_or_let_go(self, version: int | None) -> ScoringModels:
        """The version to learn on top of (default: the latest). One it cannot read (UnreadableVersion: a
        rollback, a damaged blob) or a Redis failure gives the lock up: learning on top of another would publish
        over it, and whoever takes the lock next loads again; the labels stay queued."""
        try:
            return self._registry.load(version)
        except Exception:
            self.release()
            raise

    def _forget_unpublished(self) -> None:
        """Nothing learned since the last publish: just after one, or starting over from a published version,
        whatever was learned since being still queued (a publish trims the queue with the version that learned
        it, in one transaction), so the next drain reads the queue from its start."""
        self._learned.clear()
        self._set_aside.clear()
        self._queued_read = 0
        self._first_unpublished_at = None
        self._refitted = False

    def _check_published(self) -> None:
        """Start over from the latest version where it is not the one this process learned on top of. A failover
        to a replica that had not received a publish (Redis replicates asynchronously) takes the version back,
        and with it the transaction's trim of the labels it learned: they are queued again, and learning them on
        top of the lost version would learn them twice. (A newer one should not appear while this process holds
        the lock, which `scorer bootstrap` takes too; learning on top of the older would publish over it.)"""
        latest = self._registry.latest_version()
        if latest == self.models.version:
            return
        lost = latest < self.models.version
        if lost:
            metrics.MODEL_VERSIONS_LOST.inc()
        log.warning("Redis holds model version %d where this trainer learned on top of version %d (%s); learning "
                    "again from version %d", latest, self.models.version,
                    "a failover or a restore lost a publish" if lost else "another process published", latest)
        self.models = self._load_or_let_go(latest)
        self._forget_unpublished()

    def release(self) -> None:
        """Give the lock up (on shutdown) so a standby trainer can take over at once."""
        self._lease.release()

    def enqueue(self, learner: str, label: Label) -> None:
        """Any process: hand a label to whichever process is the trainer."""
        self._redis.rpush(self._queue_key, json.dumps([learner, label.progress, label.dropout, label.success]))

    def drain(self, limit: int = 1000) -> int:
        """Learn from queued labels (lock holder only); returns how many students were learned. A label whose
        learning raises is set aside (`_set_aside_label`) and the rest go on: before, the whole batch counted as
        consumed when read, so an exception left the rest of it unlearned, and the next publish trimmed them."""
        self.ensure_lock()
        self._check_published()
        raw = self._redis.lrange(self._queue_key, self._queued_read, self._queued_read + limit - 1)
        learned = 0
        for item in raw:
            try:
                learner, progress, dropout, success = json.loads(item)
                learned += self.on_label(str(learner), Label(progress, dropout, success))
            except (LockHeldElsewhere, redis.RedisError):
                raise  # not the label's fault: the next drain reads it again (its Redis reads come before learning)
            except Exception as error:  # noqa: BLE001 - one label that cannot be learned must not stop the others
                self._set_aside_label(item, error)
            self._queued_read += 1
        return learned

    def _set_aside_label(self, item: bytes | str, error: Exception) -> None:
        """Keep a label the model failed to learn for a replay once the cause is fixed: the publish that trims
        it from the queue appends it to `<prefix>trainer:labels_failed` (RPOPLPUSH it back to
        `<prefix>trainer:labels`); its enrolment's weekly features stay stored. Whatever the failing
        `learn_weeks` changed before it raised stays in the model. Counted every time, logged once per version
        (OncePerVersion), without the enrolment's key."""
        self._set_aside.append(item)
        self._first_unpublished_at = self._first_unpublished_at or time.monotonic()
        metrics.LABELS_SET_ASIDE.inc()
        if self._failure_log.first(self.models.version):
            log.error("a label could not be learned on top of model version %d (%s: %s); set aside in %s",
                      self.models.version, type(error).__name__, error, self._failed_key, exc_info=error)

    def queued(self) -> int:
        """Labels waiting for this trainer: how far learning trails the outcomes."""
        return max(0, int(self._redis.llen(self._queue_key)) - self._queued_read)

    def on_label(self, learner: str, label: Label) -> bool:
        """Learn from every stored course week of `learner` (an enrolment); False if it was already learned."""
        self.ensure_lock()
        if learner in self._learned or self._redis.sismember(self._trained_key, learner):
            return False
        weeks = list(self._weeks.read_all(learner).values())
        if weeks:
            self.models.learn_weeks(weeks, label, *learner_cohort(learner))
        self._learned.add(learner)
        self._first_unpublished_at = self._first_unpublished_at or time.monotonic()
        return True

    def maybe_refit_surrogate(self) -> bool:
        """Every `surrogate_every_s`, refit the label-free guess on a sample of the stored weeks of the
        enrolments not learned yet (a learned one's weeks stay stored until the version that learned them
        is published); the next `maybe_publish` publishes it. True if it was refit."""
        now = time.monotonic()
        if self._surrogate_at is not None and now - self._surrogate_at < self._surrogate_every_s:
            return False
        self.ensure_lock()
        self._surrogate_at = now
        if self.models.refit_surrogate(self._weeks.sample(MAX_ENROLMENTS, skip=self._learned)) is None:
            return False
        self._refitted = True
        return True

    def mark_trained(self, pipe: redis.client.Pipeline, learners: list[str]) -> None:
        """In `pipe` (a publishing transaction): these enrolments are learned; their labels, should
        they arrive, are skipped."""
        if learners:
            pipe.sadd(self._trained_key, *learners)

    def _unpublished(self) -> bool:
        """Something learned, set aside or refit that no published version has."""
        return bool(self._learned or self._refitted or self._set_aside)

    def maybe_publish(self) -> int | None:
        """Publish once `publish_every` students were learned, or any were learned `publish_after_s` ago,
        or the surrogate was refit."""
        if not self._unpublished():
            return None
        waited = time.monotonic() - (self._first_unpublished_at or time.monotonic())
        done = len(self._learned) + len(self._set_aside)
        if not self._refitted and done < self._publish_every and waited < self._publish_after_s:
            return None
        self.ensure_lock()
        self._check_published()
        if not self._unpublished():
            return None  # started over: what it had learned is queued again
        learned, consumed, set_aside = sorted(self._learned), self._queued_read, list(self._set_aside)

        def mark_learned(pipe: redis.client.Pipeline) -> None:
            self.mark_trained(pipe, learned)
            pipe.ltrim(self._queue_key, consumed, -1)
            if learned:  # none when only the surrogate was refit
                pipe.delete(*(self._weeks.key(learner) for learner in learned))
            if set_aside:
                pipe.rpush(self._failed_key, *set_aside)

        version = self._registry.publish(self.models, also=mark_learned, above=self._published)
        self._published = version
        self._forget_unpublished()
        return version
