"""RowWriter against real PostgreSQL: idempotent upserts, no going back in time, dedupe."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import create_engine, text

from storage.postgres.row_writer import RowWriter

T0 = datetime(2023, 12, 5, 11, 0)
TABLES = ("students_current", "score_history", "status_transitions", "model_versions")




@pytest.fixture
def writer(db: str) -> Iterator[RowWriter]:
    writer = RowWriter(db)
    yield writer
    writer.close()


def score(user_id: int, updated_at: datetime = T0, **overrides: Any) -> dict[str, Any]:
    return {
        "user_id": user_id, "course_id": 7, "flow_num": 1, "status": "active", "status_since": T0 - timedelta(days=3),
        "last_activity_at": T0 - timedelta(hours=1), "days_inactive": 0.04, "progress_pred": 55.0,
        "p_dropout": 0.2, "p_success": 0.6, "model_version": 3, "features": {"logins_7d": 4},
        "updated_at": updated_at, **overrides,
    }


def transition(alert_id: str, user_id: int = 1, **overrides: Any) -> dict[str, Any]:
    return {
        "alert_id": alert_id, "user_id": user_id, "course_id": 7, "from_status": "active", "to_status": "dozing",
        "at": T0, "days_inactive": 7.0, "last_activity_at": T0 - timedelta(days=7), "course_week": 3, "module": 2,
        "task_id": 41, "activity_id": 410, "progress_pred": 40.0, "p_dropout": 0.5, "p_success": 0.3,
        "model_version": 3, "reasons": ["inactive 7 days"], **overrides,
    }


def rows(url: str, sql: str) -> list[dict[str, Any]]:
    engine = create_engine(url)
    with engine.connect() as connection:
        result = [dict(row) for row in connection.execute(text(sql)).mappings()]
    engine.dispose()
    return result


def dump(url: str) -> dict[str, list[dict[str, Any]]]:
    order = {"students_current": "user_id", "score_history": "id", "status_transitions": "alert_id",
             "model_versions": "model, version"}
    return {table: rows(url, f"SELECT * FROM {table} ORDER BY {order[table]}") for table in TABLES}


def write_batch(writer: RowWriter) -> int:
    writer.add_scores([score(1), score(2), score(3, status="dozing")])
    writer.add_transitions([transition("a-1"), transition("a-2", user_id=3)])
    writer.add_model_version({"model": "progress", "version": 3, "created_at": T0, "n_labels": 120,
                              "metrics": {"mae": 8.5}, "params": {"grace_period": 50}})
    return writer.flush()


def test_same_batch_twice_leaves_the_same_rows(db: str, writer: RowWriter) -> None:
    assert write_batch(writer) == 3 + 3 + 2 + 1
    first = dump(db)
    assert [len(first[table]) for table in TABLES] == [3, 3, 2, 1]
    assert write_batch(writer) == 0
    assert dump(db) == first  # updated_wall included: a redelivery touches nothing


def test_students_current_does_not_go_backwards(db: str, writer: RowWriter) -> None:
    later = T0 + timedelta(days=8)
    writer.add_scores([score(1, later, status="dozing", p_dropout=0.7)])
    writer.flush()
    writer.add_scores([score(1, T0, status="active", p_dropout=0.1)])  # late redelivery
    assert writer.flush() == 1  # only its score_history row
    current = rows(db, "SELECT status, p_dropout, updated_at FROM students_current")
    assert current == [{"status": "dozing", "p_dropout": 0.7, "updated_at": later}]
    assert len(rows(db, "SELECT 1 FROM score_history WHERE user_id = 1")) == 2


def test_newer_and_same_time_snapshots_replace_the_stored_one(db: str, writer: RowWriter) -> None:
    writer.add_scores([score(1, T0)])
    writer.flush()
    writer.add_scores([score(1, T0, p_dropout=0.3)])  # a correction at the same event time
    assert writer.flush() == 2
    assert rows(db, "SELECT p_dropout FROM students_current") == [{"p_dropout": 0.3}]
    writer.add_scores([score(1, T0 + timedelta(days=20), status="asleep")])
    writer.flush()
    assert rows(db, "SELECT status FROM students_current") == [{"status": "asleep"}]


def test_one_batch_keeps_the_newest_snapshot_of_a_student(db: str, writer: RowWriter) -> None:
    writer.add_scores([score(1, T0 + timedelta(days=1), status="dozing"), score(1, T0, status="active")])
    assert writer.flush() == 1 + 2
    assert rows(db, "SELECT status FROM students_current") == [{"status": "dozing"}]


def test_history_false_updates_current_only(db: str, writer: RowWriter) -> None:
    writer.add_scores([score(1, T0), score(2, T0) | {"history": False}])
    assert writer.flush() == 2 + 1
    assert rows(db, "SELECT user_id FROM score_history") == [{"user_id": 1}]


def test_transitions_dedupe_by_alert_id(db: str, writer: RowWriter) -> None:
    writer.add_transitions([transition("a-1"), transition("a-1")])
    assert writer.flush() == 1
    writer.add_transitions([transition("a-1"), transition("a-2", to_status="asleep", from_status="dozing")])
    assert writer.flush() == 1
    assert rows(db, "SELECT alert_id FROM status_transitions ORDER BY 1") == [{"alert_id": "a-1"}, {"alert_id": "a-2"}]


def test_score_history_dedupes_per_model_version_even_without_one(db: str, writer: RowWriter) -> None:
    for _ in range(2):
        writer.add_scores([score(1, model_version=None), score(1, model_version=4)])
        writer.flush()
    history = rows(db, "SELECT model_version FROM score_history ORDER BY model_version NULLS FIRST")
    assert history == [{"model_version": None}, {"model_version": 4}]


def test_flush_spans_several_statements(db: str) -> None:
    writer = RowWriter(db, batch_size=7)
    writer.add_scores([score(user_id) for user_id in range(1, 51)])
    assert writer.flush() == 100
    writer.add_scores([score(user_id) for user_id in range(1, 51)])
    assert writer.flush() == 0
    writer.close()
    assert rows(db, "SELECT count(*) AS n FROM score_history") == [{"n": 50}]


def test_values_from_the_worker_store_cleanly(db: str, writer: RowWriter) -> None:
    features = {"mean_gap": float("nan"), "logins": np.int64(3), "ratio": np.float32(0.5)}
    writer.add_scores([score(1, updated_at="2023-12-05T11:00", features=features)])
    writer.flush()
    stored = rows(db, "SELECT features, updated_at FROM students_current")
    assert stored == [{"features": {"mean_gap": None, "logins": 3, "ratio": 0.5}, "updated_at": T0}]


@pytest.mark.parametrize("bad, message", [
    ({"ts": T0}, "unknown keys"),
    ({"status": "sleepy"}, "status"),
    ({"updated_at": None}, "missing"),
])
def test_bad_rows_are_refused_before_they_reach_the_database(writer: RowWriter, bad: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        writer.add_scores([score(1) | bad])
    assert writer.flush() == 0
