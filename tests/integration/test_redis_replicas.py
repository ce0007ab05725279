"""The store waits for Redis replicas before a batch's offsets are committed (SCORER_REDIS_WAIT_REPLICAS),
against a real primary and a real replica: it passes while the replica holds the writes, and refuses, as an
outage the worker waits out, while it does not, whichever connection of the pool made them. And the trainer,
after a failover to a replica that lacked its last publish, learns that version's labels again, once."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from helpers.servers import RedisProcess
from online_models.labels import Label
from online_models.registry import ModelRegistry
from online_models.trainer import Trainer
from online_models.weekly_features import WeeklyFeatureStore
from storage.replication import NotReplicated
from storage.students.redis import RedisStudentStore
from streams import metrics
from streams.failures import dependency_of


@pytest.fixture(scope="module")
def primary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    with RedisProcess(tmp_path_factory.mktemp("primary")) as server:
        yield server


def _wait_in_sync(primary: RedisProcess) -> None:
    deadline = time.monotonic() + 20
    while primary.replicas_in_sync() < 1:
        assert time.monotonic() < deadline, "the replica did not come in sync"
        time.sleep(0.1)


@pytest.fixture
def replica(primary: RedisProcess, tmp_path: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path / "replica", replica_of=primary.port).start()
    try:
        _wait_in_sync(primary)
        client = redis.Redis(host="127.0.0.1", port=primary.port)
        client.set("replica-acknowledges", "1")
        assert client.execute_command("WAIT", 1, 10_000) == 1, "the replica acknowledges nothing"
        client.close()
        yield server
    finally:
        server.kill()  # its data is of no use after


def _errors() -> float:
    return metrics.STORE_ERRORS.labels("redis", "replicated")._value.get()


async def test_a_batch_passes_once_the_replica_holds_its_writes(primary: RedisProcess, replica: RedisProcess) -> None:
    store = RedisStudentStore.from_url(primary.url, "replicas-ok.", wait_replicas=1, wait_timeout_ms=2000)
    try:
        await store.redis.set("replicas-ok.written", "1")
        await store.replicated()
        assert metrics.REDIS_REPLICAS_ACKNOWLEDGED._value.get() == 1
        copy = redis.Redis(host="127.0.0.1", port=replica.port)
        assert copy.get("replicas-ok.written") == b"1"  # WAIT returned: the replica has it, no polling
        copy.close()
    finally:
        await store.close()


async def test_without_the_replica_a_batch_is_an_outage(primary: RedisProcess, replica: RedisProcess) -> None:
    """A replica that stopped answering holds nothing newer: the store says so after its timeout, and the
    worker takes it for an outage of its own name (it retries the batch, offsets uncommitted)."""
    store = RedisStudentStore.from_url(primary.url, "replicas-gone.", wait_replicas=1, wait_timeout_ms=300)
    errors = _errors()
    replica.pause()
    try:
        began = time.monotonic()
        with pytest.raises(NotReplicated, match="0 of 1 Redis replicas") as raised:
            await store.replicated()
        assert time.monotonic() - began >= 0.29
        assert dependency_of(raised.value) == "redis_replicas"
        assert _errors() == errors + 1
        assert metrics.REDIS_REPLICAS_ACKNOWLEDGED._value.get() == 0
    finally:
        replica.resume()
        await store.close()


async def test_writes_of_another_connection_are_waited_for(primary: RedisProcess, replica: RedisProcess) -> None:
    """Redis' WAIT counts only what its own connection wrote. A batch's writes go out over several of the
    pool's connections, so the one that waits writes first: a replica that has not received the others'
    writes cannot acknowledge it. (A bare WAIT on a connection that wrote nothing passes at once.)"""
    store = RedisStudentStore.from_url(primary.url, "replicas-pool.", wait_replicas=1, wait_timeout_ms=300)
    other = redis.Redis(host="127.0.0.1", port=primary.port)
    try:
        await store.ping()  # the store's connection exists and has written nothing
        other.set("replicas-pool.before", "1")
        assert other.execute_command("WAIT", 1, 10_000) == 1  # the replica has acknowledged all until now
        replica.pause()
        other.set("replicas-pool.written", "1")  # acknowledged by the primary alone
        bare = await store.redis.execute_command("WAIT", 1, 300)
        assert bare == 1  # why the store does not WAIT bare
        with pytest.raises(NotReplicated):
            await store.replicated()
    finally:
        replica.resume()
        other.close()
        await store.close()


async def test_without_replicas_asked_the_store_never_waits(primary: RedisProcess) -> None:
    store = RedisStudentStore.from_url(primary.url, "replicas-none.")
    try:
        began = time.monotonic()
        await asyncio.wait_for(store.replicated(), 1)
        assert time.monotonic() - began < 0.5
        assert await store.redis.get("replicas-none.scorer:replicated") is None  # not even the marker write
    finally:
        await store.close()


def test_the_trainer_learns_a_version_lost_in_a_failover_again_once(tmp_path: Path) -> None:
    """Version 2 is published (labels trimmed from the queue, enrolments marked learned, one transaction) on a
    primary whose replica was detached; the primary dies and the replica takes its place with version 1 and
    those labels queued again. The trainer, still running, learns them on top of version 1, not on top of the
    version it remembers, and numbers the next version above the lost one."""
    primary = RedisProcess(tmp_path / "primary").start()
    replica = RedisProcess(tmp_path / "replica", replica_of=primary.port).start()
    client = redis.Redis(host="127.0.0.1", port=primary.port)
    try:
        _wait_in_sync(primary)
        registry = ModelRegistry(client, prefix="t:")
        weeks = WeeklyFeatureStore(client, prefix="t:")
        trainer = Trainer(client, registry, weeks, publish_every=3, prefix="t:")

        def outcomes(students: range) -> None:  # what the workers store and queue
            for user_id in students:
                weeks.put_many([(str(user_id), week, {"progress": 10.0 * week, "course_week": float(week)})
                                for week in (1, 2)])
                trainer.enqueue(str(user_id), Label(40.0 + user_id, user_id % 2 == 0, user_id % 3 == 0))

        outcomes(range(1, 4))
        assert trainer.drain() == 3 and trainer.maybe_publish() == 1
        outcomes(range(4, 7))
        assert client.execute_command("WAIT", 1, 10_000) == 1, "version 1 and the next outcomes are on the replica"
        replica.detach()
        assert trainer.drain() == 3 and trainer.maybe_publish() == 2  # acknowledged by the primary alone
        lost = metrics.MODEL_VERSIONS_LOST._value.get()
        primary.take_over_data(replica)  # the failover: version 1 at the primary's address

        assert registry.latest_version() == 1
        assert trainer.drain() == 3, "the lost version's three enrolments, from the queue again"
        assert trainer.maybe_publish() == 3, "not 2 again: an alert scored by the lost version 2 names it"
        assert registry.load().n_labels == 12, "six enrolments of two weeks each, each learned once"
        assert metrics.MODEL_VERSIONS_LOST._value.get() == lost + 1
        assert trainer.drain() == 0 and client.llen("t:trainer:labels") == 0
    finally:
        client.close()
        replica.kill()
        primary.kill()

