"""HTTP on the worker (Faust's web server): Prometheus metrics, health, and a read API.

The read API serves the Postgres snapshot (what analysts and the notification service see),
so any worker can answer for any student, whichever partitions it owns.
"""
from __future__ import annotations

import asyncio

import faust
from prometheus_client import generate_latest

from storage.postgres import queries
from storage.postgres.db import jsonable
from streams.metrics import REGISTRY, STUDENTS_BY_STATUS
from streams.runtime import Runtime


def register_views(app: faust.App, runtime: Runtime) -> None:
    database_url = runtime.settings.database_url

    @app.page("/metrics")
    async def metrics(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        if runtime.store is not None:
            for status, count in (await runtime.store.status_counts()).items():
                STUDENTS_BY_STATUS.labels(status).set(count)
        # aiohttp refuses a charset inside content_type; Prometheus' text format is UTF-8 anyway
        return web.bytes(generate_latest(REGISTRY), content_type="text/plain; version=0.0.4")

    @app.page("/healthz")
    async def healthz(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        return web.json({"status": "ok"})

    @app.page("/readyz")
    async def readyz(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        checks = await _readiness(app, runtime, database_url)
        ready = all(checks.values())
        return web.json({"ready": ready, "checks": checks}, status=200 if ready else 503)

    @app.page("/students/{user_id}")
    async def student(web: faust.web.View, request: faust.web.Request, user_id: str) -> faust.web.Response:
        if not user_id.isdigit():
            return web.json({"error": "user_id must be an integer"}, status=400)
        row = await asyncio.to_thread(queries.student, database_url, int(user_id))
        if row is None:
            return web.json({"error": "unknown student"}, status=404)
        return web.json(jsonable(row))

    @app.page("/courses/{course_id}/at-risk")
    async def at_risk(web: faust.web.View, request: faust.web.Request, course_id: str) -> faust.web.Response:
        if not course_id.isdigit():
            return web.json({"error": "course_id must be an integer"}, status=400)
        limit = min(int(request.query.get("limit", "50")), 1000)
        rows = await asyncio.to_thread(queries.at_risk, database_url, int(course_id), limit)
        return web.json({"course_id": int(course_id), "students": [jsonable(r) for r in rows]})


async def _readiness(app: faust.App, runtime: Runtime, database_url: str) -> dict[str, bool]:
    checks = {"started": runtime.ready, "kafka": False, "redis": False, "postgres": False}
    try:
        checks["kafka"] = runtime.producer is not None and bool(runtime.producer.client.cluster.brokers())
    except Exception:  # noqa: BLE001 - not started yet
        pass
    try:
        checks["redis"] = runtime.store is not None and await runtime.store.ping()
    except Exception:  # noqa: BLE001
        pass
    try:
        checks["postgres"] = await asyncio.to_thread(queries.ping, database_url)
    except Exception:  # noqa: BLE001
        pass
    return checks
