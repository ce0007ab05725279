"""HTTP on the worker (Faust's web server): Prometheus metrics, health, and a read API.

The read API serves the Postgres snapshot (what analysts and the notification service see),
so any worker can answer for any student, whichever partitions it owns. Its pages carry
student data, so each needs `Authorization: Bearer <SCORER_API_TOKEN>` (or a person's own token); with no
token configured they refuse every request; and each answer is recorded (who, which students) before it is
sent (`ReadLog`). `/metrics`, `/healthz` and `/readyz` carry none and
stay open (probes and Prometheus do not authenticate). Every input is checked by the small
pure functions below, so no path or query string can make a page fail with a 500.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import re
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import faust
from prometheus_client import generate_latest
from sqlalchemy.exc import SQLAlchemyError

from features.activity_status import STATUSES
from storage.postgres import data_reads, queries
from storage.postgres.db import jsonable
from streams import tokens
from streams.followed import FollowedFiles
from streams.metrics import (
    FOLLOWED_FILE_STALE,
    PREVIOUS_TOKENS,
    REDIS_MAY_EVICT,
    REGISTRY,
    STUDENT_DATA_READS,
    STUDENT_STATE_LOST,
    STUDENTS_BY_STATUS,
    WRONG_TOKENS,
)
from streams.runtime import CHECK_TIMEOUT_SECONDS, Runtime
from streams.settings import Settings, SettingsError
from streams.tokens import DoorTokens, Presented, Reader, bearer_credentials, read_people

log = logging.getLogger(__name__)

#: Ids are Postgres BIGINTs: 1 .. 2**63-1, at most 19 ASCII digits (checked before int() sees them).
MAX_ID = 2**63 - 1
MAX_ID_DIGITS = len(str(MAX_ID))
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
#: ASCII only: `str.isdigit()` takes '²', and `int()` takes '١٢', '１２' and ' 1'.
_ASCII_DIGITS = re.compile(r"[0-9]+")
_REALM = 'Bearer realm="edu-scorer"'

if TYPE_CHECKING:  # faust.web loads lazily: only annotations name it
    Handler = Callable[..., Awaitable[faust.web.Response]]


class InvalidParameter(ValueError):
    """A path or query parameter that is not what the page accepts: answered with a 400."""

    def __init__(self, parameter: str, expected: str) -> None:
        super().__init__(f"{parameter} must be {expected}")
        self.parameter = parameter


def _ascii_int(raw: str, max_digits: int) -> int | None:
    """The integer `raw` spells in at most `max_digits` ASCII digits, else None (the length is
    checked first so a 5,000-digit value never reaches int())."""
    if len(raw) > max_digits or not _ASCII_DIGITS.fullmatch(raw):
        return None
    return int(raw)


def parse_id(raw: str, parameter: str) -> int:
    """A student or course id from the URL: 1 .. 2**63-1 (what Postgres' BIGINT holds)."""
    value = _ascii_int(raw, MAX_ID_DIGITS)
    if value is None or not 1 <= value <= MAX_ID:
        raise InvalidParameter(parameter, f"an integer from 1 to {MAX_ID} in ASCII digits")
    return value


def parse_sort(raw: str | None, default: queries.Sort) -> queries.Sort:
    """`?sort=`: one of the at-risk list's orders (queries.SORTS), `default` when absent."""
    if raw is None:
        return default
    for sort in queries.SORTS:
        if raw == sort:
            return sort
    raise InvalidParameter("sort", f"one of {', '.join(queries.SORTS)}")


def parse_limit(raw: str | None) -> int:
    """`?limit=`: 1 .. MAX_LIMIT rows, DEFAULT_LIMIT when absent (bounds the query and the response)."""
    if raw is None:
        return DEFAULT_LIMIT
    value = _ascii_int(raw, MAX_ID_DIGITS)
    if value is None or not 1 <= value <= MAX_LIMIT:
        raise InvalidParameter("limit", f"an integer from 1 to {MAX_LIMIT} in ASCII digits")
    return value


@dataclass(frozen=True)
class Refusal:
    """Why a request for student data is turned away, as the HTTP answer. `wrong_token`: it presented a token,
    not the one configured (`wrong_token_answered`)."""

    status: int
    error: str
    headers: dict[str, str] = field(default_factory=dict)
    wrong_token: bool = False


async def wrong_token_answered(door: str) -> None:
    """Count a wrong token at `door` (`read_api`, `console`) and hold its answer WRONG_TOKEN_DELAY_SECONDS."""
    WRONG_TOKENS.labels(door).inc()
    await asyncio.sleep(tokens.WRONG_TOKEN_DELAY_SECONDS)


@dataclass(frozen=True)
class Admitted:
    """A request that may read student data, and who sent it: the record of reads names them, and their courses
    bound what they read."""

    reader: Reader


def check_bearer(header: str | None, configured: DoorTokens, door: str) -> Refusal | Admitted:
    """Admitted if the request may read student data (counted at `door` when it came with the previous token);
    with no token configured, everyone is refused."""
    if not configured.configured:
        return Refusal(503, "the read API token is not configured (SCORER_API_TOKEN is empty, and no "
                            "SCORER_API_TOKENS_FILE): all requests refused")
    given = bearer_credentials(header)
    if given is None:
        return Refusal(401, "missing bearer token", {"WWW-Authenticate": _REALM})
    which, reader = configured.match(given)
    if reader is None:
        return Refusal(401, "invalid bearer token", {"WWW-Authenticate": f'{_REALM}, error="invalid_token"'},
                       wrong_token=True)
    if which is Presented.PREVIOUS:
        PREVIOUS_TOKENS.labels(door).inc()
    return Admitted(reader)


@dataclass(frozen=True)
class ReadLog:
    """Who reads (and so which courses' students: `reader.may_read`), recording which students' data they read
    before the answer carries it (`storage.postgres.data_reads`): a record that cannot be written raises
    SQLAlchemyError, which the page answers with a 503, without the data."""

    database_url: str
    door: str
    reader: Reader

    async def record(self, page: str, user_ids: Collection[int], course_id: int | None = None) -> None:
        read = data_reads.DataRead(self.reader.name, self.door, page, tuple(user_ids), course_id)
        await asyncio.to_thread(data_reads.record, self.database_url, read)
        STUDENT_DATA_READS.labels(self.door, page).inc()


#: The read API's and the console's tokens: the people's file (SCORER_API_TOKENS_FILE) is read again once replaced,
#: so someone who leaves is refused, and their console sessions end, without a restart.
ApiTokens = FollowedFiles[DoorTokens]


def api_tokens(settings: Settings) -> ApiTokens:
    """The read API's and the console's tokens (`.value`, now); a people's file that cannot be read stops the
    start, and one that cannot be read later keeps the tokens read before (streams.followed)."""
    def read() -> DoorTokens:
        return DoorTokens(settings.api_token, settings.api_token_previous, read_people(settings.api_tokens_file))

    paths = [settings.api_tokens_file] if settings.api_tokens_file else []
    try:
        return FollowedFiles(paths, read, "SCORER_API_TOKENS_FILE", FOLLOWED_FILE_STALE)
    except (OSError, ValueError) as error:
        raise SettingsError(f"SCORER_API_TOKENS_FILE: {error}") from None


def student_data(tokens: ApiTokens, database_url: str) -> Callable[[Handler], Handler]:
    """Wrap a view that serves student data: bearer token first, then its handler, given the ReadLog of who
    asked, whose InvalidParameter becomes a 400 and whose database failure (its read's record's too) a 503
    (logged without the query's values; the engine hides bound parameters too)."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def guarded(web: faust.web.View, request: faust.web.Request, **match: Any) -> faust.web.Response:
            admitted = check_bearer(request.headers.get("Authorization"), tokens.value, "read_api")
            if isinstance(admitted, Refusal):
                if admitted.wrong_token:
                    await wrong_token_answered("read_api")
                return web.json({"error": admitted.error}, status=admitted.status, headers=admitted.headers)
            try:
                return await handler(web, request, ReadLog(database_url, "read_api", admitted.reader), **match)
            except InvalidParameter as error:
                return web.json({"error": str(error), "parameter": error.parameter}, status=400)
            except SQLAlchemyError as error:
                log.warning("read API: %s failed: %s", handler.__name__, type(error).__name__)
                return web.json({"error": "database unavailable"}, status=503)

        return guarded

    return decorate


async def refresh_store_gauges(runtime: Runtime) -> None:
    """Best effort: `scorer_students`, `scorer_redis_may_evict` and `scorer_student_state_lost` from Redis.
    With Redis down /metrics still renders (the other series are what tell the operator Redis is down); logs
    the failure's type only."""
    store = runtime.store
    if store is None:
        return
    try:
        counts = await asyncio.wait_for(store.status_counts(), CHECK_TIMEOUT_SECONDS)
        eviction = await asyncio.wait_for(store.may_evict(), CHECK_TIMEOUT_SECONDS)
        lost_at = await asyncio.wait_for(store.state_lost_at(), CHECK_TIMEOUT_SECONDS)
    except Exception as error:  # noqa: BLE001 - any failure: keep the previous values
        log.warning("store gauges not refreshed: Redis failed (%s)", type(error).__name__)
        return
    for status in STATUSES:  # every status a series, zeros included: a missing series is not a zero
        STUDENTS_BY_STATUS.labels(status).set(counts.get(status, 0))
    if eviction is not None:
        REDIS_MAY_EVICT.set(int(eviction[0]))
    STUDENT_STATE_LOST.set(int(lost_at is not None))


def register_views(app: faust.App, runtime: Runtime, tokens: ApiTokens) -> None:
    """The read API, health and metrics; `tokens` (`api_tokens`) are the console's too."""
    database_url = runtime.settings.database_url
    guarded = student_data(tokens, database_url)
    if not tokens.value.configured:
        log.warning("SCORER_API_TOKEN is empty: /students and /courses refuse every request")
    elif tokens.value.people:
        log.info("the read API and the console take the tokens of %d people (SCORER_API_TOKENS_FILE)",
                 len(tokens.value.people))

    @app.page("/metrics")
    async def metrics(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        await refresh_store_gauges(runtime)
        # aiohttp refuses a charset inside content_type; Prometheus' text format is UTF-8 anyway
        return web.bytes(generate_latest(REGISTRY), content_type="text/plain; version=0.0.4")

    @app.page("/healthz")
    async def healthz(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        return web.json({"status": "ok"})

    @app.page("/readyz")
    async def readyz(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        checks = await runtime.readiness()
        ready = all(checks.values())
        return web.json({"ready": ready, "checks": checks}, status=200 if ready else 503)

    @app.page("/students/{user_id}")
    @guarded
    async def student(web: faust.web.View, request: faust.web.Request, reads: ReadLog,
                      user_id: str) -> faust.web.Response:
        student_id = parse_id(user_id, "user_id")
        rows = [row for row in await asyncio.to_thread(queries.student, database_url, student_id)
                if reads.reader.may_read(row["course_id"])]
        if not rows:  # none, or none of the reader's courses: the same answer, which tells nothing
            return web.json({"error": "unknown student"}, status=404)
        await reads.record("student", [student_id])
        return web.json({"user_id": student_id, "enrolments": [jsonable(r) for r in rows]})

    @app.page("/courses/{course_id}/at-risk")
    @guarded
    async def at_risk(web: faust.web.View, request: faust.web.Request, reads: ReadLog,
                      course_id: str) -> faust.web.Response:
        course = parse_id(course_id, "course_id")
        limit, sort = parse_limit(request.query.get("limit")), parse_sort(request.query.get("sort"), "status")
        if not reads.reader.may_read(course):
            return web.json({"error": "not one of your courses"}, status=403)
        rows = await asyncio.to_thread(queries.at_risk, database_url, course, limit, sort)
        await reads.record("at_risk", [row["user_id"] for row in rows], course)
        return web.json({"course_id": course, "students": [jsonable(r) for r in rows]})
