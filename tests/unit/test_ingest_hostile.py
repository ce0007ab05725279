"""Hostile input for the adapters and the service (Hypothesis). Whatever arrives:

- mapping never raises;
- every item becomes either records that the contract accepts (validated and encodable, exactly
  what the worker decodes) or one rejection with a reason from the adapters' vocabulary (never an
  internal error) whose dead letter fits the dead-letter schema;
- the service answers every body with a status, and everything it sends decodes.

Inputs are arbitrary JSON values, arbitrary text, and realistic items (the fixtures) with fields
deleted, replaced by arbitrary JSON, or added.
"""
from __future__ import annotations

import asyncio
import copy
import json
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from streams.contract import Topic, decode, encode, validate
from streams.ingest import caliper, moodle, openedx, xapi
from streams.ingest.base import KINDS, Mapped
from streams.ingest.mapping import IdMapping
from streams.ingest.service import Ingestor, Limits

pytestmark = pytest.mark.heavy

FIXTURES = Path(__file__).parents[1] / "fixtures" / "lms_formats"
MAPPING = IdMapping.load(FIXTURES / "mapping.yaml", "Europe/Moscow")
XAPI_SAMPLES = [json.loads(line) for line in (FIXTURES / "xapi_statements.jsonl").read_text().splitlines()
                if line.startswith("{")]
OPENEDX_SAMPLES = [json.loads(line[line.index("{"):]) for line in
                   (FIXTURES / "openedx_tracking.log").read_text().splitlines() if line.endswith("}")]
MOODLE_SAMPLES = list(moodle.read_csv((FIXTURES / "moodle_logstore.csv").read_text()))
CALIPER_ENVELOPES = [json.loads(line) for line in (FIXTURES / "caliper_events.jsonl").read_text().splitlines()
                     if line.endswith("}")]
CALIPER_SAMPLES = [e for item in CALIPER_ENVELOPES for e in (item["data"] if "data" in item else [item])]
FIELDS = ["id", "actor", "verb", "object", "timestamp", "stored", "result", "score", "scaled", "raw", "min", "max",
          "mbox", "mbox_sha1sum", "openid", "account", "homePage", "name", "objectType", "definition", "type",
          "success", "duration", "version", "context", "event", "event_type", "event_source", "time", "user_id",
          "username", "course_id", "problem_id", "grade", "max_grade", "page", "block_id", "mode", "eventname",
          "userid", "relateduserid", "courseid", "contextinstanceid", "timecreated", "other", "finalgrade",
          "grademax", "weighted_total_earned", "weighted_total_possible", "target_url", "@context", "action",
          "eventTime", "edApp", "generated", "assignee", "assignable", "scoreGiven", "maxScore", "member",
          "organization", "roles", "status", "extensions", "com.instructure.canvas", "workflow_state", "sensor",
          "sendTime", "dataVersion", "data"]
SCALARS = (st.none() | st.booleans() | st.integers() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats() | st.text(max_size=40)
           | st.sampled_from(["2024-01-10T06:00:00Z", "mailto:a@b.c", "http://adlnet.gov/expapi/verbs/answered",
                              "https://lms.example.edu", "1704870000", "\\core\\event\\user_graded", "server",
                              "problem_check", "00000000-0000-4000-8000-000000000001", "PT1H", "", "0", "-1",
                              "urn:uuid:00000000-0000-4000-8000-000000000002", "Person", "Attempt", "Membership",
                              "GradeEvent", "Graded", "http://purl.imsglobal.org/ctx/caliper/v1p2"]))
KEYS = st.sampled_from(FIELDS) | st.text(max_size=12)
JSON = st.recursive(SCALARS, lambda children: st.lists(children, max_size=5)
                    | st.dictionaries(KEYS, children, max_size=6), max_leaves=30)


def check(mapped: Mapped) -> None:
    event("records" if mapped.records else f"{mapped.rejection.kind}: {mapped.rejection.reason}")
    assert (mapped.rejection is None) == bool(mapped.records), mapped  # records, or one rejection
    for topic, record in mapped.records:
        validate(topic, record)
        assert decode(topic, encode(record)) == record
    if mapped.rejection is not None:
        rejection = mapped.rejection
        assert not mapped.records
        assert rejection.kind in KINDS and rejection.reason and rejection.reason != "internal_error", rejection
        assert len(rejection.reason) <= 100 and rejection.reason.isascii()
        validate(Topic.DEAD_LETTERS, rejection.dead_letter())
        encode(rejection.dead_letter())


def mutate(data: st.DataObject, item: Any) -> Any:
    """Delete, replace or add fields anywhere in a copy of `item`."""
    item = copy.deepcopy(item)
    for _ in range(data.draw(st.integers(1, 4))):
        node = item
        while isinstance(node, dict) and node and data.draw(st.booleans()):
            child = node[data.draw(st.sampled_from(sorted(node)))]
            if not isinstance(child, dict) or not child:
                break
            node = child
        if not isinstance(node, dict):
            continue
        action = data.draw(st.sampled_from(["delete", "replace", "add"]))
        if action == "add" or not node:
            node[data.draw(KEYS)] = data.draw(JSON)
        elif action == "delete":
            del node[data.draw(st.sampled_from(sorted(node)))]
        else:
            node[data.draw(st.sampled_from(sorted(node)))] = data.draw(JSON)
    return item


FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(JSON)
def test_arbitrary_json_as_a_statement(value):
    check(xapi.map_statement(value, MAPPING))


@FAST
@given(st.data())
def test_mutated_statements(data):
    check(xapi.map_statement(mutate(data, data.draw(st.sampled_from(XAPI_SAMPLES))), MAPPING))


@FAST
@given(JSON)
def test_arbitrary_json_as_an_openedx_event(value):
    check(openedx.map_event(value, MAPPING))


@FAST
@given(st.data())
def test_mutated_openedx_events(data):
    check(openedx.map_event(mutate(data, data.draw(st.sampled_from(OPENEDX_SAMPLES))), MAPPING))


@FAST
@given(st.text() | st.binary())
def test_arbitrary_tracking_log_lines(line):
    check(openedx.map_line(line, MAPPING))


@FAST
@given(JSON)
def test_arbitrary_json_as_a_moodle_row(value):
    check(moodle.map_row(value, MAPPING))


@FAST
@given(st.data())
def test_mutated_moodle_rows(data):
    row = dict(data.draw(st.sampled_from(MOODLE_SAMPLES)))
    for _ in range(data.draw(st.integers(1, 4))):
        column = data.draw(st.sampled_from(sorted(row)) | KEYS)
        row[column] = data.draw(st.none() | st.text(max_size=30) | SCALARS)
    check(moodle.map_row(row, MAPPING))


@FAST
@given(st.text(max_size=400))
def test_arbitrary_csv_text(text):
    for mapped in moodle.map_rows(moodle.read_csv("eventname,userid,timecreated,other,id\n" + text), MAPPING):
        check(mapped)


@settings(max_examples=900, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_caliper_input(data):
    """Arbitrary JSON as an event, and the fixture's events and envelopes mutated."""
    kind = data.draw(st.sampled_from(["json", "event", "envelope"]))
    if kind == "envelope":
        items = caliper.map_envelope(mutate(data, data.draw(st.sampled_from(CALIPER_ENVELOPES))), MAPPING, "1")
    else:
        item = data.draw(JSON) if kind == "json" else mutate(data, data.draw(st.sampled_from(CALIPER_SAMPLES)))
        items = [caliper.map_event(item, MAPPING)]
    for mapped in items:
        check(mapped)


class _Broker:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    async def enqueue(self, topic: str, key: bytes | None, value: bytes) -> asyncio.Future[Any]:
        self.sent.append((topic, value))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


def _serve(bodies: list[tuple[str, bytes]]) -> tuple[list[int], list[tuple[str, bytes]]]:
    broker = _Broker()
    service = Ingestor(MAPPING, "h.", broker.enqueue, Limits(max_items=20), clock=time.time)

    async def run() -> list[int]:
        statuses = []
        for route, body in bodies:
            answer = await (service.statements(body) if route == "xapi" else service.caliper(body)
                            if route == "caliper" else service.records(route, body))
            assert answer.status in {200, 400, 404, 409, 413, 422}, answer
            orjson.dumps(answer.body)
            statuses.append(answer.status)
        return statuses

    return asyncio.run(run()), broker.sent


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_the_service_answers_every_body(data):
    bodies = []
    for _ in range(data.draw(st.integers(1, 4))):
        route = data.draw(st.sampled_from(["xapi", "caliper", "lms.page_views", "exercise_result", "lms.nothing"]))
        kind = data.draw(st.sampled_from(["bytes", "json", "statements"]))
        if kind == "bytes":
            body = data.draw(st.binary(max_size=200))
        elif kind == "json":
            body = json.dumps(data.draw(JSON), default=str).encode()
        elif route == "caliper":
            body = json.dumps(mutate(data, data.draw(st.sampled_from(CALIPER_ENVELOPES)))).encode()
        else:
            batch = [mutate(data, s) if data.draw(st.booleans()) else s
                     for s in data.draw(st.lists(st.sampled_from(XAPI_SAMPLES), max_size=4))]
            body = json.dumps(batch).encode()
        bodies.append((route, body))
    _, sent = _serve(bodies)
    for physical, value in sent:
        decode(Topic(physical.removeprefix("h.")), value)
