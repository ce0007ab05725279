"""The broker refusing this process's principal (an ACL missing or removed, a password rotated).

aiokafka calls these errors not retriable. From a producer they fail a batch, which the worker holds as a
Kafka outage (`streams.failures.dependency_of`). From a consumer's `getmany` (no Read on the group or a
topic) they come at once, at every poll; let through, they ended the consumer's loop, and with it the
process: a worker started without its group's Read crashed, and would have crash-looped until the grant.
Each consumer loop holds its work instead, as in an outage: it waits and polls again, a gauge says the
broker refuses it, and the consumer joins its group at the first poll after the grant (measured on Apache
Kafka). `scorer check` names the grant missing.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

from aiokafka import errors

log = logging.getLogger(__name__)

REFUSALS: tuple[type[errors.KafkaError], ...] = (
    errors.TopicAuthorizationFailedError, errors.GroupAuthorizationFailedError, errors.ClusterAuthorizationFailedError,
    errors.SaslAuthenticationFailed, errors.AuthenticationFailedError)


class Refusals:
    """One consumer loop's run of refused polls: how long to wait before the next, and when it ends.

    `refused(True)` at each refused poll and `refused(False)` at the first allowed one after them set the
    process's gauge; the log says when a run starts and ends, not at every poll."""

    def __init__(self, refused: Callable[[bool], None], waits: Callable[[], Iterator[float]]) -> None:
        self._refused = refused
        self._new_waits = waits
        self._waits: Iterator[float] | None = None
        self._since = 0.0

    def wait_after(self, error: BaseException) -> float:
        """Seconds to wait before polling again, after the broker refused a poll with `error`."""
        if self._waits is None:
            self._waits, self._since = self._new_waits(), time.monotonic()
            log.warning("the broker refuses this process (%s: %s); its work waits until the ACL is granted "
                        "(`scorer check` names it)", type(error).__name__, error)
        self._refused(True)
        return next(self._waits)

    def allowed(self) -> None:
        """A poll went through: a run of refusals, if any, is over."""
        if self._waits is None:
            return
        self._waits = None
        self._refused(False)
        log.info("the broker allows this process again, after %.0f s of refusals", time.monotonic() - self._since)
