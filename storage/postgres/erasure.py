"""Erasing students from the snapshot tables, on a request to erase someone's personal data."""
from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import delete

from storage.postgres.db import shared_engine, timed
from storage.postgres.tables import ScoreHistory, StatusTransition, StudentCurrent

#: Every table that holds rows about one student (model_versions holds none).
STUDENT_TABLES = (StudentCurrent, ScoreHistory, StatusTransition)


def erase_students(database_url: str, user_ids: Collection[int], dry_run: bool = False) -> dict[str, int]:
    """Delete the students' rows from every table, in one transaction (rolled back on a `dry_run`); rows
    deleted per table."""
    ids = sorted(set(user_ids))
    with timed("erase_students"), shared_engine(database_url).connect() as connection, connection.begin() as erasing:
        deleted = {table.__tablename__: connection.execute(delete(table).where(table.user_id.in_(ids))).rowcount
                   for table in STUDENT_TABLES}
        if dry_run:
            erasing.rollback()
    return deleted
