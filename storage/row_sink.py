"""Where score rows and alerts (status transitions) go: the interface, and an in-memory sink for tests.

The worker's sink is storage.postgres.sink.PostgresSink. Writes must be idempotent: a crashed
batch is written again when it is redelivered.
"""
from __future__ import annotations

from typing import Protocol

from streams.contract.outputs import Alert, ScoreRow


class RowSink(Protocol):
    async def write(self, scores: list[ScoreRow], transitions: list[Alert]) -> None:
        """Upsert the rows (idempotent)."""

    async def close(self) -> None:
        """Release connections."""


class MemoryRowSink:
    """Keeps the newest score row per enrolment and every transition by alert id, like the tables."""

    def __init__(self) -> None:
        self.current: dict[tuple[int, str], ScoreRow] = {}
        self.transitions: dict[str, Alert] = {}

    async def write(self, scores: list[ScoreRow], transitions: list[Alert]) -> None:
        for row in scores:
            stored = self.current.get((row.user_id, row.enrolment))
            if stored is None or stored.updated_at <= row.updated_at:
                self.current[(row.user_id, row.enrolment)] = row
        self.transitions.update((alert.alert_id, alert) for alert in transitions)

    async def close(self) -> None:
        return None
