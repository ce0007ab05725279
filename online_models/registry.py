"""Model versions in Redis, so one trainer can publish and every worker can hot-swap.

Keys (under `prefix`): `models:seq` (version counter), `models:blob:<v>` (pickled
ScoringModels, what the trainer learns on), `models:scoring:<v>` (its scoring copy, without the windows:
what workers load; versions published before it have none and workers load the blob),
`models:meta:<v>` (JSON metadata), `models:latest` (newest version, only ever moved forward).
Version 0 is never stored: it is the untrained ScoringModels.

A version's metadata has `origin` only when it did not come from the live trainer (e.g. `scorer
bootstrap`: {"kind": "bootstrap", ...}); readers treat a missing `origin` as the live trainer. Its
`metrics_by_week` (course week as a string, JSON's only key type -> that week's metrics) is missing in
versions published before it was recorded; `surrogate` ({"enrolments", "rows"} its label-free guess was
fitted on, online_models.surrogate) in versions that have none.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import redis

from online_models.learners import ScoringModels
from streams import metrics

log = logging.getLogger(__name__)

Metadata = dict[str, Any]

# Move `latest` forward only, so a slow publisher can never roll the workers back.
_ADVANCE_LATEST = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then redis.call('SET', KEYS[1], ARGV[1]) return 1 end
return 0
"""


class UnreadableVersion(Exception):
    """A stored version this code cannot load: published by a newer release (after a rollback), or damaged."""

    def __init__(self, version: int, cause: Exception) -> None:
        super().__init__(f"model version {version} cannot be read by this code ({type(cause).__name__}: {cause})")
        self.version = version


class ModelRegistry:
    def __init__(
        self,
        redis_client: redis.Redis,
        prefix: str = "",
        keep: int = 10,
        on_publish: Callable[[Metadata], None] | None = None,
        new_models: Callable[[], ScoringModels] = ScoringModels,
    ) -> None:
        """`keep` blobs are retained (older ones are deleted, their metadata stays);
        `on_publish` receives each version's metadata row (the lead stores it in Postgres);
        `new_models` builds version 0."""
        self._redis = redis_client
        self._prefix = f"{prefix}models:"
        self._keep = keep
        self._on_publish = on_publish
        self._new_models = new_models
        self._advance = redis_client.register_script(_ADVANCE_LATEST)

    def _key(self, *parts: object) -> str:
        return self._prefix + ":".join(str(p) for p in parts)

    def publish(self, models: ScoringModels, also: Callable[[redis.client.Pipeline], None] | None = None,
                origin: Metadata | None = None, above: int = 0) -> int:
        """Store a new version of `models` (its `version` is set to the new number) and point `latest` at it.

        `also` adds the caller's own writes to the same transaction (the trainer marks what the
        version has learned), so a crash leaves either all of it or none. `origin` says where a
        version not made by the live trainer came from (kept in its metadata). The new number is above
        `above` too: a Redis that lost versions the caller published (a failover to a replica that lacked
        them) would hand their numbers out again, and an alert scored by a lost version would name another."""
        version = int(self._redis.incr(self._key("seq")))
        if version <= above:
            version = above + 1
            self._redis.set(self._key("seq"), version)
        models.version = version
        meta: Metadata = {
            "version": version,
            "family": models.family,
            "n_labels": models.n_labels,
            "published_at": time.time(),
            "metrics": models.metrics(),
            "metrics_by_week": models.metrics_by_week_json(),
        }
        if origin is not None:
            meta["origin"] = origin
        if models.surrogate is not None:
            meta["surrogate"] = {"enrolments": models.surrogate.enrolments, "rows": models.surrogate.rows}
        stacks = models.stack_weights()
        if stacks:
            meta["stacks"] = stacks
        pipe = self._redis.pipeline(transaction=True)
        pipe.set(self._key("blob", version), models.to_bytes())
        pipe.set(self._key("scoring", version), models.to_bytes(scoring_only=True))
        pipe.set(self._key("meta", version), json.dumps(meta))
        if version > self._keep:
            pipe.delete(self._key("blob", version - self._keep), self._key("scoring", version - self._keep))
        self._advance(keys=[self._key("latest")], args=[version], client=pipe)
        if also is not None:
            also(pipe)
        pipe.execute()
        if self._on_publish is not None:
            self._on_publish(meta)
        return version

    def latest_version(self) -> int:
        return int(self._redis.get(self._key("latest")) or 0)

    def metadata(self, version: int) -> Metadata | None:
        """A published version's metadata (kept for every version, also after its blob is dropped)."""
        raw = self._redis.get(self._key("meta", version))
        return None if raw is None else dict(json.loads(raw))

    def load(self, version: int | None = None, scoring_only: bool = False) -> ScoringModels:
        """A version's models (default: the latest); version 0 is a fresh, untrained bundle. `scoring_only`: its
        scoring copy, which answers the same and cannot learn (the full form where it was published without one)."""
        if version is None:
            version = self.latest_version()
        if version == 0:
            return self._new_models()
        blob = self._redis.get(self._key("scoring", version)) if scoring_only else None
        if blob is None:
            blob = self._redis.get(self._key("blob", version))
        if blob is None:
            raise KeyError(f"model version {version} is not stored (only the last {self._keep} are kept)")
        if not isinstance(blob, bytes):
            raise TypeError("model blobs are binary: the registry needs a Redis client that does not decode responses")
        try:
            return ScoringModels.from_bytes(blob)
        except Exception as error:
            raise UnreadableVersion(version, error) from error

    def newest_readable(self, latest: int, report: Callable[[int, Exception], None]) -> ScoringModels:
        """The scoring copy of the newest version up to `latest` that is stored and readable (`report` hears of
        each that is not), else version 0: scoring with an older version, or the priors, beats not scoring at all."""
        for version in range(latest, max(0, latest - self._keep), -1):
            try:
                return self.load(version, scoring_only=True)
            except (UnreadableVersion, KeyError) as error:
                report(version, error)
        return self.load(0)


class ModelCache:
    """What a worker scores with: the newest published version's scoring copy. Scoring reads `current()`, which
    does no I/O; `refresh()` (the training timer's thread) looks for a newer version at most every
    `check_every` seconds, so scoring never waits on Redis."""

    def __init__(
        self, registry: ModelRegistry, check_every: float = 5.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._registry = registry
        self._check_every = check_every
        self._clock = clock
        self._unreadable: set[int] = set()  # versions this process failed to read: not tried again
        self._models = registry.newest_readable(registry.latest_version(), self._cannot_read)
        self._checked_at = clock()

    def current(self) -> ScoringModels:
        return self._models

    def refresh(self) -> None:
        now = self._clock()
        if now - self._checked_at >= self._check_every:
            self._checked_at = now
            latest = self._registry.latest_version()
            if latest != self._models.version and latest not in self._unreadable:
                try:
                    self._models = self._registry.load(latest, scoring_only=True)
                except (UnreadableVersion, KeyError) as error:
                    self._cannot_read(latest, error)

    def _cannot_read(self, version: int, error: Exception) -> None:
        """Scoring goes on with the newest version it can read (the trainer, unable to read this one either,
        learns nothing and keeps the labels queued until one it can read is published); counted and logged,
        once per version: it is not tried again."""
        self._unreadable.add(version)
        metrics.MODEL_UNREADABLE.inc()
        log.error("%s; scoring goes on with the newest version this process can read", error)
