"""Reasons as data: the factors (hypothesis, feature, value, norm, effect, sentence) behind a score.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29

students_current and status_transitions get `factors`, a JSON list of the model's factors
(online_models.explain), strongest first; NULL in rows written before this revision.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TABLES = ("students_current", "status_transitions")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("factors", JSONB(none_as_null=True)))


def downgrade() -> None:
    for table in TABLES:
        op.drop_column(table, "factors")
