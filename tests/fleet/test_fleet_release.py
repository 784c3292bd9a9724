"""Releases: what `lauks fleet release` builds, and the bad input it refuses without changing anything."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from firmware.device_path import DEVICE_DIR
from lauks import fleet
from lauks.fleet import FleetError


@pytest.fixture(scope="module")
def mpy_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fleet.build_release(DEVICE_DIR, tmp_path_factory.mktemp("releases"), "1.4.0")


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A copy of firmware/device to break."""
    copy = tmp_path / "device"
    shutil.copytree(DEVICE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_an_mpy_release_lists_every_file_with_its_size_and_sha256(mpy_release: Path) -> None:
    raw = (mpy_release / fleet.MANIFEST).read_bytes()
    manifest = json.loads(raw)
    assert raw == json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()  # canonical, as stored
    assert manifest["v"] == 1 and manifest["version"] == "1.4.0" and manifest["format"] == "mpy"
    paths = [e["path"] for e in manifest["files"]]
    assert paths == sorted(paths)
    assert {p.relative_to(mpy_release / fleet.FILES).as_posix()
            for p in (mpy_release / fleet.FILES).rglob("*") if p.is_file()} == set(paths)
    for entry in manifest["files"]:
        data = (mpy_release / fleet.FILES / entry["path"]).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (entry["size"], entry["sha256"])
        assert data[:1] == b"M"  # the .mpy header's magic byte
    assert "lauks_kit/__init__.mpy" in paths and "lauks_kit/app.mpy" in paths


def test_the_boot_files_are_never_part_of_a_release(mpy_release: Path) -> None:
    paths = {e["path"] for e in fleet.read_manifest(mpy_release)["files"]}
    assert not paths & {"main.py", "main.mpy", "lauks_boot.py", "lauks_boot.mpy"}
    assert all(p.startswith("lauks_kit/") for p in paths)


def test_the_release_carries_its_own_version(tmp_path: Path, mpy_release: Path) -> None:
    release = fleet.build_release(DEVICE_DIR, tmp_path, "2.0.0-rc1", "py")
    init = (release / fleet.FILES / "lauks_kit/__init__.py").read_text()
    assert 'VERSION = "2.0.0-rc1"' in init
    assert fleet.read_manifest(release)["format"] == "py"
    assert b"1.4.0" in (mpy_release / fleet.FILES / "lauks_kit/__init__.mpy").read_bytes()
    assert (release / fleet.FILES / "lauks_kit/app.py").read_bytes() == (DEVICE_DIR / "lauks_kit/app.py").read_bytes()


def test_the_default_version_is_the_firmwares(source: Path) -> None:
    init = source / "lauks_kit/__init__.py"
    init.write_text(init.read_text().replace(fleet.source_version(source), "9.9.9"))
    assert fleet.source_version(source) == "9.9.9"


@pytest.mark.parametrize("version", ["", "x" * 33, "1.0/2", "..", ".1", "-1", "1 0", "1.0_a", "ā1"])
def test_a_version_that_is_not_allowed_is_refused(tmp_path: Path, version: str) -> None:
    with pytest.raises(FleetError, match="is not allowed"):
        fleet.build_release(DEVICE_DIR, tmp_path / "releases", version)
    assert not (tmp_path / "releases").exists() or not any((tmp_path / "releases").iterdir())


def test_an_existing_release_is_never_overwritten(tmp_path: Path) -> None:
    releases = tmp_path / "releases"
    fleet.build_release(DEVICE_DIR, releases, "1.0.0", "py")
    before = snapshot(releases)
    with pytest.raises(FleetError, match="exists already"):
        fleet.build_release(DEVICE_DIR, releases, "1.0.0", "mpy")
    assert snapshot(releases) == before


def test_an_unknown_format_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FleetError, match="format 'zip' is not known"):
        fleet.build_release(DEVICE_DIR, tmp_path, "1.0.0", "zip")


def test_a_source_without_a_file_the_kit_starts_from_builds_nothing(tmp_path: Path, source: Path) -> None:
    (source / "lauks_kit/app.py").unlink()
    with pytest.raises(FleetError, match=r"lacks lauks_kit/app\.py.*nothing was built"):
        fleet.build_release(source, tmp_path / "releases", "1.0.0")
    assert list((tmp_path / "releases").iterdir()) == [] if (tmp_path / "releases").exists() else True


def test_a_source_missing_an_imported_module_builds_nothing(tmp_path: Path, source: Path) -> None:
    (source / "lauks_kit/core/ring.py").unlink()
    with pytest.raises(FleetError, match=r"lauks_kit/app\.py imports lauks_kit\.core\.ring"):
        fleet.build_release(source, tmp_path / "releases", "1.0.0", "py")
    assert not (tmp_path / "releases").exists() or list((tmp_path / "releases").iterdir()) == []


def test_a_module_imported_by_name_from_its_package_must_exist(tmp_path: Path, source: Path) -> None:
    (source / "lauks_kit/core/message.py").unlink()  # app.py: from lauks_kit.core import message
    with pytest.raises(FleetError, match=r"imports lauks_kit\.core\.message"):
        fleet.build_release(source, tmp_path / "releases", "1.0.0", "py")


def test_a_syntax_error_stops_an_mpy_build_but_not_a_py_one(tmp_path: Path, source: Path) -> None:
    (source / "lauks_kit/core/schedule.py").write_text("def broken(:\n")
    with pytest.raises(FleetError, match=r"mpy-cross could not compile lauks_kit/core/schedule\.py"):
        fleet.build_release(source, tmp_path / "releases", "1.0.0")
    assert list((tmp_path / "releases").iterdir()) == []  # its temporary folder is gone too
    # the simulator's format is the sources as they are: the kit's own rollback must deal with it
    fleet.build_release(source, tmp_path / "releases", "1.0.1", "py")


def test_a_file_altered_on_disk_fails_verification(tmp_path: Path) -> None:
    release = fleet.build_release(DEVICE_DIR, tmp_path, "1.0.0", "py")
    fleet.verify_release(release)
    target = release / fleet.FILES / "lauks_kit/core/ring.py"
    target.write_bytes(target.read_bytes().replace(b"def ", b"def  ", 1))
    with pytest.raises(FleetError, match=r"lauks_kit/core/ring\.py does not match its SHA-256"):
        fleet.verify_release(release)


def test_a_file_the_manifest_names_but_the_release_lacks_fails_verification(tmp_path: Path) -> None:
    release = fleet.build_release(DEVICE_DIR, tmp_path, "1.0.0", "py")
    (release / fleet.FILES / "lauks_kit/app.py").unlink()
    with pytest.raises(FleetError, match=r"lacks lauks_kit/app\.py"):
        fleet.verify_release(release)


@pytest.mark.parametrize("path", ["../x.py", "/abs.py", "a//b.py", "a/./b.py", "a\\b.py", ""])
def test_a_manifest_with_a_path_outside_the_kits_flash_is_refused(tmp_path: Path, path: str) -> None:
    release = tmp_path / "1.0.0"
    release.mkdir()
    entry = {"path": path, "size": 0, "sha256": "0" * 64}
    (release / fleet.MANIFEST).write_bytes(fleet.canonical({"v": 1, "version": "1.0.0", "format": "py",
                                                            "files": [entry]}))
    with pytest.raises(FleetError, match="not allowed in a release"):
        fleet.read_manifest(release)


def test_an_unknown_release_names_the_known_ones(tmp_path: Path) -> None:
    fleet.build_release(DEVICE_DIR, tmp_path, "1.0.0", "py")
    with pytest.raises(FleetError, match=r"there is no release 3\.0\.0: the releases are 1\.0\.0"):
        fleet.release_dir(tmp_path, "3.0.0")


def test_a_release_is_readable_by_other_users_such_as_the_apis_container(tmp_path: Path) -> None:
    release = fleet.build_release(DEVICE_DIR, tmp_path, "1.0.0", "py")
    for path in [release, *release.rglob("*")]:
        assert path.stat().st_mode & 0o004, path  # files 0644, folders 0755: nothing in a release is secret


def test_a_release_is_readable_by_the_apis_user_whatever_the_umask(tmp_path: Path) -> None:
    import os
    import stat

    old = os.umask(0o077)  # a staff shell or sudo that keeps new files private
    try:
        folder = fleet.build_release(DEVICE_DIR, tmp_path / "releases", "1.4.0", "py")
    finally:
        os.umask(old)
    for path in [folder, *folder.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o755 if path.is_dir() else 0o644), (path.relative_to(folder), oct(mode))
