"""Where in a course students stop: reads the course_critical_points view for `scorer critical-points`.

A place is the module, theme, task and course week of a student's last activity before they
went dozing or asleep (not where the calendar stood when the silence was noticed).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import text

from storage.postgres.db import shared_engine, timed

_QUERY = text("""
SELECT course_id, module, theme_id, theme, course_week, task_id, task_name, to_dozing, to_asleep, students,
       course_students, share, rank_in_course
FROM course_critical_points
WHERE CAST(:course_id AS bigint) IS NULL OR course_id = :course_id
ORDER BY to_asleep DESC, to_dozing DESC, students DESC, course_id, rank_in_course
LIMIT :limit
""")

_COLUMNS = (  # header, key, format
    ("course", "course_id", "{}"),
    ("module", "module", "{}"),
    ("theme", "theme", "{:.30}"),
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


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Per course, where students stop: transitions into dozing and asleep by course week of
    their last activity (stacked bars), the worst task of each week named above its bar."""
    import matplotlib

    matplotlib.use("Agg")  # files only
    import matplotlib.pyplot as plt

    courses = sorted({row["course_id"] for row in rows}, key=str)
    fig, axes = plt.subplots(len(courses) or 1, 1, figsize=(11, 3.6 * max(1, len(courses))), squeeze=False)
    for ax, course in zip(axes[:, 0], courses):
        weekly: dict[Any, dict[str, Any]] = {}
        for row in rows:
            if row["course_id"] != course or row["course_week"] is None:
                continue
            week = weekly.setdefault(row["course_week"], {"dozing": 0, "asleep": 0, "worst": row})
            week["dozing"] += row["to_dozing"]
            week["asleep"] += row["to_asleep"]
            if row["to_asleep"] + row["to_dozing"] > week["worst"]["to_asleep"] + week["worst"]["to_dozing"]:
                week["worst"] = row
        weeks = sorted(weekly)
        asleep = [weekly[w]["asleep"] for w in weeks]
        dozing = [weekly[w]["dozing"] for w in weeks]
        ax.bar(weeks, asleep, color="tab:red", label="fell asleep")
        ax.bar(weeks, dozing, bottom=asleep, color="tab:orange", label="fell into dozing")
        for week, low, high in zip(weeks, asleep, dozing):
            worst = weekly[week]["worst"]
            name = worst["theme"] or (f"task {worst['task_id']}" if worst["task_id"] is not None else "")
            ax.annotate(str(name)[:18], (week, low + high), ha="center", va="bottom", fontsize=7, rotation=30)
        ax.set_title(f"course {course}: where students stopped (course week of their last activity)", fontsize=10)
        ax.set_xlabel("course week")
        ax.set_ylabel("transitions")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
