"""Who read students' data: one row per answer of the read API or the console that carried it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04

`student_data_reads` holds when, who (a person's name from SCORER_API_TOKENS_FILE, or which shared
token), through which door and page, and the ids of the students the answer carried, so a school can
tell a student who saw their data (`scorer export-student`) and a data protection officer what one
person read (`scorer reads`).
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "student_data_reads",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("read_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("reader", sa.String(200), nullable=False),
        sa.Column("door", sa.String(16), nullable=False),
        sa.Column("page", sa.String(32), nullable=False),
        sa.Column("course_id", sa.BigInteger()),
        sa.Column("user_ids", ARRAY(sa.BigInteger()), nullable=False),
    )
    op.create_index("ix_student_data_reads_user_ids", "student_data_reads", ["user_ids"], postgresql_using="gin")
    op.create_index("ix_student_data_reads_read_at", "student_data_reads", ["read_at"])


def downgrade() -> None:
    op.drop_table("student_data_reads")
