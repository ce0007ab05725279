"""Alembic environment: runs on the connection storage.postgres.migrate hands over (inside its advisory lock),
or, for `alembic -c storage/postgres/migrations/alembic.ini revision --autogenerate`, on SCORER_DATABASE_URL."""
from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from storage.postgres.tables import Base
from streams.settings import Settings


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=Base.metadata)
    with context.begin_transaction():
        context.run_migrations()


_handed_over = context.config.attributes.get("connection")
if _handed_over is not None:
    _run(_handed_over)
else:
    with create_engine(Settings.from_env().database_url).connect() as _own:
        _run(_own)
