"""The setup page's save of config.json under a crash at every call that changes the disk: afterwards the
kit finds its old config or its new one, whole, never a torn or missing file (STYLE.md, durable files).

The save runs against a small model of a file system (each file's content as written and as last fsynced;
the folder's entries as renamed and as last fsynced). ``kill``: the process dies at call N (a write lands a
third). ``power``: as ``kill``, then what was not made durable is lost: every file falls back to its content
at its last fsync, and the folder to its entries at its last fsync, or keeps the renames (both are
checked, as a disk may have written the folder's block or not)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from lauks_kit.net import portal_server as portal

OLD = {"site": "s", "kit": "k1", "wifi": [{"ssid": "old", "password": "old-pass"}], "broker": {"host": "h"}}
NEW = {**OLD, "wifi": [{"ssid": "school", "password": "correct horse"}, {"ssid": "old", "password": "old-pass"}]}
DIR_FD = -100


class Crash(BaseException):
    """The process is gone: no ``except OSError`` may catch it."""


class ModelFS:
    O_RDONLY = 0

    def __init__(self, fault_at: int = 0) -> None:
        self.fault_at, self.calls = fault_at, 0
        self.content: dict[int, bytearray] = {1: bytearray(json.dumps(OLD).encode())}
        self.durable: dict[int, bytes] = {1: bytes(self.content[1])}
        self.entries = {"/flash/config.json": 1}
        self.durable_entries = dict(self.entries)
        self.next_ino = 2

    def step(self) -> bool:
        self.calls += 1
        return self.calls == self.fault_at

    # builtins.open, as the portal calls it
    def open(self, path: str, mode: str = "r") -> ModelFile:
        if "w" in mode:
            if self.step():
                raise Crash("create")
            ino = self.entries.get(path)  # an existing file is truncated in place
            if ino is None:
                ino, self.next_ino = self.next_ino, self.next_ino + 1
                self.entries[path] = ino
            self.content[ino] = bytearray()
            return ModelFile(self, ino)
        return ModelFile(self, self.entries[path])

    # os, as the portal calls it
    def fsync(self, fd: int) -> None:
        if self.step():
            raise Crash("fsync")
        if fd == DIR_FD:
            self.durable_entries = dict(self.entries)
        else:
            self.durable[fd] = bytes(self.content[fd])

    def rename(self, src: str, dst: str) -> None:
        if self.step():
            raise Crash("rename")
        self.entries[dst] = self.entries.pop(src)

    def chmod(self, path: str, mode: int) -> None:
        pass

    def close(self, fd: int) -> None:
        pass

    def after_power_loss(self, keep_renames: bool) -> dict[str, bytes]:
        entries = self.entries if keep_renames else self.durable_entries
        return {name: self.durable.get(ino, b"") for name, ino in entries.items()}

    def after_kill(self) -> dict[str, bytes]:
        return {name: bytes(self.content[ino]) for name, ino in self.entries.items()}


def model_open(fs: ModelFS, _flags: int) -> Any:
    return DIR_FD


class ModelFile:
    def __init__(self, fs: ModelFS, ino: int) -> None:
        self.fs, self.ino = fs, ino

    def write(self, text: str) -> int:
        data = text.encode()
        if self.fs.step():
            self.fs.content[self.ino] += data[: len(data) // 3]
            raise Crash("write")
        self.fs.content[self.ino] += data
        return len(data)

    def read(self) -> str:
        return self.fs.content[self.ino].decode()

    def flush(self) -> None:
        pass

    def fileno(self) -> int:
        return self.ino

    def __enter__(self) -> ModelFile:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class ModelOS:
    """The ``os`` the portal sees: the model's calls, nothing of the real disk."""

    O_RDONLY = 0

    def __init__(self, fs: ModelFS) -> None:
        self.fs = fs
        self.fsync, self.rename, self.chmod, self.close = fs.fsync, fs.rename, fs.chmod, fs.close

    def open(self, path: str, flags: int) -> int:
        return DIR_FD


def run_save(monkeypatch: pytest.MonkeyPatch, fs: ModelFS, save: Any = None) -> bool:
    """Save NEW over OLD on the model; True if it finished, False if it crashed."""
    monkeypatch.setattr(portal, "open", fs.open, raising=False)
    monkeypatch.setattr(portal, "os", ModelOS(fs))
    try:
        (save or portal.save_config)("/flash/config.json", NEW)
    except Crash:
        return False
    finally:
        monkeypatch.undo()
    return True


def config_after(files: dict[str, bytes]) -> Any:
    assert "/flash/config.json" in files, "config.json is gone"
    return json.loads(files["/flash/config.json"])  # a torn file fails here


def calls_of(monkeypatch: pytest.MonkeyPatch, save: Any = None) -> int:
    fs = ModelFS()
    assert run_save(monkeypatch, fs, save)
    return fs.calls


def outcomes(monkeypatch: pytest.MonkeyPatch, save: Any = None) -> list[tuple[str, int, Any]]:
    """(mode, fault call, the config a restarted kit would read) for a fault at every call."""
    out = []
    for n in range(1, calls_of(monkeypatch, save) + 1):
        fs = ModelFS(fault_at=n)
        assert not run_save(monkeypatch, fs, save)
        for mode, files in (("kill", fs.after_kill()), ("power, folder kept", fs.after_power_loss(True)),
                            ("power, folder lost", fs.after_power_loss(False))):
            try:
                out.append((mode, n, config_after(files)))
            except (AssertionError, ValueError) as e:
                out.append((mode, n, f"broken: {e}"))
    return out


def test_a_finished_save_is_durable(monkeypatch: pytest.MonkeyPatch) -> None:
    fs = ModelFS()
    assert run_save(monkeypatch, fs)
    assert config_after(fs.after_kill()) == NEW and config_after(fs.after_power_loss(False)) == NEW


def test_a_crash_at_any_call_of_the_save_leaves_the_old_config_or_the_new_one(monkeypatch: pytest.MonkeyPatch) -> None:
    found = outcomes(monkeypatch)
    assert len(found) >= 3 * 5  # create, write, fsync, rename, fsync of the folder: each crashed three ways
    for mode, n, cfg in found:
        assert cfg in (OLD, NEW), (mode, n, cfg)


def test_the_model_catches_a_save_that_writes_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    def in_place(path: str, cfg: Any) -> None:  # what the portal must not do
        with portal.open(path, "w") as f:
            f.write(json.dumps(cfg))

    assert any(cfg not in (OLD, NEW) for _, _, cfg in outcomes(monkeypatch, in_place))


def test_the_model_catches_a_save_without_fsync_before_the_rename(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_fsync(path: str, cfg: Any) -> None:
        with portal.open(path + ".tmp", "w") as f:
            f.write(json.dumps(cfg))
        portal.os.rename(path + ".tmp", path)
        portal.os.fsync(DIR_FD)

    broken = [(mode, n) for mode, n, cfg in outcomes(monkeypatch, no_fsync) if cfg not in (OLD, NEW)]
    assert broken and all(mode.startswith("power") for mode, _ in broken)
