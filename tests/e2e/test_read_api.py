"""The read API of a real worker process on the embedded broker, Redis and Postgres: bearer
token, hostile ids and limits (400, never 500), none of Faust's own pages, loopback only.

One worker serves every check (starting one takes seconds); the rows are written straight to
students_current, as the worker's sink would.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import socket
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from helpers.tls import Issued, issue_for_loopback
from storage.postgres.row_writer import RowWriter
from streams.settings import Settings
from streams.tools.embedded import free_port
from streams.tools.processes import stop, worker_process

pytestmark = pytest.mark.slow

T0 = datetime(2024, 3, 1, 12, 0)
COURSE = 77
#: The TLS context that trusts the module's worker's certificate, and its files (set by the `api` fixture).
CLIENT_TLS: list[ssl.SSLContext] = []
ISSUED: list[Issued] = []
#: The module's worker's people's file (SCORER_API_TOKENS_FILE).
PEOPLE: list[Path] = []
#: A curator's own token (SCORER_API_TOKENS_FILE), and one who reads course 78's students only.
PERSON_TOKEN = secrets.token_urlsafe(24)
COURSE_78_TOKEN = secrets.token_urlsafe(24)
#: The token being replaced: the worker still takes it (SCORER_API_TOKEN_PREVIOUS).
PREVIOUS_TOKEN = secrets.token_urlsafe(24)
HOSTILE_IDS = ["²", "１２", "-1", "0", "1.0", " 1", "9" * 5000, "9223372036854775808", "%00", "abc",
               "1e3", "+1", "0x1", "٣", "", "99999999999999999999"]
HOSTILE_LIMITS = ["abc", "0", "1001", "-5", "1e3", "9" * 5000, "", "1.5", "+5", "５", "%00"]


def _score(user_id: int, status: str, p_dropout: float, course_id: int = COURSE,
           updated_at: datetime = T0) -> dict[str, Any]:
    return {"user_id": user_id, "course_id": course_id, "enrolment": f"{course_id}:1", "status": status,
            "p_dropout": p_dropout, "updated_at": updated_at, "features": {"logins_7d": user_id % 5, "ratio": 0.25}}


def _write_rows(database_url: str) -> None:
    """A course's students (and one of another course) on an emptied students_current."""
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE students_current, score_history, status_transitions, model_versions"))
    engine.dispose()
    writer = RowWriter(database_url)
    writer.add_scores([_score(1, "active", 0.9), _score(2, "asleep", 0.3), _score(3, "dozing", 0.6),
                       _score(4, "asleep", 0.8), _score(5, "active", 0.1, course_id=78),
                       _score(4, "finished", 0.5, course_id=78, updated_at=datetime(2024, 1, 1))])
    writer.close()


@pytest.fixture(scope="module")
def api(kafka_url: str, redis_url: str, migrated: str,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, str]]:
    """(port, token) of one worker process for the whole module, on its own topics and keys, serving HTTPS
    (a certificate of a throwaway CA, which `_get` alone trusts)."""
    _write_rows(migrated)
    state = tmp_path_factory.mktemp("read-api")
    issued = issue_for_loopback(state, not_after=datetime(2030, 1, 1, tzinfo=UTC))
    CLIENT_TLS.append(issued.client)
    ISSUED.append(issued)
    people = state / "people"
    PEOPLE.append(people)
    people.write_text(f"# the school's curators\nAnna Petrova {PERSON_TOKEN}\n"
                      f"Boris Ivanov {COURSE_78_TOKEN} courses=78\n")
    prefix = f"t{uuid.uuid4().hex[:8]}."
    settings = Settings(kafka_url=kafka_url, redis_url=redis_url, database_url=migrated, topic_prefix=prefix,
                        app_id=f"edu-scorer-{prefix}", partitions=2, state_dir=str(state),
                        api_token=secrets.token_urlsafe(24), api_token_previous=PREVIOUS_TOKEN,
                        api_tokens_file=str(people),
                        web_bind="127.0.0.1", web_tls_cert_file=issued.cert_file, web_tls_key_file=issued.key_file,
                        reload_seconds=0.3)
    port = free_port()
    worker = worker_process(settings, port, state / "worker.log")
    try:
        _wait_ready(port, worker, state / "worker.log")
        yield port, settings.api_token
    finally:
        stop([worker])


def _wait_ready(port: int, worker: Any, log: Path, seconds: float = 120) -> None:
    """Until /readyz answers 200: HTTP up, the Runtime started, every dependency answering."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert worker.poll() is None, f"worker exited: {log.read_text(errors='replace')[-2000:]}"
        with contextlib.suppress(OSError):
            if _get(port, "/readyz")[0] == 200:
                return
        time.sleep(0.3)
    raise TimeoutError(f"worker not ready: {log.read_text(errors='replace')[-2000:]}")


def _get(port: int, path: str, token: str | None = None, authorization: str | None = None,
         method: str = "GET") -> tuple[int, dict[str, str], Any]:
    """(status, headers, JSON body or None) of one request; `path` is sent as given (already quoted)."""
    headers = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if authorization is not None:
        headers["Authorization"] = authorization
    request = urllib.request.Request(f"https://127.0.0.1:{port}{path}", headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=15, context=CLIENT_TLS[-1]) as response:
            status, got, raw = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        status, got, raw = error.code, dict(error.headers), error.read()
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = None
    return status, got, body


def _quoted(raw: str) -> str:
    """A path segment or query value as a client would send it; '%00' is sent raw (the server decodes it)."""
    return raw if raw == "%00" else urllib.parse.quote(raw, safe="")


def test_student_data_needs_the_token(api: tuple[int, str]) -> None:
    port, token = api
    paths = ("/students/2", f"/courses/{COURSE}/at-risk", "/students/%C2%B2", f"/courses/{COURSE}/at-risk?limit=abc")
    for path in paths:
        for authorization in (None, "Bearer", f"Bearer {token}x", f"Bearer {token[:-1]}", f"Basic {token}",
                              token, "Bearer sécret"):
            status, headers, body = _get(port, path, authorization=authorization)
            assert status == 401, (path, authorization, status, body)
            assert headers.get("WWW-Authenticate", "").startswith("Bearer"), headers
            assert body and "error" in body and "students" not in body and "user_id" not in body


def test_during_a_rotation_the_previous_token_reads_too_and_is_counted(api: tuple[int, str]) -> None:
    port, token = api

    def counted() -> float:
        return _sample(port, 'scorer_read_api_previous_tokens_total{door="read_api"}')

    before = counted()
    assert _get(port, "/students/2", token=token)[0] == 200 and counted() == before
    status, _, body = _get(port, "/students/2", token=PREVIOUS_TOKEN)
    assert (status, body["user_id"]) == (200, 2) and counted() == before + 1
    assert _get(port, "/students/2", token=PREVIOUS_TOKEN + "x")[0] == 401 and counted() == before + 1


def test_a_persons_own_token_reads_too(api: tuple[int, str]) -> None:
    port, _ = api
    status, _, body = _get(port, "/students/2", token=PERSON_TOKEN)
    assert (status, body["user_id"]) == (200, 2)
    assert _get(port, "/students/2", token=PERSON_TOKEN[:-1])[0] == 401


def test_a_person_limited_to_a_course_reads_its_students_only(api: tuple[int, str], migrated: str) -> None:
    """Student 4 is in courses 77 and 78, student 1 in 77 only: Boris (courses=78) sees 4's enrolment of 78, not
    that 1 exists, and no list of 77; what he read is recorded as usual."""
    port, _ = api
    before = len(_records(migrated))
    status, _, body = _get(port, "/students/4", token=COURSE_78_TOKEN)
    assert status == 200 and [e["course_id"] for e in body["enrolments"]] == [78]
    hidden, unknown = (_get(port, f"/students/{user}", token=COURSE_78_TOKEN) for user in (1, 999999))
    assert hidden[0] == unknown[0] == 404 and hidden[2] == unknown[2]  # the same answer: nothing told
    status, _, body = _get(port, f"/courses/{COURSE}/at-risk", token=COURSE_78_TOKEN)
    assert status == 403 and "students" not in body
    status, _, body = _get(port, "/courses/78/at-risk", token=COURSE_78_TOKEN)
    assert status == 200 and {s["user_id"] for s in body["students"]} == {4, 5}
    assert _records(migrated)[before:] == [("Boris Ivanov", "read_api", "student", None, [4]),
                                           ("Boris Ivanov", "read_api", "at_risk", 78, [4, 5])]


def test_someone_removed_from_the_people_file_is_refused_without_a_restart(api: tuple[int, str]) -> None:
    port, _ = api
    before = PEOPLE[-1].read_text()
    assert _get(port, "/courses/78/at-risk", token=COURSE_78_TOKEN)[0] == 200
    replaced = PEOPLE[-1].with_name("people.new")
    replaced.write_text("".join(line for line in before.splitlines(keepends=True) if "Boris" not in line))
    os.replace(replaced, PEOPLE[-1])  # as Kubernetes replaces a mounted Secret's file
    try:
        deadline = time.monotonic() + 15
        while _get(port, "/courses/78/at-risk", token=COURSE_78_TOKEN)[0] != 401 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _get(port, "/courses/78/at-risk", token=COURSE_78_TOKEN)[0] == 401
        assert _get(port, "/students/2", token=PERSON_TOKEN)[0] == 200  # everyone else as before
    finally:
        PEOPLE[-1].write_text(before)
    deadline = time.monotonic() + 15  # back in the file: back in
    while _get(port, "/courses/78/at-risk", token=COURSE_78_TOKEN)[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _get(port, "/courses/78/at-risk", token=COURSE_78_TOKEN)[0] == 200


def _sample(port: int, series: str) -> float:
    """One series' value on the worker's /metrics (over HTTPS); it must be there (every one asked is exported from
    its start)."""
    page = urllib.request.urlopen(f"https://127.0.0.1:{port}/metrics", timeout=15, context=CLIENT_TLS[-1]).read()
    found = re.search(rb"^" + re.escape(series.encode()) + rb" (\S+)$", page, re.M)
    assert found, f"{series} is not exported"
    return float(found.group(1))


def _stale(port: int) -> float:
    return _sample(port, 'scorer_followed_file_stale{file="SCORER_API_TOKENS_FILE"}')


def test_a_people_file_that_does_not_load_keeps_the_tokens_and_says_so(api: tuple[int, str]) -> None:
    port, _ = api
    before = PEOPLE[-1].read_text()
    assert _stale(port) == 0
    PEOPLE[-1].write_text(before + "Carla short\n")  # a token too short: the file is refused as a whole
    try:
        deadline = time.monotonic() + 15
        while _stale(port) != 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _stale(port) == 1
        assert _get(port, "/courses/78/at-risk", token=COURSE_78_TOKEN)[0] == 200  # the tokens read before
    finally:
        PEOPLE[-1].write_text(before)
    deadline = time.monotonic() + 15
    while _stale(port) != 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _stale(port) == 0


def test_the_token_reads_the_snapshot(api: tuple[int, str]) -> None:
    port, token = api
    status, _, body = _get(port, "/students/4", token)
    assert status == 200, body
    assert body["user_id"] == 4 and len(body["enrolments"]) == 2  # one per enrolment, the newest first
    newest, older = body["enrolments"]
    assert (newest["course_id"], newest["enrolment"], newest["status"], newest["p_dropout"]) == (
        COURSE, f"{COURSE}:1", "asleep", 0.8)
    assert newest["features"] == {"logins_7d": 4, "ratio": 0.25} and newest["updated_at"].startswith("2024-03-01T12:00")
    assert (older["course_id"], older["status"]) == (78, "finished")
    assert _get(port, "/students/999999", token)[0] == 404
    assert _get(port, "/students/0000000000000000004", token)[0] == 200  # 19 digits, leading zeros
    status, _, body = _get(port, f"/courses/{COURSE}/at-risk", token)
    assert status == 200 and body["course_id"] == COURSE
    assert [s["user_id"] for s in body["students"]] == [4, 2, 3, 1]  # asleep, dozing, then by P(dropout)
    _, _, body = _get(port, f"/courses/{COURSE}/at-risk?limit=2&unknown=x", token)
    assert [s["user_id"] for s in body["students"]] == [4, 2]
    _, _, body = _get(port, f"/courses/{COURSE}/at-risk?sort=reachable", token)
    assert [s["user_id"] for s in body["students"]] == [1, 3, 4, 2]  # active and dozing by P(dropout), then asleep
    status, _, body = _get(port, f"/courses/{COURSE}/at-risk?sort=user_id", token)
    assert status == 400 and body["parameter"] == "sort"
    assert _get(port, f"/courses/{COURSE}/at-risk?limit=1000", token)[0] == 200
    assert _get(port, "/courses/9223372036854775807/at-risk?limit=1", token)[2] == {
        "course_id": 9223372036854775807, "students": []}


def _records(database_url: str) -> list[tuple[str, str, str, int | None, list[int]]]:
    """(reader, door, page, course, students) of every record of reads, in the order they were written."""
    engine = create_engine(database_url)
    with engine.connect() as connection:
        found = [(r.reader, r.door, r.page, r.course_id, list(r.user_ids)) for r in connection.execute(
            text("SELECT reader, door, page, course_id, user_ids FROM student_data_reads ORDER BY id"))]
    engine.dispose()
    return found


def _alter(database_url: str, statement: str) -> None:
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text(statement))
    engine.dispose()


def test_each_answer_with_student_data_is_recorded_before_it_is_sent(api: tuple[int, str], migrated: str) -> None:
    """Who read whom, by page; an answer without student data (401, 404) leaves no record; and while the record
    cannot be written, no student data leaves either (503)."""
    port, token = api
    before = len(_records(migrated))
    assert _get(port, "/students/3", token=PERSON_TOKEN)[0] == 200
    assert _get(port, f"/courses/{COURSE}/at-risk?limit=2", token)[0] == 200
    assert _get(port, "/students/3", token=PREVIOUS_TOKEN)[0] == 200
    assert [_get(port, path, token)[0] for path in ("/students/999999", "/students/abc")] == [404, 400]
    assert _get(port, "/students/3", token=PERSON_TOKEN + "x")[0] == 401
    assert _records(migrated)[before:] == [
        ("Anna Petrova", "read_api", "student", None, [3]), ("shared token", "read_api", "at_risk", COURSE, [2, 4]),
        ("shared token (previous)", "read_api", "student", None, [3])]

    _alter(migrated, "ALTER TABLE student_data_reads RENAME TO student_data_reads_away")
    try:
        for path in ("/students/3", f"/courses/{COURSE}/at-risk"):
            status, _, body = _get(port, path, token=PERSON_TOKEN)
            assert status == 503 and "enrolments" not in body and "students" not in body, (path, body)
    finally:
        _alter(migrated, "ALTER TABLE student_data_reads_away RENAME TO student_data_reads")
    assert _get(port, "/students/3", token=PERSON_TOKEN)[0] == 200
    assert len(_records(migrated)) == before + 4


@pytest.mark.parametrize("raw", HOSTILE_IDS, ids=lambda r: repr(r[:12]))
def test_hostile_ids_are_400_never_500(api: tuple[int, str], raw: str) -> None:
    port, token = api
    segment = _quoted(raw)
    if not segment:  # an empty segment is another route: no page there
        assert _get(port, "/students/", token)[0] == 404
        return
    for path, parameter in ((f"/students/{segment}", "user_id"), (f"/courses/{segment}/at-risk", "course_id")):
        status, _, body = _get(port, path, token)
        assert status == 400, (path[:60], status, body)
        assert body["parameter"] == parameter and parameter in body["error"]


@pytest.mark.parametrize("raw", HOSTILE_LIMITS, ids=lambda r: repr(r[:12]))
def test_hostile_limits_are_400_never_500(api: tuple[int, str], raw: str) -> None:
    port, token = api
    status, _, body = _get(port, f"/courses/{COURSE}/at-risk?limit={_quoted(raw)}", token)
    assert status == 400, (raw[:20], status, body)
    assert body["parameter"] == "limit" and "limit" in body["error"]


def test_faust_pages_are_not_served(api: tuple[int, str]) -> None:
    port, token = api
    for path in ("/router/", "/router", "/table/", "/table", "/graph/", "/assignment/", "/performance/",
                 "/router/topics", "/table/x/"):
        assert _get(port, path)[0] == 404, path
        assert _get(port, path, token)[0] == 404, path
    assert _get(port, "/students/2", token, method="POST")[0] == 405


def test_health_and_metrics_stay_open_and_readyz_lists_the_checks(api: tuple[int, str]) -> None:
    port, _ = api
    assert _get(port, "/healthz")[:1] == (200,)
    status, _, body = _get(port, "/readyz")
    assert status == 200 and body["ready"] is True
    assert set(body["checks"]) >= {"started", "kafka", "redis", "postgres"} and all(body["checks"].values())
    with urllib.request.urlopen(f"https://127.0.0.1:{port}/metrics", timeout=10, context=CLIENT_TLS[-1]) as response:
        assert response.status == 200 and b"scorer_students" in response.read()


def test_it_speaks_https_only_with_its_certificate(api: tuple[int, str]) -> None:
    """With SCORER_WEB_TLS_*: no token crosses in the clear, and a client can check whose server it is."""
    port, _ = api
    with pytest.raises(OSError):  # plain HTTP to the TLS port: the handshake fails, nothing is answered
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10)
    with pytest.raises(urllib.error.URLError) as refused:  # a client that does not trust the CA refuses the server
        urllib.request.urlopen(f"https://127.0.0.1:{port}/healthz", timeout=10, context=ssl.create_default_context())
    assert isinstance(refused.value.reason, ssl.SSLCertVerificationError)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            CLIENT_TLS[-1].wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        assert tls.version() in {"TLSv1.2", "TLSv1.3"}


def _served_certificate(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            CLIENT_TLS[-1].wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        certificate = tls.getpeercert(binary_form=True)
    assert certificate is not None
    return certificate


def _expiry_exported(port: int) -> float:
    return _sample(port, 'scorer_tls_certificate_expiry_timestamp_seconds{server="web"}')


def test_a_renewed_certificate_is_served_without_a_restart(api: tuple[int, str]) -> None:
    """The files replaced as cert-manager replaces a Secret's: new connections get the new certificate, the
    expiry gauge follows, and the old connections' clients notice nothing."""
    port, token = api
    before = _served_certificate(port)
    assert _expiry_exported(port) == datetime(2030, 1, 1, tzinfo=UTC).timestamp()
    ISSUED[-1].renew(datetime(2031, 6, 1, tzinfo=UTC))
    renewed = ssl.PEM_cert_to_DER_cert(Path(ISSUED[-1].cert_file).read_text())
    deadline = time.monotonic() + 15
    while _served_certificate(port) == before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _served_certificate(port) == renewed != before
    assert _expiry_exported(port) == datetime(2031, 6, 1, tzinfo=UTC).timestamp()
    assert _get(port, "/students/2", token)[0] == 200


def _listening_addresses(port: int) -> set[str]:
    """Local addresses of the sockets listening on `port`, from /proc/net/tcp and tcp6 (hex, as the kernel writes)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table, encoding="ascii") as f:
            for line in list(f)[1:]:
                local, state = line.split()[1], line.split()[3]
                address, _, hex_port = local.rpartition(":")
                if int(hex_port, 16) == port and state == "0A":  # TCP_LISTEN
                    found.add(address)
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/net/tcp; 127.0.0.2 is loopback on Linux")
def test_listens_on_loopback_only(api: tuple[int, str]) -> None:
    port, _ = api
    assert _listening_addresses(port) == {"0100007F"}, "expected 127.0.0.1 only (little-endian hex)"
    # 127.0.0.2 is another loopback address: a socket bound to 0.0.0.0 would accept it, 127.0.0.1's refuses
    with pytest.raises(OSError), socket.create_connection(("127.0.0.2", port), timeout=2):
        pass
