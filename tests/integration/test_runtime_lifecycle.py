"""One lifecycle: a worker's Runtime opens every connection on start and closes every one on stop."""
from __future__ import annotations

import time

import redis

from streams.runtime import Runtime
from streams.settings import Settings


def _clients(client: redis.Redis) -> int:
    return len(client.client_list())


def _clients_settle_at(client: redis.Redis, expected: int, timeout: float = 5.0) -> int:
    """The server's count of clients once it reaches `expected` (or the last seen): a connection the client side
    has closed is gone from CLIENT LIST only when the server has read its end, which under load can come after
    the next command (a run of the whole suite saw 3 where 2 came a moment later)."""
    deadline = time.monotonic() + timeout
    while (found := _clients(client)) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


async def test_stop_closes_every_connection_and_releases_the_trainer_lock(settings: Settings, db: str) -> None:
    observer = redis.Redis.from_url(settings.redis_url)
    before = _clients(observer)
    runtime = Runtime(settings)
    await runtime.start()
    assert runtime.ready and runtime.scoring is not None and runtime.store is not None
    await runtime.store.ping()
    await runtime.scoring.train_pending()  # this process becomes the trainer: it holds the lock
    lock = f"{settings.topic_prefix}scorer:trainer:lock"
    assert observer.exists(lock)
    assert _clients(observer) > before

    await runtime.stop()
    assert not runtime.ready
    assert not observer.exists(lock)  # a standby trainer can take over at once
    assert _clients_settle_at(observer, before) == before  # the store's and the models' Redis clients are closed
    observer.close()


async def test_stop_after_a_failed_start_closes_what_was_opened(settings: Settings, db: str) -> None:
    broken = settings.copy(database_url="postgresql+psycopg2://nobody@127.0.0.1:1/none")
    observer = redis.Redis.from_url(settings.redis_url)
    before = _clients(observer)
    runtime = Runtime(broken)
    try:
        await runtime.start()
    except Exception:  # noqa: BLE001 - Postgres refuses: start fails half way
        pass
    else:
        raise AssertionError("start should fail without Postgres")
    await runtime.stop()
    assert _clients_settle_at(observer, before) == before
    observer.close()
