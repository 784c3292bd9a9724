"""Sites, kits, staff tokens and class datasets.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sites",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("title", sa.String(200), nullable=False, server_default=""),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("latitude", sa.Float),
        sa.Column("longitude", sa.Float),
        sa.Column("elevation_m", sa.Float),
        sa.Column("timezone", sa.String(64)),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("retired_at", TZ),
    )
    op.create_table(
        "kits",
        sa.Column("site", sa.String(32), sa.ForeignKey("sites.name"), primary_key=True),
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("kit_type", sa.String(64), nullable=False, server_default="weather"),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("latitude", sa.Float),
        sa.Column("longitude", sa.Float),
        sa.Column("elevation_m", sa.Float),
        sa.Column("deployed_since", TZ),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("retired_at", TZ),
    )
    op.create_table(
        "staff_tokens",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("revoked_at", TZ),
    )
    op.create_table(
        "datasets",
        sa.Column("code", sa.String(16), primary_key=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("licence", sa.String(64), nullable=False),
        sa.Column("site", sa.String(32), sa.ForeignKey("sites.name"), nullable=False),
        sa.Column("kits", sa.JSON, nullable=False),
        sa.Column("quantities", sa.JSON, nullable=False),
        sa.Column("start", TZ, nullable=False),
        sa.Column("end", TZ, nullable=False),
        sa.Column("every", sa.String(8)),
        sa.Column("agg", sa.String(8)),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False, server_default=""),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("expires_at", TZ),
    )


def downgrade() -> None:
    for table in ("datasets", "staff_tokens", "kits", "sites"):
        op.drop_table(table)
