"""The pipeline against real Redis and Postgres (the worker's stores): any split into batches, any
interleaving of topics and any redelivery gives the pure fold's state and the reference
transitions, each alert exactly once, and the rows land in Postgres."""
from __future__ import annotations

import random

import pytest
from sqlalchemy import create_engine, text

from helpers.pipeline_cases import Sent, assert_equals_fold_and_reference, drive, history
from online_models.scoring import NoScoring
from storage.postgres.sink import PostgresSink
from storage.students import RedisStudentStore
from streams.pipeline import Pipeline
from streams.runtime import pipeline_config
from streams.settings import Settings


@pytest.mark.parametrize("seed", [1, 2])
async def test_stream_equals_pure_fold_and_reference_alerts(settings: Settings, db: str, seed: int) -> None:
    rng = random.Random(seed)
    events = history(rng, students=12)
    store = RedisStudentStore.from_url(settings.redis_url, settings.topic_prefix)
    sink = await PostgresSink.open(settings.database_url)
    sent = Sent()
    pipeline = Pipeline(pipeline_config(settings), store, sent.send, NoScoring(), sink)
    try:
        await drive(pipeline, settings.topic_prefix, events, rng, redeliver=True, bad=3)
        await assert_equals_fold_and_reference(store, sent, events, bad=3)
    finally:
        await store.close()
        await sink.close()
    engine = create_engine(settings.database_url)
    with engine.connect() as connection:
        transitions = connection.execute(text("SELECT count(*) FROM status_transitions")).scalar()
        current = connection.execute(text("SELECT count(*) FROM students_current")).scalar()
    engine.dispose()
    assert transitions == len(sent.on("scorer.alerts"))
    assert current == 12
