"""The curator console on a real worker process (embedded broker, Redis, Postgres) that has scored
a generated export, seen over HTTP and in a real headless Chromium (Playwright): log in, the course
page lists the students the JSON read API lists, a click reaches a student, the charts draw, the
browser reports no error (a blocked style or script would be one), and each page's screenshot
is saved under $SCORER_TEST_ARTIFACTS (default: the test's tmp_path)."""
from __future__ import annotations

import asyncio
import http.cookiejar
import importlib.util
import json
import os
import re
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from helpers.postgres_rows import empty_tables
from storage.postgres.queries import at_risk
from storage.postgres.row_writer import RowWriter
from streams.console import auth
from streams.lms.synthetic import generate
from streams.settings import Settings
from streams.tools.embedded import free_port
from streams.tools.processes import stop, wait_until_scored, worker_process
from streams.tools.replay import replay

pytestmark = pytest.mark.slow
STUDENTS = 60  # over the trainer's 50 labels a version: one is published without its 30 s wait
TOKEN = "console-e2e-token"
PREVIOUS_TOKEN = "console-e2e-token-being-replaced"  # SCORER_API_TOKEN_PREVIOUS: still opens the console
PERSON_TOKEN = "anna-petrova-s-own-console-token"  # SCORER_API_TOKENS_FILE: a curator's own
COURSE_3_TOKEN = "boris-ivanov-reads-course-3-only"  # a curator of the generated school's course 3 alone
CHROMIUM = os.environ.get("SCORER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def console(kafka_url: str, redis_url: str, migrated: str,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, str, int]]:
    """(port, database URL, busiest course) of a worker that has scored a generated export."""
    from sqlalchemy import create_engine, text

    empty_tables(migrated)
    engine = create_engine(migrated)
    state = tmp_path_factory.mktemp("console")
    (state / "people").write_text(f"Anna Petrova {PERSON_TOKEN}\nBoris Ivanov {COURSE_3_TOKEN} courses=3\n")
    generate(state / "lms", students=STUDENTS, seed=17)
    prefix = f"t{os.urandom(4).hex()}."
    settings = Settings(kafka_url=kafka_url, redis_url=redis_url, database_url=migrated, topic_prefix=prefix,
                        app_id=f"edu-scorer-{prefix}", partitions=2, state_dir=str(state), api_token=TOKEN,
                        api_token_previous=PREVIOUS_TOKEN, api_tokens_file=str(state / "people"),
                        web_bind="127.0.0.1", reason_language="en")
    port = free_port()
    worker = worker_process(settings, port, state / "worker.log")
    try:
        report = asyncio.run(replay(settings, state / "lms", progress=False))
        final = report.final_watermark(settings)
        assert final is not None
        wait_until_scored(port, sum(report.published.values()), worker, final, settings.partitions, timeout=180)
        _next_week_version(migrated, engine)
        with engine.connect() as connection:
            course = connection.execute(text(
                "SELECT course_id FROM students_current GROUP BY course_id ORDER BY count(*) DESC LIMIT 1")).scalar()
        yield port, migrated, int(course)
    finally:
        stop([worker])


def _next_week_version(database_url: str, engine: Any) -> None:
    """The trainer's first version and, written as its sink writes them, a version a week later that
    has learned labels: the trainer publishes only after 50 labels or 30 s after its first (a flow's
    outcomes reach it together, once the flow is complete), too slow for a second version in this test,
    and the model page's weekly charts need it."""
    from sqlalchemy import text

    deadline = time.monotonic() + 90
    first = None
    while first is None and time.monotonic() < deadline:
        with engine.connect() as connection:
            first = connection.execute(text(
                "SELECT model, version, created_at FROM model_versions ORDER BY version LIMIT 1")).first()
        time.sleep(0.3)
    assert first is not None, "the trainer published no version"
    writer = RowWriter(database_url)
    writer.add_model_version({"model": first.model, "version": first.version + 1000, "n_labels": 62,
                              "created_at": first.created_at + timedelta(days=7),
                              "metrics": {"dropout_auc": 0.81, "success_auc": 0.77, "progress_mae": 12.5,
                                          "dropout_logloss": 0.45, "success_logloss": 0.52},
                              "metrics_by_week": {str(week): {"dropout_auc": 0.6 + week / 20, "success_auc": None,
                                                              "progress_mae": 20 - week, "examples": 10 * week}
                                                  for week in (1, 2, 3)}})
    writer.close()


def _request(port: int, path: str, headers: dict[str, str] | None = None, data: bytes | None = None,
             opener: urllib.request.OpenerDirector | None = None) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {}, data=data)
    try:
        with (opener or _NO_REDIRECT).open(request, timeout=20) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


class _KeepRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 303 itself is the answer


_NO_REDIRECT = urllib.request.build_opener(_KeepRedirects)


def test_console_needs_the_token_and_answers_bad_input_with_400(console: tuple[int, str, int]) -> None:
    port, _, course = console
    for path in ("/console/", f"/console/courses/{course}", "/console/students/1", "/console/model"):
        status, headers, _ = _request(port, path)
        assert (status, headers.get("Location")) == (303, "/console/login"), path
        status, _, body = _request(port, path, {"Authorization": "Bearer wrong"})
        assert status == 401 and "<table" not in body, path
        status, _, _ = _request(port, path, {"Cookie": "scorer_console=9999999999.deadbeef"})
        assert status == 303, path
    started = time.monotonic()
    status, _, body = _request(port, "/console/login", data=b"token=wrong")
    assert status == 401 and "Wrong token" in body and time.monotonic() - started >= 1.0  # answered late
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    for path in ("/console/courses/abc", "/console/courses/%C2%B2", "/console/students/0",
                 "/console/students/99999999999999999999", f"/console/courses/{course}?sort=user_id",
                 f"/console/courses/{course}?sort=%3Cscript%3E"):
        status, headers, body = _request(port, path, bearer)
        assert status == 400, (path, status)
        assert "<script>" not in body and "Content-Security-Policy" in headers
    status, headers, body = _request(port, f"/console/courses/{course}", bearer)
    assert status == 200 and "script-src" not in headers["Content-Security-Policy"]
    assert headers["Cache-Control"] == "no-store" and "<script" not in body
    assert _request(port, "/console/students/999999999", bearer)[0] == 404
    export = f"/console/courses/{course}/at-risk.csv"
    status, headers, _ = _request(port, export)
    assert (status, headers.get("Location")) == (303, "/console/login")
    assert _request(port, export, {"Authorization": "Bearer wrong"})[0] == 401
    metrics = _request(port, "/metrics")[2]
    assert 'scorer_read_api_wrong_tokens_total{door="console"} 6.0' in metrics  # 4 pages, the login, the export
    assert _request(port, export + "?sort=user_id", bearer)[0] == 400
    status, headers, body = _request(port, export, bearer)
    assert status == 200 and headers["Content-Type"] == "text/csv; charset=utf-8"
    assert headers["Content-Disposition"] == f'attachment; filename="course-{course}-at-risk.csv"'
    assert body.startswith("\ufeffuser_id,") and len(body.splitlines()) > 1


def test_login_sets_an_httponly_strict_cookie_that_opens_the_pages(console: tuple[int, str, int]) -> None:
    port, _, _ = console
    status, headers, _ = _request(port, "/console/login", data=urllib.parse.urlencode({"token": TOKEN}).encode())
    assert (status, headers["Location"]) == (303, "/console/")
    cookie = headers["Set-Cookie"]
    assert TOKEN not in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
    as_anna = urllib.parse.urlencode({"token": PERSON_TOKEN}).encode()
    status, headers, _ = _request(port, "/console/login", data=as_anna)
    assert status == 303 and _request(port, "/console/", {"Cookie": headers["Set-Cookie"].split(";")[0]})[0] == 200
    behind_tls = {"X-Forwarded-Proto": "https"}  # an Ingress that ended TLS: the browser came over HTTPS
    login = urllib.parse.urlencode({"token": TOKEN}).encode()
    assert "; Secure" in _request(port, "/console/login", behind_tls, data=login)[1]["Set-Cookie"]
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _KeepRedirects)
    _request(port, "/console/login", data=f"token={TOKEN}".encode(), opener=opener)
    assert _request(port, "/console/", opener=opener)[0] == 200
    assert _request(port, "/console/logout", data=b"", opener=opener)[0] == 303
    assert _request(port, "/console/", opener=opener)[0] == 303  # the cookie is gone


def test_a_curator_of_one_course_sees_its_students_only(console: tuple[int, str, int]) -> None:
    from sqlalchemy import create_engine, text

    port, database_url, _ = console
    engine = create_engine(database_url)
    with engine.connect() as connection:
        courses = {user: set(ids) for user, ids in connection.execute(text(
            "SELECT user_id, array_agg(course_id) FROM students_current GROUP BY user_id"))}
    engine.dispose()
    in_3 = next(user for user, ids in courses.items() if 3 in ids)
    elsewhere = next(user for user, ids in courses.items() if 3 not in ids)
    other_course = min(course for ids in courses.values() for course in ids if course != 3)
    bearer = {"Authorization": f"Bearer {COURSE_3_TOKEN}"}
    index = _request(port, "/console/", bearer)[2]
    assert set(re.findall(r'href="/console/courses/(\d+)"', index)) == {"3"}
    assert '<span class="who">Boris Ivanov · courses 3 only</span>' in index
    for path in (f"/console/courses/{other_course}", f"/console/courses/{other_course}/at-risk.csv"):
        status, _, body = _request(port, path, bearer)
        assert status == 403 and "Not one of your courses" in body and "/console/students/" not in body, path
    assert _request(port, "/console/courses/3", bearer)[0] == 200
    status, _, page = _request(port, f"/console/students/{in_3}", bearer)
    assert status == 200 and set(re.findall(r'href="/console/courses/(\d+)"', page)) == {"3"}
    assert _request(port, f"/console/students/{elsewhere}", bearer)[0] == 404


def test_the_console_speaks_the_language_the_browser_asks_for(console: tuple[int, str, int]) -> None:
    """Russian for a Russian browser (the worker's SCORER_REASON_LANGUAGE here is English), reasons included."""
    port, database_url, course = console
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    russian = {**bearer, "Accept-Language": "ru-RU,ru;q=0.9,en;q=0.8"}
    status, _, page = _request(port, f"/console/courses/{course}", russian)
    assert status == 200 and '<html lang="ru">' in page and "Где ученики останавливаются" in page
    english = _request(port, f"/console/courses/{course}", bearer)[2]
    assert '<html lang="en">' in english and "Where students stop" in english and "Где ученики" not in english
    assert "Вход" in _request(port, "/console/login", {"Accept-Language": "ru"})[2]
    listed = at_risk(database_url, course, 5, "reachable")
    with_reasons = next(row for row in listed if row["factors"])
    student = _request(port, f"/console/students/{with_reasons['user_id']}", russian)[2]
    assert "риск отчисления" in student and "dropout risk" not in student


def test_mid_rotation_the_previous_token_logs_in_is_counted_and_gets_a_session_of_the_new_one(
        console: tuple[int, str, int]) -> None:
    port, _, _ = console

    def counted() -> float:
        found = re.search(r'^scorer_read_api_previous_tokens_total\{door="console"\} (\S+)$',
                          _request(port, "/metrics")[2], re.M)
        assert found, "exported from 0"
        return float(found.group(1))

    before = counted()
    login = urllib.parse.urlencode({"token": PREVIOUS_TOKEN}).encode()
    status, headers, _ = _request(port, "/console/login", data=login)
    assert status == 303 and counted() == before + 1
    session = headers["Set-Cookie"].split(";")[0]
    assert _request(port, "/console/", {"Cookie": session})[0] == 200
    expires, mac = session.split("=", 1)[1].split(".")
    assert mac == auth.session_value(TOKEN, int(expires) - auth.SESSION_SECONDS).split(".")[1]  # keyed by the new


def test_a_persons_reads_are_recorded_by_name_page_by_page(console: tuple[int, str, int]) -> None:
    """A session names whom it was opened by: each page that shows students is recorded with them, the pages
    of counts and of the model are not."""
    from sqlalchemy import create_engine, text

    port, database_url, course = console
    engine = create_engine(database_url)

    def records() -> list[tuple[str, str, str, int | None, list[int]]]:
        with engine.connect() as connection:
            return [(r.reader, r.door, r.page, r.course_id, list(r.user_ids)) for r in connection.execute(text(
                "SELECT reader, door, page, course_id, user_ids FROM student_data_reads ORDER BY id"))]

    login = urllib.parse.urlencode({"token": PERSON_TOKEN}).encode()
    session = {"Cookie": _request(port, "/console/login", data=login)[1]["Set-Cookie"].split(";")[0]}
    before = len(records())
    listed = [row["user_id"] for row in at_risk(database_url, course, 1000, "status")]
    student = listed[0]
    for path in ("/console/", "/console/model", f"/console/courses/{course}", f"/console/courses/{course}/at-risk.csv",
                 f"/console/students/{student}", "/console/students/999999999"):
        assert _request(port, path, session)[0] == (404 if path.endswith("999999999") else 200), path
    recorded = records()[before:]
    engine.dispose()
    assert [(reader, door, page, course_id) for reader, door, page, course_id, _ in recorded] == [
        ("Anna Petrova", "console", "course", course), ("Anna Petrova", "console", "at_risk_csv", course),
        ("Anna Petrova", "console", "student", None)]
    page_shows, csv_lists, student_page = (ids for *_, ids in recorded)
    assert set(csv_lists) == set(listed) and student_page == [student]
    assert set(listed[:20]) <= set(page_shows)  # the page's list (and its chart's points)


def _chromium() -> str | None:
    return CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")


def _missing() -> str | None:
    """Why the browser test cannot run here (checked at collection, before any server starts)."""
    if _chromium() is None:
        return f"no Chromium at {CHROMIUM} (apt-get install chromium; `dev.py test` tries it as root)"
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (pip install -e '.[test]')"
    return None


@pytest.fixture
def browser() -> Iterator[Any]:
    """A headless Chromium driven by Playwright (the system's binary: never `playwright install`)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _drawn(page: Any) -> int:
    """Marks drawn inside the page's charts (areas, lines, bars, points, day cells; not legends)."""
    return int(page.locator("svg.chart :is(.area, .line, .bar, .day, circle)").count())


@pytest.mark.skipif(_missing() is not None, reason=str(_missing()))
def test_browser_walks_the_console(browser: Any, console: tuple[int, str, int], tmp_path: Path) -> None:
    port, database_url, course = console
    artifacts = Path(os.environ.get("SCORER_TEST_ARTIFACTS") or tmp_path)
    artifacts.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    base = f"http://127.0.0.1:{port}"

    page.goto(f"{base}/console/courses/{course}")
    assert page.url == f"{base}/console/login"
    page.fill("input[name=token]", "not the token")
    page.click("button[type=submit]")
    assert page.locator("#login-error").is_visible()
    assert [e for e in errors if "401" in e] == errors and len(errors) == 1  # the refused login: expected
    errors.clear()
    page.fill("input[name=token]", TOKEN)
    page.click("button[type=submit]")
    assert page.url == f"{base}/console/"
    cookie = next(c for c in page.context.cookies() if c["name"] == "scorer_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and TOKEN not in cookie["value"]
    page.screenshot(path=str(artifacts / "console-index.png"), full_page=True)

    page.click(f"#courses a[href='/console/courses/{course}']")
    page.click("#at-risk th a:text('status')")  # the read API's order
    assert page.url.endswith(f"/console/courses/{course}?sort=status")
    listed = [int(t) for t in page.locator("#at-risk tbody tr td:first-child a").all_inner_texts()]
    api = at_risk(database_url, course, limit=200)
    assert listed and listed == [r["user_id"] for r in api]
    status, _, body = _request(port, f"/courses/{course}/at-risk?limit=200",
                               {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and [s["user_id"] for s in json.loads(body)["students"]] == listed
    assert page.locator("svg.chart").count() == 4 and _drawn(page) > 10
    page.screenshot(path=str(artifacts / "console-course.png"), full_page=True)

    first = listed[0]
    page.click(f"#at-risk a[href='/console/students/{first}']")
    assert page.url == f"{base}/console/students/{first}"
    assert page.locator("h1").inner_text() == f"Student {first}"
    assert page.locator("svg.chart").count() >= 3 and _drawn(page) > 3
    assert page.locator("#norms tbody tr").count() > 5
    page.screenshot(path=str(artifacts / "console-student.png"), full_page=True)

    page.click("header a[href='/console/model']")
    assert page.locator("h1").inner_text() == "Model"
    assert page.locator("#current tbody tr").count() >= 1 and _drawn(page) > 0  # labels learned
    by_week = page.locator("table[id^='course-weeks-'] tbody tr")  # the current version's quality by course week
    assert by_week.count() == 3 and by_week.nth(2).locator("td").first.inner_text() == "3"
    page.screenshot(path=str(artifacts / "console-model.png"), full_page=True)

    page.click("header button[type=submit]")  # log out
    page.goto(f"{base}/console/")
    assert page.url == f"{base}/console/login"
    print(f"console screenshots: {artifacts}")
    assert errors == []


def test_the_student_timeline_marks_the_days_they_were_active(console: tuple[int, str, int]) -> None:
    """The days with activity come from the student's stored facts (Redis), not from Postgres."""
    from sqlalchemy import create_engine, text

    port, database_url, course = console
    engine = create_engine(database_url)
    with engine.connect() as connection:
        user, last = connection.execute(text(
            "SELECT user_id, last_activity_at FROM students_current WHERE course_id = :c "
            "AND last_activity_at IS NOT NULL ORDER BY last_activity_at DESC, user_id LIMIT 1"), {"c": course}).one()
    engine.dispose()
    status, _, body = _request(port, f"/console/students/{user}", {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200
    timeline = body[body.index('aria-label="timeline"'):]
    timeline = timeline[:timeline.index("</svg>")]
    assert f"<title>{last.date().isoformat()}: active; active" in timeline  # their last active day
    assert 0 < timeline.count("<circle") < timeline.count('class="day"')
