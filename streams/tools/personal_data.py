"""A person's requests about their data (152-FZ, GDPR): `scorer export-student` gives a copy of everything the
scorer keeps about a student (the right of access), `scorer forget` erases it (the right to erasure).

The scorer keeps a student in Redis (their document, the due and flow indexes and the status counters, their
weekly feature snapshots, their enrolments in the trainer's sets, alerts held for quiet hours) and in Postgres
(current scores, score history, status transitions and alerts). Models keep no student identifier: a version
holds feature vectors and outcomes, never whose. The indexes and counters only place the document's
enrolments (by id, time and status), so the copy shows the document and `forget` reports what it took from them.

What neither reaches: records on the Kafka topics (the LMS's events, the alerts, dead letters), which leave
with the topics' retention. A label already queued for the trainer is shown, and `forget` leaves it: it is
learned within a round (from no weekly features once those are gone) and puts the enrolment back into the
trained set, so the report counts such labels and a second run after the trainer's next round removes that
entry. A student whose events keep arriving is scored again from them: stop the LMS from sending them first.
"""
from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import redis
import redis.asyncio as aioredis

from online_models.trainer import TrainerKeys, forget_learners, student_entries
from online_models.weekly_features import WeeklyFeatureStore
from storage.postgres.personal_data import erase_students, student_rows
from storage.students import RedisStudentStore
from streams.notify.store import NotifyStore
from streams.settings import REDIS_CLIENT_OPTIONS, Settings

KAFKA_NOTE = ("records on the Kafka topics (LMS events, alerts, dead letters) are not in the scorer's stores: "
              "they leave with the topics' retention")

T = TypeVar("T")


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
    notify_client = aioredis.Redis.from_url(settings.redis_url, **REDIS_CLIENT_OPTIONS)
    client = redis.Redis.from_url(settings.redis_url, **REDIS_CLIENT_OPTIONS)
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


async def _per_student(settings: Settings, user_ids: Sequence[int],
                       one: Callable[[_RedisParts, int], Awaitable[T]]) -> dict[str, T]:
    async with _redis_parts(settings) as parts:
        return {str(user_id): await one(parts, user_id) for user_id in user_ids}


async def _forget_one(dry_run: bool, parts: _RedisParts, user_id: int) -> dict[str, int]:
    """What each Redis part held of the student (and, unless `dry_run`, no longer holds)."""
    forgotten = await parts.students.forget(user_id, dry_run)
    trainer_entries, queued = forget_learners(parts.client, parts.trainer, user_id, dry_run)
    return {"document": int(forgotten.document), "enrolments": forgotten.enrolments,
            "flow_entries": forgotten.flows, "weekly_features": parts.weeks.forget(user_id, dry_run),
            "trainer_entries": trainer_entries, "labels_still_queued": queued,
            "held_alerts": await parts.notify.forget(user_id, dry_run)}


async def _copy_one(parts: _RedisParts, user_id: int) -> dict[str, Any]:
    """Everything each Redis part holds of the student, as stored."""
    _, document = (await parts.students.load([user_id]))[user_id]
    entries = student_entries(parts.client, parts.trainer, user_id)
    return {"document": document, "weekly_features": parts.weeks.of_student(user_id),
            "trainer": {"learned_enrolments": entries.trained,
                        "labels_failed": [json.loads(item) for item in entries.failed],
                        "labels_queued": [json.loads(item) for item in entries.queued]},
            "held_alerts": list((await parts.notify.held_for(user_id)).values())}


def forget(settings: Settings, user_ids: Sequence[int], dry_run: bool = False) -> dict[str, Any]:
    """Erase the students from the Redis and the Postgres the settings name (each one that is set); with
    `dry_run`, report what they hold and change nothing."""
    return {
        "dry_run": dry_run,
        "redis": (asyncio.run(_per_student(settings, user_ids, lambda parts, u: _forget_one(dry_run, parts, u)))
                  if settings.redis_url else None),
        "postgres": erase_students(settings.database_url, user_ids, dry_run) if settings.database_url else None,
        "not_erased": KAFKA_NOTE,
    }


def export_students(settings: Settings, user_ids: Sequence[int]) -> dict[str, Any]:
    """A copy of everything the Redis and the Postgres the settings name (each one that is set) keep about the
    students, per student, as JSON values."""
    in_redis = asyncio.run(_per_student(settings, user_ids, _copy_one)) if settings.redis_url else {}
    return {"students": {str(user_id): {
                "redis": in_redis.get(str(user_id)),
                "postgres": student_rows(settings.database_url, user_id) if settings.database_url else None}
                         for user_id in user_ids},
            "not_included": KAFKA_NOTE}
