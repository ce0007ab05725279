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

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

STATUSES = "('active', 'dozing', 'asleep', 'finished')"
OLD_STATUSES = "('active', 'dozing', 'asleep')"


def upgrade() -> None:
    op.add_column("students_current", sa.Column("enrolment", sa.String(64), nullable=False, server_default=""))
    op.drop_constraint("students_current_pkey", "students_current", type_="primary")
    op.create_primary_key("students_current_pkey", "students_current", ["user_id", "enrolment"])
    op.add_column("score_history", sa.Column("enrolment", sa.String(64), nullable=False, server_default=""))
    op.drop_index("uq_score_history_key", table_name="score_history")
    op.create_index("uq_score_history_key", "score_history",
                    ["user_id", "enrolment", "as_of", sa.text("coalesce(model_version, -1)")], unique=True)
    op.add_column("status_transitions", sa.Column("enrolment", sa.String(64), nullable=False, server_default=""))
    op.add_column("status_transitions", sa.Column("flow_num", sa.Integer()))
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
    op.drop_column("status_transitions", "flow_num")
    op.drop_column("status_transitions", "enrolment")
    op.drop_index("uq_score_history_key", table_name="score_history")
    op.create_index("uq_score_history_key", "score_history",
                    ["user_id", "as_of", sa.text("coalesce(model_version, -1)")], unique=True)
    op.drop_column("score_history", "enrolment")
    op.execute("DELETE FROM students_current a USING students_current b "
               "WHERE a.user_id = b.user_id AND a.updated_at < b.updated_at")
    op.drop_constraint("students_current_pkey", "students_current", type_="primary")
    op.create_primary_key("students_current_pkey", "students_current", ["user_id"])
    op.drop_column("students_current", "enrolment")
