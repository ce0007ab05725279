"""What the scorer keeps about students, and for how long (152-FZ, GDPR): `scorer export-student` gives a copy
of everything it keeps about a student (the right of access), `scorer forget` erases it (the right to
erasure), and `scorer prune` erases the students whose courses are over, and those it never scored, once the
school's retention period has passed (storage limitation: no one's data kept longer than it is needed).

The scorer keeps a student in Redis (their document, the due and flow indexes and the status counters, their
weekly feature snapshots, their enrolments in the trainer's sets, alerts held for quiet hours) and in Postgres
(current scores, score history, status transitions and alerts, and who read their data through the read
API or the console: `forget` takes them out of that record, the record that a page was read stays). Models
keep no student identifier: a version holds feature vectors and outcomes, never whose. The indexes and
counters only place the document's enrolments (by id, time and status), so the copy shows the document and
`forget` reports what it took from them.

What neither reaches: records on the Kafka topics (the LMS's events, the alerts, dead letters), which leave
with the topics' retention. A label already queued for the trainer is shown, and `forget` leaves it: it is
learned within a round (from no weekly features once those are gone) and puts the enrolment back into the
trained set, so the report counts such labels and a second run after the trainer's next round removes that
entry. A student whose events keep arriving is scored again from them: stop the LMS from sending them first.
"""
from __future__ import annotations

import asyncio
import getpass
import json
import os
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import redis

from online_models.trainer import TrainerKeys, forget_learners, student_entries
from online_models.weekly_features import WeeklyFeatureStore
from storage.postgres.data_reads import DataRead, drop_before, kept_days, reads, record
from storage.postgres.personal_data import done_students, erase_students, scored_students, student_rows
from storage.students import RedisStudentStore
from streams.notify.store import NotifyStore
from streams.redis_clients import async_redis_client, redis_client
from streams.settings import Settings

#: Students erased together by `prune`: each batch costs one pass over the due index, the weekly snapshots'
#: keys, the trainer's keys and the held alerts.
PRUNE_BATCH = 1000

KAFKA_NOTE = ("records on the Kafka topics (LMS events, alerts, dead letters) are not in the scorer's stores: "
              "they leave with the topics' retention")


@dataclass(frozen=True)
class _RedisParts:
    """Every part of the workers' Redis that holds students."""

    students: RedisStudentStore
    weeks: WeeklyFeatureStore
    trainer: TrainerKeys
    notify: NotifyStore
    client: redis.Redis


@asynccontextmanager
async def _redis_parts(settings: Settings) -> AsyncIterator[_RedisParts]:
    notify_client = async_redis_client(settings.redis_url)
    client = redis_client(settings.redis_url)
    parts = _RedisParts(RedisStudentStore.from_url(settings.redis_url, settings.topic_prefix),
                        WeeklyFeatureStore(client, prefix=settings.models_key_prefix),
                        TrainerKeys.under(settings.models_key_prefix),
                        NotifyStore(notify_client, settings.topic_prefix), client)
    try:
        yield parts
    finally:
        await parts.students.close()
        await notify_client.aclose()
        client.close()


async def _forget_in_redis(settings: Settings, user_ids: Sequence[int], dry_run: bool) -> dict[int, dict[str, int]]:
    """Per student, what each Redis part held of them (and, unless `dry_run`, no longer holds)."""
    async with _redis_parts(settings) as parts:
        documents = await parts.students.forget(user_ids, dry_run)
        weeks = parts.weeks.forget(user_ids, dry_run)
        trainer = forget_learners(parts.client, parts.trainer, user_ids, dry_run)
        held = await parts.notify.forget(user_ids, dry_run)
    return {user_id: {"document": int(documents[user_id].document), "enrolments": documents[user_id].enrolments,
                      "flow_entries": documents[user_id].flows, "weekly_features": weeks[user_id],
                      "trainer_entries": trainer[user_id][0], "labels_still_queued": trainer[user_id][1],
                      "held_alerts": held[user_id]}
            for user_id in user_ids}


async def _copy_in_redis(settings: Settings, user_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Per student, everything each Redis part holds of them, as stored."""
    async with _redis_parts(settings) as parts:
        documents = await parts.students.load(user_ids)
        weeks = parts.weeks.of_students(user_ids)
        trainer = student_entries(parts.client, parts.trainer, user_ids)
        held = await parts.notify.held_for(user_ids)
    return {user_id: {"document": documents[user_id][1], "weekly_features": weeks[user_id],
                      "trainer": {"learned_enrolments": trainer[user_id].trained,
                                  "labels_failed": [json.loads(item) for item in trainer[user_id].failed],
                                  "labels_queued": [json.loads(item) for item in trainer[user_id].queued]},
                      "held_alerts": list(held[user_id].values())}
            for user_id in user_ids}


def forget(settings: Settings, user_ids: Sequence[int], dry_run: bool = False) -> dict[str, Any]:
    """Erase the students from the Redis and the Postgres the settings name (each one that is set); with
    `dry_run`, report what they hold and change nothing."""
    in_redis = asyncio.run(_forget_in_redis(settings, user_ids, dry_run)) if settings.redis_url else None
    return {
        "dry_run": dry_run,
        "redis": None if in_redis is None else {str(user_id): held for user_id, held in in_redis.items()},
        "postgres": erase_students(settings.database_url, user_ids, dry_run) if settings.database_url else None,
        "not_erased": KAFKA_NOTE,
    }


def operator_name(settings: Settings) -> str:
    """Who runs the command: SCORER_OPERATOR, else the operating-system login (never empty in the record)."""
    if settings.operator:
        return settings.operator
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container user without a passwd entry
        return f"uid {os.getuid()}"


def export_students(settings: Settings, user_ids: Sequence[int]) -> dict[str, Any]:
    """A copy of everything the Redis and the Postgres the settings name (each one that is set) keep about the
    students, per student, as JSON values. With Postgres, the read is recorded first, as the read API's are
    (door `cli`, `operator_name`): an operator's copy is a read of the students' data too, and the copy it
    makes already names it."""
    if settings.database_url:
        record(settings.database_url, DataRead(operator_name(settings), "cli", "export-student", user_ids))
    in_redis = asyncio.run(_copy_in_redis(settings, user_ids)) if settings.redis_url else {}
    in_postgres = student_rows(settings.database_url, user_ids) if settings.database_url else {}
    return {"students": {str(user_id): {"redis": in_redis.get(user_id), "postgres": in_postgres.get(user_id)}
                         for user_id in user_ids},
            "not_included": KAFKA_NOTE}


def listed_reads(settings: Settings, reader: str | None = None, user_id: int | None = None,
                 since: datetime | None = None, limit: int = 1000) -> list[dict[str, Any]]:
    """`scorer reads`: the newest records of reads (`storage.postgres.data_reads.reads`). The list names students
    and who read them, so listing it is a read as well, recorded before it is shown (door `cli`, page `reads`,
    `operator_name`, every student it names), as `export_students` records its copy."""
    found = reads(settings.database_url, reader, user_id, since, limit)
    named = sorted({listed for read in found for listed in read["user_ids"]})
    record(settings.database_url, DataRead(operator_name(settings), "cli", "reads", named))
    return found


def prune(settings: Settings, days: float, dry_run: bool = False, now: datetime | None = None) -> dict[str, Any]:
    """Erase every student whose enrolments are all finished and none was scored in `days` (Postgres knows
    when; so it needs the database), and every student the scorer never scored whose document was not
    written in that long (`never_scored`: activity without a profile, say); and delete the records of who read
    students' data older than SCORER_READ_RECORDS_DAYS and past the period `scorer migrate` set in the database
    (`database_keeps_days`: the longer of the two keeps them). A period of 0 keeps what it would erase. With
    `dry_run`, report and change nothing. A document from before documents were dated ages from the first
    pruning run that finds it. Totals only: the report names no student."""
    now = now or datetime.now(UTC)
    report = _prune_students(settings, days, dry_run, now) if days > 0 else {"retention_days": 0}
    records_before = now - timedelta(days=settings.read_records_days)
    return {"dry_run": dry_run, **report,
            "read_records": None if settings.read_records_days <= 0 else {
                "older_than": records_before.isoformat(),
                "database_keeps_days": kept_days(settings.database_url),
                "deleted": drop_before(settings.database_url, records_before, dry_run)},
            "not_erased": KAFKA_NOTE}


def _prune_students(settings: Settings, days: float, dry_run: bool, now: datetime) -> dict[str, Any]:
    before = now - timedelta(days=days)
    done = done_students(settings.database_url, before)
    never_scored: list[int] = []
    if settings.redis_url:
        quiet = asyncio.run(_unchanged_in_redis(settings, before.timestamp(), None if dry_run else now.timestamp()))
        never_scored = sorted(set(quiet) - scored_students(settings.database_url, quiet))
    students = sorted({*done, *never_scored})
    in_redis: Counter[str] = Counter()
    in_postgres: Counter[str] = Counter()
    for start in range(0, len(students), PRUNE_BATCH):
        erased = forget(settings, students[start:start + PRUNE_BATCH], dry_run)
        for held in (erased["redis"] or {}).values():
            in_redis.update(held)
        in_postgres.update(erased["postgres"])
    return {"retention_days": days, "not_scored_since": before.isoformat(), "students": len(students),
            "never_scored": len(never_scored), "redis": dict(in_redis) if settings.redis_url else None,
            "postgres": dict(in_postgres)}


async def _unchanged_in_redis(settings: Settings, before: float, undated_from: float | None) -> list[int]:
    async with _redis_parts(settings) as parts:
        return await parts.students.unchanged_since(before, undated_from=undated_from)
