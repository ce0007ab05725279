"""Engines and instrumentation for PostgreSQL calls.

Readers share one pooled engine per URL per process; a writer owns its engine so closing it
cannot pull connections from under a reader. Every call goes through `timed` so the
dashboards see Postgres latency and errors next to Redis.
"""
from __future__ import annotations

import contextlib
import json
import math
import threading
import time
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, create_engine

from streams.metrics import STORE_ERRORS, STORE_LATENCY


def make_engine(database_url: str) -> Engine:
    """A new engine; JSONB values go through `dumps_json` so feature dicts from numpy/River store cleanly.

    `hide_parameters`: errors and SQL logs omit the bound values, which are whole student rows
    (features, scores), so a failed write never prints them into the logs."""
    if database_url.startswith("postgres://"):  # the Heroku/libpq spelling SQLAlchemy rejects
        database_url = "postgresql://" + database_url.removeprefix("postgres://")
    return create_engine(database_url, pool_pre_ping=True, json_serializer=dumps_json, hide_parameters=True)


_SHARED: dict[str, Engine] = {}
_SHARED_LOCK = threading.Lock()  # reads run in worker threads


def shared_engine(database_url: str) -> Engine:
    """The process-wide engine for reads of `database_url`."""
    with _SHARED_LOCK:
        if database_url not in _SHARED:
            _SHARED[database_url] = make_engine(database_url)
        return _SHARED[database_url]


def dispose_shared_engines() -> None:
    """Close the pooled read connections (on process stop)."""
    with _SHARED_LOCK:
        for engine in _SHARED.values():
            engine.dispose()
        _SHARED.clear()


@contextlib.contextmanager
def timed(operation: str) -> Iterator[None]:
    """Observe latency and count failures of one Postgres operation."""
    start = time.perf_counter()
    try:
        yield
    except Exception:
        STORE_ERRORS.labels(store="postgres", operation=operation).inc()
        raise
    finally:
        STORE_LATENCY.labels(store="postgres", operation=operation).observe(time.perf_counter() - start)


def dumps_json(value: Any) -> str:
    """JSON for a JSONB column: NaN/inf become null (Postgres rejects them), numpy scalars become numbers."""
    return json.dumps(jsonable(value), allow_nan=False)


def jsonable(value: Any) -> Any:
    """Plain JSON types: datetimes as ISO text, numpy as numbers, NaN/inf as null."""
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if hasattr(value, "tolist"):  # numpy scalar or array
        return jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
