"""Share codes for class datasets: short, easy to read aloud and to type, forgiving when typed.

Eight characters from an alphabet without look-alikes (no 0/O/Q, 1/I/L, 2/Z, 5/S, 8/B, U/V),
shown as ``ABCD-EFGH``: about 5.5e10 codes, so guessing one is hopeless within the rate limit.
Typed codes are normalised: case, spaces and dashes do not matter.
"""

from __future__ import annotations

import secrets

ALPHABET = "34679ACDEFGHJKMNPRTWXY"
LENGTH = 8


def new_code() -> str:
    """A fresh code in its stored form (no dash)."""
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def display(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


def normalise(typed: str) -> str | None:
    """The stored form of a typed code, or None if it cannot be one."""
    text = "".join(ch for ch in typed.upper() if ch not in " -_.\t")
    if len(text) != LENGTH or any(ch not in ALPHABET for ch in text):
        return None
    return text
