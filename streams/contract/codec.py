"""Bytes <-> records: JSON decoding and validation against the topic's JSON Schema.

Validation is compiled (fastjsonschema) because every record is validated by replay and again
by the worker; see the README's performance section for what that bought.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import fastjsonschema
import orjson

from features.eventtime import parse_ts
from streams.contract.topics import TOPIC_SCHEMA, Topic

#: Fields that hold event times; a value parse_ts refuses is a bad record.
_TIME_FIELDS = ("ts", "date_shown", "attestation_date", "graded_at")
#: A record larger than this is refused before it is parsed (the schemas bound every field far below it).
MAX_RECORD_BYTES = 64 * 1024
#: No LMS event happened before this (2000-01-01): an earlier time is a broken clock or a unit mix-up.
EARLIEST_EVENT_TIME = 946_684_800.0
#: Dates a record may announce (a schedule row's date_shown, an attestation date) lie within this
#: many seconds of the record's own time: ten years.
MAX_DATE_SPAN = 10 * 365 * 86_400.0


@dataclass
class InvalidEvent(Exception):
    """A record the scorer cannot use. `reason` is a short, stable label (a metric label value)."""

    reason: str
    detail: str

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"


@cache
def schema(kind: str) -> dict[str, Any]:
    text = resources.files(__package__).joinpath("schemas", f"{kind}.schema.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@cache
def _validator(kind: str) -> Callable[[Any], Any]:
    return fastjsonschema.compile(schema(kind))


@cache
def _integer_fields(kind: str) -> tuple[str, ...]:
    """Properties the schema types as integers. JSON Schema counts 1.0 as an integer; storage and
    keys do not (user 1.0 is not user 1), so such values are refused."""
    out = []
    for name, prop in schema(kind)["properties"].items():
        types = prop.get("type")
        if "integer" in ([types] if isinstance(types, str) else types or []):
            out.append(name)
    return tuple(out)


def validate(topic: Topic, record: Any) -> dict[str, Any]:
    """Check a decoded record against its topic's schema; raise InvalidEvent with a reason."""
    if not isinstance(record, dict):
        raise InvalidEvent("not_an_object", f"expected a JSON object, got {type(record).__name__}")
    try:
        _validator(TOPIC_SCHEMA[topic])(record)
    except fastjsonschema.JsonSchemaValueException as error:
        reason = "missing_field" if error.rule == "required" else "schema_violation"
        raise InvalidEvent(reason, error.message[:500]) from None
    for name in _integer_fields(TOPIC_SCHEMA[topic]):
        if isinstance(record.get(name), float):
            raise InvalidEvent("not_an_integer", f"{name} must be written as an integer, got {record[name]!r}")
    times = {}
    for field in _TIME_FIELDS:
        value = record.get(field)
        if isinstance(value, str):
            try:
                times[field] = parse_ts(value)
            except ValueError as exc:
                raise InvalidEvent("bad_timestamp", f"{field}: {exc}") from exc
    if "ts" in times and times["ts"] < EARLIEST_EVENT_TIME:
        raise InvalidEvent("event_time_out_of_range", f"ts {record['ts']} is before 2000")
    for field, at in times.items():
        if field != "ts" and "ts" in times and abs(at - times["ts"]) > MAX_DATE_SPAN:
            raise InvalidEvent("event_time_out_of_range", f"{field} {record[field]} is over ten years from ts")
    if "graded_at" in times and "ts" in times and times["graded_at"] < times["ts"]:
        raise InvalidEvent("graded_before_handed_in", f"graded_at {record['graded_at']} is before ts {record['ts']}")
    if record.get("pending") is True and (record.get("attempt_id") is None or record.get("result") is not None):
        raise InvalidEvent("pending_not_a_hand_in",
                           "a pending record is a hand-in of a named attempt: attempt_id given, result null")
    return record


def check_event_time(ts: float, produced_at: float, now: float, max_skew: float) -> None:
    """An event cannot have happened after its record was produced, nor produced in the future;
    both allow `max_skew` seconds of clock difference. A record that breaks this would move the
    watermark of every student ahead of real time, so it is refused instead."""
    if produced_at > now + max_skew:
        raise InvalidEvent("produced_in_future", f"Kafka timestamp {produced_at:.0f} is ahead of the clock {now:.0f}")
    if ts > produced_at + max_skew:
        raise InvalidEvent("event_time_in_future",
                           f"event time {ts:.0f} is ahead of its Kafka timestamp {produced_at:.0f}")


def decode(topic: Topic, raw: bytes | None) -> dict[str, Any]:
    """Bytes from Kafka -> a validated record, or InvalidEvent."""
    if raw is None:
        raise InvalidEvent("empty_value", "record has no value")
    if len(raw) > MAX_RECORD_BYTES:
        raise InvalidEvent("too_large", f"{len(raw)} bytes; the limit is {MAX_RECORD_BYTES}")
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:  # also invalid UTF-8
        raise InvalidEvent("malformed_json", str(exc)[:500]) from exc
    return validate(topic, record)


def encode(record: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON (orjson: this is on the hot path)."""
    return orjson.dumps(record)


def key_of(topic: Topic, record: dict[str, Any]) -> bytes:
    """Kafka key: the student id, or the course id for the schedule."""
    key = record["course_id"] if topic is Topic.SCHEDULE else record["user_id"]
    return str(key).encode("ascii")
