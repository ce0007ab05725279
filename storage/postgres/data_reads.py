"""The record of who read students' data: written by the read API and the console before each answer that
carries it (no record, no answer), read back for a student (`scorer export-student`: who saw my data) and for a
person or a period (`scorer reads`), a student taken out by `scorer forget`, old records dropped by `scorer prune`
(no sooner than the period `scorer migrate` wrote into `read_record_policy`, which the table's triggers enforce).

A list's record holds every student it carried, so a student's copy names each list they were on; the copy
never shows the other students of that list."""
from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, text, update

from storage.postgres.db import jsonable, shared_engine, timed
from storage.postgres.tables import ReadRecordPolicy, StudentDataRead

_READS = StudentDataRead.__table__
_POLICY = ReadRecordPolicy.__table__
TABLE = StudentDataRead.__tablename__
_TAKE_OUT = text("""
    UPDATE student_data_reads
    SET user_ids = ARRAY(SELECT id FROM unnest(user_ids) AS id WHERE id <> ALL(CAST(:ids AS bigint[])) ORDER BY id)
    WHERE user_ids && CAST(:ids AS bigint[])""")
_READERS = text("""
    WITH answers AS (
        SELECT reader, read_at, user_ids FROM student_data_reads
        WHERE CAST(:since AS timestamptz) IS NULL OR read_at >= CAST(:since AS timestamptz)),
    students AS (
        SELECT reader, count(DISTINCT id) AS students FROM answers, unnest(user_ids) AS id GROUP BY reader)
    SELECT reader, count(*) AS answers, coalesce(max(students.students), 0) AS students,
           min(read_at) AS first_read_at, max(read_at) AS last_read_at
    FROM answers LEFT JOIN students USING (reader)
    GROUP BY reader ORDER BY 3 DESC, reader""")
#: What a student's own copy shows of each read (never the list's other students).
_SEEN_BY = (_READS.c.read_at, _READS.c.reader, _READS.c.door, _READS.c.page, _READS.c.course_id)


@dataclass(frozen=True)
class DataRead:
    """One answer that carried student data: who (`streams.tokens.Reader.name`), through which door and page, which
    students, and the course of a course's list."""

    reader: str
    door: str
    page: str
    user_ids: Sequence[int]
    course_id: int | None = None


def record(database_url: str, read: DataRead) -> None:
    """Write the record; raises (SQLAlchemyError) when it cannot, and the caller answers without the data."""
    row = {"reader": read.reader, "door": read.door, "page": read.page, "course_id": read.course_id,
           "user_ids": sorted(set(read.user_ids))}
    with timed("record_read"), shared_engine(database_url).begin() as connection:
        connection.execute(insert(StudentDataRead).values(row))


def reads_of(database_url: str, user_ids: Collection[int]) -> dict[int, list[dict[str, Any]]]:
    """Per student, when, by whom and through which page their data was read, oldest first: one query for
    them all (`&&`: the GIN index answers it), each record then given to the asked students it carried."""
    found: dict[int, list[dict[str, Any]]] = {user_id: [] for user_id in user_ids}
    query = (select(*_SEEN_BY, _READS.c.user_ids).where(_READS.c.user_ids.overlap(sorted(found)))
             .order_by(_READS.c.read_at, _READS.c.id))
    with timed("reads_of"), shared_engine(database_url).connect() as connection:
        for row in connection.execute(query).mappings():
            seen = jsonable({column: row[column] for column in row.keys() if column != "user_ids"})
            for user_id in found.keys() & set(row["user_ids"]):
                found[user_id].append(dict(seen))
    return found


def reads(database_url: str, reader: str | None = None, user_id: int | None = None,
          since: datetime | None = None, limit: int = 1000) -> list[dict[str, Any]]:
    """The newest records, at most `limit`, of one reader, of one student's data, since a time (each filter
    optional), newest first; each with the number of students it carried and their ids."""
    query = select(*_SEEN_BY, func.cardinality(_READS.c.user_ids).label("students"), _READS.c.user_ids)
    if reader is not None:
        query = query.where(_READS.c.reader == reader)
    if user_id is not None:
        query = query.where(_READS.c.user_ids.contains([user_id]))
    if since is not None:
        query = query.where(_READS.c.read_at >= since)
    query = query.order_by(_READS.c.read_at.desc(), _READS.c.id.desc()).limit(limit)
    with timed("reads"), shared_engine(database_url).connect() as connection:
        return [jsonable(dict(row)) for row in connection.execute(query).mappings()]


def readers(database_url: str, since: datetime | None = None) -> list[dict[str, Any]]:
    """Per reader since a time (optional): answers, distinct students read, first and last read, who read the
    most students first: for an access review, who reads how much."""
    with timed("readers"), shared_engine(database_url).connect() as connection:
        return [jsonable(dict(row)) for row in connection.execute(_READERS, {"since": since}).mappings()]


def take_out(connection: Connection, user_ids: Collection[int]) -> int:
    """Remove the students from every record (inside the caller's transaction, `scorer forget`'s); records
    changed. The record that a page was read, and by whom, stays."""
    return int(connection.execute(_TAKE_OUT, {"ids": sorted(set(user_ids))}).rowcount)


def drop_before(database_url: str, before: datetime, dry_run: bool = False) -> int:
    """Delete the records older than `before` that the database's period lets go (`scorer prune`: the record is
    kept as long as the school says, not for ever); how many (or would be, on a `dry_run`). The period
    (`keep_days`) is the schema owner's, and a trigger refuses anyone a younger record: asking only for what it
    lets go, a prune with a shorter SCORER_READ_RECORDS_DAYS than the database's keeps the rest, not fails."""
    let_go = (_READS.c.read_at < before) & (_POLICY.c.keep_days > 0) & (
        _READS.c.read_at < func.now() - _POLICY.c.keep_days * text("interval '1 day'"))
    with timed("drop_reads"), shared_engine(database_url).begin() as connection:
        if dry_run:
            return int(connection.execute(select(func.count()).select_from(_READS).where(let_go)).scalar_one())
        return int(connection.execute(delete(StudentDataRead).where(let_go)).rowcount)


def kept_days(database_url: str) -> float:
    """The database's period for the record of reads (0: for ever): what `scorer migrate` last set."""
    with shared_engine(database_url).connect() as connection:
        return float(connection.execute(select(_POLICY.c.keep_days)).scalar_one())


def period_read_by(connection: Connection) -> float | None:
    """`kept_days` as `connection`'s role reads it; None where the table is not created yet or the role may not
    read it (the workers' may not: storage.postgres.privileges)."""
    readable = connection.execute(text("SELECT CASE WHEN to_regclass(:name) IS NULL THEN false "
                                       "ELSE has_table_privilege(:name, 'SELECT') END"),
                                  {"name": ReadRecordPolicy.__tablename__}).scalar()
    return float(connection.execute(select(_POLICY.c.keep_days)).scalar_one()) if readable else None


def keep_for(database_url: str, days: float) -> None:
    """Set the database's period (`scorer migrate`, as the schema's owner: no other role may write it)."""
    with shared_engine(database_url).begin() as connection:
        connection.execute(update(ReadRecordPolicy).values(keep_days=max(0.0, days)))

