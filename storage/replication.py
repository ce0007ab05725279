"""Waiting for Redis replicas before a consumer commits its offsets (SCORER_REDIS_WAIT_REPLICAS).

Redis replicates asynchronously: a primary acknowledges a write its replicas may not have yet, and a
failover to one of them loses it. A consumer that committed the offsets of the records behind that write
never reads them again, so the loss would be silent. Redis' WAIT blocks until as many replicas hold what
the calling connection wrote, and a pool spreads a batch's writes over several connections; so the waiting
connection writes first: the replication stream is one sequence, and a replica that holds this write holds
every write acknowledged before it, whichever connection made them.
"""
from __future__ import annotations

import redis.asyncio as aioredis
from redis.exceptions import TimeoutError as RedisTimeoutError


class NotReplicated(RedisTimeoutError):
    """Fewer replicas than asked acknowledged the writes in time: an outage to a consumer, which keeps its
    offsets uncommitted and tries again (streams.failures names it `redis_replicas`)."""

    def __init__(self, acknowledged: int, replicas: int, timeout_ms: int) -> None:
        super().__init__(f"{acknowledged} of {replicas} Redis replicas acknowledged the writes within {timeout_ms} ms")
        self.acknowledged = acknowledged


async def wait_for_replicas(client: aioredis.Redis, marker_key: str, replicas: int, timeout_ms: int) -> int:
    """How many replicas hold every write acknowledged so far, once at least `replicas` do (within
    `timeout_ms`, else NotReplicated). `marker_key` is the counter the waiting connection writes first."""
    async with client.pipeline(transaction=False) as pipe:
        pipe.incr(marker_key)
        pipe.execute_command("WAIT", replicas, timeout_ms)
        _, acknowledged = await pipe.execute()
    if acknowledged < replicas:
        raise NotReplicated(int(acknowledged), replicas, timeout_ms)
    return int(acknowledged)
