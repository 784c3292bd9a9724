"""Alembic migrations of the API's store (run by metastore.db.migrate)."""
