"""`scorer ingest-load`: how many xAPI statements a second `scorer ingest` takes, on loopback.

Starts the ingest server in this process on a free port against the settings' broker (an
embedded one when SCORER_KAFKA_URL is empty), then several concurrent aiohttp clients POST
batches of realistic statements (a school's mix: logins, content views, answers with scores,
webinar joins and leaves, some verbs the scorer ignores) for a number of seconds, each waiting
for its answer before the next batch, as an LMS's sender does. A statement counts as taken
when its request was answered 200: every record of it was acknowledged by the broker.

Clients and server share one process and one event loop, so the figure is a floor for the
server alone.
"""
from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import orjson

from streams.ingest.mapping import IdMapping
from streams.ingest.server import IngestServer
from streams.settings import Settings
from streams.tools.processes import nearest_rank

LMS = "https://lms.example.edu"
ADL = "http://adlnet.gov/expapi/verbs/"
ACTIVITIES = "http://adlnet.gov/expapi/activities/"
#: (share, verb, object kind) of the generated statements.
MIX = ((0.10, "launched", "lms"), (0.30, "experienced", "lesson"), (0.05, "experienced", "media"),
       (0.25, "answered", "question"), (0.05, "passed", "assessment"), (0.05, "failed", "assessment"),
       (0.05, "joined", "webinar"), (0.05, "left", "webinar"), (0.05, "completed", "assessment"),
       (0.05, "progressed", "lesson"))


def load_mapping() -> IdMapping:
    """What the generated statements need: the LMS's root, and numeric ids read from the IRIs."""
    return IdMapping.from_dict({"lms_roots": [LMS]})


def statement(rng: random.Random, user_id: int, at: datetime) -> dict[str, Any]:
    """One realistic statement (ADL xAPI 1.0.3) by account `user_id` on the LMS at `at`."""
    shares = [share for share, _, _ in MIX]
    _, verb, kind = rng.choices(MIX, weights=shares)[0]
    item = rng.randint(1, 5000)
    objects = {
        "lms": {"id": LMS, "definition": {"type": "http://activitystrea.ms/schema/1.0/application"}},
        "lesson": {"id": f"{LMS}/lessons/{item}", "definition": {"type": ACTIVITIES + "lesson",
                                                                 "name": {"en-US": f"Lesson {item}"}}},
        "media": {"id": f"{LMS}/videos/{item}", "definition": {"type": ACTIVITIES + "media"}},
        "question": {"id": f"{LMS}/exercises/{item}", "definition": {"type": ACTIVITIES + "cmi.interaction",
                                                                     "interactionType": "choice"}},
        "assessment": {"id": f"{LMS}/exercises/{item}", "definition": {"type": ACTIVITIES + "assessment"}},
        "webinar": {"id": f"{LMS}/webinars/{rng.randint(1, 200)}", "definition": {"type": ACTIVITIES + "meeting"}},
    }
    out: dict[str, Any] = {
        "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "actor": {"objectType": "Agent", "account": {"homePage": LMS, "name": str(user_id)}},
        "verb": {"id": ADL + verb, "display": {"en-US": verb}},
        "object": {"objectType": "Activity", **objects[kind]},
        "timestamp": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "context": {"platform": "edu-lms", "language": "ru-RU",
                    "contextActivities": {"grouping": [{"id": f"{LMS}/courses/{1 + user_id % 7}"}]}},
    }
    if verb in {"answered", "passed", "failed", "completed"}:
        raw = rng.randint(0, 10)
        out["result"] = {"score": {"raw": raw, "min": 0, "max": 10}, "success": raw >= 6,
                         "completion": True, "duration": f"PT{rng.randint(5, 600)}S"}
    return out


def batches(rng: random.Random, size: int, students: int, templates: int = 32) -> Iterator[list[dict[str, Any]]]:
    """Endless batches of statements dated within the last minutes: a few template batches made
    up front, each sent again with new statement ids (so the clients spend little time making them)."""
    now = datetime.now(UTC)
    made = [[statement(rng, rng.randint(1, students), now - timedelta(seconds=rng.uniform(0, 60)))
             for _ in range(size)] for _ in range(templates)]
    while True:
        for template in made:
            yield [{**s, "id": str(uuid.UUID(int=rng.getrandbits(128), version=4))} for s in template]


async def measure(settings: Settings, *, seconds: float = 10.0, clients: int = 8, batch: int = 100,
                  students: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Run the load against an ingest server started here; the report (see `run`)."""
    token = settings.ingest_token or secrets.token_urlsafe(24)
    server = IngestServer(settings.copy(ingest_token=token), mapping=load_mapping(), port=0)
    latencies: list[float] = []
    status: Counter[int] = Counter()
    taken = rejected = errors = 0
    outcomes: Counter[str] = Counter()
    async with server:
        url = f"{server.url}/xapi/statements"
        headers = {"Authorization": f"Bearer {token}", "X-Experience-API-Version": "1.0.3",
                   "Content-Type": "application/json"}
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(headers=headers, timeout=timeout,
                                         connector=aiohttp.TCPConnector(limit=clients)) as session:
            warm_up = orjson.dumps(next(batches(random.Random(seed), 1, students, templates=1)))
            async with session.post(url, data=warm_up) as warm:
                await warm.read()  # first connection and the producer's metadata, outside the clock
            deadline = time.monotonic() + seconds
            started = time.monotonic()

            async def client(number: int) -> None:
                nonlocal taken, rejected, errors
                for body in batches(random.Random(seed * 1000 + number + 1), batch, students):
                    if time.monotonic() >= deadline:
                        return
                    data = orjson.dumps(body)
                    sent = time.perf_counter()
                    try:
                        async with session.post(url, data=data) as response:
                            await response.read()
                            code = response.status
                            counts = {k: int(v) for k, v in response.headers.items() if k.startswith("X-Ingest-")}
                    except (aiohttp.ClientError, TimeoutError):
                        errors += 1
                        continue
                    latencies.append(time.perf_counter() - sent)
                    status[code] += 1
                    if code == 200:
                        taken += len(body)
                        outcomes.update({k.removeprefix("X-Ingest-").lower(): v for k, v in counts.items()})
                    elif code == 400:
                        rejected += len(body)
                    elif code == 503:
                        await asyncio.sleep(0.05)

            await asyncio.gather(*(client(i) for i in range(clients)))
            elapsed = time.monotonic() - started
    return {
        "seconds": round(elapsed, 2), "clients": clients, "batch": batch, "requests": sum(status.values()),
        "statements_taken": taken, "statements_per_second": round(taken / elapsed, 1) if elapsed else None,
        "records_produced": outcomes.get("records", 0), "duplicates": outcomes.get("duplicates", 0),
        "ignored": outcomes.get("ignored", 0),
        "dead_lettered": outcomes.get("unmapped", 0) + outcomes.get("unsupported", 0),
        "latency_ms": {name: None if v is None else round(v * 1000, 2) for name, v in (
            ("p50", nearest_rank(latencies, 0.50)), ("p90", nearest_rank(latencies, 0.90)),
            ("p99", nearest_rank(latencies, 0.99)), ("max", max(latencies, default=None)))},
        "rejected_statements": rejected, "status_503": status.get(503, 0),
        "status": {str(code): count for code, count in sorted(status.items())}, "client_errors": errors,
    }


def run(settings: Settings, *, seconds: float = 10.0, clients: int = 8, batch: int = 100, students: int = 2000,
        seed: int = 0) -> dict[str, Any]:
    """The load test's JSON report: statements taken per second (answered 200: broker-acknowledged),
    request latency p50/p90/p99/max (ms), statements in 400 answers, 503 answers, client errors.
    An empty SCORER_KAFKA_URL runs it on an embedded broker."""
    with contextlib.ExitStack() as stack:
        if not settings.kafka_url:
            from streams.tools.embedded import kafka_broker

            url = stack.enter_context(kafka_broker())
            settings = settings.copy(kafka_url=url, topic_prefix=settings.topic_prefix or "load.")
        return asyncio.run(measure(settings, seconds=seconds, clients=clients, batch=batch, students=students,
                                   seed=seed))
