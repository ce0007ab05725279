"""Event-time watermark per partition number, across the co-partitioned student topics.

A student's records sit in partition p of every student-keyed topic, so for partition p the
watermark is how far event time has surely progressed in *all* of those topic-partitions:
the minimum of the latest event time seen in each one that still has unread records. A
topic-partition that is fully read (position at its high watermark) cannot hold anything older
than what the producer has already flushed, so it does not hold the others back; the overall
newest time seen minus `lateness` caps the result (replay flushes at every `lateness` of event
time, live producers are near real time). In live mode a quiet, fully read partition also
advances with the wall clock, so students fall asleep even when nobody is doing anything.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class _Progress:
    latest_ts: float | None = None
    next_offset: int = 0
    highwater: int | None = None

    @property
    def caught_up(self) -> bool:
        return self.highwater is not None and self.next_offset >= self.highwater


@dataclass
class WatermarkTracker:
    lateness: float  # seconds of event time
    live: bool = False
    _tps: dict[tuple[str, int], _Progress] = field(default_factory=dict)
    _newest: float | None = None
    _emitted: dict[int, float] = field(default_factory=dict)

    def observe(self, topic: str, partition: int, offset: int, ts: float) -> None:
        progress = self._tps.setdefault((topic, partition), _Progress())
        progress.latest_ts = ts if progress.latest_ts is None else max(progress.latest_ts, ts)
        progress.next_offset = max(progress.next_offset, offset + 1)
        self._newest = ts if self._newest is None else max(self._newest, ts)

    def observe_offset(self, topic: str, partition: int, offset: int) -> None:
        """A record without a usable time (dead-lettered) still moves the read position."""
        progress = self._tps.setdefault((topic, partition), _Progress())
        progress.next_offset = max(progress.next_offset, offset + 1)

    def set_offsets(self, topic: str, partition: int, position: int | None, highwater: int | None) -> None:
        """From the consumer: where it will read next (after a restart: the committed offset) and the log end."""
        progress = self._tps.setdefault((topic, partition), _Progress())
        if position is not None:
            progress.next_offset = max(progress.next_offset, position)
        progress.highwater = highwater

    def forget(self, topic: str, partition: int) -> None:
        """Partition revoked: another worker owns it now."""
        self._tps.pop((topic, partition), None)
        self._emitted.pop(partition, None)

    def partitions(self) -> set[int]:
        return {p for (_, p) in self._tps}

    def watermark(self, partition: int, now: float | None = None) -> float | None:
        """Never goes backwards; None until anything is known."""
        members = [prog for (_, p), prog in self._tps.items() if p == partition]
        if not members or self._newest is None:
            return self._emitted.get(partition)
        cap = self._newest - self.lateness
        behind = [prog.latest_ts for prog in members if not prog.caught_up]
        if any(ts is None for ts in behind):
            value = None  # a topic-partition with unread records we have not seen yet
        else:
            value = min([cap, *behind])  # type: ignore[list-item]
            if self.live and not behind:
                value = max(value, (now or time.time()) - self.lateness)
        previous = self._emitted.get(partition)
        if value is None or (previous is not None and value <= previous):
            return previous
        self._emitted[partition] = value
        return value
