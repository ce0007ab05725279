"""Which of the scorer's tables and sequences the connected role may not use as the scorer does: asked of the
server's own privilege functions, read-only, so `scorer check` can name a grant lost in a migration or a role
made read-only before a worker meets it as `insufficient_privilege` on its first batch."""
from __future__ import annotations

from typing import Any

from sqlalchemy import text

from storage.postgres.tables import Base

#: What is done with every table: the workers and the trainer read and upsert, `scorer forget` and `scorer prune`
#: delete.
TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")
#: Alembic's own table: every worker reads it when it starts (its upgrade runs only when the schema is behind).
VERSION_TABLE = "alembic_version"

# CASE, not AND: Postgres may evaluate a condition's parts in any order, and the privilege functions raise on a
# relation that is missing or not of their kind.
_MISSING_ON_TABLES = text("""
    SELECT t.name, p.privilege
    FROM unnest(CAST(:tables AS text[])) WITH ORDINALITY AS t(name, position)
    CROSS JOIN unnest(CAST(:privileges AS text[])) WITH ORDINALITY AS p(privilege, rank)
    WHERE CASE WHEN to_regclass(t.name) IS NULL THEN FALSE ELSE NOT has_table_privilege(t.name, p.privilege) END
    ORDER BY t.position, p.rank""")
_MISSING_ON_SEQUENCES = text("""
    SELECT s.relname
    FROM pg_class s
    JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid AND d.deptype IN ('a', 'i')
    WHERE d.refobjid = ANY (SELECT to_regclass(name) FROM unnest(CAST(:tables AS text[])) AS name)
      AND CASE WHEN s.relkind = 'S' THEN NOT has_sequence_privilege(s.oid, 'USAGE') ELSE FALSE END
    ORDER BY s.relname""")


def missing(connection: Any) -> list[str]:
    """Each privilege the role lacks, as "INSERT on students_current"; tables not created yet are left out."""
    tables = list(Base.metadata.tables)
    lacking = [f"{privilege} on {name}" for name, privilege in connection.execute(
        _MISSING_ON_TABLES, {"tables": tables, "privileges": list(TABLE_PRIVILEGES)})]
    lacking += [] if _version_readable(connection) else [f"SELECT on {VERSION_TABLE}"]
    return lacking + [f"USAGE on sequence {name}" for (name,) in connection.execute(_MISSING_ON_SEQUENCES,
                                                                                     {"tables": tables})]


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


def grant_statements(role: str) -> list[str]:
    """SQL that gives `role` what `missing` asks of it, run by the schema's owner once `scorer migrate` created it."""
    tables = Base.metadata.tables.values()
    sequences = [f"{table.name}_{table.autoincrement_column.name}_seq" for table in tables
                 if table.autoincrement_column is not None]  # a serial key's sequence, by Postgres's naming
    return [f"GRANT {', '.join(TABLE_PRIVILEGES)} ON {', '.join(table.name for table in tables)} TO {role};",
            f"GRANT USAGE ON SEQUENCE {', '.join(sequences)} TO {role};",
            f"GRANT SELECT ON {VERSION_TABLE} TO {role};"]


def may_create_tables(connection: Any) -> bool:
    """Whether `scorer migrate` (or the first worker) could create the schema's tables here."""
    return bool(connection.execute(text("SELECT has_schema_privilege(current_schema(), 'CREATE')")).scalar())
