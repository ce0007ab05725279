"""`scorer ingest`: the HTTP door for LMS records (xAPI statements, Caliper events, native contract records).

Routes (every answer is JSON, but a stored Caliper Envelope's, empty as the Caliper specification asks):

| route                                     | auth  | what                                               |
|-------------------------------------------|-------|----------------------------------------------------|
| `POST /xapi/statements`                   | token | one xAPI statement or an array; 200, the ids       |
| `PUT /xapi/statements?statementId=<uuid>` | token | one statement with that id; 204                    |
| `GET /xapi/about`                         | open  | the xAPI versions understood                       |
| `POST /caliper`                           | token | one Caliper Envelope (1.1 or 1.2, as sensors such  |
|                                           |       | as Canvas send it); 200 with an empty body         |
| `POST /events/{topic}`                    | token | native records of one input topic (`lms.page_views`|
|                                           |       | or `page_view`), one or an array                   |
| `GET /healthz`                            | open  | 200 while the broker acknowledges, else 503        |
| `GET /metrics`                            | open  | Prometheus text (streams.ingest.metrics)           |

Authentication: `Authorization: Bearer <SCORER_INGEST_TOKEN>`, or HTTP Basic with the token as
the password (what most xAPI clients send; the user name is not checked), compared in constant
time. With no token configured every authenticated route answers 503. Status codes: 400 invalid
input (a reason per item; nothing of the request stored), 401 missing or wrong token, 404 unknown
topic, 409 an id already received with other content, 413 a body over 1 MiB or over 1,000
items, 415 a Content-Type other than JSON (except on the xAPI routes: 400), 422 a Caliper
Envelope of another dataVersion (the Caliper specification's codes), 503 back-pressure or the
broker not acknowledging (with Retry-After). What is stored and when is
streams.ingest.service's; the mapping of each format is its adapter's.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import re
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams import tokens
from streams.followed import follow
from streams.ingest import metrics
from streams.ingest.base import UUID
from streams.ingest.mapping import IdMapping
from streams.ingest.service import XAPI_VERSION, Answer, Ingestor, Limits
from streams.kafka.admin import ensure_topics, new_producer
from streams.kafka.connection import followed_client_certificate
from streams.settings import Settings
from streams.tls import serving
from streams.tokens import DoorTokens, Presented, authorization
from streams.unusable import port_taken

log = logging.getLogger(__name__)

_REALM = 'Bearer realm="edu-scorer-ingest"'
_VERSION = re.compile(r"1\.0(\.\d+)?")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

INGESTOR: web.AppKey[Ingestor] = web.AppKey("ingestor", Ingestor)
TOKEN: web.AppKey[DoorTokens] = web.AppKey("token", DoorTokens)
LIMITS: web.AppKey[Limits] = web.AppKey("limits", Limits)


# -- pure checks ---------------------------------------------------------------------------------
def presented_token(header: str | None) -> str | None:
    """The token of `Bearer <token>` or the password of `Basic base64(user:password)`, else None."""
    found = authorization(header)
    if found is None:
        return None
    scheme, credentials = found
    if scheme == "bearer":
        return credentials
    if scheme == "basic":
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
        _, colon, password = decoded.partition(":")
        return password if colon and password else None
    return None


def refusal(header: str | None, configured: DoorTokens) -> Answer | None:
    """None if the request may send records (counted when it came with the previous token); an empty
    configured token refuses everyone (503)."""
    if not configured.configured:
        return Answer(503, {"error": "the ingest token is not configured (SCORER_INGEST_TOKEN is empty): "
                                     "all requests refused"})
    given = presented_token(header)
    challenge = {"WWW-Authenticate": f'{_REALM}, Basic realm="edu-scorer-ingest"'}
    if given is None:
        return Answer(401, {"error": "missing credentials: Authorization: Bearer <token>"}, challenge)
    which = configured.presented(given)
    if which is Presented.WRONG:
        return Answer(401, {"error": "invalid token"}, challenge)
    if which is Presented.PREVIOUS:
        metrics.PREVIOUS_TOKENS.inc()
    return None


# -- HTTP ----------------------------------------------------------------------------------------
def _respond(answer: Answer, extra: dict[str, str] | None = None) -> web.Response:
    headers = {**answer.headers, **(extra or {})}
    if answer.status == 204 or answer.body is None:
        return web.Response(status=answer.status, headers=headers)
    return web.Response(status=answer.status, body=orjson.dumps(answer.body), content_type="application/json",
                        headers=headers)


@web.middleware
async def _observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Counts every answer by route and status and times it; an unexpected error is a logged 500."""
    started = time.perf_counter()
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    try:
        response = await handler(request)
    except web.HTTPException as error:
        response = _respond(Answer(error.status, {"error": error.reason}))
    except Exception:
        log.exception("ingest request failed: %s %s", request.method, route)
        response = _respond(Answer(500, {"error": "internal error"}))
    metrics.REQUESTS.labels(route, str(response.status)).inc()
    metrics.REQUEST_LATENCY.labels(route).observe(time.perf_counter() - started)
    return response


async def _body(request: web.Request) -> bytes | Answer:
    limit = request.app[LIMITS].max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        return Answer(413, {"error": f"a body of {request.content_length} bytes; at most {limit}"})
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        return Answer(413, {"error": f"a body over {limit} bytes"})


async def _guarded(request: web.Request, xapi: bool) -> bytes | web.Response:
    """Authentication, then load, then the body (in that order: no body is read for a refusal)."""
    extra = {"X-Experience-API-Version": XAPI_VERSION} if xapi else None
    refused = refusal(request.headers.get("Authorization"), request.app[TOKEN])
    if refused is not None:
        if refused.status == 401 and presented_token(request.headers.get("Authorization")) is not None:
            await asyncio.sleep(tokens.WRONG_TOKEN_DELAY_SECONDS)  # a wrong one: answered late, as at the read API
        return _respond(refused, extra)
    if xapi:
        version = request.headers.get("X-Experience-API-Version")
        if version is not None and not _VERSION.fullmatch(version.strip()):
            return _respond(Answer(400, {"error": f"X-Experience-API-Version {version[:20]!r}: 1.0.x is understood"}),
                            extra)
    if request.content_type not in ("application/json", "application/octet-stream", ""):
        detail = "attachments (multipart) are not supported" if request.content_type.startswith("multipart/") else \
            f"Content-Type {request.content_type!r}: send application/json"
        return _respond(Answer(400 if xapi else 415, {"error": detail}), extra)
    ingestor = request.app[INGESTOR]
    if ingestor.overloaded():
        return _respond(ingestor.busy(), extra)
    body = await _body(request)
    if isinstance(body, Answer):
        return _respond(body, extra)
    return body


async def _post_statements(request: web.Request) -> web.StreamResponse:
    body = await _guarded(request, xapi=True)
    if isinstance(body, web.StreamResponse):
        return body
    answer = await request.app[INGESTOR].statements(body)
    return _respond(answer, {"X-Experience-API-Version": XAPI_VERSION})


async def _put_statement(request: web.Request) -> web.StreamResponse:
    extra = {"X-Experience-API-Version": XAPI_VERSION}
    body = await _guarded(request, xapi=True)
    if isinstance(body, web.StreamResponse):
        return body
    statement_id = request.query.get("statementId", "")
    if not UUID.fullmatch(statement_id):
        return _respond(Answer(400, {"error": "PUT needs a statementId parameter holding a UUID"}), extra)
    answer = await request.app[INGESTOR].statements(body, statement_id.lower())
    return _respond(answer, extra)


async def _about(request: web.Request) -> web.StreamResponse:
    return _respond(Answer(200, {"version": [XAPI_VERSION]}), {"X-Experience-API-Version": XAPI_VERSION})


async def _post_records(request: web.Request) -> web.StreamResponse:
    body = await _guarded(request, xapi=False)
    if isinstance(body, web.StreamResponse):
        return body
    return _respond(await request.app[INGESTOR].records(request.match_info["topic"], body))


async def _post_caliper(request: web.Request) -> web.StreamResponse:
    body = await _guarded(request, xapi=False)
    if isinstance(body, web.StreamResponse):
        return body
    return _respond(await request.app[INGESTOR].caliper(body))


async def _health(request: web.Request) -> web.StreamResponse:
    return _respond(request.app[INGESTOR].health())


async def _metrics(request: web.Request) -> web.StreamResponse:
    return web.Response(body=generate_latest(metrics.REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})


def build_app(ingestor: Ingestor, token: DoorTokens, limits: Limits) -> web.Application:
    # the body limit is enforced by _body (a JSON 413); aiohttp's own is a little above it
    app = web.Application(client_max_size=limits.max_body_bytes + 1, middlewares=[_observe])
    app[INGESTOR] = ingestor
    app[TOKEN] = token
    app[LIMITS] = limits
    app.router.add_post("/xapi/statements", _post_statements)
    app.router.add_put("/xapi/statements", _put_statement)
    app.router.add_get("/xapi/about", _about)
    app.router.add_post("/caliper", _post_caliper)
    app.router.add_post("/events/{topic}", _post_records)
    app.router.add_get("/healthz", _health)
    app.router.add_get("/metrics", _metrics)
    return app


class IngestServer:
    """The ingest HTTP server and its producer, in this process: `async with IngestServer(settings) as s:`
    then POST to `s.url`. `port` None: settings.ingest_port; 0: any free port."""

    def __init__(self, settings: Settings, *, mapping: IdMapping | None = None, limits: Limits | None = None,
                 host: str | None = None, port: int | None = None) -> None:
        self.settings = settings
        self.mapping = mapping
        self.limits = limits or Limits()
        self.host = host or settings.web_bind
        self.port = settings.ingest_port if port is None else port
        self.certificate = serving(settings.ingest_tls_cert_file, settings.ingest_tls_key_file, "SCORER_INGEST_TLS",
                                   "ingest", metrics.TLS_CERTIFICATE_EXPIRY, metrics.FOLLOWED_FILE_STALE)
        self.tls = None if self.certificate is None else self.certificate.context
        self._following: asyncio.Task[None] | None = None
        self.ingestor: Ingestor | None = None
        self._producer: Any = None
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in {"0.0.0.0", "::", ""} else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    async def start(self) -> None:
        mapping = self.mapping or IdMapping.load(self.settings.ingest_mapping, self.settings.school_time_zone)
        await ensure_topics(self.settings)
        self._producer = new_producer(self.settings)
        await self._producer.start()
        producer = self._producer

        async def enqueue(topic: str, key: bytes | None, value: bytes) -> asyncio.Future[Any]:
            future: asyncio.Future[Any] = await producer.send(topic, value, key=key)
            return future

        self.ingestor = Ingestor(mapping, self.settings.topic_prefix, enqueue, self.limits,
                                 self.settings.max_clock_skew_minutes * 60)
        tokens = DoorTokens(self.settings.ingest_token, self.settings.ingest_token_previous)
        self._runner = web.AppRunner(build_app(self.ingestor, tokens, self.limits), access_log=None,
                                     shutdown_timeout=self.limits.produce_timeout + 5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.tls)
        try:
            await site.start()
        except OSError as error:
            await self.stop()
            if (taken := port_taken(error, "SCORER_INGEST_PORT", self.port)) is not None:
                raise taken from None
            raise
        self.port = self._runner.addresses[0][1]
        followed = [*([] if self.certificate is None else [self.certificate.files]), *followed_client_certificate(
            self.settings, metrics.TLS_CERTIFICATE_EXPIRY, metrics.FOLLOWED_FILE_STALE)]
        self._following = asyncio.create_task(follow(followed, self.settings.reload_seconds))
        log.info("ingest listening on %s (topics prefixed %r)", self.url, self.settings.topic_prefix)

    async def stop(self) -> None:
        """Stop taking requests, let those in hand finish (their records acknowledged), then close
        the producer (it flushes)."""
        if self._following is not None:
            self._following.cancel()
            self._following = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def __aenter__(self) -> IngestServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def serve(settings: Settings, limits: Limits | None = None) -> int:
    """`scorer ingest`: serve until SIGTERM or SIGINT; the exit code."""
    if not settings.kafka_url:
        print("ingest needs SCORER_KAFKA_URL (the broker the workers read)", file=sys.stderr)
        return 2
    mapping = IdMapping.load(settings.ingest_mapping, settings.school_time_zone)  # a MappingError: `scorer` says it
    if not settings.ingest_token:
        log.warning("SCORER_INGEST_TOKEN is empty: every request for /xapi, /caliper and /events is refused with 503")
    asyncio.run(_serve(settings, mapping, limits))
    return 0


async def _serve(settings: Settings, mapping: IdMapping, limits: Limits | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    async with IngestServer(settings, mapping=mapping, limits=limits):
        await stop.wait()
    log.info("ingest stopped")
