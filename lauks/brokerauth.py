"""Broker users and what each may do: per-kit credentials, service users, Mosquitto's password and ACL files.

One registry (``<state_dir>/broker/users.json``) is the source of truth; Mosquitto's ``passwd`` and
``acl`` files next to it are rendered from it after every change, atomically, under a file lock.
Passwords are generated here and only their PBKDF2-SHA512 hashes are kept (the ``$7$`` format
Mosquitto 2 reads, so no ``mosquitto_passwd`` binary is needed, e.g. in the gateway's image). A kit's
password is returned once, to be written into its ``config.json``; service users' passwords are kept
in ``<state_dir>/broker/<user>.password`` (mode 0600) for the services to read.

Usernames: a kit is ``<site>.<kit>`` (a dot is not allowed in site or kit names, so the name is
unambiguous); the services are ``lauks-gateway``, ``lauks-api`` and ``lauks-staff``.

Our brokers replace every client id with the username (``use_username_as_clientid``), so two processes
logged in as one user share one session and knock each other off. Users that exist for that reason
are derived when the files are rendered, not kept in ``users.json``: ``lauks-gateway-w0`` ..
``-w15`` for the workers of ``lauks gateway`` (LAUKS_GATEWAY_WORKERS), and ``lauks-health`` for the
compose file's health check. Each has the password and the rights of the user it is derived from
(``lauks-health`` fewer), so no new secret is needed and none is weaker.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lauks.privatefile import private_dir, tighten, write_private
from lauks.topics import DEFAULT_ROOT, Topics, id_problem

BROKER_DIR = "broker"
PBKDF2_ITERATIONS = 20_000  # Mosquitto's own tool uses 101; the count travels in the hash, the broker reads it
SALT_BYTES = 12
PASSWORD_BYTES = 24  # 32 URL-safe characters

GATEWAY_USER = "lauks-gateway"
API_USER = "lauks-api"
STAFF_USER = "lauks-staff"
HEALTH_USER = "lauks-health"  # the broker container's health check: may read one topic, nothing else
GATEWAY_WORKER_USERS = 16  # lauks-gateway-w0 .. -w15: as many gateway workers as may share a server


def gateway_worker_username(username: str, index: int) -> str:
    """The broker user of worker ``index`` of a gateway that logs in as ``username``."""
    return f"{username}-w{index}"


class BrokerAuthError(ValueError):
    """A request the registry cannot carry out, with a sentence saying why."""


@dataclass(frozen=True)
class ServiceRole:
    """A service user's rights, as (access, topic filter) pairs on the contract topics."""

    username: str
    description: str
    rules: tuple[tuple[str, str], ...]  # access is read | write | readwrite; filter below <root>/v1/


SERVICE_ROLES: dict[str, ServiceRole] = {
    role.username: role for role in (
        ServiceRole(GATEWAY_USER, "the gateway: reads every kit's readings and status, answers on rejected",
                    (("read", "+/+/readings"), ("read", "+/+/status"), ("write", "+/+/rejected"))),
        ServiceRole(API_USER, "the API: publishes kits' settings, reads their status",
                    (("readwrite", "+/+/config"), ("read", "+/+/status"))),
        ServiceRole(STAFF_USER, "staff tools: read every contract topic, publish kits' settings and update offers",
                    (("read", "#"), ("write", "+/+/config"), ("write", "+/+/update"))),
    )
}

# Users rendered from another user's entry: (name, the user whose password it shares, its rights).
DERIVED_USERS: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = (
    *((gateway_worker_username(GATEWAY_USER, i), GATEWAY_USER, SERVICE_ROLES[GATEWAY_USER].rules)
      for i in range(GATEWAY_WORKER_USERS)),
    (HEALTH_USER, STAFF_USER, (("read", "healthcheck"),)),
)

# What a kit may do on its own topics, nothing else. It only reads its update offers: one kit's password
# must not let anybody offer firmware to it or to another kit (lauks.fleet).
KIT_RULES: tuple[tuple[str, str], ...] = (
    ("write", "readings"), ("write", "status"), ("read", "config"), ("read", "rejected"), ("read", "update"),
)


def kit_username(site: str, kit: str) -> str:
    for what, value in (("site", site), ("kit", kit)):
        problem = id_problem(what, value)
        if problem:
            raise BrokerAuthError(problem)
    return f"{site}.{kit}"


def client_id_problem(client_id: str) -> str | None:
    """Why ``client_id`` cannot be a broker user's name (a line of the passwd and acl files), or None."""
    if not client_id or len(client_id) > 128 or any(c.isspace() or c in ":#+/" or ord(c) < 32 for c in client_id):
        return (f"{client_id!r} cannot be a broker user: give the client id as the broker's log shows it, 1-128 "
                "characters without spaces, ':', '/', '#' or '+'")
    return None


def generate_password() -> str:
    return secrets.token_urlsafe(PASSWORD_BYTES)


def hash_password(password: str, *, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS) -> str:
    """Mosquitto 2's ``$7$<iterations>$<salt>$<hash>`` PBKDF2-SHA512 hash."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, hashed: str) -> bool:
    try:
        _, seven, iterations, salt, _digest = hashed.split("$")
        if seven != "7":
            return False
        expected = hash_password(password, salt=base64.b64decode(salt), iterations=int(iterations))
    except ValueError:
        return False
    return secrets.compare_digest(expected, hashed)


@dataclass
class BrokerAuth:
    """The broker's users under ``<state_dir>/broker``. ``root`` is the topic root (``lauks``)."""

    state_dir: Path
    root: str | None = None  # None: the root stored in the registry, ``lauks`` for a new one

    @property
    def dir(self) -> Path:
        return self.state_dir / BROKER_DIR

    @property
    def password_file(self) -> Path:
        return self.dir / "passwd"

    @property
    def acl_file(self) -> Path:
        return self.dir / "acl"

    @property
    def registry_file(self) -> Path:
        return self.dir / "users.json"

    def service_password_file(self, username: str) -> Path:
        return self.dir / f"{username}.password"

    # --- the registry --------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        """The registry, loaded under an exclusive lock, saved and rendered if the block succeeds.
        Files rendered by an older version (without the derived users) are rendered again, and
        files or a folder others could read are made private."""
        private_dir(self.dir)
        lock_path = self.dir / ".lock"
        with os.fdopen(os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            registry = self._load()
            before = json.dumps(registry, sort_keys=True)
            yield registry
            if json.dumps(registry, sort_keys=True) != before or self._rendered_differs(registry):
                self._save(registry)
            for path in (lock_path, self.registry_file, self.password_file, self.acl_file,
                         *self.dir.glob("*.password")):
                tighten(path)

    def _rendered_differs(self, registry: dict[str, Any]) -> bool:
        try:
            return (self.password_file.read_text() != render_password_file(registry)
                    or self.acl_file.read_text() != render_acl(registry))
        except OSError:
            return True

    def _load(self) -> dict[str, Any]:
        if self.registry_file.exists():
            try:
                registry: dict[str, Any] = json.loads(self.registry_file.read_text())
            except ValueError as exc:
                raise BrokerAuthError(
                    f"{self.registry_file} is not valid JSON ({exc}); restore it from a backup") from exc
        else:
            registry = {"root": self.root or DEFAULT_ROOT, "users": {}}
        if self.root is not None and registry["root"] != self.root:
            if registry["users"]:
                raise BrokerAuthError(
                    f"{self.registry_file} is for topic root {registry['root']!r}, not {self.root!r}")
            registry["root"] = self.root
        return registry

    def _save(self, registry: dict[str, Any]) -> None:
        write_private(self.registry_file, json.dumps(registry, indent=1, sort_keys=True) + "\n")
        write_private(self.password_file, render_password_file(registry))
        write_private(self.acl_file, render_acl(registry))

    def users(self) -> dict[str, dict[str, Any]]:
        with self._locked() as registry:
            return dict(registry["users"])

    def kits(self) -> list[tuple[str, str]]:
        return sorted((u["site"], u["kit"]) for u in self.users().values() if u["role"] == "kit")

    # --- kits -----------------------------------------------------------------------------------

    def add_kit(self, site: str, kit: str) -> str:
        """Create or replace the kit's user; the new password (shown once, not kept here)."""
        username = kit_username(site, kit)
        password = generate_password()
        with self._locked() as registry:
            registry["users"][username] = {"role": "kit", "site": site, "kit": kit, "hash": hash_password(password)}
        return password

    def revoke_kit(self, site: str, kit: str) -> bool:
        """Remove the kit's user; False if it had none. The broker must reload to drop it."""
        username = kit_username(site, kit)
        with self._locked() as registry:
            return registry["users"].pop(username, None) is not None

    # --- sessions no one will resume -------------------------------------------------------------

    def add_session_reset_user(self, username: str) -> str:
        """A user with no rights named like an abandoned session's client id, so that a client can log in
        as it (the broker binds ids to usernames) and end that session; its password. Remove it after."""
        problem = client_id_problem(username)
        if problem:
            raise BrokerAuthError(problem)
        password = generate_password()
        with self._locked() as registry:
            if username in registry["users"] or username in {name for name, _, _ in DERIVED_USERS}:
                raise BrokerAuthError(f"{username} is a broker user already: log in as it to end its session")
            registry["users"][username] = {"role": "session-reset", "hash": hash_password(password)}
        return password

    def remove_session_reset_user(self, username: str) -> None:
        with self._locked() as registry:
            if registry["users"].get(username, {}).get("role") == "session-reset":
                del registry["users"][username]

    def password_of(self, username: str) -> str | None:
        """The kept password of a service user or of a user derived from one; None for anyone else."""
        source = next((src for name, src, _ in DERIVED_USERS if name == username), username)
        if source not in SERVICE_ROLES or not self.service_password_file(source).exists():
            return None
        return self.service_password(source)

    # --- services -------------------------------------------------------------------------------

    def ensure_service_users(self, passwords: dict[str, str] | None = None) -> dict[str, str]:
        """Every service user, created with a generated password where missing (or the one given);
        their passwords, also kept in ``<user>.password`` files."""
        given = passwords or {}
        result: dict[str, str] = {}
        with self._locked() as registry:
            for username in SERVICE_ROLES:
                path = self.service_password_file(username)
                entry = registry["users"].get(username)
                password = given.get(username)
                if password is None and entry and path.exists():
                    kept = path.read_text().strip()
                    if verify_password(kept, entry["hash"]):
                        password = kept
                if password is None:
                    password = generate_password()
                if not (entry and verify_password(password, entry["hash"])):
                    registry["users"][username] = {"role": "service", "hash": hash_password(password)}
                if not path.exists() or path.read_text().strip() != password:
                    write_private(path, password + "\n")
                result[username] = password
        return result

    def service_password(self, username: str) -> str:
        path = self.service_password_file(username)
        if not path.exists():
            raise BrokerAuthError(f"no password for {username} in {path}: run `lauks deploy init` or `lauks up`")
        return path.read_text().strip()


def derived_users(registry: dict[str, Any]) -> dict[str, tuple[str, tuple[tuple[str, str], ...]]]:
    """The users rendered from another's entry, where that one exists: name -> (hash, rights)."""
    users = registry["users"]
    return {name: (users[source]["hash"], rules) for name, source, rules in DERIVED_USERS if source in users}


def render_password_file(registry: dict[str, Any]) -> str:
    hashes = {name: user["hash"] for name, user in registry["users"].items()}
    hashes.update({name: hashed for name, (hashed, _) in derived_users(registry).items()})
    return "".join(f"{name}:{hashed}\n" for name, hashed in sorted(hashes.items()))


def render_acl(registry: dict[str, Any]) -> str:
    """Mosquitto's ACL file: no rules outside a ``user`` block, so an unlisted user may do nothing."""
    base = Topics(registry["root"]).base
    lines = ["# Rendered by lauks.brokerauth from users.json: edit through `lauks kit add/revoke`, not by hand.", ""]
    for name, user in sorted(registry["users"].items()):
        lines.append(f"user {name}")
        if user["role"] == "kit":
            prefix = f"{base}/{user['site']}/{user['kit']}"
            lines += [f"topic {access} {prefix}/{kind}" for access, kind in KIT_RULES]
        elif name in SERVICE_ROLES:
            lines += [f"topic {access} {base}/{pattern}" for access, pattern in SERVICE_ROLES[name].rules]
        lines.append("")
    for name, (_, rules) in sorted(derived_users(registry).items()):
        lines += [f"user {name}", *(f"topic {access} {base}/{pattern}" for access, pattern in rules), ""]
    return "\n".join(lines)


# --- the interface the rest of Lauks uses ---------------------------------------------------------


def add_kit_credentials(state_dir: Path, site: str, kit: str) -> str:
    """Create or replace kit ``site/kit``'s broker user (``<site>.<kit>``); its new password.
    A running broker started from this state dir is told to reload."""
    password = BrokerAuth(state_dir).add_kit(site, kit)
    reload_broker(state_dir)
    return password


def revoke_kit(state_dir: Path, site: str, kit: str) -> bool:
    """Remove the kit's broker user and tell a running broker to reload; False if it had none."""
    removed = BrokerAuth(state_dir).revoke_kit(site, kit)
    if removed:
        reload_broker(state_dir)
    return removed


def ensure_service_users(state_dir: Path) -> dict[str, str]:
    return BrokerAuth(state_dir).ensure_service_users()


PID_FILES = ("mosquitto/mosquitto.pid", "broker/mosquitto.pid")


def reload_broker(state_dir: Path) -> bool:
    """SIGHUP the Mosquitto that ``lauks up`` (or a ``Mosquitto`` under ``state_dir``) runs, if any:
    it rereads its password and ACL files without dropping anyone else. In docker compose the broker's
    container watches the files and reloads itself (deploy/mosquitto/entrypoint.sh)."""
    for relative in PID_FILES:
        path = state_dir / relative
        try:
            pid = int(path.read_text().strip())
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except (OSError, ValueError):
            continue
        if comm == "mosquitto":
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGHUP)
                return True
    return False
