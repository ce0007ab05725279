"""A Redis whose ACLs refuse the scorer's user a command (a user made read-only, a command taken away) is the
deployment's fault, not the records': the store's error reads as Redis unavailable, so the worker holds its
batch until the grant is back, where the records' own error would have quarantined them one by one."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from helpers.servers import RedisProcess
from storage.students.redis import RedisStudentStore
from streams.failures import dependency_of
from streams.redis_access import COMMANDS, acl_rule
from streams.settings import Settings
from streams.tools.preflight import ERROR, OK, WARN, redis_findings


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    with RedisProcess(tmp_path_factory.mktemp("redis-acl")) as running:
        yield running


async def test_a_command_the_acls_refuse_is_an_outage(server: RedisProcess) -> None:
    admin = redis.Redis(host="127.0.0.1", port=server.port)
    admin.execute_command("ACL", "SETUSER", "reader", "on", ">pw", "~*", "+@all", "-@write")
    store = RedisStudentStore.from_url(f"redis://reader:pw@127.0.0.1:{server.port}/0", "acl.")
    try:
        assert await store.ping()  # it connects, and reads
        with pytest.raises(redis.exceptions.ResponseError) as in_a_script:  # the script's error, Redis 6.2's words
            await store.raise_newest(1_700_000_000.0, 1_700_000_000.0)
        with pytest.raises(redis.exceptions.NoPermissionError) as outright:
            await store.redis.set("acl.plain", "1")
        assert dependency_of(in_a_script.value) == dependency_of(outright.value) == "redis"
        admin.execute_command("ACL", "SETUSER", "reader", "+@write")
        assert await store.raise_newest(1_700_000_000.0, 1_700_000_000.0) == (1_700_000_000.0, 1_700_000_000.0)
    finally:
        await store.close()
        admin.close()


def _access(server: RedisProcess, user: str, rule: str, prefix: str) -> list[tuple[str, str, str]]:
    admin = redis.Redis(host="127.0.0.1", port=server.port)
    try:
        admin.execute_command("ACL", "SETUSER", user, "reset", "on", ">pw", *rule.split())
    finally:
        admin.close()
    settings = Settings(redis_url=f"redis://{user}:pw@127.0.0.1:{server.port}/0", topic_prefix=prefix)
    return [(f.check, f.level, f.detail) for f in redis_findings(settings)]


def test_scorer_check_probes_each_command_on_each_key_family_and_names_the_grant(server: RedisProcess) -> None:
    """A user without admin rights cannot read its own ACL, so `scorer check` runs each command the scorer sends on
    keys of its own in each family: the rule grants all; without HSET, WAIT and the redrive ledger's keys it names
    them and the rule to grant; and the probe leaves no key behind."""
    rule = acl_rule("ck.")
    found = _access(server, "scorer", rule, "ck.")
    assert found[:2] == [("reachable", OK, found[0][2]), ("access", OK, "user scorer may do what the scorer does on "
                                                                         "ck.scorer:*, ck.notify:* and ck.redrive:*")]
    assert ("eviction", WARN) == found[2][:2]  # CONFIG GET is not granted: it would show the server's passwords
    lacking = rule.replace(" +hset ", " ").replace(" +wait", "").replace(" ~ck.redrive:*", "")
    assert [f for f in _access(server, "scorer", lacking, "ck.") if f[0] == "access"] == [("access", ERROR, (
        "user scorer may not: HSET on ck.scorer:*; HSET on ck.notify:*; " + ", ".join(
            name.upper() for name in COMMANDS if "{key}" in COMMANDS[name]) + " on ck.redrive:*; WAIT. Grant them "
        f"(the least the scorer needs: ACL SETUSER scorer {rule}); each process holds its work on the first one it "
        "lacks, as in an outage"))]
    admin = redis.Redis(host="127.0.0.1", port=server.port)
    try:
        assert admin.keys("ck.*") == []
    finally:
        admin.close()


def test_a_user_refused_info_is_reachable_and_told_what_check_cannot_see(server: RedisProcess) -> None:
    found = _access(server, "noinfo", acl_rule("ni.").replace(" +info ", " "), "ni.")
    assert [(check, level) for check, level, _ in found] == [
        ("reachable", OK), ("access", ERROR), ("eviction", WARN), ("persistence", WARN), ("replicas", WARN)]
    assert found[1][2].startswith("user noinfo may not: INFO. Grant them")
