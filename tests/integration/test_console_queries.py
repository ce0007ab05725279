"""The console's queries on real Postgres: a course of 2,000 students written by the RowWriter
(tests/helpers/console_rows.py), each page built (queries, view-models, HTML) in bounded time and
showing what the rows hold."""
from __future__ import annotations

import csv
import io
import time

import pytest

from helpers.console_rows import fill_course, time_pages
from storage.postgres import console_queries as q
from storage.postgres.queries import at_risk
from streams.console import data, pages, views, words

COURSE, STUDENTS, DAYS = 501, 2000, 45
#: Generous bound against stalls (a full-table scan per student would take seconds); measured: README.
MAX_PAGE_MS = 1500


@pytest.fixture(scope="module")
def big_course(migrated: str) -> str:
    from sqlalchemy import create_engine, text

    engine = create_engine(migrated)
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE students_current, score_history, status_transitions, model_versions"))
    engine.dispose()
    began = time.perf_counter()
    fill_course(migrated, COURSE, STUDENTS, DAYS)
    fill_course(migrated, COURSE + 1, 5, DAYS, first_user=10**6)  # another course: never on course 501's page
    print(f"filled {STUDENTS} students x {DAYS} days in {time.perf_counter() - began:.1f} s")
    return migrated


def test_pages_for_2000_students_build_in_bounded_time(big_course: str) -> None:
    timings = time_pages(big_course, COURSE, 1, repeat=2)
    print("console page build, ms:", {k: round(v) for k, v in timings.items()})
    assert all(ms < MAX_PAGE_MS for ms in timings.values()), timings


def test_course_view_holds_the_course_only_and_bounds_the_list(big_course: str) -> None:
    view = data.course_view(big_course, COURSE, "p_dropout")
    assert sum(view.counts.values()) == STUDENTS and len(view.at_risk) == views.AT_RISK_LIMIT
    assert all(r.user_id < 10**6 for r in view.at_risk)
    p = [r.p_dropout for r in view.at_risk]
    assert p == sorted(p, reverse=True)
    assert all(r.reasons for r in view.at_risk)  # every row carries its sentences
    assert any(r.trend.arrow in "↑↓→" for r in view.at_risk)  # a week-earlier score found
    # the status series ends where students_current stands
    assert {s: c[-1] for s, c in view.series.counts.items()} == view.counts
    assert sum(view.by_week.dozing) > 0 and sum(view.by_week.asleep) > 0 and view.by_place.labels
    assert sum(view.quadrants.counts.values()) == STUDENTS
    by_days = data.course_view(big_course, COURSE, "days_inactive").at_risk
    d = [r.days_inactive for r in by_days]
    assert d == sorted(d, reverse=True)
    reachable = data.course_view(big_course, COURSE, views.DEFAULT_SORT).at_risk  # ~1,200 active or dozing
    assert {r.status for r in reachable} == {"active", "dozing"} and len(reachable) == views.AT_RISK_LIMIT
    p = [r.p_dropout for r in reachable]
    assert p == sorted(p, reverse=True)
    assert "The first 200 of 2000 enrolments" in pages.course_page(view)


def test_the_at_risk_export_holds_the_whole_course_in_the_page_order(big_course: str) -> None:
    """The CSV holds every enrolment of the course, not the page's first 200, in the order the page lists them."""
    text, students = data.at_risk_export(big_course, COURSE, views.DEFAULT_SORT)
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert len(rows) == STUDENTS and all(int(r["user_id"]) < 10**6 for r in rows)
    assert students == [int(r["user_id"]) for r in rows]  # what the record of reads names
    view = data.course_view(big_course, COURSE, views.DEFAULT_SORT)
    page = view.at_risk
    assert [int(r["user_id"]) for r in rows[:len(page)]] == [r.user_id for r in page]
    assert {r.user_id for r in page} <= view.students and len(view.students) <= len(page) + views.QUADRANT_LIMIT
    assert all(r["reasons"] for r in rows[:len(page)]) and any(r["p_dropout_a_week_earlier"] for r in rows)
    counts = data.course_view(big_course, COURSE, "status").counts
    assert {r["status"] for r in rows} == {status for status, n in counts.items() if n}


def test_student_and_model_views(big_course: str) -> None:
    enrolments, transitions = data.student_view(big_course, 1)
    assert len(enrolments) == 1 and enrolments[0].history is not None
    assert enrolments[0].history.days == sorted(enrolments[0].history.days)
    norms = {n.name: n for n in enrolments[0].norms}
    assert norms["success_index"].median is not None and 0 <= norms["success_index"].median <= 1
    assert all(t["user_id"] == 1 for t in transitions)
    current, weeks = data.model_view(big_course)
    assert [r["version"] for r in current] == [DAYS // 7 + 1]
    assert [w.learned for w in weeks][1:] == [40] * (len(weeks) - 1)
    quality = views.course_week_quality(current[0]["metrics_by_week"])  # the current version, per course week
    assert quality is not None and quality.weeks == list(range(1, DAYS // 7 + 1))
    assert "quality by course week" in pages.model_page(current, weeks).lower()
    assert q.course_medians(big_course, 999, ["success_index"]) == {}


def test_demo_ends_with_the_console_and_the_most_urgent_students(big_course: str,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from streams.tools.demo import print_console

    print_console("http://127.0.0.1:1/console/courses/501", "tok", True, "HTTP 200 in 5 ms", big_course, COURSE,
                  top=20)
    out = capsys.readouterr().out
    assert "http://127.0.0.1:1/console/courses/501" in out and "token: tok" in out
    urgent = at_risk(big_course, COURSE, 20, views.DEFAULT_SORT)
    assert {row["status"] for row in urgent} <= {"active", "dozing"}  # the course has far more than 20 of them
    for row in urgent:  # a P(dropout) the guess gave says so
        mark = " (guess)" if row["basis"]["p_dropout"] == "guess" else ""
        assert f"student {row['user_id']}: {row['status']}, P(dropout) {row['p_dropout']:.2f}{mark}\n" in out
        assert all(f"- {reason}" in out for reason in words.reasons(row["factors"]))
    assert "(guess)" in out
