"""`POST /caliper` without sockets (streams/ingest/service.py `Ingestor.caliper`), on the fake broker of
test_ingest_service: one Caliper Envelope a request, answered as the Caliper specification asks of an
endpoint (2xx with an empty body; 400 no envelope or a malformed one; 422 another dataVersion), with
the xAPI door's rules: all or nothing, acknowledged after the broker, idempotent by id, back-pressure."""
from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import orjson
from test_ingest_service import NOW, PREFIX, Broker

from streams.contract import Topic
from streams.ingest import metrics
from streams.ingest.mapping import IdMapping
from streams.ingest.service import Ingestor, Limits

EDU = "https://example.edu"
V12 = "http://purl.imsglobal.org/ctx/caliper/v1p2"


def ingestor(broker: Broker, **limits: Any) -> Ingestor:
    mapping = IdMapping.from_dict({"users": {f"{EDU}/users/jane": 1002}})
    return Ingestor(mapping, PREFIX, broker.enqueue, Limits(**limits), max_skew_seconds=600, clock=lambda: NOW)


def event(number: int, kind: str = "NavigationEvent", action: str = "NavigatedTo", user: str = "101",
          **extra: Any) -> dict[str, Any]:
    return {"@context": V12, "id": f"urn:uuid:00000000-0000-4000-8000-{number:012d}", "type": kind,
            "actor": {"id": f"{EDU}/users/{user}", "type": "Person"}, "action": action,
            "object": {"id": f"{EDU}/pages/{number}", "type": "WebPage"}, "eventTime": "2024-01-10T06:00:00.000Z",
            "edApp": EDU, **extra}


def envelope(*events: Any, version: str = V12) -> bytes:
    return orjson.dumps({"sensor": f"{EDU}/sensors/1", "sendTime": "2024-01-10T06:00:01.000Z", "dataVersion": version,
                         "data": list(events)})


async def test_an_envelope_is_produced_keyed_by_student_and_answered_empty():
    broker = Broker()
    grade = event(2, "GradeEvent", "Graded", user="autograder",
                  object={"id": f"{EDU}/attempts/2", "type": "Attempt", "assignee": f"{EDU}/users/102",
                          "assignable": {"id": f"{EDU}/assess/13278", "type": "Assessment"}},
                  generated={"id": f"{EDU}/attempts/2/score", "type": "Score", "scoreGiven": 6, "maxScore": 12})
    grade["actor"] = {"id": f"{EDU}/autograder", "type": "SoftwareApplication"}
    answer = await ingestor(broker).caliper(envelope(event(1), grade, event(3, "ForumEvent", "Subscribed")))
    assert answer.status == 200 and answer.body is None  # "The body of a successful response SHOULD be empty"
    assert answer.headers["X-Ingest-Records"] == "2" and answer.headers["X-Ingest-Ignored"] == "1"
    assert [v["page_id"] for v in broker.on(Topic.PAGE_VIEWS)] == [1]
    assert [(r["user_id"], r["activity_id"], r["result"]) for r in broker.on(Topic.EXERCISE_RESULTS)] == [
        (102, 13278, 50)]
    keys = broker.keys()  # and everything sent decodes as the worker decodes it
    assert keys[Topic.PAGE_VIEWS.physical(PREFIX)] == b"101" and keys[Topic.EXERCISE_RESULTS.physical(PREFIX)] == b"102"
    assert not broker.on(Topic.DEAD_LETTERS)  # a forum event is only counted


async def test_what_is_not_an_envelope_is_a_bad_request_and_dead_lettered():
    broker = Broker()
    service = ingestor(broker)
    bare = orjson.dumps(event(1))
    for body, reason in [(bare, "not_an_envelope"), (orjson.dumps([event(1)]), "not_an_envelope"),
                         (b'{"sensor": ', "malformed_json"),
                         (orjson.dumps({"sensor": f"{EDU}/sensors/1", "dataVersion": V12, "data": [event(1)]}),
                          "bad_envelope")]:
        answer = await service.caliper(body)
        assert answer.status == 400 and answer.body["error"], body
        assert broker.on(Topic.DEAD_LETTERS)[-1]["reason"] == reason
    assert not broker.on(Topic.PAGE_VIEWS)


async def test_another_data_version_is_unprocessable():
    broker = Broker()
    before = metrics.REGISTRY.get_sample_value(
        "scorer_ingest_rejected_total", {"source": "caliper", "kind": "invalid", "reason": "unsupported_version"}) or 0
    answer = await ingestor(broker).caliper(envelope(event(1), version="http://purl.imsglobal.org/ctx/caliper/v1/Context"))
    assert answer.status == 422 and "v1p2" in answer.body["error"]  # the specification's code for this, not 400
    (letter,) = broker.on(Topic.DEAD_LETTERS)
    assert (letter["reason"], letter["kind"], letter["topic"]) == ("unsupported_version", "invalid", "caliper")
    assert metrics.REGISTRY.get_sample_value(
        "scorer_ingest_rejected_total",
        {"source": "caliper", "kind": "invalid", "reason": "unsupported_version"}) == before + 1


async def test_an_envelope_with_an_invalid_event_stores_nothing_but_its_dead_letter():
    broker = Broker()
    service = ingestor(broker)
    bad = event(2)
    bad["eventTime"] = "yesterday"
    body = envelope(event(1), bad, {**event(3), "actor": {"type": "Person"}})
    answer = await service.caliper(body)
    assert answer.status == 400
    assert [(r["index"], r["reason"]) for r in answer.body["rejected"]] == [(1, "bad_timestamp"), (2, "bad_actor")]
    assert not broker.on(Topic.PAGE_VIEWS)
    assert sorted(d["reason"] for d in broker.on(Topic.DEAD_LETTERS)) == ["bad_actor", "bad_timestamp"]
    assert (await service.caliper(body)).status == 400  # the sensor resends it:
    assert len(broker.on(Topic.DEAD_LETTERS)) == 2  # dead-lettered once
    assert (await service.caliper(envelope(event(1), event(3)))).status == 200
    assert len(broker.on(Topic.PAGE_VIEWS)) == 2


async def test_unmapped_events_are_dead_lettered_and_acknowledged():
    broker = Broker()
    stranger = event(1, user="stranger")
    answer = await ingestor(broker).caliper(envelope(stranger, event(2, user="jane")))
    assert answer.status == 200 and answer.headers["X-Ingest-Unmapped"] == "1"
    (letter,) = broker.on(Topic.DEAD_LETTERS)
    assert (letter["reason"], letter["kind"], letter["ref"]) == ("unmapped_user", "unmapped", stranger["id"])
    assert json.loads(letter["value"]) == stranger
    assert [v["user_id"] for v in broker.on(Topic.PAGE_VIEWS)] == [1002]


async def test_idempotent_by_event_id():
    broker = Broker()
    service = ingestor(broker)
    label = {"source": "caliper"}
    before = metrics.REGISTRY.get_sample_value("scorer_ingest_duplicates_total", label) or 0
    sent = [[1, 2], [2, 1, 3], [4, 4]]  # a resent envelope; a copy inside one envelope: once is enough
    answers = [await service.caliper(envelope(*map(event, numbers))) for numbers in sent]
    assert [(a.status, a.headers["X-Ingest-Duplicates"]) for a in answers] == [(200, "0"), (200, "2"), (200, "1")]
    assert metrics.REGISTRY.get_sample_value("scorer_ingest_duplicates_total", label) == before + 3
    changed = {**event(1), "eventTime": "2024-01-10T07:00:00.000Z"}  # an id already stored, other content
    assert (await service.caliper(envelope(changed))).status == 409
    clash = await service.caliper(envelope(event(5), {**event(5), "edApp": f"{EDU}/other"}))
    assert clash.status == 400 and clash.body["rejected"][0]["reason"] == "conflicting_event_id"
    assert [v["page_id"] for v in broker.on(Topic.PAGE_VIEWS)] == [1, 2, 3, 4]


async def test_acknowledged_only_after_the_broker_and_503_when_it_does_not():
    broker = Broker()
    broker.hold = True
    service = ingestor(broker, max_inflight_records=1)
    first = asyncio.create_task(service.caliper(envelope(event(1))))
    await asyncio.sleep(0.01)
    assert not first.done()  # nobody is told "stored" before the broker said so
    refused = await service.caliper(envelope(event(2)))  # back-pressure
    assert refused.status == 503 and refused.headers["Retry-After"] == "1"
    broker.hold = False
    broker.release()
    assert (await first).status == 200
    broker.fail = True
    assert (await service.caliper(envelope(event(2)))).status == 503
    broker.fail = False
    assert (await service.caliper(envelope(event(2)))).status == 200  # the resend is stored
    assert [v["page_id"] for v in broker.on(Topic.PAGE_VIEWS)] == [1, 2]


async def test_too_many_events_and_events_dated_ahead_of_the_clock():
    assert (await ingestor(Broker(), max_items=2).caliper(envelope(event(1), event(2), event(3)))).status == 413
    ahead = event(1)
    ahead["eventTime"] = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(NOW + 3600))
    answer = await ingestor(Broker()).caliper(envelope(ahead))
    assert answer.status == 400 and answer.body["rejected"][0]["reason"] == "event_time_in_future"
