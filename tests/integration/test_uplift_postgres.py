"""The holdout on the worker's path to Postgres: every alert of a held-out enrolment carries
`holdout: true` and lands in status_transitions with held_out, and `scorer uplift` reads those
rows back into the same report the alerts themselves give."""
from __future__ import annotations

import json
import random

from sqlalchemy import create_engine, text

from features import parse_ts
from helpers.pipeline_cases import ENROLMENT, Sent, drive, history
from online_models.scoring import NoScoring
from online_models.uplift import TransitionRecord, report
from storage.postgres.db import dispose_shared_engines
from storage.postgres.sink import PostgresSink
from storage.students import RedisStudentStore
from streams.cli import main
from streams.contract.holdout import held_out
from streams.pipeline import Pipeline
from streams.runtime import pipeline_config
from streams.settings import Settings

SHARE, SALT = 0.5, "integration"


async def test_held_out_alerts_reach_postgres_and_uplift_reads_them(redis_url, db, prefix, monkeypatch,
                                                                      capsys) -> None:
    settings = Settings(redis_url=redis_url, database_url=db, topic_prefix=prefix, holdout_share=SHARE,
                        holdout_salt=SALT)
    rng = random.Random(7)
    events = history(rng, students=16)
    store = RedisStudentStore.from_url(settings.redis_url, settings.topic_prefix)
    sink = await PostgresSink.open(db)
    sent = Sent()
    pipeline = Pipeline(pipeline_config(settings), store, sent.send, NoScoring(), sink)
    try:
        await drive(pipeline, prefix, events, rng, redeliver=True)
    finally:
        await store.close()
        await sink.close()
    alerts = {a["alert_id"]: a for a in sent.on("scorer.alerts")}  # redeliveries send some twice
    expected = {i: held_out(a["user_id"], ENROLMENT, SHARE, SALT) for i, a in alerts.items()}
    assert {i: a["holdout"] for i, a in alerts.items()} == expected
    assert set(expected.values()) == {True, False}
    engine = create_engine(db)
    with engine.connect() as connection:
        stored = dict(connection.execute(text("SELECT alert_id, held_out FROM status_transitions")).all())
    engine.dispose()
    assert stored == expected

    monkeypatch.setenv("SCORER_DATABASE_URL", db)
    try:
        assert main(["uplift", "--json", "--course", "3"]) == 0
    finally:
        dispose_shared_engines()
    result = json.loads(capsys.readouterr().out)
    records = [TransitionRecord(a["user_id"], ENROLMENT, a["kind"], a["from_status"], a["to_status"],
                                parse_ts(a["ts"]), a["holdout"]) for a in alerts.values()]
    mine = report(records)
    assert result["kinds"] == mine["kinds"] and result["horizon"] == mine["horizon"]
    assert result["transitions"] == len(alerts)
    assert sum(k["notified"]["n"] + k["held_out"]["n"] for k in result["kinds"].values()) > 5
