"""Alembic environment: runs on the connection ``metastore.db.migrate`` hands in, or on sqlalchemy.url, or on
the store the settings name (``LAUKS_API_DATABASE_URL``)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from metastore.db import Base
from metastore.settings import StoreSettings

config = context.config
target_metadata = Base.metadata


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or StoreSettings().database_url)
    with engine.begin() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run()
