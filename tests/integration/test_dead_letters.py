"""`scorer dead-letters` on the real embedded broker: counts per topic and reason with when each was written, the
newest letters without the records they hold, and with `--values` the records, recorded first as a read of
students' data (and refused where there is no database to record it in)."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from streams.cli import main
from streams.contract import Topic, encode
from streams.contract.codec import InvalidEvent
from streams.contract.dead_letters import dead_letter
from streams.kafka.admin import ensure_topics, new_producer
from streams.settings import Settings
from streams.tools.dead_letters import NoRecordOfReads, survey
from streams.tools.redrive import Selection, parse_moment

#: (source topic, reason, key, value, minute written): two students' page views, a third's logins, a course's
#: schedule row (keyed by course 3, no student), and an xAPI statement the door could not map (no key).
LETTERS = [
    (Topic.PAGE_VIEWS, "malformed_json", "7", b'{"user_id": 7, "ts": "2024-01-0', 1),
    (Topic.PAGE_VIEWS, "malformed_json", "8", b'{"user_id": 8, "ts"', 2),
    (Topic.PAGE_VIEWS, "malformed_json", "7", b'{"user_id": 7', 5),
    (Topic.AUTHORIZATIONS, "missing_field", "9", b'{"user_id": 9}', 3),
    (Topic.AUTHORIZATIONS, "missing_field", "9", b'{"user_id": 9, "x": 1}', 6),
    (Topic.SCHEDULE, "schema_violation", "3", b'{"course_id": 3}', 4),
    ("xapi", "unmapped_actor", None, b'{"actor": {"mbox": "mailto:student@example.edu"}}', 7),
]


async def _write_letters(settings: Settings) -> None:
    await ensure_topics(settings)
    producer = new_producer(settings)
    await producer.start()
    try:
        for offset, (topic, reason, key, value, minute) in enumerate(LETTERS):
            source = topic.physical(settings.topic_prefix) if isinstance(topic, Topic) else topic
            letter = dead_letter(source, InvalidEvent(reason, f"test {reason}"), value=value,
                                 key=None if key is None else key.encode(), partition=0, offset=offset)
            letter["at"] = f"2026-01-01T10:0{minute}:00+00:00"
            await producer.send_and_wait(Topic.DEAD_LETTERS.physical(settings.topic_prefix), encode(letter))
        await producer.send_and_wait(Topic.DEAD_LETTERS.physical(settings.topic_prefix), b"not a letter")
        undelivered = dead_letter(Topic.ALERTS.physical(settings.topic_prefix), InvalidEvent("rejected", "HTTP 422"),
                                  value=b'{"user_id": 12, "kind": "dozing"}', key=b"12", partition=0, offset=0)
        await producer.send_and_wait(Topic.NOTIFY_DEAD_LETTERS.physical(settings.topic_prefix), encode(undelivered))
    finally:
        await producer.stop()


def _reads(database_url: str) -> list[tuple[str, str, str, list[int]]]:
    engine = create_engine(database_url)
    with engine.connect() as connection:
        found = [(r.reader, r.door, r.page, list(r.user_ids)) for r in connection.execute(
            text("SELECT reader, door, page, user_ids FROM student_data_reads ORDER BY id"))]
    engine.dispose()
    return found


async def test_counts_and_the_newest_letters_and_the_records_only_as_a_recorded_read(
        kafka_url: str, db: str, prefix: str) -> None:
    settings = Settings(kafka_url=kafka_url, database_url=db, topic_prefix=prefix, partitions=2, operator="Olga")
    await _write_letters(settings)

    found = await survey(settings, Selection(), limit=3)
    assert found["dead_letters_read"] == len(LETTERS) and found["selected"] == len(LETTERS)  # the non-JSON skipped
    groups = {(g["topic"], g["reason"]): g for g in found["by_topic_and_reason"]}
    views = groups[(Topic.PAGE_VIEWS.physical(prefix), "malformed_json")]
    assert (views["letters"], views["first_at"], views["last_at"]) == (
        3, "2026-01-01T10:01:00+00:00", "2026-01-01T10:05:00+00:00")
    assert groups[(Topic.AUTHORIZATIONS.physical(prefix), "missing_field")]["letters"] == 2
    assert groups[("xapi", "unmapped_actor")]["letters"] == 1 and len(groups) == 4
    assert [letter["at"][14:16] for letter in found["newest"]] == ["07", "06", "05"]  # newest first
    assert all(not {"key", "value", "error"} & set(letter) for letter in found["newest"])  # no student's data
    assert _reads(db) == []  # nothing shown that names a student: nothing to record

    only = await survey(settings, Selection(reasons=frozenset({"missing_field"}),
                                            since=parse_moment("2026-01-01T10:04:00")), limit=10)
    assert only["selected"] == 1 and [letter["offset"] for letter in only["newest"]] == [4]

    with pytest.raises(NoRecordOfReads):
        await survey(Settings(kafka_url=kafka_url, topic_prefix=prefix), Selection(), values=True)
    shown = await survey(settings, Selection(), limit=10, values=True)
    assert [letter["key"] for letter in shown["newest"]] == [None, "9", "7", "3", "9", "8", "7"]
    assert shown["newest"][0]["value"].startswith('{"actor"') and shown["newest"][0]["error"] == "test unmapped_actor"
    # recorded before it was shown: the students the keys and records name, not the schedule's course
    assert _reads(db) == [("Olga", "cli", "dead-letters", [7, 8, 9])]
    undelivered = await survey(settings, Selection(), values=True, letters=Topic.NOTIFY_DEAD_LETTERS)
    assert undelivered["selected"] == 1 and undelivered["newest"][0]["error"] == "HTTP 422"
    assert _reads(db)[-1] == ("Olga", "cli", "dead-letters", [12])  # the student the undelivered alert names


def test_the_command_prints_the_counts_and_refuses_values_without_a_database(
        kafka_url: str, prefix: str, capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    asyncio.run(_write_letters(Settings(kafka_url=kafka_url, topic_prefix=prefix, partitions=2)))
    monkeypatch.setenv("SCORER_KAFKA_URL", kafka_url)
    monkeypatch.setenv("SCORER_TOPIC_PREFIX", prefix)
    monkeypatch.delenv("SCORER_DATABASE_URL", raising=False)
    capsys.readouterr()
    assert main(["dead-letters", "--values"]) == 2 and "SCORER_DATABASE_URL" in capsys.readouterr().err
    assert main(["dead-letters", "--since", "yesterday"]) == 2 and "--since/--until" in capsys.readouterr().err
    assert main(["dead-letters", "--topic", "lms.authorizations", "--limit", "0"]) == 0
    printed = capsys.readouterr().out
    assert '"selected": 2' in printed and '"newest": []' in printed
    assert main(["dead-letters", "--topic", "xapi"]) == 0  # a format the door could not map, chosen by name
    assert '"selected": 1' in capsys.readouterr().out
    assert main(["dead-letters", "--notify"]) == 0  # the alerts `scorer notify` could not deliver, alone
    printed = capsys.readouterr().out
    assert '"selected": 1' in printed and '"reason": "rejected"' in printed
