"""The console's routes on the worker's HTTP server (Faust web): login, logout, four pages and the at-risk
list as CSV.

Every page needs the read API's token (session cookie or bearer header, streams.console.auth);
a browser without a session is sent to the login form. A person limited to some courses sees only
those (another course is a 403, a student's other enrolments are left out); each page that shows
students is recorded first (`ReadLog`); every page speaks the browser's language (streams.console.words).
Bad ids and sorts are 400s and a database failure a 503, never a 500, as in the read API.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import date
from typing import TYPE_CHECKING, Any, cast

import faust
from sqlalchemy.exc import SQLAlchemyError

from features.eventtime import DAY, to_db_time
from features.hypotheses import Language
from features.state import active_days
from storage.postgres.console_queries import course_status_counts
from storage.postgres.queries import Sort
from streams.console import auth, data, pages, words
from streams.console.html import HEADERS, layout, note, signed_in_as
from streams.console.svg import esc
from streams.console.views import DEFAULT_SORT, course_summaries
from streams.console.words import say
from streams.metrics import PREVIOUS_TOKENS
from streams.runtime import CHECK_TIMEOUT_SECONDS, Runtime
from streams.tokens import Presented, Reader
from streams.web import ApiTokens, InvalidParameter, ReadLog, Refusal, parse_id, parse_sort, wrong_token_answered

log = logging.getLogger(__name__)
#: A login form's body is one short field; anything longer is not a login.
MAX_TOKEN_CHARS = 4096

if TYPE_CHECKING:
    Handler = Callable[..., Awaitable[faust.web.Response]]


def _html(web: faust.web.View, body: str, status: int = 200, **headers: str) -> faust.web.Response:
    return web.html(body, status=status, headers={**HEADERS, **headers})


def _redirect(web: faust.web.View, location: str, **headers: str) -> faust.web.Response:
    return _html(web, "", 303, Location=location, **headers)


def _error(web: faust.web.View, status: int, message: str) -> faust.web.Response:
    return _html(web, layout(say("error.title"), f'<p class="error">{esc(message)}</p>'), status)


def _speaking_to(request: faust.web.Request, language: Language) -> contextlib.AbstractContextManager[None]:
    """The language the browser asks for first (Accept-Language), else the school's."""
    return words.speaking(words.negotiate(request.headers.get("Accept-Language"), language))


def console_page(tokens: ApiTokens, database_url: str, language: Language) -> Callable[[Handler], Handler]:
    """Wrap a page: session or bearer first (a browser without either goes to the login form),
    then its handler, in the language the browser asks for (else `language`), given the ReadLog of who
    asked, whose InvalidParameter becomes a 400, NotTheirCourse a 403 and whose database failure (its read's
    record's too) a 503."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def guarded(web: faust.web.View, request: faust.web.Request, **match: Any) -> faust.web.Response:
            with _speaking_to(request, language):
                return await answered(web, request, **match)

        async def answered(web: faust.web.View, request: faust.web.Request, **match: Any) -> faust.web.Response:
            authorization = request.headers.get("Authorization")
            admitted = auth.authorize(authorization, request.cookies.get(auth.COOKIE), tokens.value, time.time())
            if isinstance(admitted, Refusal):
                if admitted.status == 401 and authorization is None:
                    return _redirect(web, "/console/login")
                if admitted.wrong_token:
                    await wrong_token_answered("console")
                why = say("refused.token" if admitted.status == 401 else "refused.off")
                return _html(web, layout(say("refused.title"), note(why), signed_in=False), admitted.status,
                             **admitted.headers)
            try:
                with signed_in_as(admitted.reader):
                    return await handler(web, request, ReadLog(database_url, "console", admitted.reader), **match)
            except InvalidParameter as error:
                return _error(web, 400, say("error.parameter", message=str(error), parameter=error.parameter))
            except NotTheirCourse:
                return _error(web, 403, say("error.course"))
            except SQLAlchemyError as error:
                log.warning("console: %s failed: %s", handler.__name__, type(error).__name__)
                return _error(web, 503, say("error.database"))

        return guarded

    return decorate


async def _active_dates(runtime: Runtime, user_id: int) -> set[date]:
    """The days the student did something, from their document in the student store (best effort:
    without the store the timeline shows statuses only)."""
    store = runtime.store
    if store is None:
        return set()
    try:
        ((_, doc),) = (await asyncio.wait_for(store.load([user_id]), CHECK_TIMEOUT_SECONDS)).values()
    except Exception as error:  # noqa: BLE001 - the page still renders from Postgres
        log.warning("console: the student store did not answer (%s)", type(error).__name__)
        return set()
    if doc is None:
        return set()
    return {to_db_time(day * DAY).date() for day in active_days(doc["facts"])}


class NotTheirCourse(Exception):
    """A course the signed-in person may not read (`Reader.may_read`): a 403."""


def _course_and_sort(request: faust.web.Request, course_id: str, reader: Reader) -> tuple[int, Sort]:
    """A course page's (or its export's) course, one the reader may read, and the at-risk list's order, each
    checked."""
    course = parse_id(course_id, "course_id")
    if not reader.may_read(course):
        raise NotTheirCourse
    return course, parse_sort(request.query.get("sort"), DEFAULT_SORT)


def register_console(app: faust.App, runtime: Runtime, tokens: ApiTokens) -> None:
    """Add the console's views to the worker's web server; `tokens` are the read API's."""
    database_url = runtime.settings.database_url
    tls = bool(runtime.settings.web_tls_cert_file)
    language = cast("Language", runtime.settings.reason_language)  # Settings checks it is one
    page = console_page(tokens, database_url, language)

    @app.page("/console/login")
    class Login(faust.web.View):
        async def get(self, request: faust.web.Request) -> faust.web.Response:
            configured = tokens.value.configured
            with _speaking_to(request, language):
                return _html(self, pages.login_page(configured=configured), 200 if configured else 503)

        async def post(self, request: faust.web.Request) -> faust.web.Response:
            with _speaking_to(request, language):
                return await self._log_in(request)

        async def _log_in(self, request: faust.web.Request) -> faust.web.Response:
            now = tokens.value  # one reading of the people's file for the whole login
            if not now.configured:
                return _html(self, pages.login_page(configured=False), 503)
            form = await request.post()
            field = form.get("token")
            given = field if isinstance(field, str) and len(field) <= MAX_TOKEN_CHARS else ""  # "" matches none
            which, reader = now.match(given)
            if reader is None:
                await wrong_token_answered("console")
                return _html(self, pages.login_page(say("login.wrong")), 401)
            if which is Presented.PREVIOUS:
                PREVIOUS_TOKENS.labels("console").inc()
            # a person's session is keyed by their own token: removed from the file, their sessions end too
            log.info("console: %s signed in", reader.name)
            secure = auth.over_https(tls, request.headers.get("X-Forwarded-Proto"))
            key = given if which is Presented.PERSON else now.current
            session = auth.set_cookie(auth.session_value(key, time.time()), secure)
            return _redirect(self, "/console/", **{"Set-Cookie": session})

    @app.page("/console/logout")
    class Logout(faust.web.View):
        async def post(self, request: faust.web.Request) -> faust.web.Response:
            secure = auth.over_https(tls, request.headers.get("X-Forwarded-Proto"))
            return _redirect(self, "/console/login", **{"Set-Cookie": auth.clear_cookie(secure)})

    @app.page("/console/")
    @page
    async def index(web: faust.web.View, request: faust.web.Request, reads: ReadLog) -> faust.web.Response:
        rows = await asyncio.to_thread(course_status_counts, database_url)
        return _html(web, pages.index_page([summary for summary in course_summaries(rows)
                                            if reads.reader.may_read(summary.course_id)]))

    @app.page("/console/courses/{course_id}")
    @page
    async def course(web: faust.web.View, request: faust.web.Request, reads: ReadLog,
                     course_id: str) -> faust.web.Response:
        course, sort = _course_and_sort(request, course_id, reads.reader)
        view = await asyncio.to_thread(data.course_view, database_url, course, sort)
        await reads.record("course", view.students, view.course_id)
        return _html(web, pages.course_page(view))

    @app.page("/console/courses/{course_id}/at-risk.csv")
    @page
    async def at_risk_export(web: faust.web.View, request: faust.web.Request, reads: ReadLog,
                             course_id: str) -> faust.web.Response:
        course, sort = _course_and_sort(request, course_id, reads.reader)
        body, students = await asyncio.to_thread(data.at_risk_export, database_url, course, sort)
        await reads.record("at_risk_csv", students, course)
        return web.text(body, content_type="text/csv", headers={  # aiohttp adds the charset (utf-8)
            **HEADERS, "Content-Disposition": f'attachment; filename="course-{course}-at-risk.csv"'})

    @app.page("/console/students/{user_id}")
    @page
    async def student(web: faust.web.View, request: faust.web.Request, reads: ReadLog,
                      user_id: str) -> faust.web.Response:
        student_id = parse_id(user_id, "user_id")
        active = await _active_dates(runtime, student_id)
        enrolments, transitions = await asyncio.to_thread(data.student_view, database_url, student_id, active)
        enrolments = [e for e in enrolments if reads.reader.may_read(e.current["course_id"])]
        transitions = [t for t in transitions if reads.reader.may_read(t["course_id"])]
        if enrolments:  # none, or none of the reader's courses: the same page, which tells nothing
            await reads.record("student", [student_id])
        return _html(web, pages.student_page(student_id, enrolments, transitions), 200 if enrolments else 404)

    @app.page("/console/model")
    @page
    async def model(web: faust.web.View, request: faust.web.Request, _reads: ReadLog) -> faust.web.Response:
        current, weeks = await asyncio.to_thread(data.model_view, database_url)
        return _html(web, pages.model_page(current, weeks))
