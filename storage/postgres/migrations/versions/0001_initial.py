"""Snapshot tables and the course_critical_points view.

Revision ID: 0001
Revises:
Create Date: 2024-01-01
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

STATUSES = "('active', 'dozing', 'asleep')"

# Where in a course students fall asleep: per place, transitions into dozing/asleep and the
# share of the course's students who made one there. Worst places (most falling asleep) first.
CRITICAL_POINTS_VIEW = """
CREATE VIEW course_critical_points AS
WITH places AS (
    SELECT course_id, module, course_week, task_id,
           count(*) FILTER (WHERE to_status = 'dozing') AS to_dozing,
           count(*) FILTER (WHERE to_status = 'asleep') AS to_asleep,
           count(DISTINCT user_id) AS students
    FROM status_transitions
    WHERE to_status IN ('dozing', 'asleep')
    GROUP BY course_id, module, course_week, task_id
), enrolled AS (
    SELECT course_id, count(*) AS course_students
    FROM students_current
    GROUP BY course_id
)
SELECT p.course_id, p.module, p.course_week, p.task_id,
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


def upgrade() -> None:
    op.create_table(
        "students_current",
        sa.Column("user_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("course_id", sa.BigInteger()),
        sa.Column("flow_num", sa.Integer()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_since", sa.DateTime()),
        sa.Column("last_activity_at", sa.DateTime()),
        sa.Column("days_inactive", sa.Double()),
        sa.Column("progress_pred", sa.Double()),
        sa.Column("p_dropout", sa.Double()),
        sa.Column("p_success", sa.Double()),
        sa.Column("model_version", sa.Integer()),
        sa.Column("features", JSONB()),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("updated_wall", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(f"status IN {STATUSES}", name="ck_students_current_status"),
    )
    op.create_index("ix_students_current_course_status", "students_current", ["course_id", "status"])

    op.create_table(
        "score_history",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("course_id", sa.BigInteger()),
        sa.Column("as_of", sa.DateTime(), nullable=False),
        sa.Column("progress_pred", sa.Double()),
        sa.Column("p_dropout", sa.Double()),
        sa.Column("p_success", sa.Double()),
        sa.Column("model_version", sa.Integer()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.CheckConstraint(f"status IN {STATUSES}", name="ck_score_history_status"),
    )
    op.create_index("uq_score_history_key", "score_history",
                    ["user_id", "as_of", sa.text("coalesce(model_version, -1)")], unique=True)

    op.create_table(
        "status_transitions",
        sa.Column("alert_id", sa.String(128), primary_key=True),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("course_id", sa.BigInteger()),
        sa.Column("from_status", sa.String(16), nullable=False),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("days_inactive", sa.Double()),
        sa.Column("last_activity_at", sa.DateTime()),
        sa.Column("course_week", sa.Integer()),
        sa.Column("module", sa.Integer()),
        sa.Column("task_id", sa.BigInteger()),
        sa.Column("activity_id", sa.BigInteger()),
        sa.Column("progress_pred", sa.Double()),
        sa.Column("p_dropout", sa.Double()),
        sa.Column("p_success", sa.Double()),
        sa.Column("model_version", sa.Integer()),
        sa.Column("reasons", JSONB()),
        sa.CheckConstraint("from_status IN ('new', 'active', 'dozing', 'asleep')",
                           name="ck_status_transitions_from_status"),
        sa.CheckConstraint(f"to_status IN {STATUSES}", name="ck_status_transitions_to_status"),
    )
    op.create_index("ix_status_transitions_course_to_status", "status_transitions", ["course_id", "to_status"])
    op.create_index("ix_status_transitions_user_at", "status_transitions", ["user_id", "at"])

    op.create_table(
        "model_versions",
        sa.Column("model", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("created_at", sa.DateTime()),
        sa.Column("n_labels", sa.BigInteger()),
        sa.Column("metrics", JSONB()),
        sa.Column("params", JSONB()),
    )

    op.execute(CRITICAL_POINTS_VIEW)


def downgrade() -> None:
    op.execute("DROP VIEW course_critical_points")
    for table in ("model_versions", "status_transitions", "score_history", "students_current"):
        op.drop_table(table)
