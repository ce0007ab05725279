"""What answered for each score: the learned model, or the label-free guess (leveled by outcomes or not).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

students_current, score_history and status_transitions get `basis`, a JSON object from each score's
name (progress, p_dropout, p_success) to what answered it (streams.contract.outputs.Basis): a
probability the label-free guess gave before any outcome ranks students but is not a frequency, and
a calibration check should tell it from a learned one. NULL in rows written before this revision.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TABLES = ("students_current", "score_history", "status_transitions")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("basis", JSONB(none_as_null=True)))


def downgrade() -> None:
    for table in TABLES:
        op.drop_column(table, "basis")
