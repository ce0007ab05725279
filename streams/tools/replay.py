"""`scorer replay DIR`: publish an LMS CSV export to the topics in event-time order.

The producer is flushed every time event time crosses a `lateness` boundary: once a record
at time t is in the log, everything before floor(t) is too, which is the promise the
worker's watermark relies on (see streams.core.watermark). Rows that cannot become valid records
go straight to the dead-letter topic with the reason, so nothing read disappears.
"""
from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from features.eventtime import parse_ts
from streams.contract import InvalidEvent, Topic, dead_letter, encode, key_of
from streams.kafka.admin import ensure_topics, new_producer
from streams.lms.csvfile import RejectedRow
from streams.lms.events import Event, export_to_events
from streams.lms.readers import load_export
from streams.settings import Settings


@dataclass
class ReplayReport:
    published: Counter[str] = field(default_factory=Counter)  # logical topic -> records
    dead_letters: int = 0
    seconds: float = 0.0
    newest_ts: float | None = None  # newest student-keyed event time published

    def final_watermark(self, settings: Settings) -> float | None:
        """Where a worker's watermark ends once it has read everything published."""
        return None if self.newest_ts is None else self.newest_ts - settings.allowed_lateness_seconds

    def as_dict(self) -> dict[str, Any]:
        return {"published": dict(self.published), "dead_letters": self.dead_letters,
                "seconds": round(self.seconds, 3),
                "records_per_second": round(sum(self.published.values()) / self.seconds, 1) if self.seconds else None}


def load_records(directory: Path, online_only: bool = False) -> tuple[list[Event], list[RejectedRow]]:
    """Records in event-time order, plus the rows that could not become records."""
    export = load_export(directory)
    events, rejected = export_to_events(export, online_only=online_only)
    return events, [*export.rejected, *rejected]


async def replay(settings: Settings, directory: Path, *, speed: float = 0.0, online_only: bool = False,
                 progress: bool = True) -> ReplayReport:
    """Publish the export; `speed` = event-time seconds per wall second (0: as fast as possible)."""
    events, rejected = load_records(directory, online_only)
    await ensure_topics(settings)
    report = ReplayReport()
    lateness = settings.allowed_lateness_seconds
    producer = new_producer(settings)
    await producer.start()
    started = time.monotonic()
    try:
        dlq = Topic.DEAD_LETTERS.physical(settings.topic_prefix)
        for row in rejected:
            error = InvalidEvent(f"csv_{row.reason.split(':')[0].strip().replace(' ', '_')[:40]}", row.reason)
            await producer.send(dlq, encode(dead_letter(row.file, error, value=str(row.raw).encode(), key=None)))
            report.dead_letters += 1
        first_ts = parse_ts(events[0][1]["ts"]) if events else 0.0
        boundary, unflushed = None, 0
        for topic, record in tqdm(events, disable=not progress, unit="ev", desc="replay", mininterval=1.0):
            ts = parse_ts(record["ts"])
            if boundary is None or ts >= boundary:
                if unflushed:
                    await producer.flush()  # sends at once (no linger) and waits for every ack
                    unflushed = 0
                boundary = (ts // lateness + 1) * lateness
            if speed > 0:
                delay = (ts - first_ts) / speed - (time.monotonic() - started)
                if delay > 0:
                    await asyncio.sleep(delay)
            await producer.send(topic.physical(settings.topic_prefix), encode(record), key=key_of(topic, record))
            unflushed += 1
            report.published[topic.value] += 1
            if topic is not Topic.SCHEDULE:
                report.newest_ts = ts if report.newest_ts is None else max(report.newest_ts, ts)
        await producer.flush()
    finally:
        await producer.stop()
    report.seconds = time.monotonic() - started
    return report
