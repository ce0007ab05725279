"""When to retry a webhook and how long to wait. Pure: the caller sleeps and passes the clock.

Exponential backoff with "equal jitter" (half the wait fixed, half random): many notifiers that
failed together do not retry together, yet each waits at least half its step. A server's
`Retry-After` is honoured (up to MAX_RETRY_AFTER, so a bad header cannot park the consumer).
"""
from __future__ import annotations

import random
from email.utils import parsedate_to_datetime
from typing import Literal

CAP_FACTOR = 60  # the longest backoff step: this many first steps
MAX_RETRY_AFTER = 300.0
#: A message the webhook failed on waits this long before its next try, doubling per failure up to PARK_MAX.
PARK_FIRST, PARK_MAX = 60.0, 1800.0

Verdict = Literal["delivered", "retry", "permanent"]


#: Answers about the sender or the endpoint, not the message: a token rotated at the receiver, a proxy's credentials
#: (401, 403, 407); a URL whose path or route is wrong, or not deployed yet (404, 405). Permanent, they dead-lettered
#: every alert until someone noticed; retried, the messages wait as in an outage.
NOT_THE_MESSAGE = (401, 403, 404, 405, 407)


def verdict(status: int) -> Verdict:
    """2xx delivered; 408, 429, 5xx and the answers about the sender or the endpoint worth retrying; any other
    answer (a 4xx, a 3xx) permanent."""
    if 200 <= status < 300:
        return "delivered"
    if status in (408, 429, *NOT_THE_MESSAGE) or status >= 500:
        return "retry"
    return "permanent"


def backoff(retry: int, first: float, rng: random.Random) -> float:
    """The wait before retry number `retry` (0-based): first * 2**retry, capped, with equal jitter.

    >>> [round(backoff(n, 1.0, random.Random(0)), 2) for n in range(3)]
    [0.92, 1.84, 3.69]
    """
    step = min(first * 2.0 ** retry, first * CAP_FACTOR)
    return step / 2 + rng.random() * step / 2


def retry_after(header: str | None, now: float) -> float | None:
    """Seconds a `Retry-After` header asks for (delta-seconds or an HTTP date), capped; None if absent
    or unreadable."""
    if not header:
        return None
    text = header.strip()
    if text.isdigit():
        return min(float(text), MAX_RETRY_AFTER)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        return None
    return min(max(0.0, moment.timestamp() - now), MAX_RETRY_AFTER)


def wait_before(retry: int, first: float, rng: random.Random, header: str | None, now: float) -> float:
    """What to sleep before retry `retry`: the server's Retry-After when it asks for longer than our backoff."""
    ours = backoff(retry, first, rng)
    theirs = retry_after(header, now)
    return ours if theirs is None else max(ours, theirs)


def park_wait(failures: int) -> float:
    """How long a message waits after its `failures`-th failed delivery (1-based) before the next:
    a receiver back within minutes gets it within minutes, one down for hours is not hammered."""
    return min(PARK_FIRST * 2.0 ** (failures - 1), PARK_MAX)
