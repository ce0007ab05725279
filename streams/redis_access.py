"""What the scorer's processes do in Redis, as the least a Redis user needs: the keys it touches and the commands
it sends. A Redis shared with other applications can give the scorer a user of its own (deploy/README.md,
"A Redis user of its own"); `scorer check` probes each command on each of its key families, since a user
without admin rights cannot read its own ACL; tests/e2e/test_redis_least_privilege.py runs every process
under a user allowed exactly this.
"""
from __future__ import annotations

import uuid
from typing import Any

from redis.exceptions import NoPermissionError

#: Where each process keeps its keys, after SCORER_TOPIC_PREFIX: the workers, the trainer and the models; `scorer
#: notify`; `scorer redrive`'s ledger.
KEY_FAMILIES = ("scorer:", "notify:", "redrive:")

_KEY, _OTHER = "{key}", "{other}"
_SCRIPT = "return 1"
_SCRIPT_SHA = "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"  # SHA1 of _SCRIPT: EVALSHA is checked before it is looked up
# (redis-py sends a script by its SHA, and SCRIPT LOAD when the server does not know it yet: never EVAL)

#: Every command sent, each with harmless arguments to probe it on keys of its own (`{key}`, `{other}`): it reads a
#: key that does not exist, or writes one that is deleted after the probe.
COMMANDS: dict[str, tuple[str, ...]] = {
    "ping": ("PING",),
    "info": ("INFO", "persistence"),  # `scorer check` (persistence, replicas)
    "get": ("GET", _KEY),
    "mget": ("MGET", _KEY),
    "set": ("SET", _KEY, "1", "PX", "60000"),
    "incr": ("INCR", _KEY),
    "incrby": ("INCRBY", _KEY, "1"),
    "append": ("APPEND", _KEY, "1"),
    "exists": ("EXISTS", _KEY),
    "del": ("DEL", _KEY),
    "expire": ("EXPIRE", _KEY, "60"),
    "pexpire": ("PEXPIRE", _KEY, "60000"),
    "scan": ("SCAN", "0", "COUNT", "1"),  # no key of its own: ACLs do not filter what it finds
    "hget": ("HGET", _KEY, "f"),
    "hmget": ("HMGET", _KEY, "f"),
    "hgetall": ("HGETALL", _KEY),
    "hvals": ("HVALS", _KEY),
    "hlen": ("HLEN", _KEY),
    "hexists": ("HEXISTS", _KEY, "f"),
    "hscan": ("HSCAN", _KEY, "0"),
    "hset": ("HSET", _KEY, "f", "1"),
    "hsetnx": ("HSETNX", _KEY, "f", "1"),
    "hincrby": ("HINCRBY", _KEY, "f", "1"),
    "hdel": ("HDEL", _KEY, "f"),
    "rpush": ("RPUSH", _KEY, "1"),
    "lrange": ("LRANGE", _KEY, "0", "0"),
    "llen": ("LLEN", _KEY),
    "ltrim": ("LTRIM", _KEY, "0", "0"),
    "lrem": ("LREM", _KEY, "0", "1"),
    "sadd": ("SADD", _KEY, "1"),
    "srem": ("SREM", _KEY, "1"),
    "sismember": ("SISMEMBER", _KEY, "1"),
    "smismember": ("SMISMEMBER", _KEY, "1"),
    "sscan": ("SSCAN", _KEY, "0"),
    "zadd": ("ZADD", _KEY, "0", "m"),
    "zrem": ("ZREM", _KEY, "m"),
    "zscore": ("ZSCORE", _KEY, "m"),
    "zmscore": ("ZMSCORE", _KEY, "m"),
    "zcard": ("ZCARD", _KEY),
    "zrangebyscore": ("ZRANGEBYSCORE", _KEY, "0", "0"),
    "zremrangebyscore": ("ZREMRANGEBYSCORE", _KEY, "0", "0"),
    "zunionstore": ("ZUNIONSTORE", _OTHER, "1", _KEY),
    "evalsha": ("EVALSHA", _SCRIPT_SHA, "1", _KEY),
    "script|load": ("SCRIPT", "LOAD", _SCRIPT),
    "script|exists": ("SCRIPT", "EXISTS", _SCRIPT_SHA),  # a pipeline's scripts, before it runs
    "wait": ("WAIT", "0", "1"),  # SCORER_REDIS_WAIT_REPLICAS (for no replica, within 1 ms)
}


#: A transaction's (redis-py's `pipeline(transaction=True)`): probed as one, around a PING (no key to refuse).
_TRANSACTION = ("multi", "exec")
#: Sent at every connection, and done without when refused (redis-py names itself to the server): granted, so
#: that Redis's ACL LOG stays free of it, but not probed, as Redis before 7.2 has no such command.
_ON_CONNECT = ("client|setinfo",)


def acl_rule(topic_prefix: str) -> str:
    """The ACL rule of a Redis user that may do what the scorer does and nothing else (`ACL SETUSER name on
    >password <rule>`). Not CONFIG GET: it would show the server's passwords; the workers and `scorer check` say
    they cannot see the eviction policy instead."""
    keys = " ".join(f"~{topic_prefix}{family}*" for family in KEY_FAMILIES)
    granted = (*COMMANDS, *_TRANSACTION, *_ON_CONNECT)
    return f"resetkeys {keys} resetchannels -@all " + " ".join(f"+{name}" for name in granted)


def refused(client: Any, topic_prefix: str) -> dict[str, list[str]]:
    """The commands Redis refuses the client's user, by the key pattern they were refused on ("" for those that
    name no key): {"scorer:*": ["HSET", ...]}. Probed in one pipeline on keys of a name no one else uses, which
    are deleted afterwards."""
    run = uuid.uuid4().hex[:12]
    probes: list[tuple[str, str]] = []  # (key pattern, command)
    written: dict[str, list[str]] = {family: [] for family in KEY_FAMILIES}
    with client.pipeline(transaction=False) as pipe:
        for name, probe in COMMANDS.items():
            if _KEY not in probe:
                pipe.execute_command(*probe)
                probes.append(("", name.upper()))
                continue
            for family in KEY_FAMILIES:
                own = {_KEY: f"{topic_prefix}{family}check:{run}:{name}",
                       _OTHER: f"{topic_prefix}{family}check:{run}:{name}:other"}
                pipe.execute_command(*(own.get(arg, arg) for arg in probe))
                probes.append((f"{topic_prefix}{family}*", name.upper()))
                written[family] += own.values()
        answers = pipe.execute(raise_on_error=False)
    patterns = [f"{topic_prefix}{family}*" for family in KEY_FAMILIES] + [""]
    found: dict[str, list[str]] = {pattern: [] for pattern in patterns}
    for (pattern, name), answer in zip(probes, answers, strict=True):
        if isinstance(answer, NoPermissionError):
            found[pattern].append(name)
    try:
        with client.pipeline(transaction=True) as pipe:
            pipe.ping()
            pipe.execute()
    except NoPermissionError:
        found[""].append("/".join(name.upper() for name in _TRANSACTION))
    with client.pipeline(transaction=False) as pipe:  # a family at a time: one key refused refuses the whole DEL
        for keys in written.values():
            pipe.delete(*keys)
        pipe.execute(raise_on_error=False)  # DEL refused: reported above
    return {pattern: names for pattern, names in found.items() if names}
