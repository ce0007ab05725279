"""`scorer ingest` on the embedded broker: xAPI statements and native records in over HTTP, contract
records out on the topics (keyed and partitioned as the worker requires), with authentication,
size limits, all-or-nothing batches, idempotency, a load smoke test, a replay of an xAPI export,
and a real worker fed only through the endpoint raising an alert for a student who goes quiet."""
from __future__ import annotations

import asyncio
import base64
import json
import ssl
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer

from features import DAY, format_ts, parse_ts
from helpers.tls import issue_for_loopback
from helpers.topics import read_topic
from streams.contract import Topic, decode
from streams.ingest import metrics as ingest_metrics
from streams.ingest.mapping import IdMapping
from streams.ingest.server import IngestServer
from streams.ingest.xapi import map_statement
from streams.kafka.partitioning import partition_of
from streams.tools.embedded import free_port
from streams.tools.ingest_load import measure
from streams.tools.processes import stop, worker_process
from streams.tools.replay import replay_file
from streams.unusable import UnusableInput

pytestmark = pytest.mark.slow
TOKEN = "e2e-ingest-token"
LMS = "https://lms.example.edu"
ADL = "http://adlnet.gov/expapi/verbs/"
FIXTURES = Path(__file__).parents[1] / "fixtures" / "lms_formats"
MAPPING = IdMapping.from_dict({"lms_roots": [LMS], "users": {"mailto:example.learner@adlnet.gov": 1001}})
AUTH = {"Authorization": f"Bearer {TOKEN}", "X-Experience-API-Version": "1.0.3"}


def statement(user: int | str, verb: str, obj: str, at: datetime, **extra: Any) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "actor": {"objectType": "Agent", "account": {"homePage": LMS, "name": str(user)}},
            "verb": {"id": ADL + verb, "display": {"en-US": verb}}, "object": {"objectType": "Activity", "id": obj},
            "timestamp": at.isoformat().replace("+00:00", "Z"), **extra}


@pytest.fixture
async def server(settings) -> AsyncIterator[IngestServer]:
    async with IngestServer(settings.copy(ingest_token=TOKEN), mapping=MAPPING, port=0) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        yield session


async def post(http: aiohttp.ClientSession, url: str, body: Any, headers: dict[str, str] | None = None,
               raw: bytes | None = None) -> tuple[int, Any, dict[str, str]]:
    data = raw if raw is not None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **(AUTH if headers is None else headers)}
    async with http.post(url, data=data, headers=headers) as answer:
        text = await answer.read()
        return answer.status, json.loads(text) if text else None, dict(answer.headers)


async def read_keyed(settings, topic: Topic) -> list[tuple[bytes, int, dict]]:
    """(key, partition, record) of everything on a topic."""
    consumer = AIOKafkaConsumer(topic.physical(settings.topic_prefix), bootstrap_servers=settings.bootstrap_servers,
                                auto_offset_reset="earliest", enable_auto_commit=False, group_id=None)
    await consumer.start()
    out: list[tuple[bytes, int, dict]] = []
    try:
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < 2.0:
            batch = await consumer.getmany(timeout_ms=300)
            for records in batch.values():
                out.extend((r.key, r.partition, json.loads(r.value)) for r in records)
                idle_since = time.monotonic()
    finally:
        await consumer.stop()
    return out


async def test_statements_in_records_out(settings, server, http):
    at = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)
    batch = [statement(101, "launched", LMS, at),
             statement(102, "experienced", f"{LMS}/lessons/3015", at + timedelta(minutes=1),
                       object={"id": f"{LMS}/lessons/3015",
                               "definition": {"type": "http://adlnet.gov/expapi/activities/lesson"}}),
             statement(103, "answered", f"{LMS}/exercises/13278", at + timedelta(minutes=2),
                       result={"score": {"raw": 8, "max": 10}, "success": True}),
             statement(104, "joined", f"{LMS}/webinars/13378", at + timedelta(minutes=3)),
             statement(105, "commented", f"{LMS}/forum/1", at)]
    status, ids, headers = await post(http, f"{server.url}/xapi/statements", batch)
    assert status == 200 and ids == [s["id"] for s in batch]
    assert headers["X-Experience-API-Version"] == "1.0.3" and headers["X-Ingest-Records"] == "4"
    expected = [record for s in batch for record in map_statement(s, MAPPING).records]
    for topic in (Topic.AUTHORIZATIONS, Topic.PAGE_VIEWS, Topic.EXERCISE_RESULTS, Topic.WEBINAR_EVENTS):
        got = await read_keyed(settings, topic)
        assert [r for _, _, r in got] == [r for t, r in expected if t is topic], topic
        for key, partition, record in got:  # what the worker checks before it accepts a record
            assert key == str(record["user_id"]).encode() and partition == partition_of(key, settings.partitions)
            decode(topic, json.dumps(record).encode())


async def test_with_a_certificate_the_door_speaks_https_only(settings, tmp_path):
    """SCORER_INGEST_TLS_*: the LMS's token and its students' events never cross in the clear."""
    issued = issue_for_loopback(tmp_path)
    tls = settings.copy(ingest_token=TOKEN, ingest_tls_cert_file=issued.cert_file, ingest_tls_key_file=issued.key_file)
    one = [statement(1, "launched", LMS, datetime(2024, 3, 4, tzinfo=UTC))]
    async with IngestServer(tls, mapping=MAPPING, port=0) as door:
        assert door.url.startswith("https://127.0.0.1:")
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=issued.client)) as trusting:
            assert (await post(trusting, f"{door.url}/xapi/statements", one))[0] == 200
        async with aiohttp.ClientSession() as plain:
            with pytest.raises(aiohttp.ClientError):  # plain HTTP to it: no answer
                await post(plain, door.url.replace("https://", "http://") + "/xapi/statements", one)
            with pytest.raises(aiohttp.ClientConnectorCertificateError):  # the system's CAs did not sign it
                await post(plain, f"{door.url}/xapi/statements", one)


async def test_the_door_serves_a_renewed_certificate_without_a_restart(settings, tmp_path):
    issued = issue_for_loopback(tmp_path, not_after=datetime(2030, 1, 1, tzinfo=UTC))
    tls = settings.copy(ingest_token=TOKEN, ingest_tls_cert_file=issued.cert_file, ingest_tls_key_file=issued.key_file,
                        reload_seconds=0.1)

    async def served(port: int) -> bytes:
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=issued.client, server_hostname="127.0.0.1")
        certificate = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        writer.close()
        await writer.wait_closed()
        return certificate

    def expiry() -> float | None:
        return ingest_metrics.REGISTRY.get_sample_value("scorer_tls_certificate_expiry_timestamp_seconds",
                                                        {"server": "ingest"})

    async with IngestServer(tls, mapping=MAPPING, port=0) as door:
        before = await served(door.port)
        assert expiry() == datetime(2030, 1, 1, tzinfo=UTC).timestamp()
        issued.renew(datetime(2031, 6, 1, tzinfo=UTC))
        for _ in range(100):
            if await served(door.port) != before:
                break
            await asyncio.sleep(0.05)
        assert await served(door.port) == ssl.PEM_cert_to_DER_cert(Path(issued.cert_file).read_text())
        assert expiry() == datetime(2031, 6, 1, tzinfo=UTC).timestamp()


async def test_authentication(settings, server, http):
    url = f"{server.url}/xapi/statements"
    one = [statement(1, "launched", LMS, datetime(2024, 3, 4, tzinfo=UTC))]
    assert (await post(http, url, one, headers={}))[0] == 401
    started = time.monotonic()
    assert (await post(http, url, one, headers={"Authorization": "Bearer wrong"}))[0] == 401
    assert time.monotonic() - started >= 1.0  # a wrong token is answered late
    basic = "Basic " + base64.b64encode(f"lms:{TOKEN}".encode()).decode()
    assert (await post(http, url, one, headers={"Authorization": basic}))[0] == 200  # xAPI clients' Basic auth
    async with IngestServer(settings.copy(ingest_token=""), mapping=MAPPING, port=0) as closed:
        status, body, _ = await post(http, f"{closed.url}/xapi/statements", one)
        assert status == 503 and "SCORER_INGEST_TOKEN" in body["error"]
        async with http.get(f"{closed.url}/healthz") as health:  # probes stay open
            assert health.status == 200
    async with http.get(f"{server.url}/metrics") as page:
        text = await page.text()
    assert 'scorer_ingest_requests_total{route="/xapi/statements",status="401"} 2.0' in text
    assert "scorer_ingest_previous_tokens_total 0.0" in text
    rotating = settings.copy(ingest_token="the-new-ingest-token", ingest_token_previous=TOKEN)
    async with IngestServer(rotating, mapping=MAPPING, port=0) as moving:  # the LMS still sends the old one
        assert (await post(http, f"{moving.url}/xapi/statements", one))[0] == 200
        new = {"Authorization": "Bearer the-new-ingest-token"}
        assert (await post(http, f"{moving.url}/xapi/statements", one, headers=new))[0] == 200
        async with http.get(f"{moving.url}/metrics") as page:
            assert "scorer_ingest_previous_tokens_total 1.0" in await page.text()
    assert "user_id" not in text


async def test_a_port_another_process_holds_is_said_in_one_line(settings, server):
    second = IngestServer(settings.copy(ingest_token=TOKEN), mapping=MAPPING, port=server.port)
    with pytest.raises(UnusableInput, match=f"^SCORER_INGEST_PORT {server.port}: already in use by another process$"):
        await second.start()
    assert second._producer is None and second._runner is None  # stopped: its producer closed, no runner left


async def test_size_limits(settings, server, http):
    url = f"{server.url}/xapi/statements"
    big = b"[" + b" " * (1024 * 1024) + b"]"
    assert (await post(http, url, None, raw=big))[0] == 413
    at = datetime(2024, 3, 4, tzinfo=UTC)
    many = [statement(n, "launched", LMS, at) for n in range(1, 1002)]
    status, body, _ = await post(http, url, many)
    assert status == 413 and "1000" in body["error"]
    assert (await post(http, url, many[:1000]))[0] == 200


async def test_idempotency_and_all_or_nothing(settings, server, http):
    url = f"{server.url}/xapi/statements"
    at = datetime(2024, 3, 4, 10, tzinfo=UTC)
    login = statement(201, "launched", LMS, at)
    assert (await post(http, url, [login]))[0] == 200
    status, _, headers = await post(http, url, [login])
    assert status == 200 and headers["X-Ingest-Duplicates"] == "1"
    bad = statement(202, "launched", LMS, at)
    bad["timestamp"] = "yesterday"
    good = statement(203, "launched", LMS, at)
    status, body, _ = await post(http, url, [good, bad])
    assert status == 400 and body["rejected"][0] == {"index": 1, "id": bad["id"], "reason": "bad_timestamp",
                                                     "detail": body["rejected"][0]["detail"]}
    logins = [r for r in await read_topic(settings, Topic.AUTHORIZATIONS)]
    assert [r["event_id"] for r in logins] == [login["id"]]  # once; nothing of the refused batch
    dead = await read_topic(settings, Topic.DEAD_LETTERS)
    assert [(d["reason"], d["ref"]) for d in dead] == [("bad_timestamp", bad["id"])]
    status, body, _ = await post(http, f"{server.url}/events/lms.page_views",
                                 {"event_id": "lms-view-1", "user_id": 982, "ts": "2024-01-24T19:14:11",
                                  "page_type": "занятие", "page_id": 3015})
    assert status == 200 and body["records"] == 1


async def test_load_smoke(settings):
    report = await measure(settings, seconds=3, clients=4, batch=50)
    assert report["statements_taken"] > 0 and report["client_errors"] == 0
    assert set(report["status"]) == {"200"}, report
    assert report["latency_ms"]["p99"] < 5000, report


async def test_replay_of_an_xapi_export(settings):
    mapping = IdMapping.load(FIXTURES / "mapping.yaml", "Europe/Moscow")
    report = await replay_file(settings, FIXTURES / "xapi_statements.jsonl", "xapi", progress=False, mapping=mapping)
    assert report.published == {"lms.authorizations": 2, "lms.page_views": 2, "lms.exercise_results": 2,
                                "lms.webinar_events": 4, "lms.students": 1}
    assert report.dead_letters == 4 and report.ignored == {"unused_verb": 2}
    webinars = await read_topic(settings, Topic.WEBINAR_EVENTS)
    times = [parse_ts(w["ts"]) for w in webinars]
    assert len(webinars) == 4 and times == sorted(times)


async def test_statements_in_alerts_out(db, settings, tmp_path, http):
    """A worker fed only through the endpoint: two students register for a course (statuses are
    per enrolment), then one stops sending statements: they doze at +7 days and fall asleep at
    +20 (event time moves with the other student's statements)."""
    worker = worker_process(settings, free_port(), tmp_path / "worker.log")
    try:
        async with IngestServer(settings.copy(ingest_token=TOKEN), mapping=MAPPING, port=0) as ingest:
            start = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
            registered = [statement(user, "registered", f"{LMS}/courses/7", start) for user in (301, 302)]
            quiet = [statement(301, "launched", LMS, start + timedelta(days=d)) for d in range(3)]
            busy = [statement(302, verb, f"{LMS}/lessons/{d}", start + timedelta(days=d, hours=1))
                    for d in range(26) for verb in ("launched", "experienced")]
            for day in range(26):  # a day's statements at a time, as an LMS sends them
                date = f"{start + timedelta(days=day):%Y-%m-%d}"
                batch = [s for s in registered + quiet + busy if s["timestamp"].startswith(date)]
                assert (await post(http, f"{ingest.url}/xapi/statements", batch))[0] == 200
        last = parse_ts(format_ts((start + timedelta(days=2)).timestamp()))
        deadline, mine = time.monotonic() + 120, []
        while time.monotonic() < deadline and len(mine) < 2:
            await asyncio.sleep(2)
            mine = [a for a in await read_topic(settings, Topic.ALERTS) if a["user_id"] == 301]
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-2000:]
    finally:
        stop([worker])
    assert [(a["from_status"], a["to_status"]) for a in mine] == [("active", "dozing"), ("dozing", "asleep")]
    assert [a["ts"] for a in mine] == [format_ts(last + 7 * DAY), format_ts(last + 20 * DAY)]


async def test_a_school_east_of_utc_is_scored_live_through_the_door(db, settings, tmp_path, http):
    """Contract times are the school's wall clock. A Moscow school (UTC+3) sends statements as they
    happen: the door and a live worker both read them in that zone, so they are stored and scored, the
    student active since their last statement. The door used to read them as UTC, three hours ahead of
    its clock, and refused them all (400, dead-lettered as event_time_in_future)."""
    from sqlalchemy import create_engine, text

    # Live, with no lateness allowed: the watermark is the school's wall clock, so the worker scores at once.
    moscow = settings.copy(school_time_zone="Europe/Moscow", clock="live", allowed_lateness_hours=0.0)
    mapping = IdMapping.from_dict({"lms_roots": [LMS]}, time_zone="Europe/Moscow")
    now = datetime.now(UTC).replace(microsecond=0)
    batch = [statement(401, "registered", f"{LMS}/courses/7", now - timedelta(minutes=2)),
             statement(401, "launched", LMS, now - timedelta(minutes=1))]
    worker = worker_process(moscow, free_port(), tmp_path / "worker.log")
    engine = create_engine(db)
    try:
        async with IngestServer(moscow.copy(ingest_token=TOKEN), mapping=mapping, port=0) as ingest:
            status, body, _ = await post(http, f"{ingest.url}/xapi/statements", batch)
            assert status == 200, body
        deadline, row = time.monotonic() + 120, None
        while time.monotonic() < deadline and row is None:
            await asyncio.sleep(1)
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-2000:]
            with engine.connect() as connection:
                row = connection.execute(text(
                    "SELECT status, last_activity_at FROM students_current WHERE user_id = 401")).one_or_none()
    finally:
        stop([worker])
        engine.dispose()
    moscow_wall_clock = (now - timedelta(minutes=1) + timedelta(hours=3)).replace(tzinfo=None)
    assert row is not None and tuple(row) == ("active", moscow_wall_clock)
    assert not await read_topic(settings, Topic.DEAD_LETTERS)
