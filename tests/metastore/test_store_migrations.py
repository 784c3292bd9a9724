"""Alembic's migrations on SQLite and on PostgreSQL: every step up and back down leaves the schema it should,
the newest schema is the models' schema, and API replicas starting at once migrate one at a time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from metastore.db import MIGRATIONS, Base, alembic_config, make_engine, open_store

ROOT = Path(__file__).resolve().parents[2]
Schema = dict[str, tuple[tuple[str, bool], ...]]  # table -> its (column, nullable) pairs


def schema(engine: Engine) -> Schema:
    with engine.connect() as connection:
        found = inspect(connection)
        return {table: tuple((c["name"], bool(c["nullable"])) for c in found.get_columns(table))
                for table in sorted(found.get_table_names()) if table != "alembic_version"}


def migrate_to(engine: Engine, revision: str, *, down: bool = False) -> None:
    with engine.begin() as connection:
        (command.downgrade if down else command.upgrade)(alembic_config(connection), revision)


def revisions() -> list[str]:
    """Every revision, oldest first."""
    script = ScriptDirectory(str(MIGRATIONS))
    return [r.revision for r in reversed(list(script.walk_revisions()))]


@pytest.mark.both_stores
def test_each_migration_goes_up_and_down_and_the_newest_schema_is_the_models(store_url: str) -> None:
    engine = make_engine(store_url)
    try:
        assert schema(engine) == {}
        seen: dict[str, Schema] = {}
        for revision in revisions():
            migrate_to(engine, revision)
            seen[revision] = schema(engine)
        models = {table.name: tuple((c.name, bool(c.nullable)) for c in table.columns)
                  for table in Base.metadata.sorted_tables}
        assert seen[revisions()[-1]] == dict(sorted(models.items()))
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}),
                                           Base.metadata)
        assert differences == []
        for older in reversed(revisions()[:-1]):
            migrate_to(engine, older, down=True)
            assert schema(engine) == seen[older], f"down to {older}"
        migrate_to(engine, "base", down=True)
        assert schema(engine) == {}
        migrate_to(engine, "head")  # and up again, onto what the downgrades left
        assert schema(engine) == seen[revisions()[-1]]
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO sites (name, title, description, created_at) "
                                    "VALUES ('school', 'School', '', CURRENT_TIMESTAMP)"))
            assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == revisions()[-1]
    finally:
        engine.dispose()


@pytest.mark.both_stores
def test_opening_a_store_that_is_up_to_date_changes_nothing(store_url: str) -> None:
    first = open_store(store_url)
    with first() as session:
        session.execute(text("INSERT INTO staff_tokens (name, token_hash, created_at) "
                             "VALUES ('Ms Ozola', 'abc', CURRENT_TIMESTAMP)"))
        session.commit()
    first.kw["bind"].dispose()
    again = open_store(store_url)
    with again() as session:
        assert session.execute(text("SELECT name FROM staff_tokens")).scalars().all() == ["Ms Ozola"]
    again.kw["bind"].dispose()


def test_four_processes_opening_one_empty_postgresql_store_at_once_all_start(postgres_url: str) -> None:
    # Without the advisory lock in metastore.db.migrate, all but one failed creating tables that the first had made.
    code = "import sys; from metastore.db import open_store; open_store(sys.argv[1]).kw['bind'].dispose()"
    started = [subprocess.Popen([sys.executable, "-c", code, postgres_url], cwd=ROOT, stderr=subprocess.PIPE,
                                text=True) for _ in range(4)]
    errors = [p.communicate(timeout=60)[1] for p in started]
    assert [p.returncode for p in started] == [0, 0, 0, 0], [e[-1500:] for e in errors]
    engine = make_engine(postgres_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    engine.dispose()
