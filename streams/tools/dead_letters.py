"""`scorer dead-letters`: what the scorer refused and why, for whoever fixes the source (the LMS's export, an
adapter's identifier mapping, a release) before `scorer redrive` puts the records back.

It reads the dead-letter topic to where it ended when it began (`redrive.read_letters`), the letters `redrive`
would select (`redrive.Selection`: reason, topic, time written), and answers with counts per topic and reason,
each with when its first and last letter was written, and the newest `limit` letters: reason, where the record
was read, its size and SHA-256. Not the records themselves, nor the errors: a letter's key and value name a
student and what they did, and an error may quote them (a key that does not match its record). With `values`
it shows them, and that is a read of students' data like any other: recorded first in the record of who read
it (door `cli`, page `dead-letters`, the operator, every student a shown key or record names), as `scorer
reads` records itself, so `values` needs SCORER_DATABASE_URL.

It reads `scorer.dead_letters` (what the workers, the door and `scorer replay` refused), or `notify.dead_letters`
(the alerts `scorer notify` could not deliver: refused by the receiver, failing past its give-up hours).
"""
from __future__ import annotations

import heapq
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from storage.postgres.data_reads import DataRead, record
from streams.contract import Topic
from streams.contract.topics import INPUT_TOPICS
from streams.kafka.connection import kafka_connection
from streams.settings import Settings
from streams.tools.personal_data import operator_name
from streams.tools.redrive import Selection, parse_moment, read_letters, selected, source_topic
from streams.unusable import UnusableInput

#: Letters shown when no limit is given: enough to see a pattern, few enough to read.
DEFAULT_LIMIT = 20
#: What a letter shows without `values` (its key and value name a student, and its error may quote them).
PLAIN = ("at", "topic", "partition", "offset", "reason", "value_bytes", "value_sha256", "value_truncated")
#: Input topics whose key is the student's id (the schedule's is the course's).
_KEYED_BY_STUDENT = frozenset(t for t in INPUT_TOPICS if t is not Topic.SCHEDULE)


class NoRecordOfReads(UnusableInput):
    """`values` asked for without a database to record the read in."""


async def survey(settings: Settings, selection: Selection, limit: int = DEFAULT_LIMIT, values: bool = False,
                 letters: Topic = Topic.DEAD_LETTERS) -> dict[str, Any]:
    """The counts and the newest `limit` selected letters of `letters` (see the module's docstring)."""
    if values and not settings.database_url:
        raise NoRecordOfReads("showing the records (--values) is a read of students' data, recorded first: it "
                              "needs SCORER_DATABASE_URL (the data-protection role's, as `scorer reads`)")
    began = time.time()
    until = selection.until or datetime.fromtimestamp(began, UTC)
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    newest: list[tuple[str, int, dict[str, Any]]] = []  # a heap of the `limit` newest: (at, arrival, letter)
    read = 0
    consumer = AIOKafkaConsumer(**kafka_connection(settings), group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    try:
        await consumer.start()  # inside: a broker it cannot reach still closes the client
        async for letter in read_letters(consumer, settings, letters.physical(settings.topic_prefix), began):
            read += 1
            if not selected(letter, selection, settings.topic_prefix, until):
                continue
            at = parse_moment(str(letter["at"])).astimezone(UTC).isoformat()
            group = groups.setdefault((str(letter.get("topic")), str(letter.get("reason"))),
                                      {"letters": 0, "first_at": at, "last_at": at})
            group["letters"] += 1
            group["first_at"], group["last_at"] = min(group["first_at"], at), max(group["last_at"], at)
            entry = (at, read, letter)
            if len(newest) < limit:
                heapq.heappush(newest, entry)
            elif newest and entry[:2] > newest[0][:2]:
                heapq.heapreplace(newest, entry)
    finally:
        await consumer.stop()
    shown = [letter for *_, letter in sorted(newest, key=lambda e: e[:2], reverse=True)]
    if values and shown:
        record(settings.database_url, DataRead(operator_name(settings), "cli", "dead-letters",
                                               sorted(_students_named(shown, settings.topic_prefix))))
    return {"dead_letters_read": read,
            "selected": sum(g["letters"] for g in groups.values()),
            "by_topic_and_reason": [{"topic": topic, "reason": reason, **group}
                                    for (topic, reason), group in sorted(groups.items())],
            "newest": [letter if values else {k: letter.get(k) for k in PLAIN} for letter in shown]}


def _students_named(letters: Iterable[dict[str, Any]], prefix: str) -> set[int]:
    """The student ids the letters' keys (of the topics keyed by student) and JSON records' `user_id` name."""
    named: set[int] = set()
    for letter in letters:
        key = str(letter.get("key") or "")
        if source_topic(letter, prefix) in _KEYED_BY_STUDENT and key.isdigit():
            named.add(int(key))
        try:
            item = orjson.loads(str(letter.get("value", "")))
        except orjson.JSONDecodeError:
            continue
        if isinstance(item, dict) and isinstance(item.get("user_id"), int) and not isinstance(item["user_id"], bool):
            named.add(item["user_id"])
    return named
