"""Reads of students_current for the HTTP read API and the console. Values keep their Python types (datetime, dict)."""
from __future__ import annotations

from typing import Any, Literal, get_args

from sqlalchemy import case, func, nulls_last, select, text

from features.activity_status import ACTIVE, ASLEEP, DOZING, STATUSES
from storage.postgres.db import shared_engine, timed
from storage.postgres.tables import StudentCurrent

_CURRENT = StudentCurrent.__table__

Sort = Literal["reachable", "p_dropout", "status", "days_inactive"]
SORTS: tuple[Sort, ...] = get_args(Sort)
_P_DROPOUT = nulls_last(_CURRENT.c.p_dropout.desc())
#: Each at-risk order: its keys, then P(dropout), then the id (a stable page). Finished enrolments,
#: with nothing left to act on, come last in the two orders by status.
_ORDERS: dict[Sort, tuple[Any, ...]] = {
    # The students a curator can still reach, as the school asks (act before it is critical): active
    # and dozing ones by P(dropout); then the asleep, the most recently gone quiet first.
    "reachable": (case({ACTIVE: 0, DOZING: 0, ASLEEP: 1}, value=_CURRENT.c.status, else_=2),
                  nulls_last(case((_CURRENT.c.status == ASLEEP, _CURRENT.c.days_inactive)).asc()), _P_DROPOUT,
                  _CURRENT.c.user_id),
    "p_dropout": (_P_DROPOUT, _CURRENT.c.user_id),
    # The furthest gone first: asleep, then dozing, then active.
    "status": (case({ASLEEP: 0, DOZING: 1, ACTIVE: 2}, value=_CURRENT.c.status, else_=3), _P_DROPOUT,
               _CURRENT.c.user_id),
    "days_inactive": (nulls_last(_CURRENT.c.days_inactive.desc()), _P_DROPOUT, _CURRENT.c.user_id),
}


def student(database_url: str, user_id: int) -> list[dict[str, Any]]:
    """The newest score row of each of the student's enrolments, newest enrolment first (empty if
    the scorer has not seen them)."""
    query = select(_CURRENT).where(_CURRENT.c.user_id == user_id).order_by(_CURRENT.c.updated_at.desc())
    with timed("student"), shared_engine(database_url).connect() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]


def at_risk(database_url: str, course_id: int, limit: int = 50, sort: Sort = "status") -> list[dict[str, Any]]:
    """A course's enrolments in `sort` order (`_ORDERS`), at most `limit`."""
    query = select(_CURRENT).where(_CURRENT.c.course_id == course_id).order_by(*_ORDERS[sort]).limit(limit)
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
