"""Bring a database to the newest schema from code, so a worker can do it on start without alembic.ini."""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from storage.postgres.db import make_engine, timed

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: pg_advisory_xact_lock key shared by every scorer process ("edu-scor" in ASCII).
MIGRATION_LOCK = 0x6564752D73636F72


def upgrade(database_url: str) -> None:
    """`alembic upgrade head` in one transaction under an advisory lock.

    Two workers starting together both call this: the second waits for the lock, then finds
    the schema at head and does nothing. Postgres DDL is transactional, so a failed
    migration leaves the previous schema intact.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    engine = make_engine(database_url)
    try:
        with timed("migrate"), engine.begin() as connection:
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        engine.dispose()
