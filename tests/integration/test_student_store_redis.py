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
