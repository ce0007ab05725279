"""`POST /caliper` of `scorer ingest` on the embedded broker: Caliper Envelopes as Canvas's sensor sends
them in over HTTP, contract records out on the topics (keyed and partitioned as the worker requires);
the Caliper specification's endpoint answers (2xx empty, 400, 401, 415, 422) with the xAPI door's
limits, idempotency and all-or-nothing; `replay --format caliper` of the Canvas-like fixture; and a
real worker fed only through the endpoint, where a quiz graded days after its hand-in raises no false alert.
Servers and helpers are test_ingest_server's."""
from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import test_ingest_server as door

from features import DAY, format_ts, parse_ts
from helpers.topics import read_topic
from streams.contract import Topic, decode
from streams.ingest import caliper
from streams.ingest.mapping import IdMapping
from streams.ingest.server import IngestServer
from streams.kafka.partitioning import partition_of
from streams.tools.embedded import free_port
from streams.tools.processes import scrape_if_up, stop, worker_process
from streams.tools.replay import replay_file

pytestmark = pytest.mark.slow
server, http = door.server, door.http  # the fixtures: an IngestServer on the test's broker, an HTTP client
CANVAS = "http://oxana.instructure.com/"
V11 = "http://purl.imsglobal.org/ctx/caliper/v1p1"
COURSE = {"id": "urn:instructure:canvas:course:21070000000000565", "type": "CourseOffering"}
FIXTURES = Path(__file__).parents[1] / "fixtures" / "lms_formats"


def event(number: int, kind: str, action: str, obj: Any, user: int, at: datetime, **extra: Any) -> dict[str, Any]:
    return {"@context": V11, "id": f"urn:uuid:{number:08x}-0ada-462d-9c97-7acd5b513472", "type": kind,
            "actor": {"id": f"urn:instructure:canvas:user:{user}", "type": "Person"}, "action": action, "object": obj,
            "eventTime": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "edApp": {"id": CANVAS, "type": "SoftwareApplication"}, "group": COURSE, **extra}


def envelope(*events: Any, version: str = V11) -> dict[str, Any]:
    return {"sensor": CANVAS, "sendTime": "2024-03-04T09:10:00.000Z", "dataVersion": version, "data": list(events)}


def url(running: Any) -> str:
    return f"{running.url}/caliper"


async def test_an_envelope_in_records_out(settings, server, http):
    at = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)
    enrolled = {"id": "urn:instructure:canvas:enrollment:46825", "type": "Entity", "extensions": {
        "com.instructure.canvas": {"course_id": COURSE["id"], "type": "StudentEnrollment", "workflow_state": "invited",
                                   "user_id": "urn:instructure:canvas:user:104"}}}
    graded = {"id": "urn:instructure:canvas:submission:11086", "type": "Attempt",
              "assignee": {"id": "urn:instructure:canvas:user:103", "type": "Person"},
              "assignable": {"id": "urn:instructure:canvas:assignment:355", "type": "AssignableDigitalResource"}}
    batch = envelope(
        event(1, "SessionEvent", "LoggedIn", {"id": CANVAS, "type": "SoftwareApplication"}, 101, at),
        event(2, "NavigationEvent", "NavigatedTo", {"id": "urn:instructure:canvas:wikiPage:3015", "type": "Page"}, 102,
              at + timedelta(minutes=1)),
        event(3, "GradeEvent", "Graded", graded, 987, at + timedelta(minutes=2),
              generated={"id": graded["id"], "type": "Score", "scoreGiven": 8, "maxScore": 10}),
        event(4, "Event", "Created", enrolled, 1, at - timedelta(days=1)),
        event(5, "MessageEvent", "Posted", {"id": "urn:instructure:canvas:discussionEntry:1", "type": "Message"}, 105,
              at))
    status, body, headers = await door.post(http, url(server), batch)
    assert status == 200 and body is None  # the specification: a successful response's body SHOULD be empty
    assert headers["X-Ingest-Records"] == "4" and headers["X-Ingest-Ignored"] == "1"
    expected = [record for e in batch["data"] for record in caliper.map_event(e, door.MAPPING).records]
    assert [(t, r["user_id"]) for t, r in expected] == [(Topic.AUTHORIZATIONS, 101), (Topic.PAGE_VIEWS, 102),
                                                        (Topic.EXERCISE_RESULTS, 103), (Topic.STUDENTS, 104)]
    for topic in (Topic.AUTHORIZATIONS, Topic.PAGE_VIEWS, Topic.EXERCISE_RESULTS, Topic.STUDENTS):
        got = await door.read_keyed(settings, topic)
        assert [r for _, _, r in got] == [r for t, r in expected if t is topic], topic
        for key, partition, record in got:  # what the worker checks before it accepts a record
            assert key == str(record["user_id"]).encode() and partition == partition_of(key, settings.partitions)
            decode(topic, json.dumps(record).encode())


async def test_the_endpoint_answers_as_the_caliper_specification_asks(settings, server, http):
    at = datetime(2024, 3, 4, tzinfo=UTC)
    one = envelope(event(11, "SessionEvent", "LoggedIn", CANVAS, 201, at))
    assert (await door.post(http, url(server), one, headers={}))[0] == 401
    assert (await door.post(http, url(server), one, headers={"Authorization": "Bearer wrong"}))[0] == 401
    as_text = {"Authorization": f"Bearer {door.TOKEN}", "Content-Type": "text/plain"}
    assert (await door.post(http, url(server), one, headers=as_text))[0] == 415
    status, body, _ = await door.post(http, url(server), one["data"])  # events without their Envelope
    assert status == 400 and "Envelope" in body["error"]
    assert (await door.post(http, url(server), {**one, "sendTime": None}))[0] == 400
    status, body, _ = await door.post(http, url(server), {**one, "dataVersion": "http://purl.imsglobal.org/ctx/caliper/v1"})
    assert status == 422 and "v1p1" in body["error"]
    assert (await door.post(http, url(server), None, raw=b"{" + b" " * (1024 * 1024) + b"}"))[0] == 413
    assert (await door.post(http, url(server), envelope(*[event(n, "SessionEvent", "LoggedIn", CANVAS, n, at)
                                                          for n in range(1, 1002)])))[0] == 413
    assert (await door.post(http, url(server), one))[0] == 200
    async with http.get(f"{server.url}/metrics") as page:
        text = await page.text()
    assert 'scorer_ingest_requests_total{route="/caliper",status="422"} 1.0' in text
    dead = await read_topic(settings, Topic.DEAD_LETTERS)
    assert sorted(d["reason"] for d in dead) == ["bad_envelope", "not_an_envelope", "unsupported_version"]


async def test_idempotency_and_all_or_nothing(settings, server, http):
    at = datetime(2024, 3, 4, 10, tzinfo=UTC)
    login = event(21, "SessionEvent", "LoggedIn", CANVAS, 301, at)
    assert (await door.post(http, url(server), envelope(login)))[0] == 200
    status, _, headers = await door.post(http, url(server), envelope(login))  # the sensor resends it
    assert status == 200 and headers["X-Ingest-Duplicates"] == "1"
    bad = {**event(22, "SessionEvent", "LoggedIn", CANVAS, 302, at), "eventTime": "yesterday"}
    good = event(23, "SessionEvent", "LoggedIn", CANVAS, 303, at)
    status, body, _ = await door.post(http, url(server), envelope(good, bad))
    assert status == 400 and [(r["index"], r["id"], r["reason"]) for r in body["rejected"]] == [
        (1, caliper.event_id(bad), "bad_timestamp")]
    assert (await door.post(http, url(server), envelope({**login, "eventTime": "2024-03-04T11:00:00.000Z"})))[0] == 409
    logins = await read_topic(settings, Topic.AUTHORIZATIONS)
    assert [r["event_id"] for r in logins] == [login["id"]]  # once; nothing of the refused envelope
    dead = await read_topic(settings, Topic.DEAD_LETTERS)
    assert [(d["reason"], d["ref"], d["topic"]) for d in dead] == [("bad_timestamp", bad["id"], "caliper")]


async def test_replay_of_a_caliper_export(settings):
    mapping = IdMapping.load(FIXTURES / "mapping.yaml", "Europe/Moscow")
    report = await replay_file(settings, FIXTURES / "caliper_events.jsonl", "caliper", progress=False, mapping=mapping)
    assert report.published == {"lms.students": 1, "lms.authorizations": 2, "lms.page_views": 2,
                                "lms.exercise_results": 3, "lms.outcomes": 1}
    assert report.dead_letters == 4 and report.ignored == {"not_a_person": 1, "unused_event": 2, "not_a_course": 1,
                                                           "entity_describe": 1, "duplicate_event": 1,
                                                           "not_graded": 1}
    outcomes = await read_topic(settings, Topic.OUTCOMES)
    assert [(o["user_id"], o["course_id"], o["result"], o["ts"]) for o in outcomes] == [
        (1008, 3, "withdrawn", "2024-01-23T13:00:00")]
    results = await read_topic(settings, Topic.EXERCISE_RESULTS)  # two grades and Canvas's quiz_submitted
    assert sorted((r["user_id"], r["result"] or 0, r["ts"], r.get("graded_at"), r.get("pending", False))
                  for r in results) == [
        (1008, 0, "2024-01-10T10:00:00", None, True), (1008, 80, "2024-01-11T12:00:00", None, False),
        (1009, 40, "2024-01-11T13:55:12", "2024-01-11T13:57:06", False)]
    assert all(r["attempt_id"] for r in results)  # the item Completed with no score or Attempt: not_graded


async def test_a_quiz_graded_days_after_its_hand_in_keeps_the_student_active_from_the_hand_in(
        db, settings, tmp_path, http):
    """A worker fed only through the endpoint, as Canvas sends: student 401 logs in on days 0-2 and
    hands a quiz in on day 5 (quiz_submitted, no score); the teacher grades it on day 11
    (grade_change of the same Attempt). The student dozes on day 12, seven days after the hand-in,
    and falls asleep on day 25: never on day 9, as when the hand-in was ignored and the grade came
    late. Student 402's daily logins move event time."""
    start = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
    quiet, busy, teacher = 401, 402, 999

    def enrolment(number: int, user: int) -> dict[str, Any]:
        enrolled = {"id": f"urn:instructure:canvas:enrollment:{user}", "type": "Entity", "extensions": {
            "com.instructure.canvas": {"course_id": COURSE["id"], "type": "StudentEnrollment",
                                       "workflow_state": "active", "user_id": f"urn:instructure:canvas:user:{user}"}}}
        return event(number, "Event", "Created", enrolled, 1, start - timedelta(days=1))

    attempt = {"id": "urn:instructure:canvas:submission:555", "type": "Attempt",
               "assignee": {"id": f"urn:instructure:canvas:user:{quiet}", "type": "Person"},
               "assignable": {"id": "urn:instructure:canvas:quiz:77", "type": "Assessment"},
               "endedAtTime": (start + timedelta(days=5)).isoformat().replace("+00:00", "Z")}
    days: dict[int, list[dict[str, Any]]] = {0: [enrolment(100, quiet), enrolment(101, busy)]}
    for day in range(28):
        days.setdefault(day, []).append(event(200 + day, "SessionEvent", "LoggedIn", CANVAS, busy,
                                              start + timedelta(days=day, hours=1)))
    for day in range(3):
        days[day].append(event(300 + day, "SessionEvent", "LoggedIn", CANVAS, quiet, start + timedelta(days=day)))
    days[5].append(event(400, "AssessmentEvent", "Submitted", attempt, quiet, start + timedelta(days=5)))
    days[11].append(event(401, "GradeEvent", "Graded", attempt, teacher, start + timedelta(days=11),
                          generated={"id": f"{attempt['id']}/score", "type": "Score", "scoreGiven": 8,
                                     "maxScore": 10}))
    port = free_port()
    worker = worker_process(settings, port, tmp_path / "worker.log")
    try:
        async with IngestServer(settings.copy(ingest_token=door.TOKEN), mapping=door.MAPPING, port=0) as ingest:
            published = 0
            for day in range(28):  # a day's events at a time, as the sensor sends them
                if day == 11:  # the worker has read days 0-10 before the grade comes
                    await until_consumed(port, published, worker)
                status, body, headers = await door.post(http, url(ingest), envelope(*days[day]))
                assert status == 200, body
                published += int(headers["X-Ingest-Records"])
        deadline, mine = time.monotonic() + 120, []
        while time.monotonic() < deadline and len(mine) < 2:
            await asyncio.sleep(2)
            mine = [a for a in await read_topic(settings, Topic.ALERTS) if a["user_id"] == quiet]
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-2000:]
    finally:
        stop([worker])
    handed_in = parse_ts(format_ts((start + timedelta(days=5)).timestamp()))
    assert [(a["from_status"], a["to_status"], a["ts"]) for a in mine] == [
        ("active", "dozing", format_ts(handed_in + 7 * DAY)), ("dozing", "asleep", format_ts(handed_in + 20 * DAY))]
    results = [r for r in await read_topic(settings, Topic.EXERCISE_RESULTS) if r["user_id"] == quiet]
    assert [(r.get("pending", False), r["result"]) for r in results] == [(True, None), (False, 80)]


async def until_consumed(port: int, records: int, worker: Any, timeout: float = 120) -> None:
    """Until the worker has read `records` records and finished two more processing passes."""
    deadline, passes = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        assert worker.poll() is None
        found = scrape_if_up(port)
        if passes is None and found.get("scorer_events_consumed_total", 0) >= records:
            passes = found.get("scorer_batch_size_records_count", 0)
        if passes is not None and found.get("scorer_batch_size_records_count", 0) >= passes + 2:
            return
        await asyncio.sleep(0.5)
    raise TimeoutError(f"the worker did not read {records} records")
