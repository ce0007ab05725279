"""A row per enrolment (student, course, flow), the "finished" status, and where a student stopped.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29

A student may hold several enrolments (two courses, or the same course again in a later flow):
students_current and score_history are keyed by (user_id, enrolment) with enrolment = "course:flow",
and status_transitions records the enrolment and its flow. An enrolment's lifecycle ends with
the status "finished". Rows written before this revision get the enrolment "" (one per student).
"""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

STATUSES = "('active', 'dozing', 'asleep', 'finished')"
OLD_STATUSES = "('active', 'dozing', 'asleep')"

# Where in a course students stop: per place (module, theme, task, course week of the student's last
# activity before going quiet), transitions into dozing/asleep and the share of the course's
# enrolments that made one there, with the theme's name. Worst places (most falling asleep) first.
CRITICAL_POINTS_VIEW = """
CREATE VIEW course_critical_points AS
WITH places AS (
    SELECT course_id, module, theme_id, course_week, task_id,
           max(theme) AS theme, max(task_name) AS task_name,
           count(*) FILTER (WHERE to_status = 'dozing') AS to_dozing,
           count(*) FILTER (WHERE to_status = 'asleep') AS to_asleep,
           count(DISTINCT (user_id, enrolment)) AS students
    FROM status_transitions
    WHERE to_status IN ('dozing', 'asleep')
    GROUP BY course_id, module, theme_id, course_week, task_id
), enrolled AS (
    SELECT course_id, count(*) AS course_students
    FROM students_current
    GROUP BY course_id
)
SELECT p.course_id, p.module, p.theme_id, p.theme, p.course_week, p.task_id, p.task_name,
       p.to_dozing, p.to_asleep, p.students,
       coalesce(e.course_students, 0) AS course_students,
       p.students::double precision / nullif(e.course_students, 0) AS share,
       row_number() OVER (
           PARTITION BY p.course_id
           ORDER BY p.to_asleep DESC, p.to_dozing DESC, p.students DESC, p.module, p.course_week, p.task_id
       ) AS rank_in_course
FROM places p
LEFT JOIN enrolled e ON e.course_id = p.course_id
ORDER BY p.to_asleep DESC, p.to_dozing DESC, p.students DESC, p.course_id, p.module, p.course_week, p.task_id
"""
#: transition columns this revision adds: the enrolment, and where the student stopped
NEW_TRANSITION_COLUMNS: tuple[tuple[str, sa.types.TypeEngine[Any], dict[str, Any]], ...] = (
    ("enrolment", sa.String(64), {"nullable": False, "server_default": ""}),
    ("flow_num", sa.Integer(), {}),
    ("kind", sa.String(16), {"nullable": False, "server_default": "status_change"}),
    ("theme_id", sa.BigInteger(), {}),
    ("theme", sa.String(500), {}),
    ("task_name", sa.String(500), {}),
    ("next_task_id", sa.BigInteger(), {}),
    ("next_due_at", sa.DateTime(), {}),
)


def upgrade() -> None:
    op.add_column("students_current", sa.Column("enrolment", sa.String(64), nullable=False, server_default=""))
    op.drop_constraint("students_current_pkey", "students_current", type_="primary")
    op.create_primary_key("students_current_pkey", "students_current", ["user_id", "enrolment"])
    op.add_column("score_history", sa.Column("enrolment", sa.String(64), nullable=False, server_default=""))
    op.drop_index("uq_score_history_key", table_name="score_history")
    op.create_index("uq_score_history_key", "score_history",
                    ["user_id", "enrolment", "as_of", sa.text("coalesce(model_version, -1)")], unique=True)
    for name, type_, options in NEW_TRANSITION_COLUMNS:
        op.add_column("status_transitions", sa.Column(name, type_, **options))
    op.execute("DROP VIEW course_critical_points")
    op.execute(CRITICAL_POINTS_VIEW)
    for table, column, name in (("students_current", "status", "ck_students_current_status"),
                                ("score_history", "status", "ck_score_history_status"),
                                ("status_transitions", "to_status", "ck_status_transitions_to_status")):
        op.drop_constraint(name, table, type_="check")
        op.create_check_constraint(name, table, f"{column} IN {STATUSES}")


def downgrade() -> None:
    for table, column, name in (("students_current", "status", "ck_students_current_status"),
                                ("score_history", "status", "ck_score_history_status"),
                                ("status_transitions", "to_status", "ck_status_transitions_to_status")):
        op.execute(f"DELETE FROM {table} WHERE {column} = 'finished'")
        op.drop_constraint(name, table, type_="check")
        op.create_check_constraint(name, table, f"{column} IN {OLD_STATUSES}")
    op.execute("DROP VIEW course_critical_points")
    for name, _, _ in NEW_TRANSITION_COLUMNS:
        op.drop_column("status_transitions", name)
    script = op.get_context().script
    assert script is not None
    op.execute(script.get_revision("0001").module.CRITICAL_POINTS_VIEW)  # 0001's own view
    op.drop_index("uq_score_history_key", table_name="score_history")
    op.create_index("uq_score_history_key", "score_history",
                    ["user_id", "as_of", sa.text("coalesce(model_version, -1)")], unique=True)
    op.drop_column("score_history", "enrolment")
    op.execute("DELETE FROM students_current a USING students_current b "
               "WHERE a.user_id = b.user_id AND a.updated_at < b.updated_at")
    op.drop_constraint("students_current_pkey", "students_current", type_="primary")
    op.create_primary_key("students_current_pkey", "students_current", ["user_id"])
    op.drop_column("students_current", "enrolment")
