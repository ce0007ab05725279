"""Reads of students_current for the HTTP read API. Values keep their Python types (datetime, dict)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import case, func, nulls_last, select, text

from features.activity_status import ACTIVE, ASLEEP, DOZING, STATUSES
from storage.postgres.db import shared_engine, timed
from storage.postgres.tables import StudentCurrent

_CURRENT = StudentCurrent.__table__
#: Asleep students need help first, then dozing ones, then the active ones most likely to drop out;
#: finished enrolments (nothing left to act on) last.
_STATUS_RANK = case({ASLEEP: 0, DOZING: 1, ACTIVE: 2}, value=_CURRENT.c.status, else_=3)


def student(database_url: str, user_id: int) -> list[dict[str, Any]]:
    """The newest score row of each of the student's enrolments, newest enrolment first (empty if
    the scorer has not seen them)."""
    query = select(_CURRENT).where(_CURRENT.c.user_id == user_id).order_by(_CURRENT.c.updated_at.desc())
    with timed("student"), shared_engine(database_url).connect() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]


def at_risk(database_url: str, course_id: int, limit: int = 50) -> list[dict[str, Any]]:
    """A course's enrolments, asleep then dozing then active (each group by highest P(dropout)),
    finished last."""
    query = (
        select(_CURRENT)
        .where(_CURRENT.c.course_id == course_id)
        .order_by(_STATUS_RANK, nulls_last(_CURRENT.c.p_dropout.desc()), _CURRENT.c.user_id)
        .limit(limit)
    )
    with timed("at_risk"), shared_engine(database_url).connect() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]


def status_summary(database_url: str, course_id: int | None = None) -> dict[str, int]:
    """Enrolments per status, the demo's and dashboard's headline; every status present, zeros included."""
    query = select(_CURRENT.c.status, func.count()).group_by(_CURRENT.c.status)
    if course_id is not None:
        query = query.where(_CURRENT.c.course_id == course_id)
    with timed("status_summary"), shared_engine(database_url).connect() as connection:
        counts = {status: n for status, n in connection.execute(query)}
    return {status: counts.get(status, 0) for status in STATUSES}


def ping(database_url: str) -> bool:
    """Does the database answer a query?"""
    with timed("ping"), shared_engine(database_url).connect() as connection:
        return bool(connection.execute(text("select 1")).scalar() == 1)
