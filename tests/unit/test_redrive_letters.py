"""`scorer redrive`'s choices: which letters go back, and as what record. What a redriven record then does
on the pipeline is in test_pipeline_hostile."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from streams.contract import InvalidEvent, Topic, dead_letter, decode, encode
from streams.tools.redrive import (
    DERIVED_ID_PREFIX,
    Redrivable,
    Selection,
    parse_moment,
    redrivable,
    selected,
)

PREFIX = "r."
LOGIN = {"user_id": 5, "ts": "2026-11-02T10:00:00"}
NOW = datetime(2026, 12, 2, 12, tzinfo=UTC)


def _letter(record: Any = LOGIN, *, topic: str = Topic.AUTHORIZATIONS.physical(PREFIX),
            reason: str = "processing_failed", value: bytes | None = None, offset: int | None = 7,
            at: datetime = NOW - timedelta(hours=1)) -> dict[str, Any]:
    raw = encode(record) if value is None else value
    letter = dead_letter(topic, InvalidEvent(reason, "ValueError: boom"), value=raw, key=b"5", partition=1,
                         offset=offset)
    letter["at"] = at.isoformat(timespec="seconds")
    return letter


def test_a_record_without_an_event_id_goes_back_with_one_derived_from_where_it_was_read() -> None:
    first, again = redrivable(_letter(), PREFIX), redrivable(_letter(), PREFIX)
    elsewhere = redrivable(_letter(offset=8), PREFIX)
    assert isinstance(first, Redrivable) and isinstance(again, Redrivable) and isinstance(elsewhere, Redrivable)
    record = decode(Topic.AUTHORIZATIONS, first.value)  # a valid record of the contract
    assert record["event_id"].startswith(DERIVED_ID_PREFIX) and len(record["event_id"]) <= 128
    assert {k: v for k, v in record.items() if k != "event_id"} == LOGIN
    assert first == again  # a record dead-lettered twice goes back as one record
    assert decode(Topic.AUTHORIZATIONS, elsewhere.value)["event_id"] != record["event_id"]
    assert (first.topic, first.key) == (Topic.AUTHORIZATIONS, b"5")
    no_place = redrivable(_letter(offset=None), PREFIX)
    assert isinstance(no_place, Redrivable) and decode(Topic.AUTHORIZATIONS, no_place.value)["event_id"].startswith(
        DERIVED_ID_PREFIX)


def test_a_record_with_the_lms_event_id_goes_back_byte_for_byte() -> None:
    raw = b'{"event_id": "lms-42", "user_id": 5, "ts": "2026-11-02T10:00:00"}'
    back = redrivable(_letter(value=raw), PREFIX)
    assert isinstance(back, Redrivable) and back.value == raw


@pytest.mark.parametrize(("letter", "why"), [
    (_letter(topic="grades.csv"), "not_an_input_topic"),
    (_letter(topic=Topic.ALERTS.physical(PREFIX)), "not_an_input_topic"),
    (_letter(topic=Topic.AUTHORIZATIONS.value), "not_an_input_topic"),  # another deployment's prefix
    (_letter(value=b'{"user_id": 5, "ts": "' + b"x" * 17_000 + b'"}'), "truncated"),
    (_letter(value=b'{"user_id": 5, "page": "\xff"}'), "not_the_bytes_read"),
    (_letter(value=b"{not json"), "not_a_json_object"),
    (_letter(value=b"[1, 2]"), "not_a_json_object"),
])
def test_a_letter_that_cannot_hold_a_whole_record_stays(letter: dict[str, Any], why: str) -> None:
    assert redrivable(letter, PREFIX) == why


def test_letters_are_chosen_by_reason_topic_and_when_they_were_written() -> None:
    login, view = _letter(), _letter(topic=Topic.PAGE_VIEWS.physical(PREFIX), reason="wrong_partition")
    old = _letter(at=NOW - timedelta(days=3))
    late = _letter(at=NOW + timedelta(seconds=1))  # written after the redrive began
    anything = Selection()
    assert [selected(x, anything, PREFIX, NOW) for x in (login, view, old, late)] == [True, True, True, False]
    assert [selected(x, Selection(reasons=frozenset({"wrong_partition"})), PREFIX, NOW)
            for x in (login, view)] == [False, True]
    assert [selected(x, Selection(topics=frozenset({Topic.AUTHORIZATIONS})), PREFIX, NOW)
            for x in (login, view)] == [True, False]
    since = Selection(since=parse_moment("2026-12-01T00:00:00"))
    assert [selected(x, since, PREFIX, NOW) for x in (login, old)] == [True, False]
    assert parse_moment("2026-12-02T15:00:00+03:00") == NOW  # an offset is honoured; none means UTC
    assert not selected({**login, "at": "yesterday"}, anything, PREFIX, NOW)
