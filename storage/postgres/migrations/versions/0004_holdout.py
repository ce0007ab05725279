"""The notification holdout: which recorded alerts were held back, to measure what notifications do.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29

status_transitions gets `held_out`: the enrolment is in the holdout (SCORER_HOLDOUT_SHARE), so
the alert was recorded but not delivered. Rows written before this revision were all deliverable:
false.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("status_transitions", sa.Column("held_out", sa.Boolean(), nullable=False,
                                                  server_default=sa.false()))


def downgrade() -> None:
    op.drop_column("status_transitions", "held_out")
