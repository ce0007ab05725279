"""Reads the recorded alerts for `scorer uplift`: every transition, held out or not, in time order.

Only what the comparison needs (who, which enrolment, what changed, when, held out or not): no
scores, reasons or positions leave the database.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from storage.postgres.db import shared_engine, timed
from storage.postgres.tables import StatusTransition

_T = StatusTransition.__table__
COLUMNS = ("user_id", "enrolment", "kind", "from_status", "to_status", "at", "held_out")


def transitions(database_url: str, course_id: int | None = None) -> list[dict[str, Any]]:
    """status_transitions rows (COLUMNS; `at` a naive school-time datetime), of one course if given."""
    query = select(*(_T.c[name] for name in COLUMNS)).order_by(_T.c.user_id, _T.c.enrolment, _T.c.at)
    if course_id is not None:
        query = query.where(_T.c.course_id == course_id)
    with timed("alert_outcomes"), shared_engine(database_url).connect() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]
