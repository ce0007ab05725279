"""SCORER_REDIS_URL through Redis Sentinel, on real servers: a primary, its replica and a sentinel. The store
follows the primary Sentinel promotes when the old one dies, keeps what it had seen replicated, and waits for
replicas again until the old primary comes back as the new one's replica."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from helpers.servers import RedisProcess, SentinelProcess
from storage.replication import NotReplicated
from storage.students.redis import RedisStudentStore
from streams.redis_clients import redis_client


async def _until(condition, seconds: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not await condition():
        assert time.monotonic() < deadline, f"{what}: not within {seconds:.0f} s"
        await asyncio.sleep(0.2)


async def test_the_store_follows_a_failover_and_keeps_what_it_saw_replicated(tmp_path: Path) -> None:
    with RedisProcess(tmp_path / "a") as first, RedisProcess(tmp_path / "b", replica_of=first.port) as second, \
            SentinelProcess(tmp_path / "sentinel", first.port) as sentinel:
        store = RedisStudentStore.from_url(sentinel.url, "sentinel.", wait_replicas=1, wait_timeout_ms=500)
        models = redis_client(sentinel.url)  # the trainer's and the model cache's (synchronous) client
        try:
            await _until(lambda: asyncio.to_thread(lambda: first.replicas_in_sync() == 1), 30, "the replica in sync")
            await _until(lambda: asyncio.to_thread(lambda: sentinel.replicas() == 1), 30, "the sentinel finding it")
            await store.redis.set("sentinel.before", "kept")
            await store.replicated()

            first.kill()
            await _until(lambda: asyncio.to_thread(lambda: sentinel.primary() == second.port), 30,
                         "the sentinel promoting the replica")

            async def kept() -> bool:  # from the new primary, once the sentinel names it healthy (a worker
                try:  # meanwhile takes MasterNotFoundError, a ConnectionError, for an outage and waits)
                    return await store.redis.get("sentinel.before") == b"kept"
                except RedisConnectionError:
                    return False

            await _until(kept, 30, "the store reading from the new primary")
            assert models.get("sentinel.before") == b"kept"
            await store.redis.set("sentinel.after", "written")
            with pytest.raises(NotReplicated):  # the new primary has no replica yet
                await store.replicated()

            first.replica_of = second.port  # back as the new primary's replica (Sentinel would make it one, in
            first.start()  # up to 10 s: not what is tested here)

            async def replicated() -> bool:
                try:
                    await store.replicated()
                except NotReplicated:
                    return False
                return True

            await _until(replicated, 60, "the old primary back as a replica")
            assert await asyncio.to_thread(lambda: second.replicas_in_sync()) == 1
        finally:
            models.close()
            await store.close()
            for server in (first, second):  # their data is of no use after, and a stop may wait out its grace
                server.kill()
