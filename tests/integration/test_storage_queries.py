"""Reads over hand-made data: the critical-points view, at_risk ordering and the student lookup."""
from __future__ import annotations

from datetime import datetime
from itertools import count
from pathlib import Path
from typing import Any

import pytest

from storage.postgres.critical_points import critical_points, format_table, plot
from storage.postgres.queries import at_risk, status_summary, student
from storage.postgres.row_writer import RowWriter

T0 = datetime(2023, 12, 5, 11, 0)
_alert_ids = count()




def write(url: str, scores: list[dict[str, Any]] = (), transitions: list[dict[str, Any]] = ()) -> None:
    writer = RowWriter(url)
    writer.add_scores(list(scores))
    writer.add_transitions(list(transitions))
    writer.close()


def score(user_id: int, course_id: int = 7, status: str = "active", p_dropout: float | None = 0.1,
          flow: int = 1, updated_at: Any = T0, days_inactive: float | None = None) -> dict[str, Any]:
    return {"user_id": user_id, "enrolment": f"{course_id}:{flow}", "course_id": course_id, "flow_num": flow,
            "status": status, "p_dropout": p_dropout, "updated_at": updated_at, "days_inactive": days_inactive}


def moved(user_id: int, to_status: str, task_id: int, course_id: int = 7, module: int = 1,
          course_week: int = 2) -> dict[str, Any]:
    return {"alert_id": f"a-{next(_alert_ids)}", "user_id": user_id, "course_id": course_id,
            "from_status": "active" if to_status == "dozing" else "dozing", "to_status": to_status,
            "at": T0, "course_week": course_week, "module": module, "task_id": task_id}


def test_task_with_more_asleep_transitions_ranks_first(db: str) -> None:
    write(db, scores=[score(user_id) for user_id in range(1, 11)], transitions=[
        # task 10: many dozing but only one falls asleep; task 20: three fall asleep.
        *(moved(user_id, "dozing", task_id=10) for user_id in range(1, 6)),
        moved(1, "asleep", task_id=10),
        *(moved(user_id, "asleep", task_id=20, module=2, course_week=4) for user_id in (6, 7, 8)),
        moved(9, "active", task_id=30),  # waking up is not a critical point
    ])
    places = critical_points(db, course_id=7)
    assert [place["task_id"] for place in places] == [20, 10]
    worst = places[0]
    assert (worst["to_asleep"], worst["to_dozing"], worst["students"], worst["course_students"]) == (3, 0, 3, 10)
    assert worst["share"] == pytest.approx(0.3)
    assert (worst["module"], worst["course_week"], worst["rank_in_course"]) == (2, 4, 1)
    assert places[1]["students"] == 5  # user 1 dozed and fell asleep there: counted once


def test_critical_points_filter_by_course_and_limit(db: str) -> None:
    write(db, scores=[score(1), score(2, course_id=8)],
          transitions=[moved(1, "asleep", task_id=10), moved(2, "dozing", task_id=11, course_id=8)])
    assert [p["course_id"] for p in critical_points(db, course_id=8)] == [8]
    assert [p["course_id"] for p in critical_points(db)] == [7, 8]
    assert len(critical_points(db, limit=1)) == 1


def test_format_table_shows_places_and_shares(db: str) -> None:
    write(db, scores=[score(1), score(2)], transitions=[moved(1, "asleep", task_id=10)])
    lines = format_table(critical_points(db)).splitlines()
    assert lines[0].split() == ["course", "module", "theme", "week", "task", "->dozing", "->asleep", "students",
                                "of", "course", "share"]
    assert lines[1].split() == ["7", "1", "-", "2", "10", "0", "1", "1", "2", "50.0%"]
    assert format_table([]) == "no transitions into dozing or asleep yet"


def test_places_are_grouped_by_theme_with_its_name_and_plotted(db: str, tmp_path: Path) -> None:
    themed = {"theme_id": 5, "theme": "Циклы и условия"}
    write(db, scores=[score(1), score(2), score(3)],
          transitions=[moved(1, "asleep", task_id=10) | themed, moved(2, "dozing", task_id=10) | themed,
                       moved(3, "asleep", task_id=12, course_week=4)])
    worst = critical_points(db)[0]
    assert (worst["theme_id"], worst["theme"], worst["to_asleep"], worst["to_dozing"]) == (5, "Циклы и условия", 1, 1)
    chart = tmp_path / "where.png"
    plot(critical_points(db, limit=100), chart)
    assert chart.stat().st_size > 5_000


def test_at_risk_puts_asleep_then_dozing_then_highest_dropout(db: str) -> None:
    write(db, scores=[
        score(1, status="active", p_dropout=0.9),
        score(2, status="dozing", p_dropout=0.2),
        score(3, status="asleep", p_dropout=0.1),
        score(4, status="dozing", p_dropout=0.6),
        score(5, status="active", p_dropout=None),
        score(6, status="active", p_dropout=0.3),
        score(7, course_id=8, status="asleep", p_dropout=0.99),
    ])
    assert [row["user_id"] for row in at_risk(db, 7)] == [3, 4, 2, 1, 6, 5]
    assert [row["user_id"] for row in at_risk(db, 7, limit=2)] == [3, 4]


def test_the_reachable_order_puts_active_and_dozing_by_risk_then_the_most_recently_asleep(db: str) -> None:
    write(db, scores=[
        score(1, status="active", p_dropout=0.9, days_inactive=1.0),
        score(2, status="dozing", p_dropout=0.95, days_inactive=10.0),
        score(3, status="asleep", p_dropout=0.99, days_inactive=40.0),
        score(4, status="asleep", p_dropout=0.5, days_inactive=21.0),
        score(5, status="finished", p_dropout=0.99, days_inactive=2.0),
        score(6, status="active", p_dropout=0.2, days_inactive=0.5),
        score(7, status="dozing", p_dropout=None, days_inactive=8.0),
        score(8, course_id=8, status="dozing", p_dropout=0.99),
    ])
    assert [row["user_id"] for row in at_risk(db, 7, sort="reachable")] == [2, 1, 6, 7, 4, 3, 5]
    assert [row["user_id"] for row in at_risk(db, 7, sort="p_dropout")] == [3, 5, 2, 1, 4, 6, 7]
    assert [row["user_id"] for row in at_risk(db, 7, sort="days_inactive")] == [3, 4, 2, 7, 5, 1, 6]


def test_student_lookup_gives_every_enrolment_newest_first(db: str) -> None:
    later = T0.replace(year=T0.year + 1)
    write(db, scores=[score(1, status="dozing", p_dropout=0.4),
                      score(1, status="active", flow=2, updated_at=later)])
    current, first = student(db, 1)
    assert (current["enrolment"], current["status"], current["updated_at"]) == ("7:2", "active", later)
    assert (first["enrolment"], first["status"], first["p_dropout"], first["course_id"]) == ("7:1", "dozing", 0.4, 7)
    assert student(db, 2) == []


def test_status_summary_counts_every_status(db: str) -> None:
    write(db, scores=[score(1, status="asleep"), score(2, status="asleep"), score(3, course_id=8, status="dozing")])
    assert status_summary(db) == {"active": 0, "dozing": 1, "asleep": 2, "finished": 0}
    assert status_summary(db, course_id=7) == {"active": 0, "dozing": 0, "asleep": 2, "finished": 0}
