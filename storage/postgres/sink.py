"""The worker's RowSink: score rows and transitions to Postgres, from a thread, so a slow
database never blocks the event loop."""
from __future__ import annotations

import asyncio
from typing import Any

from features.eventtime import to_db_time
from storage.postgres.migrate import upgrade
from storage.postgres.row_writer import RowWriter
from streams.contract.outputs import Alert, ScoreRow, enrolment_key


def _db_time(epoch: float | None) -> Any:
    return None if epoch is None else to_db_time(epoch)


def score_columns(row: ScoreRow) -> dict[str, Any]:
    """A ScoreRow as students_current columns (plus `history`: whether score_history keeps it)."""
    return {
        "user_id": row.user_id, "enrolment": row.enrolment, "course_id": row.course_id, "flow_num": row.flow_num,
        "status": row.status,
        "status_since": _db_time(row.status_since), "last_activity_at": _db_time(row.last_activity_at),
        "days_inactive": row.days_inactive, "progress_pred": row.scores.progress, "p_dropout": row.scores.p_dropout,
        "p_success": row.scores.p_success, "model_version": row.scores.model_version, "features": row.features,
        "factors": row.scores.factors_json(row.language), "basis": row.scores.basis_json(),
        "updated_at": to_db_time(row.updated_at), "history": row.new_history_day,
    }


def transition_columns(alert: Alert) -> dict[str, Any]:
    """An alert as a status_transitions row: the transition and where the course stood then."""
    return {
        "alert_id": alert.alert_id, "user_id": alert.user_id, "course_id": alert.course_id,
        "flow_num": alert.flow_num, "enrolment": enrolment_key(alert.course_id, alert.flow_num),
        "from_status": alert.from_status, "to_status": alert.to_status, "at": to_db_time(alert.at),
        "days_inactive": alert.days_inactive, "last_activity_at": _db_time(alert.last_activity),
        "kind": alert.kind, "course_week": alert.position.course_week, "module": alert.position.module,
        "theme_id": alert.position.theme_id, "theme": alert.position.theme, "task_id": alert.position.task_id,
        "task_name": alert.position.task_name, "activity_id": alert.position.activity_id,
        "next_task_id": alert.position.next_task_id, "next_due_at": _db_time(alert.position.next_due_at),
        "progress_pred": alert.scores.progress, "p_dropout": alert.scores.p_dropout,
        "p_success": alert.scores.p_success, "model_version": alert.scores.model_version,
        "reasons": list(alert.reasons), "factors": alert.scores.factors_json(alert.language),
        "basis": alert.scores.basis_json(), "held_out": alert.holdout,
    }


class PostgresSink:
    def __init__(self, database_url: str) -> None:
        self._rows = RowWriter(database_url)  # used by one to_thread call at a time
        self._versions = RowWriter(database_url)  # the trainer's thread has its own

    @classmethod
    async def open(cls, database_url: str) -> PostgresSink:
        """Migrate the schema to head (under an advisory lock), then connect."""
        await asyncio.to_thread(upgrade, database_url)
        return cls(database_url)

    async def write(self, scores: list[ScoreRow], transitions: list[Alert]) -> None:
        def flush() -> None:
            self._rows.add_scores([score_columns(r) for r in scores])
            self._rows.add_transitions([transition_columns(a) for a in transitions])
            self._rows.flush()

        await asyncio.to_thread(flush)

    def write_model_version(self, meta: dict[str, Any]) -> None:
        """ModelRegistry's on_publish callback (runs in the trainer's thread). A version's `origin`
        (set by `scorer bootstrap`, absent for the live trainer's), `surrogate` (what its label-free
        guess was fitted on, absent before the first fit) and `stacks` (how each learned course week weighs
        its forest against that guess) go to `params`."""
        params = {name: meta[name] for name in ("origin", "surrogate", "stacks") if name in meta}
        self._versions.add_model_version({
            "model": meta["family"], "version": meta["version"], "n_labels": meta["n_labels"],
            "created_at": to_db_time(meta["published_at"]), "metrics": meta["metrics"],
            "metrics_by_week": meta["metrics_by_week"], "params": params or None,
        })
        self._versions.flush()

    async def close(self) -> None:
        """Flush what is buffered and release both writers' connections."""
        await asyncio.to_thread(self._rows.close)
        await asyncio.to_thread(self._versions.close)
