"""The scorer's tables emptied, and reads aged, past the triggers that guard the record of reads (migration 0008):
as the superuser the tests connect as, with the triggers off for one transaction."""
from __future__ import annotations

from sqlalchemy import Connection, create_engine, text

SCORER_TABLES = ("students_current", "score_history", "status_transitions", "model_versions", "student_data_reads")


def unguarded(connection: Connection) -> Connection:
    """`connection`'s transaction with no ordinary trigger firing (session_replication_role: superusers only)."""
    connection.execute(text("SET LOCAL session_replication_role = replica"))
    return connection


def empty_tables(database_url: str) -> None:
    """Every row of the scorer's tables gone, the record of reads' included, and its period as migrated (for ever)."""
    engine = create_engine(database_url)
    with engine.begin() as connection:
        unguarded(connection).execute(text(f"TRUNCATE {', '.join(SCORER_TABLES)}"))
        connection.execute(text("UPDATE read_record_policy SET keep_days = 0"))
    engine.dispose()
