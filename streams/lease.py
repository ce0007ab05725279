"""A lease in Redis: one holder at a time (the trainer, a redrive), freed by its holder, or by expiry
when the holder dies without letting it go, so a standby can take over."""
from __future__ import annotations

import uuid

import redis

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisLease:
    def __init__(self, client: redis.Redis, key: str, ttl_ms: int) -> None:
        self.key = key
        self._client = client
        self._ttl_ms = ttl_ms
        self._token = uuid.uuid4().hex
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self.holding = False

    def renew(self) -> bool:
        """Extend a lease this process holds; False (and not holding) if it expired meanwhile."""
        self.holding = self.holding and bool(self._renew(keys=[self.key], args=[self._token, self._ttl_ms]))
        return self.holding

    def take(self) -> bool:
        """Take the lease if nobody holds it; whether this process holds it now."""
        self.holding = bool(self._client.set(self.key, self._token, nx=True, px=self._ttl_ms))
        return self.holding

    def release(self) -> None:
        if self.holding:
            self._release(keys=[self.key], args=[self._token])
            self.holding = False
