"""`scorer check` against a real broker, Redis and Postgres: a deployment as the workers leave it passes, and one
whose topics, Redis replicas or settings disagree with what the scorer needs fails, saying where and why."""
from __future__ import annotations

import asyncio
import json

import pytest

from streams.cli import main
from streams.contract.topics import GROUP_TOPICS, Topic
from streams.kafka.admin import ensure_topics
from streams.settings import Settings
from streams.tools.preflight import ERROR, OK, SKIPPED, findings


def by_check(found: list) -> dict[tuple[str, str], object]:
    return {(f.dependency, f.check): f for f in found}


async def test_what_the_workers_create_passes(settings: Settings, migrated: str) -> None:
    settings = settings.copy(database_url=migrated)
    await ensure_topics(settings)
    found = by_check(await _findings(settings))
    assert [f for f in found.values() if f.level == ERROR] == []
    for topic in Topic:
        topic_finding = found[("kafka", f"topic {topic.physical(settings.topic_prefix)}")]
        assert topic_finding.level == OK and topic_finding.detail.startswith("4 partitions, 1 replica(s)")
    assert found[("postgres", "writable")].level == OK and found[("postgres", "schema")].level == OK
    assert found[("redis", "replicas")].level == OK and found[("redis", "eviction")].level == OK
    assert found[("redis", "access")].detail.startswith("user default may do what the scorer does on ")
    # Tansu has no authorizer: it reports the groups' rights (all) and not the topics'
    assert (found[("kafka", "access")].level, found[("kafka", "access")].detail) == (
        OK, "this client's principal may do what the scorer does on the 0 topic(s) and 2 group(s) the broker "
            "reported its rights on")


async def test_it_says_how_far_each_consumer_group_trails(settings: Settings) -> None:
    """Seven logins on one partition, the workers' group committed after the first three (read as a member that
    never joins): four behind; the notifier's group, with no commit, starts at the earliest."""
    from aiokafka import TopicPartition

    from helpers.topics import records_committed

    await ensure_topics(settings)
    logins = TopicPartition(Topic.AUTHORIZATIONS.physical(settings.topic_prefix), 1)
    await records_committed(settings, logins, 7, settings.app_id, 3)
    found = by_check(await _findings(settings))
    workers = found[("kafka", f"group {settings.app_id}")]
    assert (workers.level, workers.detail) == (OK, f"4 record(s) behind over {4 * len(GROUP_TOPICS)} partitions")
    notifier = found[("kafka", f"group {settings.notify_group}")]
    assert (notifier.level, notifier.detail) == (
        OK, "0 record(s) behind over 4 partitions: no offsets committed yet, so it starts at the earliest")


def test_a_mismatch_is_an_error_named_and_the_command_exits_1(settings: Settings, migrated: str,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    asyncio.run(ensure_topics(settings))  # 4 partitions each
    for name, value in settings.copy(database_url=migrated, partitions=6, redis_wait_replicas=1).to_env().items():
        monkeypatch.setenv(name, value)
    assert main(["check", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    errors = {(f["dependency"], f["check"]): f["detail"] for f in report["findings"] if f["level"] == ERROR}
    expected = {("kafka", f"topic {t.physical(settings.topic_prefix)}") for t in GROUP_TOPICS}
    expected.add(("redis", "replicas"))
    assert set(errors) == expected and report["errors"] == len(expected)
    assert all("SCORER_PARTITIONS is 6" in errors[key] for key in expected if key[0] == "kafka")
    assert "SCORER_REDIS_WAIT_REPLICAS is 1" in errors[("redis", "replicas")]


async def test_embedded_servers_are_not_checked() -> None:
    found = await _findings(Settings())
    assert {(f.dependency, f.level) for f in found if f.dependency != "settings"} == {
        ("kafka", SKIPPED), ("redis", SKIPPED), ("postgres", SKIPPED)}


async def _findings(settings: Settings) -> list:
    """`findings` runs its own event loop (the command's): here, off the test's."""
    return await asyncio.to_thread(findings, settings)


async def test_servers_that_do_not_answer_are_errors_on_one_line_each() -> None:
    nobody = "127.0.0.1:9"  # the discard port: nothing listens
    found = await _findings(Settings(kafka_url=f"kafka://{nobody}", redis_url=f"redis://{nobody}/0",
                                     database_url=f"postgresql+psycopg2://u@{nobody}/db"))
    assert [(f.dependency, f.check, f.level) for f in found if f.dependency != "settings"] == [
        ("kafka", "reachable", ERROR), ("redis", "reachable", ERROR), ("postgres", "reachable", ERROR)]
    assert all("\n" not in f.detail for f in found)
