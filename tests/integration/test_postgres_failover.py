"""The worker's Postgres sink through a failover: a URL that lists the primary and its standby, with
`target_session_attrs=read-write`, follows the standby once it is promoted, and with synchronous replication
every batch the sink acknowledged before the primary died is on the new one (deploy/README.md, "When Postgres
fails over"). A write a standby refuses is an outage to wait out, not a bad record to set aside, and `scorer
check` names a standby for what it is."""
from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from helpers.pipeline_cases import Sent, drive, history
from helpers.servers import PostgresProcess
from online_models.scoring import NoScoring
from storage.postgres.migrate import upgrade
from storage.postgres.sink import PostgresSink
from storage.row_sink import MemoryRowSink
from storage.students import InMemoryStudentStore
from streams.contract.outputs import Alert, ScoreRow
from streams.failures import dependency_of
from streams.pipeline import Pipeline
from streams.runtime import pipeline_config
from streams.settings import Settings
from streams.tools.preflight import ERROR, OK, WARN, postgres_findings


class FailingOver:
    """The worker's sink, failed over to the standby before its `after`-th write; every write it acknowledged
    is also kept in `acknowledged` (what the worker would have committed Kafka offsets past)."""

    def __init__(self, sink: PostgresSink, after: int, primary: PostgresProcess, standby: PostgresProcess) -> None:
        self.sink, self.after, self.primary, self.standby = sink, after, primary, standby
        self.acknowledged = MemoryRowSink()
        self.writes = 0

    async def write(self, scores: list[ScoreRow], transitions: list[Alert]) -> None:
        if self.writes == self.after:
            await asyncio.to_thread(self.primary.kill)  # no shutdown checkpoint: whatever it had not sent is gone
            await asyncio.to_thread(self.standby.promote)
        await self.sink.write(scores, transitions)
        await self.acknowledged.write(scores, transitions)
        self.writes += 1

    async def close(self) -> None:
        await self.sink.close()


def rows(url: str, sql: str) -> set[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return {tuple(row) for row in connection.execute(text(sql))}
    finally:
        engine.dispose()


async def test_the_sink_follows_the_promoted_standby_and_loses_no_acknowledged_row(tmp_path: Path) -> None:
    primary = PostgresProcess(tmp_path / "primary").start()
    standby = PostgresProcess(tmp_path / "standby", replica_of=primary).start()
    try:
        primary.execute("ALTER SYSTEM SET synchronous_standby_names = '*'")  # a commit waits for the standby
        primary.execute("SELECT pg_reload_conf()")
        standby_alone = f"postgresql+psycopg2://postgres@127.0.0.1:{standby.port}/{primary.database}"
        with pytest.raises(DBAPIError) as refused:
            upgrade(standby_alone)
        assert dependency_of(refused.value) == "postgres", "a read-only standby is an outage, not a bad record"
        checked = {f.check: f.level for f in postgres_findings(Settings(database_url=standby_alone))}
        assert checked == {"reachable": OK, "writable": ERROR, "schema": WARN, "privileges": OK}, (
            "`scorer check` says so first")
        # the standby first: libpq skips it while it is read-only, and picks it once promoted
        url = (f"postgresql+psycopg2://postgres@/{primary.database}?host=127.0.0.1:{standby.port}"
               f"&host=127.0.0.1:{primary.port}&target_session_attrs=read-write&connect_timeout=2")
        rng = random.Random(4)
        events = history(rng, students=10)
        sink = FailingOver(await PostgresSink.open(url), after=6, primary=primary, standby=standby)
        pipeline = Pipeline(pipeline_config(Settings()), InMemoryStudentStore(), Sent().send, NoScoring(), sink)
        try:
            await drive(pipeline, "", events, rng, redeliver=False)
        finally:
            await sink.close()
        assert sink.writes > sink.after and standby.promoted and not primary.running, "it failed over mid-stream"
        stored = rows(url, "SELECT user_id, enrolment, status, days_inactive FROM students_current")
        acknowledged = sink.acknowledged.current.values()
        assert stored == {(r.user_id, r.enrolment, r.status, r.days_inactive) for r in acknowledged}
        assert rows(url, "SELECT alert_id FROM status_transitions") == {(i,) for i in sink.acknowledged.transitions}
        assert sink.acknowledged.transitions, "the history has status changes"
    finally:
        standby.stop()
        primary.stop()
