"""Each record applied once: Kafka redeliveries stopped by an offset fence per topic-partition, an LMS's
copies of a record by its event id, kept per event-time day so the document does not grow for ever."""
from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from typing import Any

from features.eventtime import DAY
from features.state import apply
from streams.contract.topics import TOPIC_SCHEMA
from streams.core.documents import StudentDoc, StudentEvent

#: An event key's length: 8 bytes of BLAKE2b in hex.
EVENT_KEY_CHARS = 16


def event_key(record: dict[str, Any]) -> str | None:
    """A short, fixed-size name for the record's LMS event id (None without one)."""
    event_id = record.get("event_id")
    if event_id is None:
        return None
    return hashlib.blake2b(event_id.encode(), digest_size=EVENT_KEY_CHARS // 2).hexdigest()


def apply_once(doc: StudentDoc, events: Sequence[StudentEvent], counts: Counter[tuple[str, str]]) -> list[StudentEvent]:
    """Apply new events to the student's facts, each once; returns those applied.

    Two fences: Kafka redelivers what a crashed worker read (offset at or behind this student's
    highest applied offset of that topic-partition), and an LMS may publish a record twice
    (same event id, another offset). A record behind the offset fence whose event id was never
    applied is new: the partition's log was reset (topic recreated, broker data lost), and it
    is applied and counted as `behind_fence`. Without an event id, the offset fence decides."""
    applied = []
    seen = seen_by_day(doc)
    for event in events:
        topic, partition, offset, record, _ = event
        fence_key = f"{topic.value}:{partition}"
        fence = doc["offsets"].get(fence_key, -1)
        key = event_key(record)
        day = str(int(event.ts // DAY))
        if key is not None and (holds_key(seen.get(day, ""), key) or holds_key(seen.get(LEGACY_DAY, ""), key)):
            counts["duplicate_event_id" if offset > fence else "duplicate_offset", topic.value] += 1
            continue
        if offset <= fence:
            if key is None:
                counts["duplicate_offset", topic.value] += 1
                continue
            counts["behind_fence", topic.value] += 1
        if key is not None:
            seen[day] = seen.get(day, "") + key
        doc["offsets"][fence_key] = max(fence, offset)
        doc["partition"] = partition
        apply(doc["facts"], TOPIC_SCHEMA[topic], record)
        applied.append(event)
        counts["applied", topic.value] += 1
    return applied


#: Where the keys of a document stored before days were kept go: looked up for every record,
#: dropped at the next compaction.
LEGACY_DAY = "0"


def seen_by_day(doc: StudentDoc) -> dict[str, str]:
    """The document's event keys by event-time day (a copy of a record has its time, so it is
    looked up under its own day only: no set of every key is built per step)."""
    seen = doc["seen"]
    if isinstance(seen, list):
        seen = doc["seen"] = {LEGACY_DAY: "".join(seen)} if seen else {}
    return seen


def holds_key(keys: str, key: str) -> bool:
    """Is `key` one of the fixed-width keys concatenated in `keys`?"""
    at = keys.find(key)
    while at != -1 and at % EVENT_KEY_CHARS:
        at = keys.find(key, at + 1)
    return at != -1


def forget_event_ids(doc: StudentDoc, horizon: float) -> None:
    """Event keys of facts now compacted are dropped, so the document does not grow with every
    record ever applied. A copy of such an old record re-sent by the LMS (another offset) is
    then applied again; Kafka redeliveries stay stopped by the offset fence."""
    first = horizon // DAY
    doc["seen"] = {day: keys for day, keys in seen_by_day(doc).items() if int(day) >= first}
