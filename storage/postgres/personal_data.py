"""Students' rows in the snapshot tables: a copy on request (the right of access), the students a retention
period has run out for, and erasure (on request, or once retention runs out)."""
from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, delete, func, select

from features.activity_status import FINISHED
from storage.postgres import data_reads
from storage.postgres.db import shared_engine, timed
from storage.postgres.tables import ScoreHistory, StatusTransition, StudentCurrent

#: Every table that holds rows about one student (model_versions holds none).
STUDENT_TABLES = (StudentCurrent, ScoreHistory, StatusTransition)
_CURRENT = StudentCurrent.__table__


def student_rows(database_url: str, user_ids: Collection[int]) -> dict[int, dict[str, list[dict[str, Any]]]]:
    """Every row of every table about each student, as plain JSON values (times in ISO 8601), in the order
    the tables key them, and who read their data (`data_reads.reads_of`)."""
    found: dict[int, dict[str, list[dict[str, Any]]]] = {
        user_id: {table.__tablename__: [] for table in STUDENT_TABLES} for user_id in user_ids}
    with timed("student_rows"), shared_engine(database_url).connect() as connection:
        for table in STUDENT_TABLES:
            query = (select(table.__table__).where(table.user_id.in_(sorted(found)))
                     .order_by(*table.__mapper__.primary_key))
            for row in connection.execute(query).mappings():
                found[row["user_id"]][table.__tablename__].append({name: _plain(v) for name, v in row.items()})
    for user_id, seen in data_reads.reads_of(database_url, found).items():
        found[user_id][data_reads.TABLE] = seen
    return found


def done_students(database_url: str, before: datetime) -> list[int]:
    """The students whose every enrolment is finished and none was scored since `before` (the wall-clock
    time of the newest write of their current rows): those a retention period has run out for. A student
    still enrolled anywhere, even asleep, is kept: their next course position and alerts need them."""
    rows = _CURRENT.c
    query = (select(rows.user_id).group_by(rows.user_id)
             .having(and_(func.max(rows.updated_wall) < before, func.bool_and(rows.status == FINISHED)))
             .order_by(rows.user_id))
    with timed("done_students"), shared_engine(database_url).connect() as connection:
        return [user_id for (user_id,) in connection.execute(query)]


def scored_students(database_url: str, user_ids: Collection[int]) -> set[int]:
    """Those of the students who have a current row: the scorer has scored them."""
    rows = _CURRENT.c
    ids = sorted(set(user_ids))
    found: set[int] = set()
    with timed("scored_students"), shared_engine(database_url).connect() as connection:
        for start in range(0, len(ids), 10_000):
            query = select(rows.user_id).distinct().where(rows.user_id.in_(ids[start:start + 10_000]))
            found.update(user_id for (user_id,) in connection.execute(query))
    return found


def erase_students(database_url: str, user_ids: Collection[int], dry_run: bool = False) -> dict[str, int]:
    """Delete the students' rows from every table and take them out of the record of reads, in one transaction
    (rolled back on a `dry_run`); rows deleted per table, records changed for the reads."""
    ids = sorted(set(user_ids))
    with timed("erase_students"), shared_engine(database_url).connect() as connection, connection.begin() as erasing:
        deleted = {table.__tablename__: connection.execute(delete(table).where(table.user_id.in_(ids))).rowcount
                   for table in STUDENT_TABLES}
        deleted[data_reads.TABLE] = data_reads.take_out(connection, ids)
        if dry_run:
            erasing.rollback()
    return deleted


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (datetime, date)) else value
