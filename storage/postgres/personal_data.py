"""A student's rows in the snapshot tables, on a request to see (right of access) or erase their data."""
from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, select

from storage.postgres.db import shared_engine, timed
from storage.postgres.tables import ScoreHistory, StatusTransition, StudentCurrent

#: Every table that holds rows about one student (model_versions holds none).
STUDENT_TABLES = (StudentCurrent, ScoreHistory, StatusTransition)


def student_rows(database_url: str, user_id: int) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table about the student, each as plain JSON values (times in ISO 8601), in
    the order the tables key them."""
    with timed("student_rows"), shared_engine(database_url).connect() as connection:
        return {table.__tablename__: [
            {name: _plain(value) for name, value in row.items()}
            for row in connection.execute(select(table.__table__).where(table.user_id == user_id)
                                          .order_by(*table.__mapper__.primary_key)).mappings()]
            for table in STUDENT_TABLES}


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


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (datetime, date)) else value
