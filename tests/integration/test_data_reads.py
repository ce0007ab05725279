"""The record of who read students' data, on a real Postgres: written as the pages write it, found by reader,
student and time (`scorer reads`), and dropped past SCORER_READ_RECORDS_DAYS by `scorer prune`."""
from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from helpers.postgres_rows import unguarded
from storage.postgres.data_reads import (
    DataRead,
    drop_before,
    keep_for,
    kept_days,
    readers,
    reads,
    reads_of,
    record,
    take_out,
)
from streams.cli import main
from streams.settings import Settings
from streams.tokens import SHARED_READER
from streams.tools.personal_data import prune


def _age(database_url: str, reader: str, days: int) -> None:
    engine = create_engine(database_url)
    with engine.begin() as connection:
        unguarded(connection).execute(text("UPDATE student_data_reads SET read_at = now() - make_interval(days => "
                                           ":days) WHERE reader = :reader"), {"days": days, "reader": reader})
    engine.dispose()


def _refused(database_url: str, statement: str) -> str:
    """The message of the error Postgres refuses `statement` with, insufficient_privilege."""
    engine = create_engine(database_url)
    try:
        with pytest.raises(DBAPIError) as refused, engine.begin() as connection:
            connection.execute(text(statement))
    finally:
        engine.dispose()
    assert refused.value.orig.pgcode == "42501", statement
    return str(refused.value.orig)


def test_reads_are_found_by_reader_student_and_time(db: str) -> None:
    record(db, DataRead("Anna Petrova", "console", "course", [12, 11, 12, 13], 77))  # a list names each once
    record(db, DataRead("Boris", "read_api", "student", [11]))
    record(db, DataRead(SHARED_READER, "read_api", "at_risk", [], 78))  # an empty list is read too
    _age(db, "Anna Petrova", 40)

    newest_first = reads(db)
    assert [(r["reader"], r["page"], r["students"], r["user_ids"]) for r in newest_first] == [
        (SHARED_READER, "at_risk", 0, []), ("Boris", "student", 1, [11]), ("Anna Petrova", "course", 3, [11, 12, 13])]
    assert [r["reader"] for r in reads(db, user_id=11)] == ["Boris", "Anna Petrova"]
    assert [r["reader"] for r in reads(db, reader="Anna Petrova")] == ["Anna Petrova"]
    assert reads(db, reader="Anna Petrova", user_id=13)[0]["course_id"] == 77
    assert [r["reader"] for r in reads(db, since=datetime.now(UTC) - timedelta(days=1))] == [SHARED_READER, "Boris"]
    assert len(reads(db, limit=1)) == 1
    assert reads(db, user_id=99) == []
    review = readers(db)  # who read the most students first
    assert [(r["reader"], r["answers"], r["students"]) for r in review] == [
        ("Anna Petrova", 1, 3), ("Boris", 1, 1), (SHARED_READER, 1, 0)]
    assert review[0]["first_read_at"] == review[0]["last_read_at"]
    assert [r["reader"] for r in readers(db, since=datetime.now(UTC) - timedelta(days=1))] == ["Boris", SHARED_READER]
    by_student = reads_of(db, [12, 11, 99])
    assert [r["reader"] for r in by_student[11]] == ["Anna Petrova", "Boris"]  # oldest first
    assert by_student[99] == [] and set(by_student[12][0]) == {"read_at", "reader", "door", "page", "course_id"}


async def test_prune_drops_records_past_their_period_and_the_cli_lists_them(
        db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    record(db, DataRead("Anna Petrova", "console", "student", [21]))
    record(db, DataRead("Boris", "console", "student", [22]))
    _age(db, "Anna Petrova", 400)
    a_year_ago = datetime.now(UTC) - timedelta(days=365)
    keep_for(db, 0)  # what the schema's owner set: for ever, so nothing goes
    assert drop_before(db, a_year_ago, dry_run=True) == 0 and drop_before(db, a_year_ago) == 0
    keep_for(db, 500)  # the longer period wins
    assert drop_before(db, a_year_ago, dry_run=True) == 0

    settings = Settings(database_url=db, read_records_days=365, operator="Olga")
    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)
    assert await asyncio.to_thread(main, ["migrate"]) == 0  # the owner sets the database's period from the settings
    assert kept_days(db) == 365
    assert drop_before(db, a_year_ago, dry_run=True) == 1
    assert len(reads(db)) == 2
    report = await asyncio.to_thread(prune, settings, 0)  # no student retention: only the records
    assert report["retention_days"] == 0 and "students" not in report
    assert report["read_records"]["deleted"] == 1 and report["read_records"]["database_keeps_days"] == 365
    assert [r["reader"] for r in reads(db)] == ["Boris"]

    capsys.readouterr()
    assert await asyncio.to_thread(main, ["prune", "--dry-run"]) == 0  # SCORER_READ_RECORDS_DAYS alone will do
    assert json.loads(capsys.readouterr().out)["read_records"]["deleted"] == 0
    assert await asyncio.to_thread(main, ["reads", "--student", "22", "--since", "2020-01-01"]) == 0
    listed = json.loads(capsys.readouterr().out)["reads"]
    assert [(r["reader"], r["user_ids"]) for r in listed] == [("Boris", [22])]
    # the list named student 22 and who read them: itself a read, recorded
    assert [(r["reader"], r["door"], r["page"], r["user_ids"]) for r in reads(db, reader="Olga")] == [
        ("Olga", "cli", "reads", [22])]
    assert await asyncio.to_thread(main, ["reads", "--reader", "Anna Petrova"]) == 0
    assert json.loads(capsys.readouterr().out) == {"reads": []}
    record(db, DataRead("Boris", "console", "course", [22, 23], 3))
    assert await asyncio.to_thread(main, ["reads", "--by-reader"]) == 0  # counts, no student: not recorded
    review = {r["reader"]: (r["answers"], r["students"]) for r in json.loads(capsys.readouterr().out)["readers"]}
    assert review == {"Boris": (2, 2), "Olga": (2, 1)}  # Olga's second list named no one
    monkeypatch.setenv("SCORER_READ_RECORDS_DAYS", "0")
    assert await asyncio.to_thread(main, ["prune"]) == 2  # nothing to prune by: it refuses


def test_no_role_may_rewrite_empty_or_cut_short_the_record_of_reads(db: str) -> None:
    """The triggers of migration 0008 hold every role to what `forget` and `prune` do, the schema's owner included
    (this test's role): a record may lose students, and go once past the database's period; nothing else."""
    record(db, DataRead("Anna Petrova", "console", "course", [31, 32, 33], 5))
    record(db, DataRead("Boris", "read_api", "student", [32]))
    _age(db, "Anna Petrova", 40)
    keep_for(db, 30)
    for statement in ("UPDATE student_data_reads SET reader = 'nobody'",
                      "UPDATE student_data_reads SET read_at = now() - interval '1 year'",
                      "UPDATE student_data_reads SET page = 'student' WHERE reader = 'Anna Petrova'",
                      "UPDATE student_data_reads SET user_ids = '{31, 99}' WHERE reader = 'Anna Petrova'",
                      "TRUNCATE student_data_reads"):
        assert "record of who read" in _refused(db, statement)
    assert "kept 30 days" in _refused(db, "DELETE FROM student_data_reads")  # Boris's is a day old
    engine = create_engine(db)
    try:
        with engine.begin() as connection:
            assert take_out(connection, [32]) == 2  # what `scorer forget` does
    finally:
        engine.dispose()
    assert [(r["reader"], r["user_ids"]) for r in reads(db)] == [("Boris", []), ("Anna Petrova", [31, 33])]
    assert drop_before(db, datetime.now(UTC)) == 1  # Anna's, past the 30 days; Boris's stays
    assert [r["reader"] for r in reads(db)] == ["Boris"]
