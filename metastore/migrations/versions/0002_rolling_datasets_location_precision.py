"""Rolling class datasets (``datasets.rolling_days``) and how exactly a kit's place is shown
(``kits.location_precision``).

Kits already registered become ``blurred``: a kit in a pupil's garden must not put their home on a public map,
and staff can make a school's kit ``exact`` with ``lauks kit edit --location-precision exact``.

Revision ID: 0002
Revises: 0001
Create Date: 2025-06-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("datasets") as batch:
        batch.add_column(sa.Column("rolling_days", sa.Integer))
    with op.batch_alter_table("kits") as batch:
        batch.add_column(sa.Column("location_precision", sa.String(8), nullable=False, server_default="blurred"))


def downgrade() -> None:
    with op.batch_alter_table("kits") as batch:
        batch.drop_column("location_precision")
    with op.batch_alter_table("datasets") as batch:
        batch.drop_column("rolling_days")
