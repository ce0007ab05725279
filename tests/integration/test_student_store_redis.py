"""The StudentStore contract (helpers.store_cases) on Redis."""
from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from helpers.store_cases import *  # noqa: F403 - the contract's tests run here against Redis
from storage.students import RedisStudentStore


@pytest.fixture
async def store(redis_url: str, prefix: str) -> AsyncIterator[RedisStudentStore]:
    s = RedisStudentStore.from_url(redis_url, prefix)
    yield s
    keys = [k async for k in s.redis.scan_iter(f"{prefix}*")]
    if keys:
        await s.redis.delete(*keys)
    await s.close()


async def test_the_flow_index_expires_a_year_after_its_last_record(store: RedisStudentStore) -> None:
    """A flow long over must not keep Redis growing with every student the school ever had."""
    from storage.students import FlowRecord
    from storage.students.redis import FLOW_TTL_SECONDS

    await store.record_flows([FlowRecord((3, 1), 1, 0, 10.0)])
    ttls = [await store.redis.ttl(key) for key in store._flow_keys((3, 1))]
    assert all(FLOW_TTL_SECONDS - 60 < ttl <= FLOW_TTL_SECONDS for ttl in ttls), ttls


async def test_a_memory_limit_with_an_evicting_policy_is_reported(store: RedisStudentStore) -> None:
    """Redis evicting keys under memory pressure would drop students' documents without a word."""
    saved = {k: v for k, v in (await store.redis.config_get("maxmemory*")).items()
             if k in (b"maxmemory", b"maxmemory-policy", "maxmemory", "maxmemory-policy")}
    try:
        await store.redis.config_set("maxmemory", "0")
        await store.redis.config_set("maxmemory-policy", "allkeys-lru")
        assert await store.may_evict() == (False, "allkeys-lru")  # no limit: nothing is evicted
        await store.redis.config_set("maxmemory", str(512 * 1024 * 1024))
        assert await store.may_evict() == (True, "allkeys-lru")
        await store.redis.config_set("maxmemory-policy", "noeviction")
        assert await store.may_evict() == (False, "noeviction")
    finally:
        for key, value in saved.items():
            await store.redis.config_set(key, value)
