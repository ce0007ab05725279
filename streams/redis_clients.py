"""Redis clients from SCORER_REDIS_URL: a plain `redis://` or `unix://` URL, or Redis Sentinel's.

`redis+sentinel://[[user]:password@]host:port[,host:port...]/service[/db][?sentinel_password=...]` names the
sentinels and the primary's service name: the client asks the sentinels where the primary is and asks
again after a failover, so the workers follow the primary Sentinel promotes without a restart. The
password is the primary's (and its replicas'); `sentinel_password` is the sentinels' own, if they have one.
"""
from __future__ import annotations

from typing import Any, cast

import redis
import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.sentinel import Sentinel

from streams.settings import REDIS_CLIENT_OPTIONS, SentinelUrl, sentinel_url


def _options(found: SentinelUrl, options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the primary's connection options, the sentinels' own)."""
    primary = {**REDIS_CLIENT_OPTIONS, **options, "db": found.db, "username": found.username,
               "password": found.password}
    sentinels = {key: value for key, value in REDIS_CLIENT_OPTIONS.items() if key != "health_check_interval"}
    return primary, {**sentinels, "password": found.sentinel_password}


def redis_client(url: str, **options: Any) -> redis.Redis:
    """A client of the primary `url` names (see the module docstring), with the scorer's timeouts."""
    found = sentinel_url(url)
    if found is None:
        return redis.Redis.from_url(url, **{**REDIS_CLIENT_OPTIONS, **options})
    primary, sentinels = _options(found, options)
    # redis-py types Sentinel from 8.2 on, not before: the ignores serve the older releases pyproject allows.
    sentinel = Sentinel(found.sentinels, sentinel_kwargs=sentinels)  # type: ignore[no-untyped-call, unused-ignore]
    return cast("redis.Redis", sentinel.master_for(found.service, **primary))  # type: ignore[no-untyped-call, unused-ignore]


def async_redis_client(url: str, **options: Any) -> aioredis.Redis:
    """`redis_client` for asyncio."""
    found = sentinel_url(url)
    if found is None:
        return aioredis.Redis.from_url(url, **{**REDIS_CLIENT_OPTIONS, **options})
    primary, sentinels = _options(found, options)
    sentinel = AsyncSentinel(found.sentinels, sentinel_kwargs=sentinels)  # type: ignore[no-untyped-call, unused-ignore]
    return cast("aioredis.Redis", sentinel.master_for(found.service, **primary))
