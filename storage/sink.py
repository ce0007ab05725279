"""The pipeline's Postgres side: converts event-time epochs to timestamps and flushes a
SnapshotWriter from a thread, so a slow database never blocks the event loop."""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any

from storage.migrate import upgrade
from storage.snapshots import SnapshotWriter

_EPOCH_KEYS = ("status_since", "last_activity_at", "updated_at", "at")


def _timestamps(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for key in _EPOCH_KEYS:
        if isinstance(out.get(key), (int, float)):
            out[key] = datetime.fromtimestamp(out[key], tz=timezone.utc).replace(tzinfo=None)
    return out


class PostgresSink:
    def __init__(self, database_url: str) -> None:
        self.writer = SnapshotWriter(database_url)  # used by one to_thread call at a time
        self._versions = SnapshotWriter(database_url)  # the trainer's thread has its own

    @classmethod
    async def open(cls, database_url: str) -> "PostgresSink":
        await asyncio.to_thread(upgrade, database_url)
        return cls(database_url)

    async def write(self, scores: list[dict[str, Any]], transitions: list[dict[str, Any]]) -> None:
        def flush() -> None:
            self.writer.add_scores([_timestamps(r) for r in scores])
            self.writer.add_transitions([_timestamps(r) for r in transitions])
            self.writer.flush()

        await asyncio.to_thread(flush)

    def write_model_version(self, meta: dict[str, Any]) -> None:
        """ModelRegistry's on_publish callback (runs in the trainer's thread)."""
        self._versions.add_model_version({
            "model": meta["family"], "version": meta["version"], "n_labels": meta["n_labels"],
            "created_at": datetime.fromtimestamp(meta["published_at"], tz=timezone.utc).replace(tzinfo=None),
            "metrics": meta["metrics"],
        })
        self._versions.flush()
