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
