"""Bring a database to the newest schema from code, so a worker can do it on start without alembic.ini."""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text

from storage.postgres.db import make_engine, timed

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: pg_advisory_xact_lock key shared by every scorer process ("edu-scor" in ASCII).
MIGRATION_LOCK = 0x6564752D73636F72


def alembic_config() -> Config:
    """The migrations' configuration, from code (no alembic.ini)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str | None:
    """The newest schema revision the code knows."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def upgrade(database_url: str) -> None:
    """`alembic upgrade head` in one transaction under an advisory lock.

    Two workers starting together both call this: the second waits for the lock, then finds
    the schema at head and does nothing. Postgres DDL is transactional, so a failed
    migration leaves the previous schema intact.
    """
    config = alembic_config()
    engine = make_engine(database_url)
    try:
        with timed("migrate"), engine.begin() as connection:
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        engine.dispose()
