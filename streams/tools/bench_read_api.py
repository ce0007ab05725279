"""`scorer bench`'s `read_api` section: what one answer of the worker's read API costs, and how much of it is the
record of the read (`storage.postgres.data_reads.record`, written before every answer that carries student data).

- `student`, `at_risk`: ANSWERS sequential GET /students/{id} and GET /courses/{id}/at-risk?limit=AT_RISK_LIMIT
  to a running worker over one keep-alive loopback connection, each timed by the client (ids that exist, read
  from students_current; WARMUP answers of each first, not counted);
- `student_query_p50_ms`, `record_p50_ms`: the two Postgres calls one student answer makes, timed in this
  process in alternating rounds of ROUND calls (so machine noise falls on both alike); `record_share` is the
  record's part of the two, `record_share_of_answer` its part of the whole answer the client saw (p50s).

Every record the section writes, the worker's (its token is a person's named READER) and its own, carries
reader READER and is kept like any other: the database refuses to delete a record of reads before its period
(migration 0008), and the section did read students' rows. `bench_reads_recorded` counts them.
"""
from __future__ import annotations

import http.client
import json
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import text

from storage.postgres import data_reads, queries
from storage.postgres.db import dispose_shared_engines, shared_engine
from streams.tools.processes import nearest_rank

#: Timed answers per route, and timed calls per Postgres operation (300: the section stays near 4 s here).
ANSWERS = 300
#: Answers per route before the timed ones (the worker's pool, this connection), not counted.
WARMUP = 10
#: Calls per round of the in-process alternation (query round, record round, ...).
ROUND = 50
AT_RISK_LIMIT = 50
#: Who the section's records name: the worker's person and the in-process calls alike.
READER = "bench"
#: How many existing students and courses the requests cycle through.
SAMPLE_IDS = 200


def token_file(work: Path) -> tuple[Path, str]:
    """A people's tokens file (SCORER_API_TOKENS_FILE) naming one person, READER, and their token: the worker's
    records of the section's answers then carry reader READER, like the in-process ones, and go with them."""
    token = secrets.token_urlsafe(32)
    path = work / "bench-api-tokens"
    path.write_text(f"{READER} {token}\n", encoding="utf-8")
    path.chmod(0o600)
    return path, token


def measure(database_url: str, port: int, token: str) -> dict[str, Any]:
    """The read_api section (see the module's docstring), against the worker whose HTTP is on `port` and whose
    read API takes `token`."""
    began = time.perf_counter()
    recorded_before = _bench_reads(database_url)
    try:
        students, courses = _existing_ids(database_url)
        if not students or not courses:
            raise RuntimeError("read_api: students_current is empty: nothing to ask the read API for")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            headers = {"Authorization": f"Bearer {token}"}
            routes = {"student": (students, "/students/{}"),
                      "at_risk": (courses, f"/courses/{{}}/at-risk?limit={AT_RISK_LIMIT}")}
            figures: dict[str, Any] = {}
            for route, (ids, path) in routes.items():
                _get_all(connection, headers, path, ids, WARMUP)
                timed = _get_all(connection, headers, path, ids, ANSWERS)
                figures[route] = {"answers": len(timed), **_percentiles(timed)}
        finally:
            connection.close()
        query_ms, record_ms = _postgres_calls(database_url, students)
        query_p50, record_p50 = _quantile(query_ms, 0.5), _quantile(record_ms, 0.5)
        figures.update({
            "student_query_p50_ms": round(query_p50, 3),
            "record_p50_ms": round(record_p50, 3),
            "record_share": round(record_p50 / (query_p50 + record_p50), 3),
            "record_share_of_answer": round(record_p50 / figures["student"]["p50_ms"], 3),
        })
        figures["bench_reads_recorded"] = _bench_reads(database_url) - recorded_before
    finally:
        dispose_shared_engines()  # this process's pooled connections: the embedded server stops after the bench
    figures["seconds"] = round(time.perf_counter() - began, 2)  # the section's wall time
    return figures


def _existing_ids(database_url: str) -> tuple[list[int], list[int]]:
    """Up to SAMPLE_IDS students and courses that students_current holds."""
    with shared_engine(database_url).connect() as connection:
        students = [int(v) for v in connection.scalars(
            text("SELECT DISTINCT user_id FROM students_current ORDER BY user_id LIMIT :n"), {"n": SAMPLE_IDS})]
        courses = [int(v) for v in connection.scalars(
            text("SELECT DISTINCT course_id FROM students_current ORDER BY course_id LIMIT :n"), {"n": SAMPLE_IDS})]
    return students, courses


def _get_all(connection: http.client.HTTPConnection, headers: dict[str, str], path: str, ids: list[int],
             count: int) -> list[float]:
    """`count` sequential GETs of `path` for the ids in turn: each one's milliseconds, request sent to body read.
    Anything but a 200 with a JSON body fails the bench (a refused answer would time something else)."""
    out: list[float] = []
    for i in range(count):
        url = path.format(ids[i % len(ids)])
        began = time.perf_counter()
        connection.request("GET", url, headers=headers)
        response = connection.getresponse()
        body = response.read()
        out.append((time.perf_counter() - began) * 1000)
        if response.status != 200:
            raise RuntimeError(f"read_api: GET {url} answered {response.status}: {body[:300]!r}")
        json.loads(body)
    return out


def _postgres_calls(database_url: str, students: list[int]) -> tuple[list[float], list[float]]:
    """ANSWERS timed calls each of `queries.student` and `data_reads.record` (one student, reader and page
    READER), in alternating rounds of ROUND calls: each call's milliseconds."""
    def query(user_id: int) -> None:
        queries.student(database_url, user_id)

    def record(user_id: int) -> None:
        data_reads.record(database_url, data_reads.DataRead(READER, "read_api", READER, (user_id,)))

    timings: dict[Callable[[int], None], list[float]] = {query: [], record: []}
    for call in timings:  # warm both up (the pool's connection, the statements' compiled forms)
        for user_id in students[:WARMUP]:
            call(user_id)
    done = 0
    while done < ANSWERS:
        size = min(ROUND, ANSWERS - done)
        for call, out in timings.items():
            for i in range(done, done + size):
                began = time.perf_counter()
                call(students[i % len(students)])
                out.append((time.perf_counter() - began) * 1000)
        done += size
    return timings[query], timings[record]


def _bench_reads(database_url: str) -> int:
    """How many records of reads name READER (only the bench's token and calls do)."""
    with shared_engine(database_url).connect() as connection:
        return int(connection.scalar(text("SELECT count(*) FROM student_data_reads WHERE reader = :reader"),
                                     {"reader": READER}) or 0)


def _quantile(values: list[float], q: float) -> float:
    found = nearest_rank(values, q)
    if found is None:
        raise RuntimeError("read_api: nothing was timed")
    return found


def _percentiles(ms: list[float]) -> dict[str, float]:
    return {f"p{round(q * 100)}_ms": round(_quantile(ms, q), 3) for q in (0.5, 0.95, 0.99)}
