"""SCORER_REDIS_URL over TLS (`rediss://`), against a Redis that speaks TLS only: the workers' student store, the
weekly features' store and the notifier's take the URL as a school writes it (its CA in `ssl_ca_certs`), the
pipeline runs on it as on plain Redis, and a client that does not trust the CA, or speaks plain Redis, gets
nothing."""
from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from helpers import tls_redis
from helpers.pipeline_cases import Sent, assert_equals_fold_and_reference, drive, history
from online_models.scoring import NoScoring
from online_models.weekly_features import WeeklyFeatureStore
from storage.postgres.sink import PostgresSink
from storage.students import RedisStudentStore
from streams.notify.store import NotifyStore
from streams.pipeline import Pipeline
from streams.redis_clients import async_redis_client, redis_client
from streams.runtime import pipeline_config
from streams.settings import Settings

pytestmark = pytest.mark.skipif(tls_redis.missing() is not None, reason=str(tls_redis.missing()))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tls_redis.TlsRedis]:
    with tls_redis.tls_redis(tmp_path_factory.mktemp("tls-redis")) as running:
        yield running


async def test_the_pipeline_runs_on_redis_over_tls(server: tls_redis.TlsRedis, db: str, tmp_path: Path) -> None:
    settings = Settings(redis_url=server.url, database_url=db, topic_prefix="tls.", state_dir=str(tmp_path))
    rng = random.Random(3)
    events = history(rng, students=8)
    store = RedisStudentStore.from_url(settings.redis_url, settings.topic_prefix)
    sink = await PostgresSink.open(settings.database_url)
    sent = Sent()
    try:
        await drive(Pipeline(pipeline_config(settings), store, sent.send, NoScoring(), sink), settings.topic_prefix,
                    events, rng, redeliver=True)
        await assert_equals_fold_and_reference(store, sent, events, bad=0)
        assert sum((await store.status_counts()).values()) > 0
    finally:
        await store.close()
        await sink.close()


async def test_every_client_the_scorer_makes_from_the_url_speaks_tls(server: tls_redis.TlsRedis) -> None:
    client = redis_client(server.url)
    try:
        weeks = WeeklyFeatureStore(client, prefix="tls.models.")
        weeks.put_many([("7:3:1", 2, {"progress": 0.5})])
        assert weeks.of_students([7]) == {7: {"7:3:1": {2: {"progress": 0.5}}}}
    finally:
        client.close()
    notifier = async_redis_client(server.url)
    try:
        held = {"body": {"alert": {"user_id": 7}}, "key": "7"}
        notify = NotifyStore(notifier, "tls.")
        await notify.hold("alert-1", 1, 4e9, held)
        assert list((await notify.held_for([7]))[7].values()) == [held]
    finally:
        await notifier.aclose()


def test_without_the_ca_or_without_tls_nothing_is_answered(server: tls_redis.TlsRedis) -> None:
    untrusting = redis_client(f"rediss://127.0.0.1:{server.port}/0")  # the system's CAs did not sign it
    with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
        untrusting.ping()
    untrusting.close()
    assert tls_redis.refuses_plain(server.port)
    plain = redis_client(f"redis://127.0.0.1:{server.port}/0")
    with pytest.raises(redis.ConnectionError):
        plain.ping()
    plain.close()
