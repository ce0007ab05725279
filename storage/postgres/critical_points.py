"""Where in a course students fall asleep: reads the course_critical_points view for `scorer critical-points`."""
from __future__ import annotations

from typing import Any

from sqlalchemy import text

from storage.postgres.db import shared_engine, timed

_QUERY = text("""
SELECT course_id, module, course_week, task_id, to_dozing, to_asleep, students, course_students, share,
       rank_in_course
FROM course_critical_points
WHERE CAST(:course_id AS bigint) IS NULL OR course_id = :course_id
ORDER BY to_asleep DESC, to_dozing DESC, students DESC, course_id, rank_in_course
LIMIT :limit
""")

_COLUMNS = (  # header, key, format
    ("course", "course_id", "{}"),
    ("module", "module", "{}"),
    ("week", "course_week", "{}"),
    ("task", "task_id", "{}"),
    ("->dozing", "to_dozing", "{}"),
    ("->asleep", "to_asleep", "{}"),
    ("students", "students", "{}"),
    ("of course", "course_students", "{}"),
    ("share", "share", "{:.1%}"),
)


def critical_points(database_url: str, course_id: int | None = None, limit: int = 20) -> list[dict[str, Any]]:
    """The worst places first (most transitions into asleep, then dozing), optionally of one course."""
    with timed("critical_points"), shared_engine(database_url).connect() as connection:
        result = connection.execute(_QUERY, {"course_id": course_id, "limit": limit})
        return [dict(row) for row in result.mappings()]


def format_table(rows: list[dict[str, Any]]) -> str:
    """A fixed-width text table; unknown places (no module/week/task) show as '-'."""
    if not rows:
        return "no transitions into dozing or asleep yet"
    cells = [[header for header, _, _ in _COLUMNS]]
    for row in rows:
        cells.append(["-" if row[key] is None else fmt.format(row[key]) for _, key, fmt in _COLUMNS])
    widths = [max(len(line[i]) for line in cells) for i in range(len(_COLUMNS))]
    return "\n".join("  ".join(cell.rjust(width) for cell, width in zip(line, widths)) for line in cells)
