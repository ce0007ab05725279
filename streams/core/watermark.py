"""Event-time watermark per partition number, across the co-partitioned student topics.

A student's records sit in partition p of every student-keyed topic, so for partition p the
watermark is how far event time has surely progressed in *all* of those topic-partitions:
the minimum of the latest event time seen in each one that still has unread records. A
topic-partition that is fully read (position at its high watermark) cannot hold anything older
than what the producer has already flushed, so it does not hold the others back; the overall
newest time seen minus `lateness` caps the result (replay flushes at every `lateness` of event
time, live producers are near real time). "Fully read" needs a high watermark read after the
newest record was *produced* (its Kafka timestamp): everything the cap lets through was
acknowledged before that record was sent, so such a reading covers it, while a paused
partition's older reading would pass for the end of a log that has grown since. In live mode a
quiet, fully read partition also advances with the wall clock, so students fall asleep even
when nobody is doing anything. The newest time is shared by the workers of a group (through
Redis), so a worker whose own partitions went quiet, or that just took partitions over, is not
held back by them. A `shared` topic (the course schedule, keyed by course) holds back every partition: no
student's clock may run before the schedule it is measured against has been read. Its partitions count
as fully read at the log end last seen, whenever that was read: reference data is published ahead of
the activity it plans, and while activity streams in, every reading of a quiet reference log is older
than the newest record, so the freshness rule would hold every watermark until the traffic stopped. A
schedule row published later is applied when read (the step recomputes each enrolment's start and end
from its schedule every time).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class _Progress:
    latest_ts: float | None = None
    next_offset: int = 0
    highwater: int | None = None
    highwater_read_at: float = float("-inf")  # wall clock of the reading


@dataclass
class WatermarkTracker:
    lateness: float  # seconds of event time
    live: bool = False
    shared: frozenset[str] = frozenset()  # topics whose every partition bounds every watermark
    local_now: Callable[[], float] = time.time  # the wall clock in event time (the school's zone), for live mode
    _tps: dict[tuple[str, int], _Progress] = field(default_factory=dict)
    _newest: float | None = None
    _newest_raised_at: float = float("-inf")  # wall clock when the newest record was produced
    _emitted: dict[int, float] = field(default_factory=dict)

    def _caught_up(self, topic: str, progress: _Progress) -> bool:
        return (progress.highwater is not None and progress.next_offset >= progress.highwater
                and (topic in self.shared or progress.highwater_read_at >= self._newest_raised_at))

    def observe(self, topic: str, partition: int, offset: int, ts: float, produced_at: float | None = None) -> None:
        """A record read: its event time `ts` and when it was produced (wall clock; default now)."""
        progress = self._tps.setdefault((topic, partition), _Progress())
        progress.latest_ts = ts if progress.latest_ts is None else max(progress.latest_ts, ts)
        progress.next_offset = max(progress.next_offset, offset + 1)
        self.adopt_newest(ts, time.time() if produced_at is None else produced_at)

    @property
    def newest(self) -> tuple[float, float] | None:
        """(newest event time seen, when that record was produced)."""
        return None if self._newest is None else (self._newest, self._newest_raised_at)

    def adopt_newest(self, ts: float, produced_at: float) -> None:
        """A newer event time, seen here or by another worker of the group. The producers are
        shared, so what one worker saw bounds what every partition has already been sent."""
        if self._newest is None or ts > self._newest:
            self._newest, self._newest_raised_at = ts, produced_at

    def observe_offset(self, topic: str, partition: int, offset: int) -> None:
        """A record without a usable time (dead-lettered) still moves the read position."""
        progress = self._tps.setdefault((topic, partition), _Progress())
        progress.next_offset = max(progress.next_offset, offset + 1)

    def set_offsets(self, topic: str, partition: int, position: int | None, highwater: int | None,
                    read_at: float | None = None) -> None:
        """From the consumer: where it resumes (the committed offset), the log end and when
        that log end was read (wall clock; default now)."""
        progress = self._tps.setdefault((topic, partition), _Progress())
        if position is not None:
            progress.next_offset = max(progress.next_offset, position)
        if highwater is not None and (progress.highwater is None or highwater >= progress.highwater):
            # a reading taken before a newer one may arrive after it (callers wait on a lock):
            # a log end never moves back, and a stale one would make a partition look fully read
            progress.highwater = highwater
            progress.highwater_read_at = max(progress.highwater_read_at, time.time() if read_at is None else read_at)

    def forget(self, topic: str, partition: int) -> None:
        """Partition revoked: another worker owns it now."""
        self._tps.pop((topic, partition), None)
        self._emitted.pop(partition, None)

    def partitions(self) -> set[int]:
        return {p for (topic, p) in self._tps if topic not in self.shared}

    def watermark(self, partition: int, now: float | None = None) -> float | None:
        """Never goes backwards; None until anything is known."""
        members = [(topic, prog) for (topic, p), prog in self._tps.items() if p == partition or topic in self.shared]
        if not members or self._newest is None:
            return self._emitted.get(partition)
        cap = self._newest - self.lateness
        behind = [prog.latest_ts for topic, prog in members if not self._caught_up(topic, prog)]
        known = [ts for ts in behind if ts is not None]
        value: float | None
        if len(known) < len(behind):
            value = None  # a topic-partition with unread records we have not seen yet
        else:
            value = min([cap, *known])
            if self.live and not known:
                value = max(value, (now or self.local_now()) - self.lateness)
        previous = self._emitted.get(partition)
        if value is None or (previous is not None and value <= previous):
            return previous
        self._emitted[partition] = value
        return value
