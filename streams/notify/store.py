"""`scorer notify`'s memory in Redis: what it did with each alert id, and the alerts held for quiet hours.

One key per alert id holds its state, kept DEDUPE_TTL_SECONDS (the worker resends an alert only
after a crash, within minutes; a month covers any redelivery):

- `delivering`: a send began. Found again after a crash: the send is repeated with the same
  Idempotency-Key (the receiver can tell), never skipped (nothing is lost).
- `held`: waiting in a partition's held set (a sorted set by release time, beside a hash of the
  alerts) for the end of its recipient's quiet hours, or parked there until its next try when the
  webhook failed on it; or, in a set of its own, for its partition to be caught up (read from a
  backlog). So a hold survives restarts and its Kafka offset can be committed at once. Each
  student's held ids are also listed under their id (read with the alert's state in one MGET: the
  common case, nothing held, costs no extra round trip), so a later status can supersede them.
- final (`delivered`, `held_out`, `suppressed`, `dead_lettered`, `superseded`: held, then dropped for
  a later status of its enrolment): a duplicate is skipped.

Held alerts are kept per alerts-topic partition: the consumer that owns a partition releases its
held alerts, so ownership follows the group's assignment with no lock of its own.
"""
from __future__ import annotations

from collections.abc import Collection
from typing import Any

import orjson
from redis.asyncio import Redis

from storage.replication import wait_for_replicas
from streams.settings import redis_literal, redis_text

DEDUPE_TTL_SECONDS = 30 * 86_400
DELIVERING, HELD = "delivering", "held"
SUPERSEDED, STALE = "superseded", "stale"
FINAL = frozenset({"delivered", "held_out", "suppressed", "dead_lettered", SUPERSEDED, STALE})


class NotifyStore:
    def __init__(self, redis: Redis, prefix: str, wait_replicas: int = 0, wait_timeout_ms: int = 1000) -> None:
        self.redis = redis
        self._prefix = f"{prefix}notify:"
        self.wait_replicas = wait_replicas
        self.wait_timeout_ms = wait_timeout_ms
        self._held_alerts = f"{self._prefix}held-alerts"

    def _key(self, alert_id: str) -> str:
        return f"{self._prefix}alert:{alert_id}"

    def _held(self, partition: int) -> str:
        return f"{self._prefix}held:{partition}"

    def _catching_up(self, partition: int) -> str:
        """The partition's messages read from a backlog: apart, so that while they wait for the partition
        to be caught up they never stand in front of a due quiet-hours or parked one."""
        return f"{self._prefix}held:{partition}:catch-up"

    def _held_of(self, user_id: int) -> str:
        return f"{self._prefix}held-of:{user_id}"

    async def replicated(self) -> None:
        """Once as many Redis replicas as asked hold what was written so far (none asked: at once); else
        storage.replication.NotReplicated. Asked before a partition's offset is committed: an alert held for
        the morning lives only here from then on."""
        if self.wait_replicas > 0:
            await wait_for_replicas(self.redis, f"{self._prefix}replicated", self.wait_replicas,
                                    self.wait_timeout_ms)

    async def state(self, alert_id: str) -> str | None:
        value = await self.redis.get(self._key(alert_id))
        return None if value is None else redis_text(value)

    async def mark(self, alert_id: str, state: str) -> None:
        await self.redis.set(self._key(alert_id), state, ex=DEDUPE_TTL_SECONDS)

    async def hold(self, alert_id: str, partition: int, release_at: float, entry: dict[str, Any], *,
                   listed: bool = False, catching_up: bool = False) -> None:
        """Keep the alert until `release_at` (UTC epoch), and with `catching_up` until its partition is
        caught up too; all or nothing (one MULTI). `listed`: it is held already (parked again), so its
        student's list of held ids has it."""
        waiting, other = self._held(partition), self._catching_up(partition)
        if catching_up:
            waiting, other = other, waiting
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self._key(alert_id), HELD, ex=DEDUPE_TTL_SECONDS)
            pipe.hset(self._held_alerts, alert_id, orjson.dumps(entry))
            pipe.zadd(waiting, {alert_id: release_at})
            pipe.zrem(other, alert_id)
            if not listed:
                pipe.append(self._held_of(_student(entry)), f"{alert_id} ")
            pipe.expire(self._held_of(_student(entry)), DEDUPE_TTL_SECONDS)
            await pipe.execute()

    async def state_and_held(self, alert_id: str, user_id: Any) -> tuple[str | None, list[str]]:
        """An alert's state, and the ids held for its student (some perhaps released since), in one MGET."""
        state, held = await self.redis.mget(self._key(alert_id), self._held_of(user_id))
        return None if state is None else redis_text(state), redis_text(held).split() if held else []

    async def held_entries(self, alert_ids: list[str]) -> list[tuple[str, dict[str, Any]]]:
        """Those of the alerts still held, with their entries."""
        entries = await self.redis.hmget(self._held_alerts, alert_ids) if alert_ids else []
        return [(i, orjson.loads(e)) for i, e in zip(alert_ids, entries) if e is not None]

    async def supersede(self, alert_ids: list[str], partition: int, user_id: Any, *, none_left: bool) -> None:
        """Drop held alerts for good (a later status of their enrolment made them wrong): never sent, and a
        redelivery of one is a duplicate. With `none_left`, the student's list of held ids goes too."""
        if not alert_ids and not none_left:
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            if alert_ids:
                pipe.zrem(self._held(partition), *alert_ids)
                pipe.zrem(self._catching_up(partition), *alert_ids)
                pipe.hdel(self._held_alerts, *alert_ids)
                for alert_id in alert_ids:
                    pipe.set(self._key(alert_id), SUPERSEDED, ex=DEDUPE_TTL_SECONDS)
            if none_left:
                pipe.delete(self._held_of(user_id))
            await pipe.execute()

    async def due(self, partition: int, now: float, *, caught_up: bool = False,
                  limit: int = 100) -> list[tuple[str, dict[str, Any]]]:
        """Held alerts of `partition` due at `now` (quiet hours over, next try due), earliest first;
        `caught_up`: those that waited for the partition to be caught up instead."""
        waiting = self._catching_up(partition) if caught_up else self._held(partition)
        ids = [redis_text(i) for i in await self.redis.zrangebyscore(waiting, "-inf", now, 0, limit)]
        if not ids:
            return []
        entries = await self.redis.hmget(self._held_alerts, ids)
        orphans = [i for i, e in zip(ids, entries) if e is None]  # none expected (hold is one MULTI)
        if orphans:
            await self.redis.zrem(waiting, *orphans)
        return [(i, orjson.loads(e)) for i, e in zip(ids, entries) if e is not None]

    async def release(self, alert_id: str, partition: int) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(self._held(partition), alert_id)
            pipe.zrem(self._catching_up(partition), alert_id)
            pipe.hdel(self._held_alerts, alert_id)
            await pipe.execute()

    async def held_for(self, user_ids: Collection[int]) -> dict[int, dict[str, dict[str, Any]]]:
        """Each student's alerts held for quiet hours, by alert id (one pass over the held alerts)."""
        mine: dict[int, dict[str, dict[str, Any]]] = {user_id: {} for user_id in user_ids}
        async for alert_id, raw in self.redis.hscan_iter(self._held_alerts):
            entry = orjson.loads(raw)
            if (held := mine.get(_student(entry))) is not None:
                held[redis_text(alert_id)] = entry
        return {user_id: dict(sorted(held.items())) for user_id, held in mine.items()}

    async def forget(self, user_ids: Collection[int], dry_run: bool = False) -> dict[int, int]:
        """Drop the students' alerts held for quiet hours, so none reaches them once they are erased; per
        student, how many. Their ids stay marked `held`: the same alert read again is skipped as a duplicate."""
        held = await self.held_for(user_ids)
        doomed = [alert_id for mine in held.values() for alert_id in mine]
        if not dry_run and doomed:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hdel(self._held_alerts, *doomed)
                async for key in self.redis.scan_iter(match=f"{redis_literal(self._prefix)}held:*"):
                    pipe.zrem(key, *doomed)
                pipe.delete(*(self._held_of(user_id) for user_id in held))
                await pipe.execute()
        return {user_id: len(mine) for user_id, mine in held.items()}

    async def backlog(self, partitions: list[int]) -> int:
        total = 0
        for partition in partitions:
            for waiting in (self._held(partition), self._catching_up(partition)):
                total += await self.redis.zcard(waiting)
        return total


def _student(entry: dict[str, Any]) -> Any:
    """The student a held entry's alert is for."""
    return entry["body"]["alert"].get("user_id")
