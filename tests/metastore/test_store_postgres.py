"""The tests' PostgreSQL server (``lauks.services.Postgres``): private to whoever started it."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest

from lauks.services import Postgres
from metastore import registry
from metastore.db import open_store


def test_the_server_wants_its_password_on_tcp_and_keeps_its_socket_in_its_own_folder(postgres: Postgres) -> None:
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(host="127.0.0.1", port=postgres.port, user=postgres.superuser, password="lauks",
                        dbname="postgres", connect_timeout=5).close()
    assert (postgres.cluster_dir / f".s.PGSQL.{postgres.port}").is_socket()
    assert postgres.cluster_dir.stat().st_mode & 0o077 == 0
    assert postgres.child is not None and postgres.child.process is not None
    owner = Path(f"/proc/{postgres.child.process.pid}/status").read_text().split("Uid:")[1].split()[0]
    if os.geteuid() == 0:  # PostgreSQL refuses root; it runs as the system user
        assert int(owner) != 0 and postgres.run_as == "postgres"
    else:
        assert int(owner) == os.geteuid()


def test_the_store_carries_on_after_the_server_ends_its_connections(postgres: Postgres, postgres_url: str) -> None:
    # What a restart of PostgreSQL (an upgrade, a failover) does to the connections an API process pools.
    sessions = open_store(postgres_url)
    with sessions() as session:
        registry.add_site(session, "school")
    name = postgres_url.rsplit("/", 1)[1]
    with psycopg.connect(host="127.0.0.1", port=postgres.port, user=postgres.superuser, password=postgres.password,
                         dbname="postgres", autocommit=True) as admin:
        ended = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s",
                              (name,)).fetchone()
    assert ended is not None and ended[0] >= 1
    with sessions() as session:
        assert [site.name for site in registry.list_sites(session)] == ["school"]
    sessions.kw["bind"].dispose()
