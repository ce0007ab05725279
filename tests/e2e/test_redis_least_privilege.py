"""The scorer's processes under a Redis user allowed only `streams.redis_access.acl_rule`: the worker with
its trainer, read API and console (`scorer demo`), `scorer notify` (`scorer notify-load`, and its store's
holds, which that leaves alone), `scorer bootstrap`, the personal-data commands, `scorer redrive`'s ledger
and `scorer check`. A command or key the rule does not name is refused: the worker would hold its batch as
an outage and log it, the others would fail; so the rule is what the code needs, and the deploy/README's
rule is the code's."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from helpers.servers import RedisProcess
from storage.replication import NotReplicated
from streams.notify.store import NotifyStore
from streams.redis_access import acl_rule
from streams.redis_clients import async_redis_client, redis_client
from streams.tools.embedded import postgres_server
from streams.tools.redrive import Ledger

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
PREFIX = "lp."
REFUSED = ("NoPermissionError", "NOPERM", "no permissions")
#: Refusals the processes expect and do without: CONFIG GET (the eviction policy, which the rule leaves out: it
#: would show the server's passwords) and CLIENT SETINFO on a Redis before 7.2 (no such subcommand to allow).
EXPECTED = {("command", "config"), ("command", "client")}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    with RedisProcess(tmp_path_factory.mktemp("redis-least")) as running:
        admin = redis.Redis(host="127.0.0.1", port=running.port)
        admin.execute_command("ACL", "SETUSER", "scorer", "on", ">s3cret", *acl_rule(PREFIX).split())
        admin.close()
        yield running


def _denied(server: RedisProcess) -> list[tuple[str, str]]:
    """What Redis refused the user so far (its ACL LOG): (reason, command or key)."""
    admin = redis.Redis(host="127.0.0.1", port=server.port, decode_responses=True)
    try:
        return [(entry["reason"], entry["object"]) for entry in admin.acl_log()]
    finally:
        admin.close()


def _env(server: RedisProcess, **more: str) -> dict[str, str]:
    return {**os.environ, "SCORER_REDIS_URL": f"redis://scorer:s3cret@127.0.0.1:{server.port}/0",
            "SCORER_TOPIC_PREFIX": PREFIX, **more}


def _scorer(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "streams.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, f"scorer {' '.join(args)}: {done.stderr[-3000:]}"
    if args[0] != "check":  # which reports what it was refused
        assert not any(word in done.stdout + done.stderr for word in REFUSED), done.stderr[-3000:]
    return done


def _demo(server: RedisProcess, out: Path, timeout: float = 300) -> None:
    """`scorer demo`, failing at once when its worker logs a refusal (it would wait for the grant until the demo
    timed out)."""
    process = subprocess.Popen([sys.executable, "-m", "streams.cli", "demo", "--students", "120", "--whole-history",
                                "--out", str(out)],  # the whole history: outcomes arrive, the trainer publishes
                               cwd=ROOT, env=_env(server), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log, deadline = out / "worker.log", time.monotonic() + timeout
    try:
        while process.poll() is None:
            text = log.read_text("utf-8", "replace") if log.exists() else ""
            refusals = [line for line in text.splitlines() if any(word in line for word in REFUSED)]
            assert not refusals, (refusals[:3], _denied(server))
            assert time.monotonic() < deadline, "the demo did not finish"
            time.sleep(1)
    finally:
        process.kill()
        output = process.communicate()[0]
    assert process.returncode == 0, output[-3000:]
    assert not any(word in log.read_text("utf-8", "replace") for word in REFUSED)


async def _hold_park_release_and_forget(url: str) -> None:
    """The notifier's store on the paths `scorer notify-load` (quiet hours off, a receiver that takes all) leaves
    alone: held for quiet hours, parked again, due, released, superseded, read back and forgotten."""
    store = NotifyStore(async_redis_client(url), PREFIX, wait_replicas=1, wait_timeout_ms=1)
    entry, now = {"body": {"alert": {"user_id": 7}}}, time.time()
    try:
        await store.hold("a1", 0, now + 60, entry)
        assert await store.state_and_held("a1", 7) == ("held", ["a1"])
        await store.hold("a1", 0, now - 1, entry, listed=True)  # parked again, due now
        assert [alert_id for alert_id, _ in await store.due(0, now)] == ["a1"]
        await store.release("a1", 0)
        await store.hold("a2", 0, now + 60, entry, catching_up=True)
        assert await store.held_entries(["a1", "a2"]) == [("a2", entry)] and await store.backlog([0]) == 1
        await store.supersede(["a2"], 0, 7, none_left=True)
        await store.hold("a3", 1, now + 60, entry)
        assert list((await store.held_for([7]))[7]) == ["a3"] and await store.forget([7]) == {7: 1}
        await store.mark("a4", "delivered")
        assert await store.state("a4") == "delivered"
        with pytest.raises(NotReplicated):  # WAIT is allowed; there is no replica to wait for
            await store.replicated()
    finally:
        await store.redis.aclose()


def _redrive_ledger(url: str) -> None:
    """`scorer redrive`'s ledger and lease (its run needs a topic of dead letters; tests/e2e/test_redrive.py)."""
    client = redis_client(url)
    try:
        ledger = Ledger(client, PREFIX)
        assert ledger.lease.take() and ledger.lease.renew()
        client.sadd(f"{PREFIX}redrive:sent", "old")  # an earlier release's marks
        ledger.adopt_unscored()
        assert ledger.sent(["old", "new"]) == [True, False]
        ledger.mark(["new"], 2.0)
        ledger.read_again(["old"], 2.0)
        assert ledger.trim(2.0) == 0 and ledger.sent(["old", "new"]) == [True, True]
        ledger.lease.release()
    finally:
        client.close()


def test_every_process_does_its_work_under_the_least_privileged_user(server: RedisProcess, tmp_path: Path) -> None:
    env = _env(server)
    _demo(server, tmp_path / "demo")
    _scorer(env, "notify-load", "--alerts", "300")
    asyncio.run(_hold_park_release_and_forget(env["SCORER_REDIS_URL"]))
    _redrive_ledger(env["SCORER_REDIS_URL"])
    checked = json.loads(_scorer(env, "check", "--json").stdout)["findings"]
    assert [f for f in checked if f["dependency"] == "redis" and f["check"] == "access"] == [
        {"dependency": "redis", "check": "access", "level": "ok",
         "detail": "user scorer may do what the scorer does on lp.scorer:*, lp.notify:* and lp.redrive:*"}]
    with postgres_server(tmp_path / "demo" / "var" / "postgres") as database_url:  # the demo's data
        env = _env(server, SCORER_DATABASE_URL=database_url)
        _scorer(env, "bootstrap", str(tmp_path / "demo" / "lms"), "--on-top")
        student = (tmp_path / "demo" / "lms" / "authorization.csv").read_text("utf-8").splitlines()[1].split(",")[0]
        exported = json.loads(_scorer(env, "export-student", student).stdout)["students"][student]
        assert exported["redis"] and exported["postgres"], exported  # what the worker kept, read back
        _scorer(env, "forget", student)
        _scorer(env, "prune", "--days", "1")
        _scorer(env, "accept-state-loss")
    assert set(_denied(server)) <= EXPECTED
