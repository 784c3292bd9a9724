"""Mosquitto and InfluxDB from Debian's packages, run as child processes on loopback ports.

Used by ``lauks up`` (state under ./.lauks/) and by the test fixtures (state in a temporary
folder). Each child is started so that it dies with the process that started it: no orphans.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to SIGTERM this child when its parent dies, however the parent dies."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


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
