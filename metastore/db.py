"""The relational store of metadata: sites, kits, staff tokens, class datasets, calibrations and alert mail
(SQLAlchemy 2).

SQLite by default; PostgreSQL by changing ``LAUKS_API_DATABASE_URL`` (``metastore.settings``). The schema
is created and upgraded by Alembic (``metastore/migrations``), never by ``create_all``, so both paths stay one.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    create_engine,
    event,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

MIGRATIONS = Path(__file__).parent / "migrations"
# PostgreSQL advisory lock held while migrating: API replicas starting at once on an empty database take
# turns, and the later ones find the schema made (SQLite's store has one host, its file, and no such race).
MIGRATION_LOCK = 0x6C61756B73  # "lauks"


class UtcDateTime(TypeDecorator[datetime]):
    """Stored as UTC; read back timezone-aware (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("datetimes in the store must be timezone-aware")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Site(Base):
    __tablename__ = "sites"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    elevation_m: Mapped[float | None] = mapped_column(Float)
    timezone: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    retired_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Kit(Base):
    __tablename__ = "kits"

    site: Mapped[str] = mapped_column(ForeignKey("sites.name"), primary_key=True)
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    kit_type: Mapped[str] = mapped_column(String(64), default="weather")
    description: Mapped[str] = mapped_column(Text, default="")
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    elevation_m: Mapped[float | None] = mapped_column(Float)
    deployed_since: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    retired_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # 'blurred' (readers without a staff token see it to about 1 km: metastore.location) or 'exact'
    location_precision: Mapped[str] = mapped_column(String(8), default="blurred", server_default="blurred")


class StaffToken(Base):
    __tablename__ = "staff_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex of the token
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Dataset(Base):
    __tablename__ = "datasets"

    code: Mapped[str] = mapped_column(String(16), primary_key=True)  # normalised share code, no dash
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    licence: Mapped[str] = mapped_column(String(64), default="CC-BY-4.0")
    site: Mapped[str] = mapped_column(ForeignKey("sites.name"))
    kits: Mapped[list[str]] = mapped_column(JSON)
    quantities: Mapped[list[str]] = mapped_column(JSON)
    # A fixed window; for a rolling dataset, the window as it was when published or last edited
    start: Mapped[datetime] = mapped_column(UtcDateTime)
    end: Mapped[datetime] = mapped_column(UtcDateTime)
    every: Mapped[str | None] = mapped_column(String(8))
    agg: Mapped[str | None] = mapped_column(String(8))
    timezone: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # The last rolling_days days up to now (api.dataset.window_of), or None for the fixed window above
    rolling_days: Mapped[int | None] = mapped_column(Integer)


class CalibrationRow(Base):
    """A kit's calibration of one quantity (``lauks.calibration.Calibration`` is its pure form): applied when
    data is read, never to the stored readings. Windows of one kit and quantity never overlap
    (``metastore.registry.add_calibration`` checks)."""

    __tablename__ = "calibrations"
    __table_args__ = (
        ForeignKeyConstraint(["site", "kit"], ["kits.site", "kits.name"], name="fk_calibrations_kit"),
        Index("ix_calibrations_kit_quantity", "site", "kit", "quantity", "valid_from"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(32))
    kit: Mapped[str] = mapped_column(String(32))
    quantity: Mapped[str] = mapped_column(String(64))
    offset: Mapped[float] = mapped_column(Float)
    gain: Mapped[float] = mapped_column(Float)
    valid_from: Mapped[datetime] = mapped_column(UtcDateTime)
    valid_to: Mapped[datetime | None] = mapped_column(UtcDateTime)  # None: in force until ended
    reason: Mapped[str] = mapped_column(String(500))
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class AlertSite(Base):
    """A site's alert mail settings (``lauks.alerting``): whom to mail, per incident or as a daily digest, its
    quiet hours (mail is held until they end) and its school holidays (no mail; incidents still tracked)."""

    __tablename__ = "alert_sites"

    site: Mapped[str] = mapped_column(ForeignKey("sites.name"), primary_key=True)
    contacts: Mapped[list[dict[str, str]]] = mapped_column(JSON)  # [{"email": ..., "language": "lv"}]
    digest: Mapped[bool] = mapped_column(Boolean, default=False)
    digest_at: Mapped[str] = mapped_column(String(5), default="08:00")  # HH:MM in the site's zone
    quiet_from: Mapped[str | None] = mapped_column(String(5))  # HH:MM, or None: no quiet hours
    quiet_to: Mapped[str | None] = mapped_column(String(5))
    holidays: Mapped[list[list[str]]] = mapped_column(JSON)  # [["2026-12-21", "2027-01-04"], ...], days inclusive
    silent_intervals: Mapped[int | None] = mapped_column(Integer)  # None: dashboards.alerts.SILENT_INTERVALS
    last_digest_on: Mapped[str | None] = mapped_column(String(10))  # the site's local day of the last digest
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class AlertIncident(Base):
    """One condition of one kit, from when the alerter saw it begin to when it saw it end; ``open_notice`` and
    ``recovery_notice`` say what became of its mails (pending, queued, digest, skipped)."""

    __tablename__ = "alert_incidents"
    __table_args__ = (Index("ix_alert_incidents_site_open", "site", "recovered_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(32))
    kit: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32))  # lauks.alerting.rules.KINDS
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)  # the facts when it opened, for the mail
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime)
    recovered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    open_notice: Mapped[str] = mapped_column(String(16), default="pending")
    recovery_notice: Mapped[str] = mapped_column(String(16), default="pending")


class AlertMail(Base):
    """A rendered mail to one contact, kept until the SMTP server accepted it: retried while it refuses."""

    __tablename__ = "alert_mails"
    __table_args__ = (Index("ix_alert_mails_unsent", "sent_at", "next_try_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(32))
    recipient: Mapped[str] = mapped_column(String(254))
    language: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(16))  # opened, recovered, digest, test
    subject: Mapped[str] = mapped_column(String(500))
    text: Mapped[str] = mapped_column(Text)
    html: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    next_try_at: Mapped[datetime] = mapped_column(UtcDateTime)  # not before: the end of quiet hours, or a retry
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


def private_sqlite_file(path: Path) -> None:
    """Create the database file 0600 before SQLite opens it (SQLite would make it 0644, and its -wal and -shm
    files copy the database file's mode), in a folder that others cannot list or enter.

    The store holds share codes and token hashes; a file that is readable for a moment is readable.
    An existing store from before is brought to the same modes.
    """
    folder = path.parent
    if not folder.exists():
        folder.mkdir(parents=True, mode=0o700)
    mode = stat.S_IMODE(folder.stat().st_mode)
    if mode & 0o007 and folder.stat().st_uid == os.geteuid():
        folder.chmod(mode & ~0o007)  # keep a group a deployment gave it, but never everybody
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    for name in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            if stat.S_IMODE(name.stat().st_mode) & 0o077 and name.stat().st_uid == os.geteuid():
                name.chmod(0o600)
        except FileNotFoundError:
            pass


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        private_sqlite_file(Path(url.removeprefix("sqlite:///")))
    if not url.startswith("sqlite"):
        # A server restarted (an upgrade, a failover) leaves dead connections in the pool: test each before use.
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    return engine


def alembic_config(connection: Connection) -> Config:
    """Alembic's configuration for our migrations, run on ``connection`` (``migrations/env.py`` uses it)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema up to the newest Alembic revision, in one transaction."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
        command.upgrade(alembic_config(connection), "head")


def open_store(url: str) -> sessionmaker[Session]:
    """Sessions of the store at ``url``, its schema brought up to date first."""
    engine = make_engine(url)
    migrate(engine)
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def one_session(url: str) -> Iterator[Session]:
    """One session of the store at ``url``, for a command that runs once; its connections are closed after."""
    engine = make_engine(url)
    try:
        migrate(engine)
        with Session(engine, expire_on_commit=False) as session:
            yield session
    finally:
        engine.dispose()
