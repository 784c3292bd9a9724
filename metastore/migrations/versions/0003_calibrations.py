"""Calibrations: per kit and quantity, calibrated = gain × raw + offset over [valid_from, valid_to).

Applied when data is read; the readings in InfluxDB stay as measured. A store from before has none.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# A migration keeps its own copy of the types: the models may change later, this step may not.
TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "calibrations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("site", sa.String(32), nullable=False),
        sa.Column("kit", sa.String(32), nullable=False),
        sa.Column("quantity", sa.String(64), nullable=False),
        sa.Column("offset", sa.Float, nullable=False),
        sa.Column("gain", sa.Float, nullable=False),
        sa.Column("valid_from", TZ, nullable=False),
        sa.Column("valid_to", TZ, nullable=True),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(["site", "kit"], ["kits.site", "kits.name"], name="fk_calibrations_kit"),
    )
    op.create_index("ix_calibrations_kit_quantity", "calibrations", ["site", "kit", "quantity", "valid_from"])


def downgrade() -> None:
    op.drop_index("ix_calibrations_kit_quantity", table_name="calibrations")
    op.drop_table("calibrations")
