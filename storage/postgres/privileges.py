"""Which of the scorer's tables and sequences the connected role may not use as the scorer does: asked of the
server's own privilege functions, read-only, so `scorer check` can name a grant lost in a migration or a role
made read-only before a worker meets it as `insufficient_privilege` on its first batch."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from storage.postgres.data_reads import TABLE as READS
from storage.postgres.personal_data import STUDENT_TABLES
from storage.postgres.tables import Base, ReadRecordPolicy

POLICY = ReadRecordPolicy.__tablename__
#: Everything done with a table's rows (the data-protection role's on the record of reads).
TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")
#: Alembic's own table: every worker reads it when it starts (its upgrade runs only when the schema is behind).
VERSION_TABLE = "alembic_version"
#: Ways to change or empty the record of who read students' data, which the serving role must not have.
ALTERING = ("UPDATE", "DELETE", "TRUNCATE")


@dataclass(frozen=True)
class Needs:
    """What one kind of process does with each of the scorer's tables (the privileges, by table name), and whether
    it reads the schema's version (a worker does when it starts)."""

    tables: dict[str, tuple[str, ...]]
    reads_version: bool

    def sequences(self) -> list[str]:
        """The serial keys' sequences of the tables it inserts into, by Postgres's naming."""
        return [f"{name}_{table.autoincrement_column.name}_seq" for name, table in Base.metadata.tables.items()
                if "INSERT" in self.tables.get(name, ()) and table.autoincrement_column is not None]


#: The workers, the trainer, the read API and the console: they read and upsert the snapshots and the model
#: versions, and only add to the record of who read students' data (`data_reads.record`), so that neither a
#: serving process nor whoever holds its credentials can change or delete what it records.
SERVING = Needs({**{name: ("SELECT", "INSERT", "UPDATE") for name in Base.metadata.tables
                    if name not in (READS, POLICY)}, READS: ("INSERT",)}, reads_version=True)
#: `scorer forget`, `prune`, `export-student` and `reads`: they read and delete the students' rows, and read,
#: add to (a copy is a read), take students out of and delete (past SCORER_READ_RECORDS_DAYS and the period the schema's
#: owner set, which they read) the record of reads. A trigger holds them to that (migration 0008), whatever the grants.
DATA_PROTECTION = Needs({**{table.__tablename__: ("SELECT", "DELETE") for table in STUDENT_TABLES},
                         READS: TABLE_PRIVILEGES, POLICY: ("SELECT",)}, reads_version=False)

# CASE, not AND: Postgres may evaluate a condition's parts in any order, and the privilege functions raise on a
# relation that is missing or not of their kind.
_MISSING_ON_TABLES = text("""
    SELECT t.name, t.privilege
    FROM unnest(CAST(:tables AS text[]), CAST(:privileges AS text[])) WITH ORDINALITY AS t(name, privilege, position)
    WHERE CASE WHEN to_regclass(t.name) IS NULL THEN FALSE ELSE NOT has_table_privilege(t.name, t.privilege) END
    ORDER BY t.position""")
_MISSING_ON_SEQUENCES = text("""
    SELECT s.relname
    FROM unnest(CAST(:sequences AS text[])) AS name
    JOIN pg_class s ON s.oid = to_regclass(name) AND s.relkind = 'S'
    WHERE NOT has_sequence_privilege(s.oid, 'USAGE')
    ORDER BY s.relname""")


def missing(connection: Any, needs: Needs = SERVING) -> list[str]:
    """Each privilege the role lacks for `needs`, as "INSERT on students_current"; tables not created yet are
    left out."""
    pairs = [(name, privilege) for name, privileges in needs.tables.items() for privilege in privileges]
    lacking = [f"{privilege} on {name}" for name, privilege in connection.execute(
        _MISSING_ON_TABLES, {"tables": [name for name, _ in pairs], "privileges": [p for _, p in pairs]})]
    lacking += [] if not needs.reads_version or _version_readable(connection) else [f"SELECT on {VERSION_TABLE}"]
    return lacking + [f"USAGE on sequence {name}" for (name,) in connection.execute(
        _MISSING_ON_SEQUENCES, {"sequences": needs.sequences()})]


def may_alter_reads(connection: Any) -> list[str] | None:
    """Which of `ALTERING` the role may do to the record of reads (the table's owner may do all); None while the
    table is not created yet."""
    if not connection.execute(text("SELECT to_regclass(:name) IS NOT NULL"), {"name": READS}).scalar():
        return None
    return [privilege for privilege in ALTERING if connection.execute(
        text("SELECT has_table_privilege(:name, :privilege)"), {"name": READS, "privilege": privilege}).scalar()]


def schema_version(connection: Any) -> str | None:
    """The schema's Alembic revision; None when it is not created yet, or this role may not read it (`missing`
    names that)."""
    created = connection.execute(text("SELECT to_regclass(:name) IS NOT NULL"), {"name": VERSION_TABLE}).scalar()
    if not created or not _version_readable(connection):
        return None
    version = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
    return None if version is None else str(version)


def _version_readable(connection: Any) -> bool:
    """May this role read Alembic's table (True while it does not exist: nothing to grant yet)?"""
    return bool(connection.execute(
        text("SELECT CASE WHEN to_regclass(:name) IS NULL THEN TRUE ELSE has_table_privilege(:name, 'SELECT') END"),
        {"name": VERSION_TABLE}).scalar())


def grant_statements(role: str, needs: Needs = SERVING) -> list[str]:
    """SQL that gives `role` what `missing` asks of it for `needs`, run by the schema's owner once `scorer migrate`
    created the tables: one GRANT per set of privileges, then the sequences and Alembic's table."""
    by_privileges: dict[tuple[str, ...], list[str]] = {}
    for name, privileges in needs.tables.items():
        by_privileges.setdefault(privileges, []).append(name)
    statements = [f"GRANT {', '.join(privileges)} ON {', '.join(names)} TO {role};"
                  for privileges, names in by_privileges.items()]
    statements.append(f"GRANT USAGE ON SEQUENCE {', '.join(needs.sequences())} TO {role};")
    return statements + ([f"GRANT SELECT ON {VERSION_TABLE} TO {role};"] if needs.reads_version else [])


def may_create_tables(connection: Any) -> bool:
    """Whether `scorer migrate` (or the first worker) could create the schema's tables here."""
    return bool(connection.execute(text("SELECT has_schema_privilege(current_schema(), 'CREATE')")).scalar())
