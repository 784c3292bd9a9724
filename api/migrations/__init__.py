"""Alembic migrations of the API's store (run by api.db.migrate)."""
