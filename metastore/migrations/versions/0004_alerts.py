"""Alert mail (``lauks.alerting``): each site's settings, the incidents seen, and the mails kept until sent.

A store from before has none: no site gets mail until `lauks site alerts` names its contacts.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# A migration keeps its own copy of the types: the models may change later, this step may not.
TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "alert_sites",
        sa.Column("site", sa.String(32), sa.ForeignKey("sites.name"), primary_key=True),
        sa.Column("contacts", sa.JSON, nullable=False),
        sa.Column("digest", sa.Boolean, nullable=False),
        sa.Column("digest_at", sa.String(5), nullable=False),
        sa.Column("quiet_from", sa.String(5), nullable=True),
        sa.Column("quiet_to", sa.String(5), nullable=True),
        sa.Column("holidays", sa.JSON, nullable=False),
        sa.Column("silent_intervals", sa.Integer, nullable=True),
        sa.Column("last_digest_on", sa.String(10), nullable=True),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_table(
        "alert_incidents",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("site", sa.String(32), nullable=False),
        sa.Column("kit", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("opened_at", TZ, nullable=False),
        sa.Column("recovered_at", TZ, nullable=True),
        sa.Column("open_notice", sa.String(16), nullable=False),
        sa.Column("recovery_notice", sa.String(16), nullable=False),
    )
    op.create_index("ix_alert_incidents_site_open", "alert_incidents", ["site", "recovered_at"])
    op.create_table(
        "alert_mails",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("site", sa.String(32), nullable=False),
        sa.Column("recipient", sa.String(254), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(500), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("html", sa.Text, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("next_try_at", TZ, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("sent_at", TZ, nullable=True),
    )
    op.create_index("ix_alert_mails_unsent", "alert_mails", ["sent_at", "next_try_at"])


def downgrade() -> None:
    op.drop_index("ix_alert_mails_unsent", table_name="alert_mails")
    op.drop_table("alert_mails")
    op.drop_index("ix_alert_incidents_site_open", table_name="alert_incidents")
    op.drop_table("alert_incidents")
    op.drop_table("alert_sites")
