"""The migrations build the schema the models describe, and upgrading is safe to repeat and to race."""
from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, create_engine, inspect, make_url, text

from storage.postgres.migrate import upgrade
from storage.postgres.tables import Base

TABLES = {"students_current", "score_history", "status_transitions", "model_versions", "student_data_reads",
          "read_record_policy", "alembic_version"}


@contextlib.contextmanager
def fresh_database(postgres_url: str) -> Iterator[str]:
    """A new empty database on the fixture's server, dropped afterwards."""
    name = f"edu_scorer_mig_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def empty_url(postgres_url: str) -> Iterator[str]:
    with fresh_database(postgres_url) as url:
        yield url


def _schema(url: str) -> tuple[set[str], set[str], str]:
    engine = create_engine(url)
    try:
        inspector = inspect(engine)
        with engine.connect() as connection:
            head = connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        return set(inspector.get_table_names()), set(inspector.get_view_names()), head
    finally:
        engine.dispose()


def test_upgrade_creates_tables_and_view(empty_url: str) -> None:
    upgrade(empty_url)
    tables, views, head = _schema(empty_url)
    assert tables == TABLES
    assert views == {"course_critical_points"}
    assert head == "0008"


def _upgrade_to(connection: Connection, revision: str) -> None:
    """An older schema, as a database created by an earlier release has it."""
    from alembic import command
    from alembic.config import Config

    from storage.postgres.migrate import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def test_rows_from_before_enrolments_survive_the_upgrade(empty_url: str) -> None:
    """0002 keys rows by enrolment: a 0001 database's rows stay, as each student's "" enrolment."""
    engine = create_engine(empty_url)
    with engine.begin() as connection:
        _upgrade_to(connection, "0001")
        connection.execute(text("INSERT INTO students_current (user_id, status, updated_at) "
                                "VALUES (7, 'asleep', '2024-01-01')"))
    upgrade(empty_url)
    with engine.begin() as connection:
        assert connection.execute(text("SELECT user_id, enrolment, status FROM students_current")).all() == [
            (7, "", "asleep")]
        connection.execute(text("INSERT INTO students_current (user_id, enrolment, status, updated_at) "
                                "VALUES (7, '3:2', 'finished', '2024-06-01')"))  # a second enrolment
    engine.dispose()


def test_versions_from_before_metrics_by_week_keep_their_metrics_and_have_none_by_week(empty_url: str) -> None:
    engine = create_engine(empty_url)
    with engine.begin() as connection:
        _upgrade_to(connection, "0004")
        connection.execute(text("INSERT INTO model_versions (model, version, metrics) "
                                """VALUES ('forest', 3, '{"dropout_auc": 0.7}')"""))
    upgrade(empty_url)
    with engine.connect() as connection:
        row = connection.execute(text("SELECT metrics, metrics_by_week FROM model_versions")).one()
    engine.dispose()
    assert row.metrics == {"dropout_auc": 0.7} and row.metrics_by_week is None


def test_upgrade_twice_is_a_noop_and_keeps_data(empty_url: str) -> None:
    upgrade(empty_url)
    engine = create_engine(empty_url)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO model_versions (model, version) VALUES ('progress', 1)"))
    upgrade(empty_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM model_versions")).scalar_one() == 1
        assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
    engine.dispose()
    assert _schema(empty_url)[:2] == (TABLES, {"course_critical_points"})


def test_concurrent_upgrades_both_succeed(empty_url: str) -> None:
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker() -> None:
        start.wait()
        try:
            upgrade(empty_url)
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert _schema(empty_url)[0] == TABLES


def test_models_match_migrations(empty_url: str) -> None:
    upgrade(empty_url)
    engine = create_engine(empty_url)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert diff == []
