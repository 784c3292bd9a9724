"""The over-the-air update's core and the boot loader under CPython: the checks test_fw_micropython.py runs under
MicroPython too (with the power cut at every step of each scenario), and what only CPython can hold them to:
Python's own json and hmac, and a power cut during the recovery from a power cut."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fw_update_checks as checks
import lauks_boot
import pytest
from lauks_kit.core import update


@pytest.mark.parametrize(("name", "check"), checks.all_update_checks(), ids=[n for n, _ in checks.all_update_checks()])
def test_update_check(name: str, check: Callable[[], None]) -> None:
    check()


def test_canonical_json_and_hmac_agree_with_pythons_on_random_offers() -> None:
    rng = random.Random(14)
    alphabet = "abcXYZ019.+-/:\"\\\n\u0101\u20ac"
    for _ in range(300):
        offer = {"v": rng.randint(0, 3), "version": "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))),
                 "url": "http://h:1/" + "".join(rng.choice(alphabet) for _ in range(5)), "x": [True, None, 7]}
        want = json.dumps(offer, sort_keys=True, separators=(",", ":"))
        assert update.canonical(offer) == want
        key = rng.randbytes(rng.choice([16, 32, 64, 65, 100]))
        assert update.hmac_sha256(key, want.encode()) == hmac.new(key, want.encode(), hashlib.sha256).digest()


def test_a_power_cut_during_the_recovery_from_a_power_cut_still_ends_confirmed() -> None:
    world = checks.World()
    clean = checks.flash_with(checks.V1)
    checks.live(clean, world)
    count = clean.total
    for first in range(1, count + 1, 3):
        for second in range(1, count + 1, 2):
            fs = checks.flash_with(checks.V1, [first, second])
            checks.live(fs, world)
            checks._settled_on("2.0.0", "confirmed")(fs)


class RealFlash(lauks_boot.Flash):  # type: ignore[misc]  # the kit's own, untyped MicroPython code
    """lauks_boot.Flash on a real folder, with fw_update_checks.FakeFlash's power cuts: the same operations
    counted, the power lost at the plan's counts, a write cut half way."""

    def __init__(self, root: Path, files: dict[str, bytes], plan: list[int] | None) -> None:
        super().__init__(str(root))
        self.base = root
        self.plan = list(plan or [])
        self.ops = self.total = 0
        for path, data in files.items():
            (root / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
            (root / path.lstrip("/")).write_bytes(data)

    @property
    def files(self) -> dict[str, bytes]:
        return {"/" + p.relative_to(self.base).as_posix(): p.read_bytes() for p in self.base.rglob("*") if p.is_file()}

    def op(self, path: str | None = None, data: bytes | None = None) -> None:
        self.ops += 1
        self.total += 1
        if self.plan and self.ops == self.plan[0]:
            self.plan.pop(0)
            self.ops = 0
            if path is not None and data is not None:
                with open(self.root + path, "ab") as f:
                    f.write(bytes(data)[:len(data) // 2])
            raise checks.Crash()

    def write(self, path: str, data: bytes) -> None:
        with open(self.root + path, "wb") as f:
            self.op(path, data)
            f.write(data)

    def open_write(self, path: str) -> Any:
        self.op()
        flash = self

        class Writer:
            def __init__(self) -> None:
                self.file = open(flash.root + path, "wb")  # closed by close(), as on the kit

            def write(self, data: bytes) -> None:
                self.file.flush()
                flash.op(path, data)
                self.file.write(data)

            def close(self) -> None:
                self.file.close()

        return Writer()

    def rename(self, old: str, new: str) -> None:
        if not self.exists(old) or self.isdir(new):
            raise OSError(17, f"rename {old} {new}")
        self.op()
        super().rename(old, new)

    def remove(self, path: str) -> None:
        self.op()
        super().remove(path)

    def mkdir(self, path: str) -> None:
        if self.exists(path):
            raise OSError(17, path)
        self.op()
        super().mkdir(path)

    def rmdir(self, path: str) -> None:
        self.op()
        super().rmdir(path)


@pytest.mark.parametrize(("world", "end"), [
    (checks.World(), ("2.0.0", "confirmed", None)),
    (checks.World(new_version_runs=False), ("1.0.0", "rolled_back", "crashed at import")),
], ids=["good", "crashing"])
def test_a_power_cut_at_every_step_on_a_real_folder_through_the_kits_own_flash_code(
        tmp_path: Path, world: Any, end: tuple[str, str, str | None]) -> None:
    runs = iter(range(10_000))

    def make(files: dict[str, bytes], plan: list[int] | None) -> RealFlash:
        root = tmp_path / f"run{next(runs)}"
        root.mkdir()
        start = {**checks.KEPT, **{"/" + p: d for p, d in files.items()}}
        return RealFlash(root, start, plan)

    count = checks.sweep(world, checks._settled_on(*end), make)
    assert count > 20
