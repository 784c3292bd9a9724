"""Mosquitto and InfluxDB from Debian's packages, run as child processes on loopback ports.

Used by ``lauks up`` (state under ./.lauks/) and by the test fixtures (state in a temporary
folder). Each child is started so that it dies with the process that started it: no orphans.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psycopg

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to SIGTERM this child when its parent dies, however the parent dies."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def event_on_signals(event: threading.Event | None = None,
                     signals: Sequence[int] = (signal.SIGINT, signal.SIGTERM)) -> threading.Event:
    """``event`` (a new one by default), set once one of ``signals`` arrives.

    The handler only appends to a list; a thread of its own sets the event. A handler must not set it itself:
    Python runs a handler in the main thread between two bytecodes, and when that thread is inside
    ``event.wait()`` holding the event's lock (it does, around each wait), ``event.set()`` waits for that lock
    for ever. The gateway's supervisor hung so on SIGTERM, one run in a few hundred."""
    event = event if event is not None else threading.Event()
    caught: list[int] = []

    def _note(signum: int, frame: object) -> None:
        caught.append(signum)

    def _watch() -> None:
        while not caught:
            time.sleep(0.05)
        event.set()

    for signum in signals:
        signal.signal(signum, _note)
    threading.Thread(target=_watch, name="signals", daemon=True).start()
    return event


def stop_on_signals() -> threading.Event:
    """An event that SIGINT or SIGTERM sets, for a supervisor's loop (``lauks up``, the gateway's workers)
    to end and stop its children in order instead of dying with them half-stopped."""
    return event_on_signals()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def find_program(name: str) -> str:
    """The path of a program, looking in the sbin folders that Debian puts daemons in, too."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")
    if not found:
        raise FileNotFoundError(
            f"{name} is not installed: run `make run` or `make test` once, or apt-get install it"
        )
    return found


class ServiceError(RuntimeError):
    pass


@dataclass
class Child:
    """A started process with its log file."""

    name: str
    argv: Sequence[str]
    log_path: Path
    env: dict[str, str] | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        try:
            self.process = subprocess.Popen(
                list(self.argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=self.env, preexec_fn=die_with_parent,
            )
        finally:
            log.close()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, signum: int) -> None:
        if self.running:
            assert self.process is not None
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signum)

    def stop(self, timeout_s: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout_s``; the exit code."""
        if self.process is None:
            return None
        self.signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _wait(check: Callable[[], bool], child: Child, what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not child.running:
            raise ServiceError(f"{child.name} exited while starting; its log says:\n{child.log_tail()}")
        if check():
            return
        time.sleep(0.05)
    raise ServiceError(f"{child.name} did not become ready ({what}) in {timeout_s:.0f} s:\n{child.log_tail()}")


def _tcp_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


@dataclass
class Mosquitto:
    """A Mosquitto broker with persistence, on a loopback port, configured from ``mosquitto_conf``."""

    state_dir: Path
    port: int
    password_file: Path | None = None  # None: anonymous clients allowed
    acl_file: Path | None = None
    extra_config: str = ""
    child: Child | None = None
    tls: TlsListener | None = None  # a second listener with TLS, for kits that verify the broker

    @property
    def pid_file(self) -> Path:
        """Where the running broker's pid is kept, for ``lauks kit revoke`` to make it reload."""
        return self.state_dir / "mosquitto.pid"

    def config_text(self) -> str:
        return mosquitto_conf(self.state_dir, self.port, self.password_file, self.acl_file, self.extra_config,
                              tls=self.tls)

    def start(self, timeout_s: float = 15.0) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        conf = self.state_dir / "mosquitto.conf"
        conf.write_text(self.config_text())
        self.child = Child("mosquitto", [find_program("mosquitto"), "-c", str(conf)],
                           self.state_dir / "mosquitto.out")
        self.child.start()
        assert self.child.process is not None
        # Mosquitto writes a pid file only when it daemonises; we keep our own.
        self.pid_file.write_text(f"{self.child.process.pid}\n")
        _wait(lambda: _tcp_open(self.port), self.child, f"port {self.port}", timeout_s)
        tls = self.tls
        if tls:
            _wait(lambda: _tcp_open(tls.port), self.child, f"TLS port {tls.port}", timeout_s)

    def stop(self) -> None:
        if self.child:
            self.child.stop()
        with contextlib.suppress(OSError):
            self.pid_file.unlink()

    def reload(self) -> None:
        """SIGHUP: Mosquitto rereads its password and ACL files without dropping clients."""
        if self.child:
            self.child.signal(signal.SIGHUP)


@dataclass(frozen=True)
class TlsListener:
    """A TLS listener: the broker presents ``certfile`` (signed by the school's CA, see ``lauks tls init``)."""

    port: int
    certfile: Path
    keyfile: Path
    host: str = "127.0.0.1"


# What the broker enforces, the same in every configuration we ship: deploy/mosquitto/mosquitto.conf
# repeats these lines (tests/security/test_broker_limits.py checks that it does). Why each value, and
# what happens at each limit: docs/deploy.md, "What the broker enforces".
BROKER_LIMITS = (
    # The gateway holds each QoS 1 acknowledgement until its points are durable, so it needs far more
    # unacknowledged messages than Mosquitto's default 20 (MQTT 5 clients bring their receive maximum).
    "max_inflight_messages 1000",
    # A subscriber's queue (the gateway's session while it is away or slow): about 2 days of 280 kits at
    # one ~300-byte message a minute. Past either limit the broker drops new messages for that subscriber.
    "max_queued_messages 1000000",
    "max_queued_bytes 268435456",
    # The contract's 16 KiB readings limit plus room for the topic and properties; a bigger packet gets
    # its sender disconnected (not acknowledged, so a kit keeps the message).
    "max_packet_size 32768",
    # The last line before the kernel's OOM killer, which would lose everything since the last autosave.
    "memory_limit 1073741824",
    # No persistent_client_expiration: after a server is off for longer, the gateway's session would be
    # gone at boot and the kits' first readings would reach no one. Sessions no one will resume are
    # dropped by hand: `lauks broker drop-session` (docs/deploy.md).
)


def mosquitto_conf(state_dir: Path, port: int, password_file: Path | None = None,
                   acl_file: Path | None = None, extra: str = "", *, tls: TlsListener | None = None) -> str:
    """Our broker configuration. With a password file, every listener binds client ids to usernames
    (``use_username_as_clientid``): no client can take over another user's session. Without one (the
    anonymous broker of tests and benchmarks) it cannot: Mosquitto refuses clients without a username
    when that option is on."""
    bind = ["use_username_as_clientid true"] if password_file else []
    lines = [
        "per_listener_settings false",
        f"listener {port} 127.0.0.1",
        *bind,  # a listener option: it must follow every listener line
        f"allow_anonymous {'false' if password_file else 'true'}",
        "persistence true",
        f"persistence_location {state_dir.resolve()}/",
        "autosave_interval 60",
        f"log_dest file {state_dir.resolve() / 'mosquitto.log'}",
        "log_type error",
        "log_type warning",
        "log_type notice",
        *BROKER_LIMITS,
    ]
    if os.geteuid() == 0:
        # Started as root, Mosquitto switches to the user "mosquitto", who cannot read our state folders
        # (pytest's are 0700) or the password file (0600). Stay the user who started it instead.
        lines.append(f"user {pwd.getpwuid(os.geteuid()).pw_name}")
    if tls:  # with per_listener_settings false, certfile/keyfile belong to the listener above them
        lines += [f"listener {tls.port} {tls.host}", *bind, f"certfile {tls.certfile.resolve()}",
                  f"keyfile {tls.keyfile.resolve()}", "tls_version tlsv1.2"]
    if password_file:
        lines.append(f"password_file {password_file.resolve()}")
    if acl_file:
        lines.append(f"acl_file {acl_file.resolve()}")
    if extra:
        lines.append(extra.strip())
    return "\n".join(lines) + "\n"


@dataclass
class Influxd:
    """An InfluxDB 1.x server (Debian's influxd) on loopback ports, with its data in ``state_dir``."""

    state_dir: Path
    http_port: int
    rpc_port: int = 0
    child: Child | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def config_text(self) -> str:
        rpc = self.rpc_port or free_port()
        d = self.state_dir.resolve()
        return (
            "reporting-disabled = true\n"
            f'bind-address = "127.0.0.1:{rpc}"\n'
            f'[meta]\n  dir = "{d}/meta"\n'
            f'[data]\n  dir = "{d}/data"\n  wal-dir = "{d}/wal"\n  query-log-enabled = false\n'
            f'[http]\n  bind-address = "127.0.0.1:{self.http_port}"\n  log-enabled = false\n'
            "[monitor]\n  store-enabled = false\n"
            "[continuous_queries]\n  log-enabled = false\n"
        )

    def start(self, timeout_s: float = 30.0) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        conf = self.state_dir / "influxdb.conf"
        conf.write_text(self.config_text())
        env = dict(os.environ, INFLUXDB_DATA_QUERY_LOG_ENABLED="false")
        self.child = Child("influxd", [find_program("influxd"), "-config", str(conf)],
                           self.state_dir / "influxd.out", env=env)
        self.child.start()
        _wait(self.ping, self.child, f"{self.url}/ping", timeout_s)

    def ping(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/ping", timeout=0.5) as response:
                return int(response.status) == 204
        except OSError:
            return False

    def stop(self) -> None:
        if self.child:
            self.child.stop()


# --- PostgreSQL -----------------------------------------------------------------------------------

POSTGRES_LIBS = Path("/usr/lib/postgresql")  # Debian keeps each major version's programs off PATH


def postgres_program(name: str) -> str:
    """A PostgreSQL program (initdb, postgres) of the newest version Debian's package installed."""
    versions = [p for p in POSTGRES_LIBS.glob("*/bin") if p.parent.name.isdigit()]
    for folder in sorted(versions, key=lambda p: int(p.parent.name), reverse=True):
        if (folder / name).is_file():
            return str(folder / name)
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError(f"PostgreSQL's {name} is not installed: run `make test` once, or apt-get install "
                                "postgresql")
    return found


@dataclass
class _ChildAs(Child):
    """A child run as another user (``user``; None: as we are), still dying with its parent: the switch is
    made before ``die_with_parent``, since changing the user clears the parent-death signal."""

    user: str | None = None

    def start(self) -> None:
        if self.user is None:
            super().start()
            return
        account = pwd.getpwnam(self.user)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        try:
            self.process = subprocess.Popen(
                list(self.argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env,
                user=account.pw_uid, group=account.pw_gid, extra_groups=[], preexec_fn=die_with_parent,
                cwd=account.pw_dir if os.path.isdir(account.pw_dir) else "/",
            )
        finally:
            log.close()


@dataclass
class Postgres:
    """A PostgreSQL server (Debian's package) on a loopback port, for the metadata store's tests.

    PostgreSQL refuses to run as root, so under root (CI, containers) it runs as the system user
    ``postgres``, with its cluster in a private temporary folder that user owns (it could not enter a
    root-only test folder), removed again by ``stop``. Otherwise the cluster is ``state_dir/cluster``.
    The socket folder is inside the cluster folder; TCP on 127.0.0.1 needs the generated password.
    """

    state_dir: Path
    port: int
    durable: bool = True  # False (tests): no fsync, so a crash of the machine can lose the cluster
    superuser: str = "lauks"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    child: Child | None = None
    _home: Path | None = field(default=None, init=False, repr=False)

    @property
    def run_as(self) -> str | None:
        if os.geteuid() != 0:
            return None
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise ServiceError("PostgreSQL refuses to run as root, and there is no user 'postgres' to run it as: "
                               "apt-get install postgresql makes one") from None
        return "postgres"

    @property
    def cluster_dir(self) -> Path:
        if self._home is None:
            if self.run_as is None:
                self._home = self.state_dir / "cluster"
                self._home.mkdir(parents=True, exist_ok=True, mode=0o700)
            else:
                self._home = Path(tempfile.mkdtemp(prefix="lauks-postgres-"))  # 0700
                account = pwd.getpwnam(self.run_as)
                os.chown(self._home, account.pw_uid, account.pw_gid)
        return self._home

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of one of its databases (``LAUKS_API_DATABASE_URL``)."""
        return f"postgresql+psycopg://{self.superuser}:{self.password}@127.0.0.1:{self.port}/{database}"

    def _run(self, argv: list[str]) -> None:
        """A PostgreSQL tool, as the user the server runs as."""
        account = pwd.getpwnam(self.run_as) if self.run_as is not None else None
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False,
                              user=account.pw_uid if account else None, group=account.pw_gid if account else None,
                              extra_groups=[] if account else None, cwd="/" if account else None)
        if done.returncode != 0:
            raise ServiceError(f"{Path(argv[0]).name} failed: {(done.stderr or done.stdout).strip()[-2000:]}")

    def _initdb(self, data: Path) -> None:
        secret = self.cluster_dir / "superuser.password"
        fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, self.password.encode() + b"\n")
        finally:
            os.close(fd)
        if self.run_as is not None:
            account = pwd.getpwnam(self.run_as)
            os.chown(secret, account.pw_uid, account.pw_gid)
        try:
            # C collation: names sort by their bytes, as SQLite sorts them.
            self._run([postgres_program("initdb"), "-D", str(data), "-U", self.superuser, f"--pwfile={secret}",
                       "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C",
                       "--no-instructions", *([] if self.durable else ["--no-sync"])])
        finally:
            secret.unlink()

    def start(self, timeout_s: float = 30.0) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        data = self.cluster_dir / "data"
        if not (data / "PG_VERSION").exists():
            self._initdb(data)
        fast = [] if self.durable else ["-c", "fsync=off", "-c", "synchronous_commit=off",
                                        "-c", "full_page_writes=off"]
        self.child = _ChildAs("postgres", [
            postgres_program("postgres"), "-D", str(data), "-p", str(self.port), "-k", str(self.cluster_dir),
            "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200", *fast,
        ], self.state_dir / "postgres.out", user=self.run_as)
        self.child.start()
        _wait(self.ping, self.child, f"connections on port {self.port}", timeout_s)

    def _connect(self, database: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        import psycopg

        return psycopg.connect(host="127.0.0.1", port=self.port, user=self.superuser, password=self.password,
                               dbname=database, connect_timeout=2, autocommit=True)

    def ping(self) -> bool:
        import psycopg

        try:
            with self._connect():
                return True
        except psycopg.OperationalError:  # not listening yet, or still starting up
            return False

    def create_database(self, name: str) -> None:
        from psycopg import sql

        with self._connect() as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def drop_database(self, name: str) -> None:
        """Dropped even if a client is still connected to it (their connections are ended)."""
        from psycopg import sql

        with self._connect() as connection:
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def stop(self) -> None:
        if self.child and self.child.process is not None:
            # SIGINT is PostgreSQL's fast shutdown: clients are disconnected. SIGTERM would wait for them.
            self.child.signal(signal.SIGINT)
            try:
                self.child.process.wait(10)
            except subprocess.TimeoutExpired:
                self.child.stop()
        if self.run_as is not None and self._home is not None:
            shutil.rmtree(self._home, ignore_errors=True)
            self._home = None
