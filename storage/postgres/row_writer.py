"""Batch writer of score rows (students_current, score_history), status transitions and model versions.

A crashed worker redelivers, so every write is INSERT ... ON CONFLICT DO UPDATE that only
touches a row whose values differ: writing a batch twice leaves the same rows and the second
flush reports 0 rows written. students_current also refuses a snapshot older (in event time)
than the stored one, so a late redelivery cannot move a student back.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, and_, func, literal_column, tuple_
from sqlalchemy.dialects.postgresql import insert

from features.activity_status import FROM_STATUSES, STATUSES
from storage.postgres.db import make_engine, timed
from storage.postgres.tables import (
    NO_MODEL_VERSION,
    Base,
    ModelVersion,
    ScoreHistory,
    StatusTransition,
    StudentCurrent,
)


def _table(mapped: type[Base]) -> Table:
    """A declarative class's Table (SQLAlchemy types `__table__` as any FromClause)."""
    table = mapped.__table__
    assert isinstance(table, Table)
    return table


CURRENT = _table(StudentCurrent)
HISTORY = _table(ScoreHistory)
TRANSITIONS = _table(StatusTransition)
VERSIONS = _table(ModelVersion)

#: Keys of a score row: one students_current row, of which score_history keeps a copy.
SCORE_KEYS = tuple(c.name for c in CURRENT.columns if c.name != "updated_wall")
TRANSITION_KEYS = tuple(c.name for c in TRANSITIONS.columns)
VERSION_KEYS = tuple(c.name for c in VERSIONS.columns)
HISTORY_KEYS = tuple(c.name for c in HISTORY.columns if c.name != "id")
#: Matches the unique index uq_score_history_key (NULL model_version dedupes too).
HISTORY_CONFLICT = [HISTORY.c.user_id, HISTORY.c.enrolment, HISTORY.c.as_of,
                    func.coalesce(HISTORY.c.model_version, NO_MODEL_VERSION)]
#: Row keys that hold event times; ISO-8601 strings are parsed so rows compare by time.
TIME_KEYS = frozenset({"status_since", "last_activity_at", "updated_at", "at", "created_at", "next_due_at"})


class RowWriter:
    """Buffers rows and writes them in one transaction per flush. Use one writer per thread."""

    def __init__(self, database_url: str, batch_size: int = 500) -> None:
        self._engine = make_engine(database_url)
        self._batch_size = batch_size  # rows per INSERT statement
        # Keyed by conflict target, so a batch never holds two rows for one key (Postgres
        # refuses to update a row twice in one statement) and the newest one wins.
        self._current: dict[tuple[int, str], dict[str, Any]] = {}
        self._history: dict[tuple[Any, ...], dict[str, Any]] = {}
        self._transitions: dict[str, dict[str, Any]] = {}
        self._versions: dict[tuple[str, int], dict[str, Any]] = {}

    def add_scores(self, rows: list[dict[str, Any]]) -> None:
        """Buffer score rows: each row updates students_current and, unless its `history`
        key is False (the worker keeps one history row per enrolment per day), score_history.
        A row without an `enrolment` is the student's only one ("")."""
        for raw in rows:
            keep_history = raw.get("history", True)
            row = _row({k: v for k, v in raw.items() if k != "history"}, SCORE_KEYS,
                       required=("user_id", "status", "updated_at"))
            _check_status(row["status"], STATUSES)
            key = (row["user_id"], row["enrolment"] or "")
            row["enrolment"] = key[1]
            stored = self._current.get(key)
            if stored is None or stored["updated_at"] <= row["updated_at"]:
                self._current[key] = row
            if not keep_history:
                continue
            history = {name: row.get(name) for name in HISTORY_KEYS} | {"as_of": row["updated_at"]}
            self._history[(row["user_id"], key[1], row["updated_at"], row["model_version"])] = history

    def add_transitions(self, rows: list[dict[str, Any]]) -> None:
        """Buffer status transitions (alerts), deduplicated by their deterministic alert_id."""
        for raw in rows:
            row = _row(raw, TRANSITION_KEYS, required=("alert_id", "user_id", "from_status", "to_status", "at"))
            _check_status(row["from_status"], FROM_STATUSES)
            _check_status(row["to_status"], STATUSES)
            row["enrolment"] = row["enrolment"] or ""
            row["kind"] = row["kind"] or "status_change"
            row["held_out"] = bool(row["held_out"])
            self._transitions[row["alert_id"]] = row

    def add_model_version(self, row: dict[str, Any]) -> None:
        """Buffer the description of a published model version."""
        version = _row(row, VERSION_KEYS, required=("model", "version"))
        self._versions[(version["model"], version["version"])] = version

    def flush(self) -> int:
        """Write everything buffered in one transaction; returns rows inserted or changed.

        On failure the buffer is kept, so the caller can retry the same flush.
        """
        if not (self._current or self._history or self._transitions or self._versions):
            return 0
        with timed("flush"), self._engine.begin() as connection:
            connection.execution_options(insertmanyvalues_page_size=self._batch_size)
            written = (
                _upsert(connection, VERSIONS, self._versions, [VERSIONS.c.model, VERSIONS.c.version])
                + _upsert(connection, CURRENT, self._current, [CURRENT.c.user_id, CURRENT.c.enrolment],
                          newer_only=True)
                + _upsert(connection, HISTORY, self._history, HISTORY_CONFLICT)
                + _upsert(connection, TRANSITIONS, self._transitions, [TRANSITIONS.c.alert_id])
            )
        for buffer in (self._current, self._history, self._transitions, self._versions):
            buffer.clear()
        return written

    def close(self) -> None:
        """Flush what is left, then release the connections."""
        try:
            self.flush()
        finally:
            self._engine.dispose()


def _upsert(connection: Connection, table: Table, buffer: dict[Any, dict[str, Any]],
            conflict: list[Any], newer_only: bool = False) -> int:
    if not buffer:
        return 0
    statement = insert(table)
    columns = [c.name for c in table.columns if not c.primary_key and c.name != "updated_wall"]
    changed = tuple_(*(table.c[name] for name in columns)).is_distinct_from(
        tuple_(*(statement.excluded[name] for name in columns)))
    values: dict[str, Any] = {name: statement.excluded[name] for name in columns}
    if newer_only:
        changed = and_(table.c.updated_at <= statement.excluded.updated_at, changed)
        values["updated_wall"] = func.now()
    statement = statement.on_conflict_do_update(index_elements=conflict, set_=values, where=changed)
    # Sorted by key, so two workers upserting overlapping students lock rows in the same order.
    rows = [buffer[key] for key in sorted(buffer, key=_sort_key)]
    return len(connection.execute(statement.returning(literal_column("1")), rows).all())


def _row(raw: dict[str, Any], keys: tuple[str, ...], required: tuple[str, ...]) -> dict[str, Any]:
    """Every key present (executemany needs one shape), unknown keys refused early, times parsed."""
    unknown = raw.keys() - set(keys)
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)}; expected some of {list(keys)}")
    missing = [key for key in required if raw.get(key) is None]
    if missing:
        raise ValueError(f"missing {missing}")
    return {key: _time(raw.get(key)) if key in TIME_KEYS else raw.get(key) for key in keys}


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _check_status(status: str, allowed: tuple[str, ...]) -> None:
    if status not in allowed:
        raise ValueError(f"status {status!r} not in {allowed}")


def _sort_key(key: Any) -> tuple[Any, ...]:
    """Keys may hold None (model_version); sort it first without comparing None to numbers."""
    parts = key if isinstance(key, tuple) else (key,)
    return tuple((part is not None, part) for part in parts)
