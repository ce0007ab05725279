import json
from importlib import resources

import pytest
import yaml

from streams.contract import (
    TOPIC_SCHEMA,
    InvalidEvent,
    Topic,
    check_event_time,
    dead_letter,
    decode,
    encode,
    key_of,
    schema,
    validate,
)
from streams.contract.codec import MAX_RECORD_BYTES
from streams.contract.dead_letters import MAX_VALUE_BYTES


def test_every_topic_has_a_schema_and_an_asyncapi_channel():
    doc = yaml.safe_load(resources.files("streams.contract").joinpath("asyncapi.yaml").read_text("utf-8"))
    addresses = {c["address"] for c in doc["channels"].values()}
    assert addresses == {t.value for t in Topic}
    for kind in TOPIC_SCHEMA.values():
        assert schema(kind)["title"] == kind


@pytest.mark.parametrize("raw, reason", [
    (b"{not json", "malformed_json"),
    (b"[1, 2]", "not_an_object"),
    (b'{"ts": "2023-12-01T10:00:00"}', "missing_field"),
    (b'{"user_id": "x", "ts": "2023-12-01T10:00:00"}', "schema_violation"),
    (b'{"user_id": 5, "ts": "2023-13-45T10:00:00"}', "bad_timestamp"),
    (None, "empty_value"),
    # what storage cannot hold: ids as floats, beyond BIGINT, event times before 2000
    (b'{"user_id": 1.0, "ts": "2023-12-01T10:00:00"}', "not_an_integer"),
    (b'{"user_id": 9223372036854775808, "ts": "2023-12-01T10:00:00"}', "schema_violation"),
    (b'{"user_id": 5, "ts": "1970-01-01T00:00:00"}', "event_time_out_of_range"),
    (b'{"user_id": 5, "ts": "2023-12-01T10:00:00", "pad": "' + b"x" * MAX_RECORD_BYTES + b'"}', "too_large"),
])
def test_invalid_records_get_a_stable_reason(raw, reason):
    with pytest.raises(InvalidEvent) as caught:
        decode(Topic.AUTHORIZATIONS, raw)
    assert caught.value.reason == reason


def test_russian_literals_round_trip():
    record = {"user_id": 74952, "ts": "2023-12-23T12:10:00", "event": "Подключение", "webinar_id": 13378,
              "conn_format": "офлайн", "intro": 1, "module": 2}
    assert decode(Topic.WEBINAR_EVENTS, encode(record)) == record
    with pytest.raises(InvalidEvent):
        decode(Topic.WEBINAR_EVENTS, encode({**record, "event": "Connected"}))
    assert key_of(Topic.WEBINAR_EVENTS, record) == b"74952"


def test_skipped_exercise_is_null_result():
    record = {"user_id": 1, "ts": "2023-12-01T08:53:00", "activity_id": 13278, "result": None, "success": 0}
    assert decode(Topic.EXERCISE_RESULTS, json.dumps(record).encode())["result"] is None


@pytest.mark.parametrize("record, reason", [
    ({"user_id": 1, "ts": "2023-12-01T10:00:00", "course_id": 3, "flow_num": 1e10}, "schema_violation"),
    ({"user_id": 1, "ts": "2023-12-01T10:00:00", "course_id": 3, "flow_num": 1.5}, "schema_violation"),
    ({"user_id": 1, "ts": "2023-12-01T10:00:00", "course_id": 2.0}, "not_an_integer"),
    ({"user_id": 1, "ts": "2023-12-01T10:00:00", "course_id": 3, "time_zone": "x" * 51}, "schema_violation"),
])
def test_student_fields_are_bounded_by_what_storage_holds(record, reason):
    with pytest.raises(InvalidEvent) as caught:
        validate(Topic.STUDENTS, record)
    assert caught.value.reason == reason
    assert validate(Topic.STUDENTS, {**record, "flow_num": 1.0, "course_id": 3, "time_zone": "+03:00"})


def test_schedule_dates_stay_near_the_record():
    row = {"course_id": 3, "ts": "2023-11-01T00:00:00", "type": "активность", "task_id": 1, "activity_id": 2,
           "is_attestation": 0, "required": 1, "date_shown": "2100-01-01T00:00:00"}
    with pytest.raises(InvalidEvent) as caught:
        validate(Topic.SCHEDULE, row)
    assert caught.value.reason == "event_time_out_of_range"
    assert validate(Topic.SCHEDULE, {**row, "date_shown": "2024-01-01T00:00:00"})


def test_a_grade_is_given_at_or_after_the_attempt_it_grades():
    attempt = {"user_id": 1, "ts": "2023-12-01T10:00:00", "activity_id": 7, "result": 80, "success": 1,
               "attempt_id": "urn:attempt:1"}
    assert validate(Topic.EXERCISE_RESULTS, {**attempt, "graded_at": "2023-12-05T09:00:00"})
    assert validate(Topic.EXERCISE_RESULTS, {**attempt, "graded_at": attempt["ts"]})
    with pytest.raises(InvalidEvent) as caught:
        validate(Topic.EXERCISE_RESULTS, {**attempt, "graded_at": "2023-11-30T10:00:00"})
    assert caught.value.reason == "graded_before_handed_in"
    with pytest.raises(InvalidEvent) as empty:
        validate(Topic.EXERCISE_RESULTS, {**attempt, "attempt_id": ""})
    assert empty.value.reason == "schema_violation"


def test_a_hand_in_still_to_be_graded_names_its_attempt_and_has_no_result():
    hand_in = {"user_id": 1, "ts": "2023-12-01T10:00:00", "activity_id": 7, "result": None, "success": 0,
               "attempt_id": "urn:attempt:1", "pending": True}
    assert validate(Topic.EXERCISE_RESULTS, hand_in)
    for broken in ({**hand_in, "result": 80}, {k: v for k, v in hand_in.items() if k != "attempt_id"}):
        with pytest.raises(InvalidEvent) as caught:
            validate(Topic.EXERCISE_RESULTS, broken)
        assert caught.value.reason == "pending_not_a_hand_in"
    with pytest.raises(InvalidEvent) as typed:
        validate(Topic.EXERCISE_RESULTS, {**hand_in, "pending": "yes"})
    assert typed.value.reason == "schema_violation"


def test_event_time_is_bounded_by_the_kafka_timestamp_and_the_clock():
    now = 1_800_000_000.0
    check_event_time(now - 86_400, now - 10, now, 600)  # an old event, just produced: fine (a replay)
    check_event_time(now + 500, now, now, 600)  # within the allowed skew
    with pytest.raises(InvalidEvent) as ahead:
        check_event_time(4_102_444_800.0, now, now, 600)  # dated 2100, produced now
    assert ahead.value.reason == "event_time_in_future"
    with pytest.raises(InvalidEvent) as produced:
        check_event_time(now, now + 3600, now, 600)
    assert produced.value.reason == "produced_in_future"


def test_a_dead_letter_of_a_huge_value_fits_and_says_what_it_was():
    value = b"\xff" + b"y" * 1_000_000
    letter = dead_letter("lms.page_views", InvalidEvent("too_large", "x" * 5000), value=value, key=b"k" * 1000,
                         partition=1, offset=7)
    assert len(encode(letter)) < 2 * MAX_VALUE_BYTES
    assert letter["value_bytes"] == len(value) and letter["value_truncated"] is True
    assert len(letter["value_sha256"]) == 64 and letter["value"].startswith("\\xff")
    assert len(letter["error"]) <= 1000 and len(letter["key"]) <= 256
    validate(Topic.DEAD_LETTERS, letter)
