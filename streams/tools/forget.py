"""`scorer forget USER_ID...`: erase students from everything the scorer keeps about them.

A school must be able to erase a person's data on request (152-FZ, GDPR). The scorer keeps a student in
Redis (their document, the due and flow indexes and the status counters, their weekly feature snapshots,
their enrolments in the trainer's sets, alerts held for quiet hours) and in Postgres (current scores, score
history, status transitions and alerts). This removes all of it. Models keep no student identifier: a
version holds feature vectors and outcomes, never whose.

What it cannot remove: records on the Kafka topics (the LMS's events, the alerts, dead letters), which
leave with the topics' retention; and a label already queued for the trainer, which is learned within a
round (from no weekly features once those are gone) and puts the enrolment back into the trained set: the
report counts such labels, and a second run after the trainer's next round removes that entry. A student
whose events keep arriving is scored again from them: stop the LMS from sending them first.
"""
from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import redis
import redis.asyncio as aioredis

from online_models.trainer import TrainerKeys, forget_learners
from online_models.weekly_features import WeeklyFeatureStore
from storage.postgres.erasure import erase_students
from storage.students import RedisStudentStore
from streams.notify.store import NotifyStore
from streams.settings import REDIS_CLIENT_OPTIONS, Settings

KAFKA_NOTE = ("records on the Kafka topics (LMS events, alerts, dead letters) are not erased here: they leave "
              "with the topics' retention")


async def _forget_in_redis(settings: Settings, user_ids: Sequence[int], dry_run: bool) -> dict[str, dict[str, int]]:
    """Per student, what each Redis part held of them (and, unless `dry_run`, no longer holds)."""
    store = RedisStudentStore.from_url(settings.redis_url, settings.topic_prefix)
    notify_client = aioredis.Redis.from_url(settings.redis_url, **REDIS_CLIENT_OPTIONS)
    client = redis.Redis.from_url(settings.redis_url, **REDIS_CLIENT_OPTIONS)
    notify = NotifyStore(notify_client, settings.topic_prefix)
    weeks = WeeklyFeatureStore(client, prefix=settings.models_key_prefix)
    keys = TrainerKeys.under(settings.models_key_prefix)
    report: dict[str, dict[str, int]] = {}
    try:
        for user_id in user_ids:
            forgotten = await store.forget(user_id, dry_run)
            trainer_entries, queued = forget_learners(client, keys, user_id, dry_run)
            report[str(user_id)] = {
                "document": int(forgotten.document), "enrolments": forgotten.enrolments,
                "flow_entries": forgotten.flows, "weekly_features": weeks.forget(user_id, dry_run),
                "trainer_entries": trainer_entries, "labels_still_queued": queued,
                "held_alerts": await notify.forget(user_id, dry_run)}
    finally:
        await store.close()
        await notify_client.aclose()
        client.close()
    return report


def forget(settings: Settings, user_ids: Sequence[int], dry_run: bool = False) -> dict[str, Any]:
    """Erase the students from the Redis and the Postgres the settings name (each one that is set); with
    `dry_run`, report what they hold and change nothing."""
    return {
        "dry_run": dry_run,
        "redis": asyncio.run(_forget_in_redis(settings, user_ids, dry_run)) if settings.redis_url else None,
        "postgres": erase_students(settings.database_url, user_ids, dry_run) if settings.database_url else None,
        "not_erased": KAFKA_NOTE,
    }
