"""Model quality per course week: each published version's prequential metrics by course week.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30

model_versions gets `metrics_by_week`, a JSON object from the course week (a string: "0".."20", 20
pooling later weeks) to that week's metrics, as ScoringModels.metrics_by_week reports them. Versions
published before this revision have NULL: their per-week metrics were never recorded.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("model_versions", sa.Column("metrics_by_week", JSONB(none_as_null=True)))


def downgrade() -> None:
    op.drop_column("model_versions", "metrics_by_week")
