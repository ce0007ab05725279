"""Which errors mean "a dependency is down" (wait for it) rather than "this record cannot be
processed" (retry a few times, then quarantine it). Getting this wrong either way is costly: an
outage mistaken for bad records would dead-letter good ones, so anything that looks like a lost
connection, a timeout or a server refusing work counts as an outage. A training round's failure is told
apart the same way (`training_round`)."""
from __future__ import annotations

import logging

import redis.exceptions as redis_errors
from aiokafka import errors as kafka_errors
from sqlalchemy import exc as sql_errors

from storage.replication import NotReplicated
from streams import metrics
from streams.kafka.consumer import summarize
from streams.kafka.refusals import REFUSALS

log = logging.getLogger(__name__)

#: Redis replies that are the server's state, not the command's fault.
_REDIS_STATES = ("OOM", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "LOADING", "BUSY", "TRYAGAIN", "NOREPLICAS")
#: Redis refusing the scorer's user a command or key (its ACLs): a NoPermissionError, or inside a script an error
#: whose text says so (Redis 6.2: "can't run this command"; 7: "NOPERM"). The deployment's, not the records'.
_REDIS_REFUSALS = ("NOPERM", "can't run this command", "no permissions")
#: Postgres SQLSTATEs that are the server's state: a standby (not yet promoted, or a primary just demoted) refusing
#: a write (25006, read_only_sql_transaction; its driver raises it as an InternalError); the scorer's role refused a
#: table (42501, insufficient_privilege: a grant lost in a migration; raised as a ProgrammingError); a schema other
#: than this code's (42P01 undefined_table, 42703 undefined_column: a worker of the previous release still running
#: after a migration of the next one dropped or renamed what it writes).
_POSTGRES_STATES = ("25006", "42501", "42P01", "42703")


def dependency_of(error: BaseException) -> str | None:
    """"redis", "postgres" or "kafka" when `error` says that dependency is unavailable ("redis_replicas"
    when Redis answers but too few of its replicas hold the writes); None when the error is the batch's own
    (a bad value, a bug)."""
    if isinstance(error, NotReplicated):
        return "redis_replicas"
    if isinstance(error, redis_errors.ConnectionError | redis_errors.TimeoutError):
        return "redis"
    if isinstance(error, redis_errors.ResponseError) and str(error).startswith(_REDIS_STATES):
        return "redis"
    if isinstance(error, redis_errors.NoPermissionError) or (
            isinstance(error, redis_errors.ResponseError) and any(text in str(error) for text in _REDIS_REFUSALS)):
        return "redis"
    if isinstance(error, sql_errors.OperationalError | sql_errors.InterfaceError | sql_errors.DisconnectionError):
        return "postgres"
    if isinstance(error, sql_errors.DBAPIError) and (error.connection_invalidated
                                                     or getattr(error.orig, "pgcode", None) in _POSTGRES_STATES):
        return "postgres"
    if isinstance(error, kafka_errors.KafkaConnectionError | kafka_errors.KafkaTimeoutError):
        return "kafka"
    if isinstance(error, kafka_errors.KafkaError) and error.retriable:
        return "kafka"
    if isinstance(error, REFUSALS):  # the deployment's, not the records': taken for the records' own, they
        return "kafka"  # dead-lettered every student's records in turn
    return None  # unclassified: retried as the records' own failure, with a health check before quarantine


#: Dependencies a failed training round reported down: the next round that succeeds reports them up again.
_down_in_training: set[str] = set()


def training_round(error: Exception | None) -> None:
    """Report a training round (the worker's inline trainer, `scorer train`): it went through (`error` None:
    Redis answered, and whatever a failed round had reported down is up again), a dependency it names was
    down, or it failed for a reason of its own (`scorer_training_failures_total`). Before, every failure set
    `scorer_dependency_up{dependency="redis"}` to 0: a bug, or Postgres refusing a publish, read as a Redis
    outage."""
    if error is None:
        for name in {"redis", *_down_in_training}:
            metrics.DEPENDENCY_UP.labels(name).set(1)
        _down_in_training.clear()
        return
    dependency = dependency_of(error)
    if dependency is not None:
        metrics.DEPENDENCY_UP.labels(dependency).set(0)
        _down_in_training.add(dependency)
    else:
        metrics.TRAINING_FAILURES.inc()
    log.warning("training failed this round (%s: %s); retried the next", type(error).__name__, summarize(error))
