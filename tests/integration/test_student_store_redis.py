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


async def test_a_store_that_lost_the_groups_state_says_so_until_the_loss_is_accepted(
        store: RedisStudentStore, redis_url: str, prefix: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A Redis restarted empty under a consumer group with committed offsets: the workers would go on from
    those offsets with every student's history gone. The store says so from its first claim until an
    operator accepts the loss (`scorer accept-state-loss`)."""
    import asyncio

    from storage.students import Commit
    from streams.cli import main

    assert await store.claim(history_read=False, now=100.0) is None  # a new group: nothing to check yet
    assert not await store.redis.exists(store._marker_key())
    assert await store.commit([Commit(7, 0, 0, {"a": 1}, None)]) == []
    assert await store.claim(history_read=True, now=300.0) is None  # documents without a mark: an older store
    assert await store.redis.exists(store._marker_key()) and await store.state_lost_at() is None

    await store.redis.delete(*[k async for k in store.redis.scan_iter(f"{store.prefix}*")])  # Redis lost it all
    await store.put_schedule([{"course_id": 3, "flow": 1, "type": "занятие", "task_id": 1, "activity_id": 5}])
    assert await store.claim(history_read=True, now=400.0) == 400.0  # a peer's schedule rows are no state
    assert await store.claim(history_read=True, now=500.0) == 400.0  # every later worker hears of it too
    assert await store.state_lost_at() == 400.0

    monkeypatch.setenv("SCORER_REDIS_URL", redis_url)
    monkeypatch.setenv("SCORER_TOPIC_PREFIX", prefix)
    assert await asyncio.to_thread(main, ["accept-state-loss", "--dry-run"]) == 0
    assert '"accepted": false' in capsys.readouterr().out and await store.state_lost_at() == 400.0
    assert await asyncio.to_thread(main, ["accept-state-loss"]) == 0
    assert '"lost_at": "1970-01-01T00:06:40+00:00", "accepted": true' in capsys.readouterr().out
    assert await store.state_lost_at() is None and await store.claim(history_read=True, now=600.0) is None
