import json
from importlib import resources

import pytest
import yaml

from streams.contract import TOPIC_SCHEMA, InvalidEvent, Topic, decode, encode, key_of, schema


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
