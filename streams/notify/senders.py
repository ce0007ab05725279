"""Where notifications go: a webhook (HTTP POST, retried) or stdout (JSON lines).

Every POST carries `Idempotency-Key: <alert_id>`: the one window in which `scorer notify` may send
an alert twice (it crashed after POSTing, before recording the delivery) is closed by a receiver
that keeps the keys it has seen. With a secret, each attempt is signed (streams.notify.signing), and with
the previous one too while a rotation lasts. The URL may hold a secret too and is never logged or
dead-lettered.
"""
from __future__ import annotations

import asyncio
import random
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TextIO

import aiohttp
import orjson

from streams.notify import metrics, signing
from streams.notify.retry import verdict, wait_before

#: Why a delivery failed: refused for good (a 4xx), or still failing after every retry.
REJECTED, RETRIES_EXHAUSTED = "rejected", "retries_exhausted"


@dataclass(frozen=True)
class Result:
    """A delivery's end: delivered, or why not (`rejected`: a permanent refusal; `retries_exhausted`)."""

    delivered: bool
    reason: str = ""
    detail: str = ""


class Sender(Protocol):
    async def send(self, body: dict[str, Any], key: str, *, once: bool = False) -> Result:
        """Deliver; `once`: a single attempt, no retries (the receiver is known to be failing)."""
        ...

    async def close(self) -> None: ...


class PrintSender:
    """No webhook configured: each notification as one JSON line on stdout (for a pipe or a log shipper)."""

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out or sys.stdout

    async def send(self, body: dict[str, Any], key: str, *, once: bool = False) -> Result:
        self._out.write(orjson.dumps(body).decode() + "\n")
        self._out.flush()
        return Result(True)

    async def close(self) -> None:
        return None


class WebhookSender:
    """POST JSON to `url`, retrying connection errors, timeouts, 5xx, 408, 429, 401, 403, 404, 405
    and 407 with backoff."""

    def __init__(self, url: str, *, max_retries: int, first_backoff: float, timeout: float = 10.0,
                 secret: str = "", previous_secret: str = "", clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, rng: random.Random | None = None) -> None:
        self._url = url
        self._secret = secret
        self._previous_secret = previous_secret
        self._max_retries = max_retries
        self._first_backoff = first_backoff
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._session: aiohttp.ClientSession | None = None

    async def send(self, body: dict[str, Any], key: str, *, once: bool = False) -> Result:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        payload = orjson.dumps(body)
        headers = {"Content-Type": "application/json", "Idempotency-Key": key}
        retries = 0 if once else self._max_retries
        for retry in range(retries + 1):
            started = time.monotonic()
            retry_header: str | None = None
            if self._secret:  # each attempt signed at its own time (and with the old secret too, mid-rotation)
                at = self._clock()
                headers[signing.HEADER] = signing.signature(self._secret, payload, at, self._previous_secret)
            try:
                async with self._session.post(self._url, data=payload, headers=headers) as response:
                    status, retry_header = response.status, response.headers.get("Retry-After")
                    answer = (await response.text(errors="replace"))[:300]
                outcome = verdict(status)
                detail = f"HTTP {status}: {answer}"
            except (aiohttp.ClientError, TimeoutError) as error:  # no status: worth retrying
                outcome, detail = "retry", f"{type(error).__name__} (no HTTP answer)"
            metrics.LATENCY.observe(time.monotonic() - started)
            metrics.ATTEMPTS.labels(outcome).inc()
            if outcome == "delivered":
                return Result(True)
            if outcome == "permanent":
                return Result(False, REJECTED, detail)
            if retry == retries:
                return Result(False, RETRIES_EXHAUSTED, f"{retry + 1} attempts; last: {detail}")
            await self._sleep(wait_before(retry, self._first_backoff, self._rng, retry_header, self._clock()))
        raise AssertionError("unreachable: the loop returns on its last attempt")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
