"""Each page's data: the console queries, then the view-models (blocking; the routes run these
in a thread so the worker's event loop never waits on Postgres)."""
from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime, timedelta
from typing import Any

from online_models.uplift import from_rows, report
from storage.postgres import console_queries as q
from storage.postgres import queries
from storage.postgres.alert_outcomes import transitions
from storage.postgres.critical_points import critical_points
from streams.console import export, views
from streams.console.pages import CourseView, EnrolmentView

#: The course page's critical points: enough places for every week's bar and the worst places.
MAX_PLACES = 500


def _at_risk(database_url: str, course_id: int, sort: queries.Sort, limit: int,
             now: datetime | None) -> tuple[list[dict[str, Any]], dict[tuple[int, str], float | None]]:
    """The list's rows, and each one's P(dropout) a week before `now`, the course's newest score (its trend)."""
    rows = queries.at_risk(database_url, course_id, limit, sort)
    earlier = ({} if now is None else
               q.p_dropout_before(database_url, course_id, [r["user_id"] for r in rows],
                                  now - timedelta(days=views.TREND_DAYS)))
    return rows, earlier


def at_risk_export(database_url: str, course_id: int, sort: queries.Sort) -> tuple[str, list[int]]:
    """The whole at-risk list as CSV (streams.console.export), and the students it lists."""
    now = q.course_now(database_url, course_id)
    rows, earlier = _at_risk(database_url, course_id, sort, export.EXPORT_LIMIT, now)
    return export.at_risk_csv(rows, earlier), [row["user_id"] for row in rows]


def course_view(database_url: str, course_id: int, sort: queries.Sort) -> CourseView:
    now = q.course_now(database_url, course_id)
    rows, earlier = _at_risk(database_url, course_id, sort, views.AT_RISK_LIMIT, now)
    points = critical_points(database_url, course_id, limit=MAX_PLACES)
    pairs = q.course_feature_pairs(database_url, course_id, views.ENGAGEMENT, views.PERFORMANCE, views.QUADRANT_LIMIT)
    finished = not pairs  # a course that is over: where its students ended
    if finished:
        pairs = q.course_feature_pairs(database_url, course_id, views.ENGAGEMENT, views.PERFORMANCE,
                                       views.QUADRANT_LIMIT, finished=True)
    return CourseView(
        course_id=course_id, now=now, counts=queries.status_summary(database_url, course_id),
        series=views.status_series(q.course_status_changes(database_url, course_id)),
        by_week=views.stops_by_week(points), by_place=views.stops_by_place(points),
        at_risk=views.at_risk_rows(rows, earlier), sort=sort,
        quadrants=views.quadrants(pairs, finished),
        uplift=report(from_rows(transitions(database_url, course_id)), source=f"course {course_id}"))


def student_view(database_url: str, user_id: int,
                 active: Collection[date] = frozenset()) -> tuple[list[EnrolmentView], list[dict[str, Any]]]:
    """The student's enrolments (newest first) with their histories and norms, and their alerts;
    `active`: the days they did something (from their stored facts)."""
    current = queries.student(database_url, user_id)
    rows = q.student_history(database_url, user_id)
    transitions = q.student_transitions(database_url, user_id)
    histories = {h.enrolment: h for h in views.enrolment_histories(rows)}
    medians: dict[int, dict[str, float]] = {}
    enrolments = []
    for row in current:
        course = row["course_id"]
        if course is not None and course not in medians:
            medians[course] = q.course_medians(database_url, course, list(views.COMPARED_FEATURES))
        mine = row["enrolment"]
        days = views.timeline(row, [h for h in rows if h["enrolment"] == mine],
                              [t for t in transitions if t["enrolment"] == mine], active)
        enrolments.append(EnrolmentView(row, histories.get(mine),
                                        views.feature_norms(row["features"], medians.get(course, {})), days))
    return enrolments, transitions


def model_view(database_url: str) -> tuple[list[dict[str, object]], list[views.ModelWeek]]:
    return q.model_current(database_url), views.model_weeks(q.model_weekly(database_url))
