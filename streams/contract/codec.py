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
_TIME_FIELDS = ("ts", "date_shown", "attestation_date")


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


def validate(topic: Topic, record: Any) -> dict[str, Any]:
    """Check a decoded record against its topic's schema; raise InvalidEvent with a reason."""
    if not isinstance(record, dict):
        raise InvalidEvent("not_an_object", f"expected a JSON object, got {type(record).__name__}")
    try:
        _validator(TOPIC_SCHEMA[topic])(record)
    except fastjsonschema.JsonSchemaValueException as error:
        reason = "missing_field" if error.rule == "required" else "schema_violation"
        raise InvalidEvent(reason, error.message[:500]) from None
    for field in _TIME_FIELDS:
        value = record.get(field)
        if isinstance(value, str):
            try:
                parse_ts(value)
            except ValueError as exc:
                raise InvalidEvent("bad_timestamp", f"{field}: {exc}") from exc
    return record


def decode(topic: Topic, raw: bytes | None) -> dict[str, Any]:
    """Bytes from Kafka -> a validated record, or InvalidEvent."""
    if raw is None:
        raise InvalidEvent("empty_value", "record has no value")
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
