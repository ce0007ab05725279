"""A Postgres that refuses the scorer's role a write (a grant lost in a migration, a role made read-only) is the
deployment's fault, not the records': the sink's error reads as Postgres unavailable, so the worker holds its
batch until the grant is back, where the records' own error would have quarantined them one by one."""
from __future__ import annotations

import random

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import DBAPIError

from helpers.pipeline_cases import Sent, drive, history
from online_models.scoring import NoScoring
from storage.postgres.sink import PostgresSink
from storage.row_sink import MemoryRowSink
from storage.students import InMemoryStudentStore
from streams.failures import dependency_of
from streams.pipeline import Pipeline
from streams.runtime import pipeline_config
from streams.settings import Settings


async def test_a_write_the_role_may_not_make_is_an_outage(migrated: str) -> None:
    rng = random.Random(4)
    rows = MemoryRowSink()
    await drive(Pipeline(pipeline_config(Settings()), InMemoryStudentStore(), Sent().send, NoScoring(), rows), "",
                history(rng, students=3), rng, redeliver=False)
    admin = create_engine(migrated)
    with admin.begin() as connection:
        connection.execute(text("DROP ROLE IF EXISTS scorer_reader"))
        connection.execute(text("CREATE ROLE scorer_reader LOGIN PASSWORD 'pw'"))
        connection.execute(text("GRANT SELECT ON ALL TABLES IN SCHEMA public TO scorer_reader"))
    sink = await PostgresSink.open(make_url(migrated).set(username="scorer_reader", password="pw")
                                   .render_as_string(hide_password=False))
    try:
        with pytest.raises(DBAPIError) as refused:
            await sink.write(list(rows.current.values()), list(rows.transitions.values()))
        assert refused.value.orig.pgcode == "42501"  # insufficient_privilege
        assert dependency_of(refused.value) == "postgres"
        with admin.begin() as connection:
            connection.execute(text("GRANT INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO scorer_reader"))
            connection.execute(text("GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO scorer_reader"))
        await sink.write([], [])  # what stayed buffered goes out once the grant is back
        with admin.connect() as connection:
            stored = set(connection.execute(text("SELECT user_id, enrolment FROM students_current")).tuples())
        assert set(rows.current) <= stored and rows.current
    finally:
        await sink.close()
        with admin.begin() as connection:
            connection.execute(text("DROP OWNED BY scorer_reader"))
            connection.execute(text("DROP ROLE scorer_reader"))
        admin.dispose()
