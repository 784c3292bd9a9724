"""A crash at any call that changes the disk leaves a release whole or absent, and the offers' record old or new.

Each os call that changes files (open for writing, mkdir, write, fsync, rename, replace, unlink) is counted
in one run, then the scenario is run again dying at call N, for every N. Dying means no clean-up runs
(``shutil.rmtree`` of the build's temporary folder does nothing, as in a killed process).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from lauks import fleet

CALLS = ("open", "mkdir", "write", "fsync", "rename", "replace", "unlink")
REAL: dict[str, Callable[..., Any]] = {name: getattr(os, name) for name in CALLS}


class Crash(BaseException):
    pass


@contextmanager
def disk(root: Path, fault_at: int) -> Iterator[list[int]]:
    count = [0]
    fds: set[int] = set()

    def mine(path: Any) -> bool:
        return isinstance(path, str | os.PathLike) and os.path.abspath(os.fspath(path)).startswith(str(root))

    def counted(name: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            if name == "write":
                hit = args[0] in fds
            elif name == "open":
                hit = mine(args[0]) and bool(args[1] & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
            elif name == "fsync":
                hit = True  # only our files and folders are fsynced during the scenario
            else:
                hit = mine(args[0])
            if hit:
                count[0] += 1
                if count[0] == fault_at:
                    if name == "write":  # a third lands
                        REAL["write"](args[0], bytes(args[1])[: max(1, len(args[1]) // 3)])
                    raise Crash(name)
            result = REAL[name](*args, **kwargs)
            if name == "open" and hit:
                fds.add(result)
            return result
        return call

    mp = pytest.MonkeyPatch()
    for name in CALLS:
        mp.setattr(os, name, counted(name))
    mp.setattr(shutil, "rmtree", lambda *a, **k: None)
    try:
        yield count
    finally:
        mp.undo()


SOURCE = {  # a small firmware tree of the real shape: the calls per file are the same, the test stays fast
    "main.py": "import lauks_kit.app\n",
    "lauks_kit/__init__.py": 'VERSION = "0.1.0"\n',
    "lauks_kit/app.py": "from lauks_kit.core import ring\n",
    "lauks_kit/board_esp32.py": "BOARD = 1\n",
    "lauks_kit/core/__init__.py": "",
    "lauks_kit/core/ring.py": "SIZE = 8\n",
}


@pytest.fixture
def source(tmp_path: Path) -> Path:
    folder = tmp_path / "device"
    for name, text in SOURCE.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def build(source: Path, releases: Path) -> None:
    fleet.build_release(source, releases, "1.0.0", "py")


def test_a_crash_anywhere_in_a_build_leaves_the_release_whole_or_absent(tmp_path: Path, source: Path) -> None:
    with disk(tmp_path / "count", 0) as count:
        build(source, tmp_path / "count" / "releases")
    total = count[0]
    assert total > 20  # every file written and fsynced, every folder fsynced
    for n in range(1, total + 1):
        releases = tmp_path / f"n{n}" / "releases"
        with disk(tmp_path / f"n{n}", n), pytest.raises(Crash):
            build(source, releases)
        if (releases / "1.0.0").exists():
            fleet.verify_release(releases / "1.0.0")
        else:
            assert fleet.list_releases(releases) == []
            build(source, releases)  # the left-over temporary folder does not stand in the way
            fleet.verify_release(releases / "1.0.0")
        assert fleet.list_releases(releases) == ["1.0.0"]


def test_a_crash_while_recording_offers_keeps_the_old_record_or_the_new(tmp_path: Path) -> None:
    def scenario(state: Path) -> None:
        fleet.record_offers(state, "school-1", ["kit-01"], "1.4.0")
        fleet.record_offers(state, "school-1", ["kit-02", "kit-03"], "1.4.0")

    with disk(tmp_path / "count", 0) as count:
        scenario(tmp_path / "count")
    for n in range(1, count[0] + 1):
        state = tmp_path / f"n{n}"
        with disk(state, n), pytest.raises(Crash):
            scenario(state)
        kits = [o["kit"] for o in fleet.read_offers(state)]
        assert kits in ([], ["kit-01"], ["kit-01", "kit-02", "kit-03"])
