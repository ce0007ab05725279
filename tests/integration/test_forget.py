"""`scorer forget` on real Redis and Postgres: a school's students scored by the pipeline, the trainer's and
the notifier's keys beside them; one student is erased, and nothing under the workers' prefix or in the
snapshot tables names them any more, while every other student's data is as it was."""
from __future__ import annotations

import asyncio
import hashlib
import json
import random
from collections import Counter
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from sqlalchemy import create_engine, text

from helpers.pipeline_cases import Sent, drive, history
from online_models.scoring import NoScoring
from online_models.trainer import TrainerKeys
from online_models.weekly_features import WeeklyFeatureStore
from storage.postgres.sink import PostgresSink
from storage.students import RedisStudentStore
from storage.students.base import counted_statuses
from streams.cli import build_parser, main
from streams.notify.store import NotifyStore
from streams.pipeline import Pipeline
from streams.runtime import pipeline_config
from streams.settings import Settings
from streams.tools.forget import forget

#: Ids no version, time or count spells, so a search of every stored byte finds only the students.
FIRST_ID = 970_001


def _everything_under(client: redis.Redis, prefix: str) -> dict[str, str]:
    """Every key under the prefix with all it holds, as text."""
    out = {}
    for raw in client.scan_iter(match=f"{prefix}*"):
        key = raw.decode()
        kind = client.type(key).decode()
        value: Any = {"hash": client.hgetall, "set": client.smembers, "list": lambda k: client.lrange(k, 0, -1),
                      "zset": lambda k: client.zrange(k, 0, -1), "string": client.get}[kind](key)
        out[key] = repr(value)
    return out


def _rows_by_user(database_url: str) -> dict[str, Counter[int]]:
    engine = create_engine(database_url)
    with engine.connect() as connection:
        rows = {table: Counter(u for (u,) in connection.execute(text(f"SELECT user_id FROM {table}")))
                for table in ("students_current", "score_history", "status_transitions")}
    engine.dispose()
    return rows


async def test_forget_erases_one_student_everywhere_and_no_one_else(
        redis_url: str, db: str, prefix: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings(redis_url=redis_url, database_url=db, topic_prefix=prefix, state_dir=str(tmp_path))
    rng = random.Random(5)
    events = [(topic, {**record, "user_id": record["user_id"] + FIRST_ID - 1}) for topic, record in history(rng, 6)]
    users = sorted({record["user_id"] for _, record in events})
    gone, kept = users[1], [u for u in users if u != users[1]]
    store = RedisStudentStore.from_url(redis_url, prefix)
    sink = await PostgresSink.open(db)
    try:
        await drive(Pipeline(pipeline_config(settings), store, Sent().send, NoScoring(), sink), prefix, events, rng,
                    redeliver=False)
    finally:
        await sink.close()
    client = redis.Redis.from_url(redis_url)
    WeeklyFeatureStore(client, prefix=settings.models_key_prefix).put_many(
        [(f"{u}:3:1", week, {"progress": 1.0}) for u in users for week in (1, 2)])
    keys = TrainerKeys.under(settings.models_key_prefix)
    client.sadd(keys.trained, *(f"{u}:3:1" for u in users))
    client.rpush(keys.failed, *(json.dumps([f"{u}:3:1", 50.0, False, True]) for u in (gone, kept[0])))
    client.rpush(keys.queue, json.dumps([f"{gone}:3:1", 50.0, False, True]))
    notify_client = aioredis.Redis.from_url(redis_url)
    notify = NotifyStore(notify_client, prefix)
    alert_ids = {user: hashlib.sha1(f"{user}|3:1".encode()).hexdigest()[:24] for user in (gone, kept[0])}  # hashed
    for user, alert_id in alert_ids.items():
        await notify.hold(alert_id, 1, 4e9, {"body": {"alert": {"user_id": user}}, "key": str(user)})
    docs_before = await store.load(users)
    rows_before = _rows_by_user(db)
    assert all(rows_before["students_current"][u] for u in users) and rows_before["status_transitions"][gone]
    stored_before = _everything_under(client, prefix)

    preview = await asyncio.to_thread(forget, settings, [gone], True)
    assert _everything_under(client, prefix) == stored_before and _rows_by_user(db) == rows_before  # untouched
    report = await asyncio.to_thread(forget, settings, [gone])
    assert {**preview, "dry_run": False} == report  # the preview said exactly what was then erased

    assert report["redis"][str(gone)] == {
        "document": 1, "enrolments": 1, "flow_entries": 1, "weekly_features": 1, "trainer_entries": 2,
        "labels_still_queued": 1, "held_alerts": 1}
    assert report["postgres"] == {table: rows_before[table][gone] for table in rows_before}
    stored = _everything_under(client, prefix)
    naming = {key: value for key, value in stored.items() if str(gone) in key or str(gone) in value}
    assert naming == {keys.queue: repr([json.dumps([f"{gone}:3:1", 50.0, False, True]).encode()])}  # as reported
    for user in kept:  # every other student's keys and data are untouched
        assert {k: v for k, v in stored_before.items() if str(user) in k} == {
            k: v for k, v in stored.items() if str(user) in k}
    assert (await store.load(kept)) == {u: docs_before[u] for u in kept}
    expected: Counter[str] = sum((counted_statuses(doc) for _, doc in docs_before.values() if doc), Counter())
    expected.subtract(counted_statuses(docs_before[gone][1] or {"enrolments": {}}))
    counts = await store.status_counts()
    assert {s: n for s, n in counts.items() if n} == {s: n for s, n in expected.items() if n}
    rows_after = _rows_by_user(db)
    assert all(rows_after[table][gone] == 0 for table in rows_after)
    assert all(rows_after[table][u] == rows_before[table][u] for table in rows_after for u in kept)
    assert [i for i, _ in await notify.due(1, 5e9)] == [alert_ids[kept[0]]]
    for name, value in settings.to_env().items():  # again, as an operator runs it: a second request is harmless
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["forget", str(gone)]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["postgres"] == dict.fromkeys(rows_before, 0)
    assert again["redis"][str(gone)] == {"document": 0, "enrolments": 0, "flow_entries": 0, "weekly_features": 0,
                                         "trainer_entries": 0, "labels_still_queued": 1, "held_alerts": 0}
    await store.close()
    await notify_client.aclose()
    client.close()


def test_the_cli_takes_user_ids_and_refuses_what_is_not_one() -> None:
    assert build_parser().parse_args(["forget", "12", "970001"]).user_ids == [12, 970001]
    for bad in ("0", "-3", "abc"):
        try:
            build_parser().parse_args(["forget", bad])
        except SystemExit as exit_:
            assert exit_.code == 2
        else:
            raise AssertionError(f"{bad} was taken for a user id")
