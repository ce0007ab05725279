"""`scorer replay DIR`: publish an LMS CSV export to the topics in event-time order.

The producer is flushed every time event time crosses a `lateness` boundary: once a record
at time t is in the log, everything before floor(t) is too, which is the promise the
worker's watermark relies on (see streams.core.watermark). Rows that cannot become valid records
go straight to the dead-letter topic with the reason, so nothing read disappears.

`replay_file` does the same for an export in another LMS format: xAPI statements, Caliper events, an
Open edX tracking log or a Moodle standard log (mapped by streams.ingest with the identifier mapping of
SCORER_INGEST_MAPPING); statements and events the scorer has no use for are only counted.

`until` stops the history at a moment of event time: what a school looked like then, mid-course,
with the later records (outcomes included) never sent. The course schedule is published whole, as
an LMS publishes it ahead of the course.

`dry_run` publishes nothing and needs no broker: it says what a replay would publish and what would be
dead-lettered, by the loader (a row or statement that makes no record) or by the worker's own check of each
record (`streams.pipeline.checked_record`, as if produced now), with the first errors of each reason: what an
LMS's team runs on an export before pointing the LMS at the scorer.
"""
from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from features.eventtime import local_to_utc, parse_ts, zone_named
from streams.contract import InvalidEvent, Topic, dead_letter, encode, key_of
from streams.ingest.files import FORMATS, load_file
from streams.ingest.mapping import IdMapping
from streams.kafka.admin import ensure_topics, new_producer
from streams.kafka.consumer import InputRecord
from streams.lms.csvfile import RejectedRow
from streams.lms.events import Event, export_to_events
from streams.lms.readers import load_export
from streams.pipeline import checked_record
from streams.settings import Settings


@dataclass
class ReplayReport:
    published: Counter[str] = field(default_factory=Counter)  # logical topic -> records
    dead_letters: int = 0
    ignored: Counter[str] = field(default_factory=Counter)  # reason -> items of no use to the scorer
    seconds: float = 0.0
    newest_ts: float | None = None  # newest student-keyed event time published
    held_back: int = 0  # records after `until`, not published

    def final_watermark(self, settings: Settings) -> float | None:
        """Where a worker's watermark ends once it has read everything published, as its gauge shows it: a
        Unix time (event times are the school's wall clock)."""
        if self.newest_ts is None:
            return None
        return local_to_utc(self.newest_ts - settings.allowed_lateness_seconds, zone_named(settings.school_time_zone))

    def as_dict(self) -> dict[str, Any]:
        out = {"published": dict(self.published), "dead_letters": self.dead_letters,
               "seconds": round(self.seconds, 3),
               "records_per_second": round(sum(self.published.values()) / self.seconds, 1) if self.seconds else None}
        if self.ignored:
            out["ignored"] = dict(self.ignored)
        if self.held_back:
            out["held_back"] = self.held_back
        return out


#: Errors kept per reason in a dry run's report: enough to see what to fix.
EXAMPLES = 3


def load_records(directory: Path, online_only: bool = False) -> tuple[list[Event], list[RejectedRow]]:
    """Records in event-time order, plus the rows that could not become records."""
    export = load_export(directory)
    events, rejected = export_to_events(export, online_only=online_only)
    return events, [*export.rejected, *rejected]


async def replay(settings: Settings, directory: Path, *, speed: float = 0.0, online_only: bool = False,
                 progress: bool = True, until: float | None = None) -> ReplayReport:
    """Publish the export; `speed` = event-time seconds per wall second (0: as fast as possible)."""
    events, rejected = load_records(directory, online_only)
    return await publish_records(settings, events, rejected, speed=speed, progress=progress, until=until)


async def publish_records(settings: Settings, events: list[Event], rejected: list[RejectedRow], *, speed: float = 0.0,
                          progress: bool = True, until: float | None = None) -> ReplayReport:
    """Publish records already loaded (`load_records`), the rows that could not become records as dead letters."""
    return await publish(settings, events, _row_letters(rejected), ReplayReport(), speed=speed, progress=progress,
                          until=until)


def loaded(settings: Settings, path: Path, fmt: str = "csv",
           online_only: bool = False) -> tuple[list[Event], list[dict[str, Any]], ReplayReport]:
    """What `scorer replay` publishes of `path`: a seed-format export directory (`fmt` csv) or a file in another LMS
    format (`mapped_file`), as records, the dead letters of what makes none, and the report to count them in."""
    if fmt != "csv":
        return mapped_file(settings, path, fmt)
    events, rejected = load_records(path, online_only)
    return events, _row_letters(rejected), ReplayReport()


def _row_letters(rejected: list[RejectedRow]) -> list[dict[str, Any]]:
    """The dead letters of an export's rows that could not become records."""
    return [dead_letter(row.file, InvalidEvent(f"csv_{row.reason.split(':')[0].strip().replace(' ', '_')[:40]}",
                                               row.reason), value=str(row.raw).encode(), key=None)
            for row in rejected]


def dry_run(settings: Settings, events: list[Event], letters: list[dict[str, Any]], report: ReplayReport,
            until: float | None = None) -> dict[str, Any]:
    """What `publish` would publish and dead-letter, and what the worker would dead-letter of it (see the module's
    docstring): counts by topic and by reason, and the first EXAMPLES errors of each reason."""
    kept = up_to(events, until)
    now = time.time()
    zone = zone_named(settings.school_time_zone)
    records: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}

    def refuse(reason: str, error: str) -> None:
        refused[reason] += 1
        if len(shown := examples.setdefault(reason, [])) < EXAMPLES:
            shown.append(error)

    for letter in letters:
        refuse(letter["reason"], letter["error"])
    for offset, (topic, record) in enumerate(kept):
        read = InputRecord(topic.physical(settings.topic_prefix), 0, offset, key_of(topic, record), encode(record), now)
        try:
            checked_record(topic, read, {}, now, zone, settings.max_clock_skew_minutes * 60)
        except InvalidEvent as error:
            refuse(error.reason, error.detail)
        else:
            records[topic.value] += 1
    return {"dry_run": True, "would_publish": dict(records), "would_dead_letter": dict(refused),
            "ignored": dict(report.ignored), "held_back": len(events) - len(kept), "errors": examples}


def up_to(events: list[Event], until: float | None) -> list[Event]:
    """The records of the history as it stood at `until` (every record when None): the schedule, and
    every other record whose event time is not later; a grade given later (`graded_at`) did not
    exist yet, though the work it grades was handed in before."""
    if until is None:
        return events
    return [(topic, record) for topic, record in events
            if topic is Topic.SCHEDULE or parse_ts(record.get("graded_at") or record["ts"]) <= until]


async def replay_file(settings: Settings, path: Path, fmt: str, *, speed: float = 0.0, progress: bool = True,
                      mapping: IdMapping | None = None, until: float | None = None) -> ReplayReport:
    """Publish an export in another LMS format (`fmt`: xapi, caliper, openedx or moodle; see
    streams.ingest.files), identifiers mapped by `mapping` (default: SCORER_INGEST_MAPPING's)."""
    events, letters, report = mapped_file(settings, path, fmt, mapping)
    return await publish(settings, events, letters, report, speed=speed, progress=progress, until=until)


def mapped_file(settings: Settings, path: Path, fmt: str,
                mapping: IdMapping | None = None) -> tuple[list[Event], list[dict[str, Any]], ReplayReport]:
    """An export in another LMS format (`replay_file`) as records, the dead letters of what makes none, and a report
    counting what the scorer has no use for."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; one of {FORMATS}")
    mapping = mapping or IdMapping.load(settings.ingest_mapping, settings.school_time_zone)
    events, rejections = load_file(path, fmt, mapping)
    report = ReplayReport()
    report.ignored.update(r.reason for r in rejections if not r.dead_lettered)
    return events, [r.dead_letter() for r in rejections if r.dead_lettered], report


async def publish(settings: Settings, events: list[Event], letters: list[dict[str, Any]], report: ReplayReport, *,
                   speed: float, progress: bool, until: float | None) -> ReplayReport:
    """Dead letters first, then the records up to `until` in event-time order, flushed at every lateness boundary."""
    kept = up_to(events, until)
    report.held_back = len(events) - len(kept)
    events = kept
    await ensure_topics(settings)
    lateness = settings.allowed_lateness_seconds
    producer = new_producer(settings)
    await producer.start()
    started = time.monotonic()
    try:
        dlq = Topic.DEAD_LETTERS.physical(settings.topic_prefix)
        for letter in letters:
            await producer.send(dlq, encode(letter))
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
