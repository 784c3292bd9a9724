"""The tests' PostgreSQL server (``lauks.services.Postgres``): private to whoever started it."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest

from lauks.services import Postgres


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
