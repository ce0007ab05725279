"""`scorer forget` and `scorer export-student` on real Redis and Postgres: a school's students scored by the
pipeline, the trainer's and the notifier's keys beside them. One student is erased, and nothing under the
workers' prefix or in the snapshot tables names them any more, while every other student's data is as it
was; a copy of one student's data holds what each store keeps of them, and no one else's."""
from __future__ import annotations

import asyncio
import hashlib
import json
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from sqlalchemy import create_engine, text

from helpers.pipeline_cases import Sent, drive, history
from online_models.scoring import NoScoring
from online_models.trainer import TrainerKeys
from online_models.weekly_features import WeeklyFeatureStore
from storage.postgres.data_reads import TABLE as READS
from storage.postgres.data_reads import DataRead, record
from storage.postgres.sink import PostgresSink
from storage.students import RedisStudentStore
from storage.students.base import counted_statuses
from streams.cli import build_parser, main
from streams.contract import Topic
from streams.notify.store import NotifyStore
from streams.pipeline import Pipeline
from streams.runtime import pipeline_config
from streams.settings import Settings
from streams.tokens import SHARED_READER
from streams.tools.personal_data import export_students, forget, operator_name, prune

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
    """Per table, each student's rows (the record of reads: the records that name them)."""
    engine = create_engine(database_url)
    with engine.connect() as connection:
        rows = {table: Counter(u for (u,) in connection.execute(text(f"SELECT user_id FROM {table}")))
                for table in ("students_current", "score_history", "status_transitions")}
        rows[READS] = Counter(u for (u,) in connection.execute(text(f"SELECT unnest(user_ids) FROM {READS}")))
    engine.dispose()
    return rows


def _read_records(database_url: str) -> list[tuple[str, list[int]]]:
    """(reader, students) of every record of reads, in the order they were written."""
    engine = create_engine(database_url)
    with engine.connect() as connection:
        found = [(reader, list(ids)) for reader, ids in connection.execute(
            text(f"SELECT reader, user_ids FROM {READS} ORDER BY id"))]
    engine.dispose()
    return found


@dataclass
class School:
    """Six students scored by the pipeline into real Redis and Postgres, with the trainer's and the notifier's
    keys beside them: `gone` has weekly features, a learned enrolment, a failed and a queued label and an alert
    held for quiet hours; `kept[0]` a failed label and a held alert too. Their data was read three times: a
    course's list of `gone` and two others by a curator, `gone`'s page with the shared token, `kept[0]`'s page."""

    settings: Settings
    users: list[int]
    gone: int
    kept: list[int]
    store: RedisStudentStore
    notify: NotifyStore
    client: redis.Redis
    keys: TrainerKeys
    alert_ids: dict[int, str]
    held: dict[int, dict[str, Any]]
    reads: list[DataRead]


@pytest.fixture
async def school(redis_url: str, db: str, prefix: str, tmp_path: Any) -> AsyncIterator[School]:
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
    held = {user: {"body": {"alert": {"user_id": user}}, "key": str(user)} for user in alert_ids}
    for user, alert_id in alert_ids.items():
        await notify.hold(alert_id, 1, 4e9, held[user])
    reads = [DataRead("Anna Petrova", "console", "course", [kept[1], gone, kept[0]], 3),
             DataRead(SHARED_READER, "read_api", "student", [gone]),
             DataRead("Boris", "read_api", "student", [kept[0]])]
    for read in reads:
        record(db, read)
    yield School(settings, users, gone, kept, store, notify, client, keys, alert_ids, held, reads)
    await store.close()
    await notify_client.aclose()
    client.close()


async def test_forget_erases_one_student_everywhere_and_no_one_else(
        school: School, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    settings, users, gone, kept = school.settings, school.users, school.gone, school.kept
    store, notify, client, keys, alert_ids = school.store, school.notify, school.client, school.keys, school.alert_ids
    db, prefix = settings.database_url, settings.topic_prefix
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
    assert _read_records(db) == [  # who read what stays, without them
        ("Anna Petrova", sorted([kept[0], kept[1]])), (SHARED_READER, []), ("Boris", [kept[0]])]
    assert [i for i, _ in await notify.due(1, 5e9)] == [alert_ids[kept[0]]]
    for name, value in settings.to_env().items():  # again, as an operator runs it: a second request is harmless
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["forget", str(gone)]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["postgres"] == dict.fromkeys(rows_before, 0)
    assert again["redis"][str(gone)] == {"document": 0, "enrolments": 0, "flow_entries": 0, "weekly_features": 0,
                                         "trainer_entries": 0, "labels_still_queued": 1, "held_alerts": 0}




async def test_export_student_copies_what_each_store_holds_and_only_theirs(
        school: School, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings, gone, kept = school.settings, school.gone, school.kept
    stored_before = _everything_under(school.client, settings.topic_prefix)
    rows_before = _rows_by_user(settings.database_url)
    docs = await school.store.load(school.users)

    records_before = _read_records(settings.database_url)
    copy = await asyncio.to_thread(export_students, replace(settings, operator="Olga (DPO)"), [gone, kept[0]])
    assert _everything_under(school.client, settings.topic_prefix) == stored_before  # reading changes nothing
    rows_after = _rows_by_user(settings.database_url)
    rows_before[READS].update([gone, kept[0]])  # but for the record of this read, written first
    assert rows_after == rows_before
    assert _read_records(settings.database_url) == [*records_before, ("Olga (DPO)", sorted([gone, kept[0]]))]
    label = [f"{gone}:3:1", 50.0, False, True]
    theirs = copy["students"][str(gone)]
    assert theirs["redis"] == {
        "document": docs[gone][1], "weekly_features": {f"{gone}:3:1": {1: {"progress": 1.0}, 2: {"progress": 1.0}}},
        "trainer": {"learned_enrolments": [f"{gone}:3:1"], "labels_failed": [label], "labels_queued": [label]},
        "held_alerts": [school.held[gone]]}
    read_by = theirs["postgres"].pop(READS)
    for table, rows in theirs["postgres"].items():
        assert len(rows) == rows_before[table][gone] and {row["user_id"] for row in rows} == {gone}
    assert [(read["reader"], read["door"], read["page"], read["course_id"]) for read in read_by] == [
        ("Anna Petrova", "console", "course", 3), (SHARED_READER, "read_api", "student", None),
        ("Olga (DPO)", "cli", "export-student", None)]  # the copy names its own making
    assert all(read["read_at"] for read in read_by)
    assert str(kept[0]) not in json.dumps(read_by)  # who read the list, never who else was on it
    (current,) = theirs["postgres"]["students_current"]
    (enrolment,) = docs[gone][1]["enrolments"].values()
    assert current["status"] == enrolment["machine"]["status"]
    other = json.dumps(copy["students"][str(kept[0])])
    assert str(kept[0]) in other and str(gone) not in other  # one student's copy holds no one else

    preview = await asyncio.to_thread(forget, settings, [gone], True)  # the copy shows what an erasure takes
    counts, trainer = preview["redis"][str(gone)], theirs["redis"]["trainer"]
    assert counts["weekly_features"] == len(theirs["redis"]["weekly_features"])
    assert counts["trainer_entries"] == len(trainer["learned_enrolments"]) + len(trainer["labels_failed"])
    assert (counts["labels_still_queued"], counts["held_alerts"]) == (len(trainer["labels_queued"]), 1)
    assert preview["postgres"] == {**{table: len(rows) for table, rows in theirs["postgres"].items()},
                                   READS: len(read_by)}

    await asyncio.to_thread(forget, settings, [gone])
    after = (await asyncio.to_thread(export_students, settings, [gone]))["students"][str(gone)]
    assert after["redis"] == {"document": None, "weekly_features": {}, "held_alerts": [], "trainer": {
        "learned_enrolments": [], "labels_failed": [], "labels_queued": [label]}}  # the label forget leaves
    (own_read,) = after["postgres"].pop(READS)  # forgotten in every record but this copy's own
    assert (own_read["reader"], own_read["page"]) == (operator_name(settings), "export-student")
    assert after["postgres"] == {table: [] for table in rows_before if table != READS}

    for name, value in settings.to_env().items():  # as an operator runs it, into a file others could read before
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SCORER_OPERATOR", "Pavel")
    out = tmp_path / "student.json"
    out.write_text("stale")
    out.chmod(0o644)
    assert await asyncio.to_thread(main, ["export-student", str(kept[0]), "--out", str(out)]) == 0
    assert out.stat().st_mode & 0o777 == 0o600
    written = json.loads(out.read_text())
    again = json.loads(json.dumps(await asyncio.to_thread(export_students, settings, [kept[0]])))
    read_in_file, read_again = (copy_["students"][str(kept[0])]["postgres"].pop(READS) for copy_ in (written, again))
    assert written == again
    assert [(read["reader"], read["door"]) for read in read_again[-2:]] == [("Pavel", "cli"),
                                                                            (operator_name(settings), "cli")]
    assert read_in_file == read_again[:-1]


def _set_rows(database_url: str, user_id: int, status: str, days_ago: int) -> None:
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE students_current SET status = :status, updated_wall = now() - make_interval("
                                "days => :days) WHERE user_id = :user"), {"status": status, "days": days_ago,
                                                                          "user": user_id})
    engine.dispose()


def _written_days_ago(client: redis.Redis, store: RedisStudentStore, user_id: int, days: int | None) -> None:
    """Date a student's document as if its last write was `days` ago (None: a document from before dates)."""
    key = f"{store.prefix}st:{user_id}"
    if days is None:
        client.hdel(key, "w")
    else:
        client.hset(key, "w", str(int(time.time()) - days * 86_400))


async def test_prune_erases_only_students_whose_courses_are_over_and_quiet_past_retention(
        school: School, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Three scored students: finished and quiet past the period (erased), as quiet but asleep, finished 10 days
    ago. Three the scorer never scored (logins without a profile: a document, no rows): unwritten past the
    period (erased), written 10 days ago, and undated (from before documents were dated: it ages from the
    first pruning run, so it is kept)."""
    settings, (done, still_enrolled, recent) = school.settings, school.kept[:3]
    never_scored = [FIRST_ID + 100, FIRST_ID + 101, FIRST_ID + 102]
    logins = [(Topic.AUTHORIZATIONS, {"user_id": u, "ts": "2024-01-10T10:00:00"}) for u in never_scored]
    sink = await PostgresSink.open(settings.database_url)
    try:
        await drive(Pipeline(pipeline_config(settings), school.store, Sent().send, NoScoring(), sink),
                    settings.topic_prefix, logins, random.Random(1), redeliver=False)
    finally:
        await sink.close()
    quiet_unscored, recent_unscored, undated = never_scored
    all_users = [*school.users, *never_scored]
    _set_rows(settings.database_url, done, "finished", 400)
    _set_rows(settings.database_url, still_enrolled, "asleep", 400)  # quiet as long, but not finished
    _set_rows(settings.database_url, recent, "finished", 10)
    for user, days in ((quiet_unscored, 400), (recent_unscored, 10), (undated, None), (still_enrolled, 400)):
        _written_days_ago(school.client, school.store, user, days)
    rows_before = _rows_by_user(settings.database_url)
    assert not any(rows_before[table][u] for table in rows_before for u in never_scored)
    docs_before = await school.store.load(all_users)
    assert all(docs_before[u][1] is not None for u in never_scored)
    stored_before = _everything_under(school.client, settings.topic_prefix)

    preview = await asyncio.to_thread(prune, settings, 365, True)
    assert _everything_under(school.client, settings.topic_prefix) == stored_before
    report = await asyncio.to_thread(prune, settings, 365)
    assert {**preview, "dry_run": False, "not_scored_since": report["not_scored_since"]} == report
    assert report["students"] == 2 and report["never_scored"] == 1
    assert str(done) not in json.dumps(report) and str(quiet_unscored) not in json.dumps(report)  # totals only
    assert report["postgres"] == {table: rows_before[table][done] for table in rows_before}
    assert report["redis"]["document"] == 2 and report["redis"]["weekly_features"] == 1
    erased = [done, quiet_unscored]
    assert all(doc is None for _, doc in (await school.store.load(erased)).values())
    rows_after = _rows_by_user(settings.database_url)
    assert all(rows_after[table][done] == 0 for table in rows_after)
    others = [u for u in all_users if u not in erased]
    assert all(rows_after[table][u] == rows_before[table][u] for table in rows_after for u in others)
    assert (await school.store.load(others)) == {u: docs_before[u] for u in others}
    assert school.client.hget(f"{school.store.prefix}st:{undated}", "w") is not None  # dated now, by the run

    for name, value in settings.to_env().items():  # as a scheduled job runs it
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["prune"]) == 2  # no retention period set: it refuses
    monkeypatch.setenv("SCORER_RETENTION_DAYS", "7")
    assert await asyncio.to_thread(main, ["prune", "--dry-run"]) == 0
    printed = json.loads(capsys.readouterr().out)  # finished 10 days ago; written 10 days ago, never scored
    assert (printed["students"], printed["never_scored"]) == (2, 1)
    assert await asyncio.to_thread(main, ["prune", "--days", "30"]) == 0
    assert json.loads(capsys.readouterr().out)["students"] == 0


@pytest.mark.parametrize("command", ["forget", "export-student"])
def test_the_cli_takes_user_ids_and_refuses_what_is_not_one(command: str) -> None:
    assert build_parser().parse_args([command, "12", "970001"]).user_ids == [12, 970001]
    for bad in ("0", "-3", "abc"):
        try:
            build_parser().parse_args([command, bad])
        except SystemExit as exit_:
            assert exit_.code == 2
        else:
            raise AssertionError(f"{bad} was taken for a user id")
