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
