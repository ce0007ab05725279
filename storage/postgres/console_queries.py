"""Reads for the curator console (streams/console): bounded, so a course of thousands of students
answers in one round trip per chart. Values keep their Python types (datetime, dict)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text

from features.activity_status import FINISHED
from storage.postgres.db import shared_engine, timed
from storage.postgres.tables import ScoreHistory, StatusTransition, StudentCurrent

_CURRENT = StudentCurrent.__table__
_HISTORY = ScoreHistory.__table__
_TRANSITIONS = StatusTransition.__table__

#: At most this many score-history rows per student page (a year of event-days per enrolment, twice).
MAX_STUDENT_HISTORY = 800


def _rows(operation: str, database_url: str, query: Any, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    with timed(operation), shared_engine(database_url).connect() as connection:
        return [dict(row) for row in connection.execute(query, params or {}).mappings()]


def course_status_counts(database_url: str) -> list[dict[str, Any]]:
    """(course_id, status, n) for every course: the console's index."""
    query = (select(_CURRENT.c.course_id, _CURRENT.c.status, func.count().label("n"))
             .group_by(_CURRENT.c.course_id, _CURRENT.c.status).order_by(_CURRENT.c.course_id))
    return _rows("console_courses", database_url, query)


def course_now(database_url: str, course_id: int) -> datetime | None:
    """The course's newest event time (its enrolments' newest score): the console's "now"."""
    query = select(func.max(_CURRENT.c.updated_at)).where(_CURRENT.c.course_id == course_id)
    with timed("console_course_now"), shared_engine(database_url).connect() as connection:
        value = connection.execute(query).scalar()
    return value if isinstance(value, datetime) else None


#: Every time an enrolment's status is known, in event time: its flow's start (active: nobody dozes
#: before the course begins; from its newest features), each score row, each side of each status
#: change (exact times, complete even when a fast replay left few score rows), its current row.
#: `ord` orders the observations of one moment: the change's old status before its new one.
_STATUS_CHANGES = text("""
WITH observed AS (
    SELECT user_id, enrolment, updated_at - make_interval(
               secs => CAST(features ->> 'days_since_course_start' AS double precision) * 86400) AS at,
           0 AS ord, 'active' AS status
    FROM students_current
    WHERE course_id = :course_id AND jsonb_typeof(features -> 'days_since_course_start') = 'number'
    UNION ALL
    SELECT user_id, enrolment, as_of, 2, status FROM score_history WHERE course_id = :course_id
    UNION ALL
    SELECT user_id, enrolment, at, 1, from_status FROM status_transitions
    WHERE course_id = :course_id AND kind <> 'at_risk' AND from_status <> 'new'
    UNION ALL
    SELECT user_id, enrolment, at, 2, to_status FROM status_transitions
    WHERE course_id = :course_id AND kind <> 'at_risk'
    UNION ALL
    SELECT user_id, enrolment, updated_at, 3, status FROM students_current WHERE course_id = :course_id
), marked AS (
    SELECT at, status, lag(status) OVER (PARTITION BY user_id, enrolment ORDER BY at, ord) AS previous
    FROM observed
)
SELECT CAST(at AS date) AS day, status, previous, count(*) AS n
FROM marked
WHERE previous IS DISTINCT FROM status
GROUP BY 1, 2, 3
ORDER BY 1
""")


def course_status_changes(database_url: str, course_id: int) -> list[dict[str, Any]]:
    """Per event-day, how many enrolments entered each status from which (`previous` None: first
    seen): summed up day by day, the students by status over time, in a few hundred rows whatever
    the course's size."""
    return _rows("console_status_changes", database_url, _STATUS_CHANGES, {"course_id": course_id})


_EARLIER = text("""
SELECT DISTINCT ON (user_id, enrolment) user_id, enrolment, p_dropout
FROM score_history
WHERE user_id = ANY(:user_ids) AND course_id = :course_id AND as_of <= :before
ORDER BY user_id, enrolment, as_of DESC, model_version DESC NULLS LAST
""")


def p_dropout_before(database_url: str, course_id: int, user_ids: list[int],
                     before: datetime) -> dict[tuple[int, str], float | None]:
    """Each listed enrolment's P(dropout) as it stood at event time `before` (absent: not scored yet)."""
    if not user_ids:
        return {}
    rows = _rows("console_trend", database_url, _EARLIER,
                 {"user_ids": user_ids, "course_id": course_id, "before": before})
    return {(row["user_id"], row["enrolment"]): row["p_dropout"] for row in rows}


def course_feature_pairs(database_url: str, course_id: int, x: str, y: str, limit: int,
                         finished: bool = False) -> list[dict[str, Any]]:
    """Two features (the quadrant's axes) of the course's unfinished enrolments, or of its
    finished ones, at most `limit`."""
    status = _CURRENT.c.status == FINISHED if finished else _CURRENT.c.status != FINISHED
    query = (select(_CURRENT.c.user_id, _CURRENT.c.status,
                    _CURRENT.c.features[x].as_float().label("x"), _CURRENT.c.features[y].as_float().label("y"))
             .where(_CURRENT.c.course_id == course_id, status, _CURRENT.c.features.is_not(None))
             .order_by(_CURRENT.c.user_id).limit(limit))
    return _rows("console_quadrant", database_url, query)


_MEDIANS = text("""
SELECT name, percentile_cont(0.5) WITHIN GROUP (ORDER BY CAST(features ->> name AS double precision)) AS median
FROM students_current, unnest(CAST(:names AS text[])) AS name
WHERE course_id = :course_id AND features ? name AND jsonb_typeof(features -> name) = 'number'
GROUP BY name
""")


def course_medians(database_url: str, course_id: int, names: list[str]) -> dict[str, float]:
    """The course median of each named feature over its enrolments' current scores."""
    rows = _rows("console_medians", database_url, _MEDIANS, {"course_id": course_id, "names": names})
    return {row["name"]: float(row["median"]) for row in rows if row["median"] is not None}


def student_history(database_url: str, user_id: int) -> list[dict[str, Any]]:
    """The student's score history (one row per enrolment per event-day), oldest first, bounded."""
    query = (select(_HISTORY).where(_HISTORY.c.user_id == user_id)
             .order_by(_HISTORY.c.as_of.desc()).limit(MAX_STUDENT_HISTORY))
    return sorted(_rows("console_student_history", database_url, query), key=lambda r: r["as_of"])


def student_transitions(database_url: str, user_id: int, limit: int = 200) -> list[dict[str, Any]]:
    """The student's alerts (status changes, early warnings, finished), oldest first."""
    query = (select(_TRANSITIONS).where(_TRANSITIONS.c.user_id == user_id)
             .order_by(_TRANSITIONS.c.at.desc()).limit(limit))
    return sorted(_rows("console_student_transitions", database_url, query), key=lambda r: r["at"])


_MODEL_CURRENT = text("""
SELECT DISTINCT ON (model) model, version, created_at, n_labels, metrics, metrics_by_week, params
FROM model_versions ORDER BY model, version DESC
""")
#: Per model and calendar week of publishing, the week's last version, newest weeks first.
_MODEL_WEEKLY = text("""
SELECT * FROM (
    SELECT DISTINCT ON (model, date_trunc('week', created_at))
           date_trunc('week', created_at) AS week, model, version, n_labels, metrics
    FROM model_versions WHERE created_at IS NOT NULL
    ORDER BY model, date_trunc('week', created_at) DESC, version DESC
) AS weekly
ORDER BY week DESC LIMIT :limit
""")


def model_current(database_url: str) -> list[dict[str, Any]]:
    """The newest version of each model, with its metrics per course week (None: published before
    they were recorded)."""
    return _rows("console_model_current", database_url, _MODEL_CURRENT)


def model_weekly(database_url: str, weeks: int = 104) -> list[dict[str, Any]]:
    """Each model's last version of each week it published in (its rolling metrics and the labels
    learned so far), the newest `weeks` model-weeks, oldest first."""
    rows = _rows("console_model_weekly", database_url, _MODEL_WEEKLY, {"limit": weeks})
    return sorted(rows, key=lambda r: (r["model"], r["week"]))
