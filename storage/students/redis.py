"""The student store in Redis: per-student rolling state written atomically with its own redelivery fence.

Each student is one hash: `v` (a version for compare-and-set) and `doc` (JSON: feature state,
status machine, and the last applied Kafka offset per topic). One Lua script swaps the
document in, and keeps the per-partition `due` sorted set (when a student next needs a look:
inactivity thresholds, pending activity, week ends) and the status counters in the same step.
The flow index keeps, per flow, its students (user -> partition), their outcome times, and the
last of those once every student has one (`flow:<course>:<flow>:m`, `:o`, `:done`).
"""
from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Mapping
from typing import Any, cast

import orjson
import redis.asyncio as aioredis
from redis.typing import EncodableT, FieldT

from features.schedule import ScheduleKey
from storage.replication import NotReplicated, wait_for_replicas
from storage.students.base import Commit, Document, FlowRecord, Forgotten, counted_statuses, flows_of, schedule_field
from streams.metrics import REDIS_REPLICAS_ACKNOWLEDGED, STORE_ERRORS, STORE_LATENCY
from streams.redis_clients import async_redis_client
from streams.settings import redis_literal, redis_text

_COMMIT = """
local current = redis.call('HGET', KEYS[1], 'v')
if (current or '0') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'doc', ARGV[3], 'w', ARGV[6])
if ARGV[5] == '' then redis.call('ZREM', KEYS[2], ARGV[4]) else redis.call('ZADD', KEYS[2], ARGV[5], ARGV[4]) end
for i = 7, #ARGV, 2 do redis.call('HINCRBY', KEYS[3], ARGV[i], ARGV[i + 1]) end
return 1
"""

_RAISE_NEWEST = """
local current = redis.call('HMGET', KEYS[1], 'ts', 'at')
if current[1] and tonumber(current[1]) >= tonumber(ARGV[1]) then return current end
redis.call('HSET', KEYS[1], 'ts', ARGV[1], 'at', ARGV[2])
return {ARGV[1], ARGV[2]}
"""


#: A flow's last outcome once every member has one, kept in `done` (KEYS: members, outcomes, done; the last
#: ARGV: the TTL), else false.
_FLOW_DONE = """
local members = redis.call('HLEN', KEYS[1])
if members == 0 or redis.call('HLEN', KEYS[2]) < members then
  redis.call('DEL', KEYS[3])
  return false
end
local last, latest = nil, nil
for _, v in ipairs(redis.call('HVALS', KEYS[2])) do
  local t = tonumber(v)
  if not latest or t > latest then latest, last = t, v end
end
redis.call('SET', KEYS[3], last, 'EX', ARGV[#ARGV])
return last
"""

_RECORD_FLOW = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
  redis.call('EXPIRE', KEYS[2], ARGV[4])
end
""" + _FLOW_DONE

#: A member (ARGV[1]) leaves a flow, outcome and all: -1 if they were none, else the flow's `done` as it now
#: stands (ARGV[2]: the TTL).
_LEAVE_FLOW = """
redis.call('HDEL', KEYS[2], ARGV[1])
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return -1 end
""" + _FLOW_DONE

#: Delete a student's document if it is still the version read (KEYS: the document, the status counters;
#: ARGV: the version, then (status, change) pairs).
_FORGET = """
if (redis.call('HGET', KEYS[1], 'v') or '0') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
for i = 2, #ARGV, 2 do redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 1]) end
return 1
"""

#: A flow's index keys live this long after their last record: its outcomes come within months of its
#: start, so an index untouched for longer is of a flow long over (as the trainer's weekly snapshots).
FLOW_TTL_SECONDS = 400 * 24 * 3600

_WAKE = """
for i = 2, #ARGV do
  local due = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if not due or tonumber(due) > tonumber(ARGV[1]) then redis.call('ZADD', KEYS[1], ARGV[1], ARGV[i]) end
end
return 1
"""


class _Timed:
    """Latency and error metrics for one store operation."""

    def __init__(self, operation: str) -> None:
        self.operation = operation

    def __enter__(self) -> None:
        self.started = time.perf_counter()

    def __exit__(self, exc_type: type | None, *_: object) -> None:
        STORE_LATENCY.labels("redis", self.operation).observe(time.perf_counter() - self.started)
        if exc_type is not None:
            STORE_ERRORS.labels("redis", self.operation).inc()


#: Students per Redis round trip in `load` and `commit`: each chunk's (de)serialisation runs between
#: two awaits, so the event loop is never held for a whole 5,000-student batch.
CHUNK = 500


class RedisStudentStore:
    def __init__(self, client: aioredis.Redis, prefix: str = "", wait_replicas: int = 0,
                 wait_timeout_ms: int = 1000) -> None:
        self.redis = client
        self.prefix = f"{prefix}scorer:"
        self.wait_replicas = wait_replicas
        self.wait_timeout_ms = wait_timeout_ms
        self._commit = client.register_script(_COMMIT)
        self._raise_newest = client.register_script(_RAISE_NEWEST)
        self._record_flow = client.register_script(_RECORD_FLOW)
        self._wake = client.register_script(_WAKE)
        self._leave_flow = client.register_script(_LEAVE_FLOW)
        self._forget = client.register_script(_FORGET)

    @classmethod
    def from_url(cls, url: str, prefix: str = "", wait_replicas: int = 0,
                 wait_timeout_ms: int = 1000) -> RedisStudentStore:
        return cls(async_redis_client(url), prefix, wait_replicas, wait_timeout_ms)

    def _student_key(self, user_id: int) -> str:
        return f"{self.prefix}st:{user_id}"

    def _due_key(self, partition: int) -> str:
        return f"{self.prefix}due:{partition}"

    def _flow_keys(self, flow: ScheduleKey) -> list[str]:
        """The flow's students, their outcome times, its last outcome once complete."""
        base = f"{self.prefix}flow:{flow[0]}:{'-' if flow[1] is None else flow[1]}"
        return [f"{base}:m", f"{base}:o", f"{base}:done"]

    @property
    def _status_key(self) -> str:
        return f"{self.prefix}status_counts"

    async def load(self, user_ids: Iterable[int]) -> dict[int, tuple[int, dict[str, Any] | None]]:
        """Version and document of each student (version 0, None for a student never seen); in
        round trips of CHUNK students, so decoding a large batch never holds the event loop long."""
        ids = list(user_ids)
        loaded: dict[int, tuple[int, dict[str, Any] | None]] = {}
        with _Timed("load"):
            for start in range(0, len(ids), CHUNK):
                chunk = ids[start:start + CHUNK]
                async with self.redis.pipeline(transaction=False) as pipe:
                    for user_id in chunk:
                        pipe.hmget(self._student_key(user_id), "v", "doc")
                    rows = await pipe.execute()
                loaded.update((user_id, (int(version or 0), orjson.loads(doc) if doc else None))
                              for user_id, (version, doc) in zip(chunk, rows))
        return loaded

    async def commit(self, commits: list[Commit]) -> list[int]:
        """Swap in new documents; returns the students whose version moved under us (to redo)."""
        if not commits:
            return []
        conflicts: list[int] = []
        written = str(int(time.time()))
        with _Timed("commit"):
            for start in range(0, len(commits), CHUNK):
                chunk = commits[start:start + CHUNK]
                async with self.redis.pipeline(transaction=False) as pipe:
                    for c in chunk:
                        await self._commit(
                            keys=[self._student_key(c.user_id), self._due_key(c.partition), self._status_key],
                            args=[c.expected_version, c.expected_version + 1,
                                  orjson.dumps(c.doc), c.user_id,
                                  "" if c.due is None else repr(c.due), written,
                                  *(x for status, change in c.status_delta.items() if change
                                    for x in (status, change))],
                            client=pipe,
                        )
                    results = await pipe.execute()
                conflicts += [c.user_id for c, ok in zip(chunk, results) if not ok]
        return conflicts

    async def due(self, partition: int, until: float, limit: int = 5000) -> list[int]:
        """Students of a partition whose next attention time has come."""
        with _Timed("due"):
            members = await self.redis.zrangebyscore(self._due_key(partition), "-inf", until, start=0, num=limit)
        # without withscores the reply is a list of members (redis-py types both reply shapes as one union)
        return [int(m) for m in cast("list[bytes]", members)]

    async def record_flows(self, records: list[FlowRecord]) -> dict[ScheduleKey, float]:
        """Add enrolments and outcomes to the flow index; returns, of the flows these records gave an
        outcome, those now complete, with their last outcome's time."""
        if not records:
            return {}
        with _Timed("record_flows"):
            async with self.redis.pipeline(transaction=False) as pipe:
                for r in records:
                    outcome_at = "" if r.outcome_at is None else repr(r.outcome_at)
                    await self._record_flow(keys=self._flow_keys(r.flow), client=pipe,
                                            args=[r.user_id, r.partition, outcome_at, FLOW_TTL_SECONDS])
                replies = await pipe.execute()
        state = {r.flow: reply for r, reply in zip(records, replies)}  # each flow as its last record left it
        given = {r.flow for r in records if r.outcome_at is not None}
        return {flow: float(done) for flow, done in state.items() if flow in given and done is not None}

    async def flows_done(self, flows: Iterable[ScheduleKey]) -> dict[ScheduleKey, float]:
        """The complete ones of these flows, with their last outcome's time."""
        keys = list(flows)
        if not keys:
            return {}
        with _Timed("flows_done"):
            replies = await self.redis.mget([self._flow_keys(flow)[2] for flow in keys])
        return {flow: float(done) for flow, done in zip(keys, replies) if done is not None}

    async def wake_flows(self, done: Mapping[ScheduleKey, float]) -> None:
        """Make every student of each flow due by that time at the latest (their outcomes are released)."""
        with _Timed("wake_flows"):
            for flow, at in done.items():
                members = await self.redis.hgetall(self._flow_keys(flow)[0])
                by_partition: dict[int, list[str]] = {}
                for user, where in members.items():
                    by_partition.setdefault(int(where), []).append(redis_text(user))
                for partition, users in by_partition.items():
                    await self._wake(keys=[self._due_key(partition)], args=[repr(at), *users])

    async def raise_newest(self, ts: float, produced_at: float) -> tuple[float, float]:
        """The group's newest event time (and when it was produced), raised to `ts` if newer."""
        with _Timed("raise_newest"):
            newest, at = await self._raise_newest(keys=[f"{self.prefix}newest"], args=[repr(ts), repr(produced_at)])
        return float(newest), float(at)

    async def forget(self, user_ids: Collection[int], dry_run: bool = False) -> dict[int, Forgotten]:
        """Each document goes by compare-and-set with the counters' share of it (read again should a worker
        commit in between); then the due index of every partition, in one pass for all the students, then
        each of their flows, whose students are woken where an erased student was the last without an
        outcome."""
        ids = list(dict.fromkeys(user_ids))
        if dry_run:
            return {user_id: await self._held_of(user_id, doc) for user_id, (_, doc) in (await self.load(ids)).items()}
        report: dict[int, Forgotten] = {}
        done: dict[ScheduleKey, float] = {}
        with _Timed("forget"):
            documents = {user_id: await self._delete_document(user_id) for user_id in ids}
            async for key in self.redis.scan_iter(match=f"{redis_literal(self.prefix)}due:*"):
                for start in range(0, len(ids), CHUNK):
                    await self.redis.zrem(key, *ids[start:start + CHUNK])
            for user_id, doc in documents.items():
                left = 0
                for flow in flows_of(doc) if doc is not None else []:
                    reply = await self._leave_flow(keys=self._flow_keys(flow), args=[user_id, FLOW_TTL_SECONDS])
                    left += reply != -1
                    if reply not in (-1, None):
                        done[flow] = float(reply)
                report[user_id] = Forgotten(doc is not None, sum(counted_statuses(doc).values()) if doc else 0, left)
        await self.wake_flows(done)
        return report

    async def _held_of(self, user_id: int, doc: Document | None) -> Forgotten:
        """What `forget` would take of a student."""
        if doc is None:
            return Forgotten(False, 0, 0)
        held = [await self.redis.hexists(self._flow_keys(flow)[0], str(user_id)) for flow in flows_of(doc)]
        return Forgotten(True, sum(counted_statuses(doc).values()), sum(held))

    async def _delete_document(self, user_id: int) -> Document | None:
        """Delete a student's document with its share of the counters, by compare-and-set; the document."""
        while True:
            version, doc = (await self.load([user_id]))[user_id]
            if doc is None:
                return None
            changes = [x for status, n in counted_statuses(doc).items() for x in (status, -n)]
            if await self._forget(keys=[self._student_key(user_id), self._status_key], args=[version, *changes]):
                return doc

    async def unchanged_since(self, before: float, *, undated_from: float | None = None) -> list[int]:
        """The students whose document was last written before `before` (wall clock, seconds; each commit
        stamps it, so a replay of old events does not age anyone, and reads do not make anyone younger). A
        document written before documents were dated has no time: with `undated_from`, it is given that one
        and ages from then; it is never returned on the day it is found."""
        found: list[int] = []
        base = len(self._student_key(0)) - 1
        with _Timed("unchanged_since"):
            keys = [redis_text(key) async for key in
                    self.redis.scan_iter(match=f"{redis_literal(self.prefix)}st:*", count=1000)]
            keys = [key for key in keys if key[base:].isdigit()]
            for start in range(0, len(keys), CHUNK):
                chunk = keys[start:start + CHUNK]
                async with self.redis.pipeline(transaction=False) as pipe:
                    for key in chunk:
                        pipe.hget(key, "w")
                    written = await pipe.execute()
                found.extend(int(key[base:]) for key, at in zip(chunk, written) if at is not None and int(at) < before)
                undated = [key for key, at in zip(chunk, written) if at is None]
                if undated and undated_from is not None:
                    async with self.redis.pipeline(transaction=False) as pipe:
                        for key in undated:
                            pipe.hsetnx(key, "w", str(int(undated_from)))
                        await pipe.execute()
        return sorted(found)

    async def status_counts(self) -> dict[str, int]:
        with _Timed("status_counts"):
            raw = await self.redis.hgetall(self._status_key)
        return {redis_text(k): int(v) for k, v in raw.items()}

    async def put_schedule(self, records: list[dict[str, Any]]) -> None:
        """Schedule rows, one hash per course; setting the same row twice is harmless."""
        by_course: dict[int, dict[FieldT, EncodableT]] = {}
        for record in records:
            by_course.setdefault(record["course_id"], {})[schedule_field(record)] = orjson.dumps(record)
        with _Timed("put_schedule"):
            async with self.redis.pipeline(transaction=False) as pipe:
                for course_id, fields in by_course.items():
                    pipe.hset(f"{self.prefix}sched:{course_id}", mapping=fields)
                pipe.incr(f"{self.prefix}sched_version")
                await pipe.execute()

    async def schedule_version(self) -> int:
        with _Timed("schedule_version"):
            return int(await self.redis.get(f"{self.prefix}sched_version") or 0)

    async def schedule_records(self, course_id: int) -> list[dict[str, Any]]:
        with _Timed("schedule_records"):
            raw = await self.redis.hvals(f"{self.prefix}sched:{course_id}")
        return [orjson.loads(v) for v in raw]

    async def ping(self) -> bool:
        return bool(await self.redis.ping())

    async def replicated(self) -> None:
        """See StudentStore.replicated and storage.replication."""
        if self.wait_replicas <= 0:
            return
        with _Timed("replicated"):  # a wait that falls short counts in scorer_store_errors_total
            try:
                acknowledged = await wait_for_replicas(self.redis, f"{self.prefix}replicated", self.wait_replicas,
                                                       self.wait_timeout_ms)
            except NotReplicated as short:
                REDIS_REPLICAS_ACKNOWLEDGED.set(short.acknowledged)
                raise
            REDIS_REPLICAS_ACKNOWLEDGED.set(acknowledged)

    def _marker_key(self) -> str:
        return f"{self.prefix}store"

    async def claim(self, history_read: bool, now: float) -> float | None:
        """See StudentStore.claim. The marker is written once a group with history finds the students'
        documents here; one without history has nothing to check. Student documents, not just any key: every
        worker puts the schedule it re-reads from the start, so a peer's first batch must not pass for the
        state that was lost. A store without the marker but with documents was written before the marker
        existed: it is marked, not lost."""
        marker = self._marker_key()
        if mark := await self.redis.hgetall(marker):
            return float(mark[b"lost_at"]) if b"lost_at" in mark else None
        if not history_read:
            return None
        lost = not await self._holds_documents()
        await self.redis.hsetnx(marker, "created", now)
        if lost:
            await self.redis.hsetnx(marker, "lost_at", now)
            return float(await self.redis.hget(marker, "lost_at") or now)
        return None

    async def state_lost_at(self) -> float | None:
        """When the store was found to have lost the group's state, until that is accepted."""
        lost_at = await self.redis.hget(self._marker_key(), "lost_at")
        return None if lost_at is None else float(lost_at)

    async def accept_state_loss(self) -> float | None:
        """The operator knows (restored, rebuilt, or accepts going on from here): clear the loss; returns
        when it had been found, if it had."""
        lost_at = await self.state_lost_at()
        await self.redis.hdel(self._marker_key(), "lost_at")
        return lost_at

    async def _holds_documents(self) -> bool:
        """Any student's document (one SCAN pass at most, at a worker's first batch)."""
        async for _ in self.redis.scan_iter(f"{redis_literal(self.prefix)}st:*", count=1000):
            return True
        return False

    async def may_evict(self) -> tuple[bool, str] | None:
        """(could Redis evict keys, its policy): a memory limit with any policy but `noeviction` lets
        Redis drop student documents, due indexes or queued labels without a word once memory runs
        short. None where the server refuses CONFIG GET (managed services often do)."""
        try:
            config = await self.redis.config_get("maxmemory*")
        except aioredis.ResponseError:
            return None
        text = {redis_text(k): redis_text(v) for k, v in config.items()}
        policy = text.get("maxmemory-policy", "noeviction")
        return int(text.get("maxmemory", "0") or 0) > 0 and policy != "noeviction", policy

    async def close(self) -> None:
        await self.redis.aclose()
