"""The over-the-air update's core and the boot loader under CPython: the checks test_fw_micropython.py runs under
MicroPython too (with the power cut at every step of each scenario), and what only CPython can hold them to:
Python's own json and hmac, and a power cut during the recovery from a power cut."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
from collections.abc import Callable

import fw_update_checks as checks
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
