"""`scorer redrive`'s choices: which letters go back, and as what records. What a redriven record then does
on the pipeline is in test_pipeline_hostile."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from test_ingest_caliper_service import EDU, envelope
from test_ingest_caliper_service import event as caliper_event
from test_ingest_caliper_service import ingestor as caliper_ingestor
from test_ingest_service import Broker

from streams.contract import InvalidEvent, Topic, dead_letter, decode, encode
from streams.ingest.files import map_item
from streams.ingest.mapping import IdMapping
from streams.tools.redrive import (
    DERIVED_ID_PREFIX,
    Out,
    Selection,
    parse_moment,
    redrivable,
    selected,
)

PREFIX = "r."
LOGIN = {"user_id": 5, "ts": "2026-11-02T10:00:00"}
NOW = datetime(2026, 12, 2, 12, tzinfo=UTC)
NO_IDS = IdMapping.from_dict({"numeric_fallback": []})


def _letter(record: Any = LOGIN, *, topic: str = Topic.AUTHORIZATIONS.physical(PREFIX),
            reason: str = "processing_failed", value: bytes | None = None, offset: int | None = 7,
            at: datetime = NOW - timedelta(hours=1)) -> dict[str, Any]:
    raw = encode(record) if value is None else value
    letter = dead_letter(topic, InvalidEvent(reason, "ValueError: boom"), value=raw, key=b"5", partition=1,
                         offset=offset)
    letter["at"] = at.isoformat(timespec="seconds")
    return letter


def _one(letter: dict[str, Any], mapping: IdMapping = NO_IDS) -> Out:
    back = redrivable(letter, PREFIX, mapping)
    assert not isinstance(back, str), back
    (out,) = back
    return out


def test_a_record_without_an_event_id_goes_back_with_one_derived_from_where_it_was_read() -> None:
    first, again, elsewhere = _one(_letter()), _one(_letter()), _one(_letter(offset=8))
    record = decode(Topic.AUTHORIZATIONS, first.value)  # a valid record of the contract
    assert record["event_id"].startswith(DERIVED_ID_PREFIX) and len(record["event_id"]) <= 128
    assert {k: v for k, v in record.items() if k != "event_id"} == LOGIN
    assert first == again  # a record dead-lettered twice goes back as one record
    assert decode(Topic.AUTHORIZATIONS, elsewhere.value)["event_id"] != record["event_id"]
    assert (first.topic, first.key) == (Topic.AUTHORIZATIONS, b"5")
    no_place = _one(_letter(offset=None))
    assert decode(Topic.AUTHORIZATIONS, no_place.value)["event_id"].startswith(DERIVED_ID_PREFIX)


def test_a_record_with_the_lms_event_id_goes_back_byte_for_byte() -> None:
    raw = b'{"event_id": "lms-42", "user_id": 5, "ts": "2026-11-02T10:00:00"}'
    assert _one(_letter(value=raw)).value == raw


async def test_an_lms_statement_stored_without_its_ids_is_mapped_again_once_the_mapping_has_them() -> None:
    """`scorer ingest` stored a Caliper envelope and answered 200, dead-lettering the event of a student the
    mapping did not know (and a bad request's event as invalid). With the same mapping it stays; once the
    student is in the mapping, it goes back as the page view it is, with the event's id."""
    broker = Broker()
    stranger = caliper_event(1, user="stranger")
    await caliper_ingestor(broker).caliper(envelope(stranger, caliper_event(2, user="jane")))
    bad = caliper_event(3)
    bad["eventTime"] = "yesterday"
    assert (await caliper_ingestor(broker).caliper(envelope(bad))).status == 400
    unmapped, invalid = broker.on(Topic.DEAD_LETTERS)
    assert (unmapped["reason"], invalid["reason"]) == ("unmapped_user", "bad_timestamp")
    known = IdMapping.from_dict({"users": {f"{EDU}/users/jane": 1002, f"{EDU}/users/stranger": 1003}})

    assert redrivable(unmapped, PREFIX, caliper_ingestor(broker).mapping) == "still_unmapped"
    assert redrivable(invalid, PREFIX, known) == "invalid_input"  # refused with 400: its sensor was told
    view = _one(unmapped, known)
    record = decode(Topic.PAGE_VIEWS, view.value)
    assert (view.topic, view.key, record["user_id"], record["event_id"]) == (
        Topic.PAGE_VIEWS, b"1003", 1003, stranger["id"])


def test_an_xapi_statement_without_a_time_is_dated_when_its_letter_was_written() -> None:
    """`scorer ingest` dates a statement with neither timestamp nor stored by its arrival; mapped again, by
    its letter's time (written in the same request)."""
    statement = {"id": "7d0c1b6e-3b8e-4f41-9d2b-6a1c2f3e4d5c", "verb": {"id": "http://adlnet.gov/expapi/verbs/launched"},
                 "actor": {"account": {"homePage": "https://lms", "name": "student-42"}},
                 "object": {"id": "https://lms/pages/5"}}
    arrived = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    (refused,) = [m.rejection for m in map_item("xapi", statement, NO_IDS, arrived) if m.rejection]
    assert refused.kind == "unmapped"
    letter = {**refused.dead_letter(), "at": arrived.isoformat()}
    named = IdMapping.from_dict({"users": {"account:https://lms|student-42": 42}})
    view = decode(Topic.PAGE_VIEWS, _one(letter, named).value)
    assert (view["user_id"], view["ts"][:16]) == (42, "2026-12-01T09:30")


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
    assert redrivable(letter, PREFIX, NO_IDS) == why


def test_letters_are_chosen_by_reason_topic_and_when_they_were_written() -> None:
    login, view = _letter(), _letter(topic=Topic.PAGE_VIEWS.physical(PREFIX), reason="wrong_partition")
    old = _letter(at=NOW - timedelta(days=3))
    late = _letter(at=NOW + timedelta(seconds=1))  # written after the redrive began
    anything = Selection()
    assert [selected(x, anything, PREFIX, NOW) for x in (login, view, old, late)] == [True, True, True, False]
    assert [selected(x, Selection(reasons=frozenset({"wrong_partition"})), PREFIX, NOW)
            for x in (login, view)] == [False, True]
    statement = _letter(topic="xapi")  # one the door could not map: chosen by its format
    assert [selected(x, Selection(topics=frozenset({Topic.AUTHORIZATIONS.value})), PREFIX, NOW)
            for x in (login, view, statement)] == [True, False, False]
    assert [selected(x, Selection(topics=frozenset({"xapi"})), PREFIX, NOW)
            for x in (login, view, statement)] == [False, False, True]
    since = Selection(since=parse_moment("2026-12-01T00:00:00"))
    assert [selected(x, since, PREFIX, NOW) for x in (login, old)] == [True, False]
    assert parse_moment("2026-12-02T15:00:00+03:00") == NOW  # an offset is honoured; none means UTC
    assert not selected({**login, "at": "yesterday"}, anything, PREFIX, NOW)
