"""A Postgres that refuses the scorer's role a write (a grant lost in a migration, a role made read-only), or whose
schema the running code does not know (a rolling update's migration ran first), is the deployment's fault, not the
records': `scorer check` names each grant missing, and the sink's error reads as
Postgres unavailable, so the worker holds its batch until the grant is back, where the records' own error would
have quarantined them one by one."""
from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.exc import DBAPIError

from helpers.pipeline_cases import Sent, drive, history
from online_models.scoring import NoScoring
from storage.postgres import data_reads
from storage.postgres.personal_data import erase_students
from storage.postgres.privileges import DATA_PROTECTION, grant_statements
from storage.postgres.sink import PostgresSink
from storage.row_sink import MemoryRowSink
from storage.students import InMemoryStudentStore
from streams.failures import dependency_of
from streams.pipeline import Pipeline
from streams.runtime import pipeline_config
from streams.settings import Settings
from streams.tools.personal_data import export_students, forget
from streams.tools.preflight import ERROR, OK, WARN, postgres_findings

ROLE = "scorer_reader"


@pytest.fixture()
def admin(migrated: str) -> Iterator[Engine]:
    """The superuser's engine, with ROLE allowed to read the scorer's tables and nothing more."""
    engine = create_engine(migrated)
    with engine.begin() as connection:
        connection.execute(text(f"DROP ROLE IF EXISTS {ROLE}"))
        connection.execute(text(f"CREATE ROLE {ROLE} LOGIN PASSWORD 'pw'"))
        connection.execute(text(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {ROLE}"))
    yield engine
    with engine.begin() as connection:
        connection.execute(text(f"DROP OWNED BY {ROLE}"))
        connection.execute(text(f"DROP ROLE {ROLE}"))
    engine.dispose()


def _as_reader(migrated: str) -> str:
    return make_url(migrated).set(username=ROLE, password="pw").render_as_string(hide_password=False)


def _finding(database_url: str, check: str) -> tuple[str, str]:
    (found,) = [f for f in postgres_findings(Settings(database_url=database_url)) if f.check == check]
    return found.level, found.detail


def _privileges(database_url: str) -> tuple[str, str]:
    return _finding(database_url, "privileges")


def _record_of_reads(database_url: str) -> tuple[str, str]:
    return _finding(database_url, "record of reads")


def _period_finding(database_url: str, days: float) -> tuple[str, str] | None:
    """`scorer check`'s comparison of SCORER_READ_RECORDS_DAYS (`days`) with the database's period, if it makes one."""
    found = [f for f in postgres_findings(Settings(database_url=database_url, read_records_days=days))
             if f.check == "record of reads period"]
    return (found[0].level, found[0].detail) if found else None


def test_scorer_check_names_each_grant_the_role_lacks(admin: Engine, migrated: str) -> None:
    level, detail = _privileges(_as_reader(migrated))
    assert level == ERROR and detail.startswith(f"role {ROLE} may not: INSERT on students_current; UPDATE on "
                                                "students_current; INSERT on score_history; UPDATE on score_history")
    assert "USAGE on sequence score_history_id_seq" in detail and "SELECT" not in detail and "DELETE" not in detail
    assert "INSERT on student_data_reads" in detail and "UPDATE on student_data_reads" not in detail
    with admin.begin() as connection:
        connection.execute(text(f"GRANT INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {ROLE}"))
    assert _privileges(_as_reader(migrated))[0] == ERROR  # the sequences are still refused
    with admin.begin() as connection:
        connection.execute(text(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {ROLE}"))
    assert _privileges(_as_reader(migrated)) == (OK, f"role {ROLE} may do what the scorer does with its tables")
    level, detail = _record_of_reads(_as_reader(migrated))  # more than it needs: it may rewrite who read what
    assert level == WARN and detail.startswith(f"role {ROLE} may UPDATE, DELETE student_data_reads")


def test_the_grants_scorer_check_prints_are_all_the_role_needs(admin: Engine, migrated: str) -> None:
    with admin.begin() as connection:
        connection.execute(text(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {ROLE}"))
    assert _privileges(_as_reader(migrated))[0] == ERROR
    with admin.begin() as connection:
        for statement in grant_statements(ROLE):
            connection.execute(text(statement))
    assert _privileges(_as_reader(migrated)) == (OK, f"role {ROLE} may do what the scorer does with its tables")
    assert _record_of_reads(_as_reader(migrated)) == (
        OK, f"role {ROLE} may only add to the record of who read students' data")


async def test_a_write_the_role_may_not_make_is_an_outage_and_waits_for_the_grant(admin: Engine, migrated: str) -> None:
    rng = random.Random(4)
    rows = MemoryRowSink()
    await drive(Pipeline(pipeline_config(Settings()), InMemoryStudentStore(), Sent().send, NoScoring(), rows), "",
                history(rng, students=3), rng, redeliver=False)
    sink = await PostgresSink.open(_as_reader(migrated))
    try:
        with pytest.raises(DBAPIError) as refused:
            await sink.write(list(rows.current.values()), list(rows.transitions.values()))
        assert refused.value.orig.pgcode == "42501"  # insufficient_privilege
        assert dependency_of(refused.value) == "postgres"
        with admin.begin() as connection:
            connection.execute(text(f"GRANT INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO {ROLE}"))
            connection.execute(text(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {ROLE}"))
        await sink.write([], [])  # what stayed buffered goes out once the grant is back
        with admin.connect() as connection:
            stored = {tuple(row) for row in connection.execute(text("SELECT user_id, enrolment FROM students_current"))}
        assert set(rows.current) <= stored and rows.current
    finally:
        await sink.close()


def test_scorer_check_says_who_must_create_the_schema_when_the_role_cannot(admin: Engine, migrated: str) -> None:
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("DROP DATABASE IF EXISTS scorer_fresh"))
        connection.execute(text("CREATE DATABASE scorer_fresh"))
    fresh = make_url(migrated).set(database="scorer_fresh")
    engine = create_engine(fresh)
    try:
        with engine.begin() as connection:
            connection.execute(text("REVOKE CREATE ON SCHEMA public FROM PUBLIC"))
        reader = fresh.set(username=ROLE, password="pw").render_as_string(hide_password=False)
        assert _privileges(reader) == (ERROR, f"role {ROLE} may not create tables in its schema, and the schema is "
                                              "not at the code's version: run `scorer migrate` as the schema's owner")
        assert _privileges(fresh.render_as_string(hide_password=False))[0] == OK  # the owner may
    finally:
        engine.dispose()
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("DROP DATABASE scorer_fresh"))


@pytest.mark.parametrize(("change", "undo", "code"), [
    ("ALTER TABLE status_transitions RENAME COLUMN reasons TO why", "ALTER TABLE status_transitions RENAME COLUMN why "
     "TO reasons", "42703"),
    ("ALTER TABLE status_transitions RENAME TO transitions_renamed", "ALTER TABLE transitions_renamed RENAME TO "
     "status_transitions", "42P01"),
])
async def test_a_schema_this_code_does_not_know_is_an_outage(admin: Engine, migrated: str, change: str, undo: str,
                                                             code: str) -> None:
    """A migration of the next release dropped or renamed what this one writes, while a worker of this one still
    runs (a rolling update): its writes fail on every record alike, so it holds its batch until it is replaced."""
    rng = random.Random(5)
    rows = MemoryRowSink()
    await drive(Pipeline(pipeline_config(Settings()), InMemoryStudentStore(), Sent().send, NoScoring(), rows), "",
                history(rng, students=3), rng, redeliver=False)
    assert rows.transitions, "the history has status changes to write"
    sink = await PostgresSink.open(migrated)
    try:
        with admin.begin() as connection:
            connection.execute(text(change))
        try:
            with pytest.raises(DBAPIError) as refused:
                await sink.write([], list(rows.transitions.values()))
        finally:
            with admin.begin() as connection:
                connection.execute(text(undo))
        assert refused.value.orig.pgcode == code
        assert dependency_of(refused.value) == "postgres"
        await sink.write([], [])  # the buffered transitions go out once the schema is back
    finally:
        await sink.close()


DATA_PROTECTION_ROLE = "scorer_privacy"
#: Added to the history's user ids: students no other test of the shared database has, nor their reads.
OWN_IDS = 985_000


@pytest.fixture()
def two_roles(admin: Engine, migrated: str) -> Iterator[tuple[str, str]]:
    """ROLE granted exactly what `scorer check --grants` gives the workers, DATA_PROTECTION_ROLE exactly what it
    gives the data-protection commands: (each one's URL)."""
    with admin.begin() as connection:
        connection.execute(text(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {ROLE}"))
        connection.execute(text(f"DROP ROLE IF EXISTS {DATA_PROTECTION_ROLE}"))
        connection.execute(text(f"CREATE ROLE {DATA_PROTECTION_ROLE} LOGIN PASSWORD 'pw'"))
        for statement in [*grant_statements(ROLE), *grant_statements(DATA_PROTECTION_ROLE, DATA_PROTECTION)]:
            connection.execute(text(statement))
    url = make_url(migrated)
    yield (_as_reader(migrated),
           url.set(username=DATA_PROTECTION_ROLE, password="pw").render_as_string(hide_password=False))
    with admin.begin() as connection:
        connection.execute(text(f"DROP OWNED BY {DATA_PROTECTION_ROLE}"))
        connection.execute(text(f"DROP ROLE {DATA_PROTECTION_ROLE}"))


async def test_the_workers_role_only_adds_to_the_record_of_reads_and_the_data_protection_role_does_the_rest(
        two_roles: tuple[str, str], admin: Engine, migrated: str) -> None:
    """What the workers do works with the grants printed for them (their record of a read included), and what they
    must not do to the record of reads is refused; `scorer forget`, `prune`, `export-student` and `reads` work with
    the data-protection role's grants alone."""
    serving, data_protection = two_roles
    rng = random.Random(6)
    rows = MemoryRowSink()
    events = [(topic, {**record, "user_id": record["user_id"] + OWN_IDS}) for topic, record in history(rng, 3)]
    await drive(Pipeline(pipeline_config(Settings()), InMemoryStudentStore(), Sent().send, NoScoring(), rows), "",
                events, rng, redeliver=False)
    users = sorted({user_id for user_id, _ in rows.current})
    sink = await PostgresSink.open(serving)
    try:
        await sink.write(list(rows.current.values()), list(rows.transitions.values()))
    finally:
        await sink.close()
    data_reads.record(serving, data_reads.DataRead("Anna", "console", "course", users, 3))
    engine = create_engine(serving)
    try:
        for statement in ("UPDATE student_data_reads SET reader = 'nobody'", "DELETE FROM student_data_reads",
                          "TRUNCATE student_data_reads", "DELETE FROM students_current"):
            with pytest.raises(DBAPIError) as refused, engine.begin() as connection:
                connection.execute(text(statement))
            assert refused.value.orig.pgcode == "42501", statement  # insufficient_privilege
    finally:
        engine.dispose()
    with pytest.raises(DBAPIError):  # the workers' role cannot erase a student either
        await asyncio.to_thread(erase_students, serving, users[:1])

    settings = Settings(database_url=data_protection, operator="Olga")
    copy = await asyncio.to_thread(export_students, settings, users[:1])
    theirs = copy["students"][str(users[0])]["postgres"]
    assert theirs["students_current"] and [(r["reader"], r["page"]) for r in theirs[data_reads.TABLE]] == [
        ("Anna", "course"), ("Olga", "export-student")]
    assert [r["reader"] for r in data_reads.reads(data_protection, user_id=users[0])] == ["Olga", "Anna"]
    erased = (await asyncio.to_thread(forget, settings, users[:1]))["postgres"]
    assert erased["students_current"] > 0 and erased[data_reads.TABLE] == 2
    assert data_reads.drop_before(data_protection, datetime(2001, 1, 1, tzinfo=UTC)) == 0  # allowed: no refusal
    level, detail = _period_finding(data_protection, 30)  # migrated: kept for ever
    assert level == WARN and "keeps them for ever" in detail and "`scorer prune` deletes nothing;" in detail
    data_reads.keep_for(migrated, 7)  # as the schema's owner
    assert data_reads.kept_days(data_protection) == 7  # it reads the owner's period, and may not change it
    assert _period_finding(data_protection, 7)[0] == OK
    level, detail = _period_finding(data_protection, 30)  # the prune job asks 30 days; migrate set 7
    assert level == WARN and "asks 30 days, the database keeps them 7 days" in detail and "younger than 30" in detail
    assert _period_finding(serving, 30) is None  # the workers' role may not read the period: nothing to compare
    engine = create_engine(data_protection)
    try:
        for statement in ("UPDATE student_data_reads SET reader = 'nobody'", "DELETE FROM student_data_reads",
                          "UPDATE read_record_policy SET keep_days = 1"):
            with pytest.raises(DBAPIError) as refused, engine.begin() as connection:
                connection.execute(text(statement))
            assert refused.value.orig.pgcode == "42501", statement  # granted UPDATE and DELETE, held by the triggers
    finally:
        engine.dispose()
        data_reads.keep_for(migrated, 0)
    with admin.connect() as connection:
        left = set(connection.execute(text("SELECT DISTINCT user_id FROM students_current")).scalars())
    assert left & set(users) == set(users[1:])  # the others' rows stay
