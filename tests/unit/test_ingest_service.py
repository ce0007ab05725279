"""The ingest service's rules without sockets (streams/ingest/service.py), on a fake broker: all or
nothing per request, acknowledged only once the broker acknowledged, idempotent by id,
back-pressure, and the HTTP layer's pure authentication checks (streams/ingest/server.py)."""
from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import orjson
import pytest

from streams.contract import Topic, decode
from streams.ingest import metrics
from streams.ingest.mapping import IdMapping
from streams.ingest.server import presented_token, refusal
from streams.ingest.service import Ingestor, Limits
from streams.tokens import DoorTokens

LMS = "https://lms.example.edu"
ADL = "http://adlnet.gov/expapi/verbs/"
PREFIX = "t."
NOW = time.time()


class Broker:
    """Acknowledges at once, or holds acknowledgements until released, or fails them."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes]] = []
        self.hold = False
        self.fail = False
        self.held: list[asyncio.Future[Any]] = []

    async def enqueue(self, topic: str, key: bytes | None, value: bytes) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.fail:
            future.set_exception(ConnectionError("broker down"))
            return future
        self.sent.append((topic, key, value))
        if self.hold:
            self.held.append(future)
        else:
            future.set_result(None)
        return future

    def release(self) -> None:
        for future in self.held:
            future.set_result(None)
        self.held.clear()

    def on(self, topic: Topic) -> list[dict[str, Any]]:
        return [json.loads(value) for name, _, value in self.sent if name == topic.physical(PREFIX)]

    def keys(self) -> dict[str, bytes | None]:
        """The key of what was sent to each physical topic, once each value sent decodes as the worker decodes it."""
        for name, _, value in self.sent:
            decode(Topic(name.removeprefix(PREFIX)), value)
        return {name: key for name, key, _ in self.sent}


def ingestor(broker: Broker, **limits: Any) -> Ingestor:
    mapping = IdMapping.from_dict({"lms_roots": [LMS], "users": {"mailto:alice@example.edu": 1001}})
    return Ingestor(mapping, PREFIX, broker.enqueue, Limits(**limits), max_skew_seconds=600, clock=lambda: NOW)


def statement(number: int, verb: str = "experienced", user: str = "101", **extra: Any) -> dict[str, Any]:
    return {"id": f"00000000-0000-4000-8000-{number:012d}",
            "actor": {"objectType": "Agent", "account": {"homePage": LMS, "name": user}},
            "verb": {"id": ADL + verb}, "object": {"id": f"{LMS}/lessons/{number}"},
            "timestamp": "2024-01-10T06:00:00Z", **extra}


def body(value: Any) -> bytes:
    return orjson.dumps(value)


async def test_statements_are_produced_keyed_by_student_and_answered_with_their_ids():
    broker = Broker()
    answer = await ingestor(broker).statements(body([statement(1), statement(2, "answered", user="102",
                                                                        result={"score": {"scaled": 0.5}}),
                                                     statement(3, "commented")]))
    assert answer.status == 200
    assert answer.body == [statement(n)["id"] for n in (1, 2, 3)]
    assert answer.headers["X-Ingest-Records"] == "2" and answer.headers["X-Ingest-Ignored"] == "1"
    views, results = broker.on(Topic.PAGE_VIEWS), broker.on(Topic.EXERCISE_RESULTS)
    assert [v["page_id"] for v in views] == [1] and [r["result"] for r in results] == [50]
    keys = broker.keys()
    assert keys[Topic.PAGE_VIEWS.physical(PREFIX)] == b"101" and keys[Topic.EXERCISE_RESULTS.physical(PREFIX)] == b"102"
    assert not broker.on(Topic.DEAD_LETTERS)  # an unused verb is only counted


async def test_a_single_statement_object_is_accepted():
    answer = await ingestor(Broker()).statements(body(statement(1)))
    assert answer.status == 200 and answer.body == [statement(1)["id"]]


async def test_unmappable_statements_are_dead_lettered_and_acknowledged():
    broker = Broker()
    stranger = statement(1)
    stranger["actor"] = {"mbox": "mailto:stranger@example.com"}
    answer = await ingestor(broker).statements(body([stranger, statement(2)]))
    assert answer.status == 200 and answer.headers["X-Ingest-Unmapped"] == "1"
    (letter,) = broker.on(Topic.DEAD_LETTERS)
    assert letter["reason"] == "unmapped_user" and letter["kind"] == "unmapped" and letter["topic"] == "xapi"
    assert json.loads(letter["value"]) == stranger and letter["ref"] == stranger["id"]
    assert len(broker.on(Topic.PAGE_VIEWS)) == 1


async def test_a_batch_with_an_invalid_statement_stores_nothing_but_its_dead_letter():
    broker = Broker()
    service = ingestor(broker)
    bad = statement(2)
    bad["timestamp"] = "yesterday"
    batch = body([statement(1), bad, statement(3, verb="nonsense verb")])
    answer = await service.statements(batch)
    assert answer.status == 400
    assert [(r["index"], r["reason"]) for r in answer.body["rejected"]] == [(1, "bad_timestamp"), (2, "bad_verb")]
    assert not broker.on(Topic.PAGE_VIEWS)
    assert sorted(d["reason"] for d in broker.on(Topic.DEAD_LETTERS)) == ["bad_timestamp", "bad_verb"]
    assert (await service.statements(batch)).status == 400  # the client resends the same bad batch:
    assert len(broker.on(Topic.DEAD_LETTERS)) == 2  # dead-lettered once
    assert (await service.statements(body([statement(1), statement(3)]))).status == 200
    assert len(broker.on(Topic.PAGE_VIEWS)) == 2


async def test_the_same_statement_twice_is_one_record():
    broker = Broker()
    service = ingestor(broker)
    before = metrics.REGISTRY.get_sample_value("scorer_ingest_duplicates_total", {"source": "xapi"}) or 0
    first = await service.statements(body([statement(1), statement(2)]))
    again = await service.statements(body([statement(2), statement(1), statement(3)]))
    assert first.status == again.status == 200 and again.headers["X-Ingest-Duplicates"] == "2"
    assert [v["page_id"] for v in broker.on(Topic.PAGE_VIEWS)] == [1, 2, 3]
    assert metrics.REGISTRY.get_sample_value("scorer_ingest_duplicates_total", {"source": "xapi"}) == before + 2


async def test_a_statement_without_id_is_deduplicated_by_content():
    broker = Broker()
    service = ingestor(broker)
    anonymous = statement(1)
    del anonymous["id"]
    first, again = await service.statements(body(anonymous)), await service.statements(body(anonymous))
    assert first.body == again.body and len(broker.on(Topic.PAGE_VIEWS)) == 1


async def test_the_same_id_with_other_content_is_a_conflict():
    service = ingestor(Broker())
    assert (await service.statements(body(statement(1)))).status == 200
    changed = statement(1, verb="launched")
    assert (await service.statements(body(changed))).status == 409
    assert (await service.statements(body([statement(2), statement(2)]))).status == 400  # twice in one batch


async def test_a_copy_arriving_while_the_first_is_produced_waits_for_it():
    broker = Broker()
    broker.hold = True
    service = ingestor(broker)
    first = asyncio.create_task(service.statements(body(statement(1))))
    await asyncio.sleep(0.01)
    second = asyncio.create_task(service.statements(body(statement(1))))
    await asyncio.sleep(0.01)
    assert not first.done() and not second.done()  # nobody is told "stored" before the broker said so
    broker.hold = False
    broker.release()
    assert (await first).status == (await second).status == 200
    assert len(broker.on(Topic.PAGE_VIEWS)) == 1


async def test_a_broker_failure_answers_503_and_the_resend_is_stored():
    broker = Broker()
    broker.fail = True
    service = ingestor(broker)
    answer = await service.statements(body(statement(1)))
    assert answer.status == 503 and "Retry-After" in answer.headers
    assert service.health().status == 503
    broker.fail = False
    assert (await service.statements(body(statement(1)))).status == 200  # not remembered as done
    assert len(broker.on(Topic.PAGE_VIEWS)) == 1 and service.health().status == 200


async def test_no_acknowledgement_in_time_answers_503():
    broker = Broker()
    broker.hold = True
    answer = await ingestor(broker, produce_timeout=0.05).statements(body(statement(1)))
    assert answer.status == 503
    broker.release()  # a late acknowledgement is harmless: the resend is deduplicated by the worker's event id


async def test_back_pressure_answers_503_with_retry_after():
    broker = Broker()
    broker.hold = True
    service = ingestor(broker, max_inflight_records=3)
    first = asyncio.create_task(service.statements(body([statement(1), statement(2)])))
    await asyncio.sleep(0.01)
    assert service.inflight_records == 2
    refused = await service.statements(body([statement(3), statement(4)]))
    assert refused.status == 503 and refused.headers["Retry-After"] == "1"
    broker.hold = False
    broker.release()
    assert (await first).status == 200 and service.inflight_records == 0 and not service.overloaded()
    assert (await service.statements(body([statement(3), statement(4)]))).status == 200


async def test_too_many_items_is_413_and_bad_json_400():
    service = ingestor(Broker(), max_items=3)
    assert (await service.statements(body([statement(n) for n in range(4)]))).status == 413
    assert (await service.records("lms.authorizations", body([{}] * 4))).status == 413
    broker = Broker()
    answer = await ingestor(broker).statements(b'{"id": ')
    assert answer.status == 400 and broker.on(Topic.DEAD_LETTERS)[0]["reason"] == "malformed_json"


async def test_a_record_dated_ahead_of_the_clock_is_refused_as_the_worker_would():
    future = statement(1)
    future["timestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW + 3600))
    answer = await ingestor(Broker()).statements(body(future))
    assert answer.status == 400 and answer.body["rejected"][0]["reason"] == "event_time_in_future"
    soon = statement(2)
    soon["timestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW + 60))  # within the allowed skew
    assert (await ingestor(Broker()).statements(body(soon))).status == 200


async def test_a_school_east_of_utc_has_its_live_statements_accepted_and_its_future_ones_refused():
    """Contract times are the school's wall clock (Moscow: UTC+3). The door read them as UTC, so every
    statement made now looked three hours ahead and was refused (400, dead-lettered), which the worker,
    converting through the same zone, would have accepted."""
    mapping = IdMapping.from_dict({"lms_roots": [LMS]}, time_zone="Europe/Moscow")
    service = Ingestor(mapping, PREFIX, Broker().enqueue, max_skew_seconds=600, clock=lambda: NOW)
    at = {offset: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW + offset)) for offset in (0, 3600)}
    assert (await service.statements(body(statement(1, timestamp=at[0])))).status == 200
    future = await service.statements(body(statement(2, timestamp=at[3600])))
    assert future.status == 400 and future.body["rejected"][0]["reason"] == "event_time_in_future"
    local_now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(NOW + 3 * 3600))  # a native record dated now
    view = {"event_id": "lms-now", "user_id": 982, "ts": local_now, "page_type": "занятие", "page_id": 3015}
    assert (await service.records("lms.page_views", body(view))).status == 200


async def test_put_stores_one_statement_under_its_id():
    broker = Broker()
    service = ingestor(broker)
    sid = "00000000-0000-4000-8000-000000000009"
    s = statement(9)
    del s["id"]
    answer = await service.statements(body(s), sid)
    assert answer.status == 204 and broker.on(Topic.PAGE_VIEWS)[0]["event_id"] == sid
    assert (await service.statements(body({**s, "id": sid.upper()}), sid)).status == 204  # the same, any case
    assert (await service.statements(body(statement(8)), sid)).status == 400


async def test_native_records():
    broker = Broker()
    service = ingestor(broker)
    view = {"event_id": "lms-1", "user_id": 982, "ts": "2024-01-24T19:14:11", "page_type": "занятие", "page_id": 3015}
    answer = await service.records("lms.page_views", body([view, {**view, "event_id": "lms-2"}, view]))
    assert answer.status == 200 and answer.body["accepted"] == 3 and answer.body["records"] == 2
    assert answer.body["event_ids"] == ["lms-1", "lms-2", "lms-1"] and answer.body["duplicates"] == 1
    assert [key for *_, key in [(n, k) for n, k, _ in broker.sent]] == [b"982", b"982"]
    again = await service.records("page_view", body(view))  # the schema's name works too
    assert again.status == 200 and again.body["duplicates"] == 1 and len(broker.on(Topic.PAGE_VIEWS)) == 2
    invalid = await service.records("lms.page_views", body([{**view, "event_id": "lms-3"}, {**view, "page_id": -1}]))
    assert invalid.status == 400 and invalid.body["rejected"][0]["index"] == 1
    assert broker.on(Topic.DEAD_LETTERS)[0]["topic"] == Topic.PAGE_VIEWS.physical(PREFIX)
    assert len(broker.on(Topic.PAGE_VIEWS)) == 2
    assert (await service.records("scorer.alerts", body(view))).status == 404
    assert (await service.records("lms.page_views", body({**view, "event_id": "lms-1", "page_id": 1}))).status == 409
    schedule = {"course_id": 3, "ts": "2023-12-01T00:00:00", "type": "активность", "task_id": 81, "activity_id": 8719,
                "is_attestation": 0, "required": 1, "date_shown": "2023-12-05T11:00:00"}
    assert (await service.records("lms.schedule", body(schedule))).status == 200
    assert broker.sent[-1][1] == b"3"  # the schedule is keyed by course


@pytest.mark.parametrize(("header", "token"), [
    ("Bearer s3cret", "s3cret"), ("bearer  s3cret ", "s3cret"),
    ("Basic " + base64.b64encode(b"lms:s3cret").decode(), "s3cret"), ("Basic !!!", None), ("Bearer", None),
    ("Token s3cret", None), (None, None), ("", None), ("Basic " + base64.b64encode(b"lms").decode(), None),
])
def test_presented_token(header, token):
    assert presented_token(header) == token


def test_refusal():
    configured = DoorTokens("s3cret")
    assert refusal("Bearer anything", DoorTokens("")).status == 503  # no token configured: everything refused
    assert refusal("Bearer old", DoorTokens("", "old")).status == 503  # the previous one alone opens nothing
    assert refusal(None, configured).status == 401 and "WWW-Authenticate" in refusal(None, configured).headers
    assert refusal("Bearer wrong", configured).status == 401
    assert refusal("Bearer s3cr\udcffet", configured).status == 401  # any string compares without raising
    assert refusal("Bearer s3cret", configured) is None


def test_the_previous_token_is_accepted_during_a_rotation_and_counted():
    def counted() -> float:
        return metrics.REGISTRY.get_sample_value("scorer_ingest_previous_tokens_total") or 0.0

    rotating, before = DoorTokens("new-token", "old-token"), counted()
    assert refusal("Bearer new-token", rotating) is None and counted() == before
    assert refusal("Basic " + base64.b64encode(b"lms:old-token").decode(), rotating) is None
    assert counted() == before + 1
    assert refusal("Bearer old-token", DoorTokens("new-token")).status == 401  # rotation over: refused
    assert refusal("Bearer other", rotating).status == 401 and counted() == before + 1
