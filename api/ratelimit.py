"""Rate limiting: a token bucket per staff token or client address, 429 with Retry-After.

The table of buckets is bounded, and filling it cannot reset anybody's bucket: only buckets that have
refilled completely are forgotten (a new bucket starts full, so forgetting one changes nothing). When
every bucket in the table is still in use, newcomers share one overflow bucket until room is made.
"""

from __future__ import annotations

import ipaddress
import math
import time

OVERFLOW = "overflow"
PRUNE_EVERY_S = 1.0  # a full table is swept at most this often, so a flood of new keys costs no CPU


class RateLimiter:
    def __init__(self, per_minute: float, burst: int, *, max_keys: int = 100_000) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last time)
        self._pruned_at = -math.inf

    def __len__(self) -> int:
        return len(self._buckets)

    def _tokens(self, key: str, now: float) -> float:
        tokens, last = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + max(0.0, now - last) * self.rate)

    def _slot(self, key: str, now: float) -> str:
        """The key itself if it has (or can get) a bucket, else the shared overflow bucket."""
        if key in self._buckets or len(self._buckets) < self.max_keys:
            return key
        if now - self._pruned_at >= PRUNE_EVERY_S:
            self._pruned_at = now
            for known in [k for k in self._buckets if k != OVERFLOW and self._tokens(k, now) >= self.burst]:
                del self._buckets[known]
        return key if len(self._buckets) < self.max_keys else OVERFLOW

    def wait(self, key: str, now: float | None = None) -> float:
        """0 if a request may go ahead now, else the seconds until it may; takes nothing."""
        now = time.monotonic() if now is None else now
        tokens = self._tokens(self._slot(key, now), now)
        return 0.0 if tokens >= 1 else (1 - tokens) / self.rate

    def take(self, key: str, now: float | None = None) -> float:
        """0 if the request may go ahead (and one token is taken), else the seconds to wait before it may."""
        now = time.monotonic() if now is None else now
        slot = self._slot(key, now)
        tokens = self._tokens(slot, now)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / self.rate
        self._buckets[slot] = (tokens, now)
        return wait

    @staticmethod
    def retry_after(wait: float) -> str:
        return str(max(1, math.ceil(wait)))


class OpenedCodes:
    """The share codes each address has opened lately. A class behind one school address shares one budget
    of wrong codes; a pupil mistyping (or a prankster guessing) must not lock the others out of the code
    they already use. Only codes that were found are kept, so this tells a guesser nothing new."""

    def __init__(self, keep_s: float = 12 * 3600, max_entries: int = 100_000) -> None:
        self.keep_s = keep_s
        self.max_entries = max_entries
        self._opened: dict[tuple[str, str], float] = {}  # (address key, code) -> when last opened; oldest first

    def __contains__(self, item: tuple[str, str]) -> bool:
        when = self._opened.get(item)
        return when is not None and time.monotonic() - when < self.keep_s

    def remember(self, key: str, code: str) -> None:
        item = (key, code)
        self._opened.pop(item, None)  # to the end: the least recently opened are forgotten first
        self._opened[item] = time.monotonic()
        while len(self._opened) > self.max_entries:
            del self._opened[next(iter(self._opened))]


def address_key(host: str) -> str:
    """The bucket of a client address: an IPv4 address, or the /64 an IPv6 host gets (it has all of it)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return f"addr:{host[:64]}"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return f"addr:{address.ipv4_mapped}"
        return f"addr:{ipaddress.ip_network(f'{address}/64', strict=False)}"
    return f"addr:{address}"


def client_address(peer: str, forwarded_for: str | None, trusted: list[str]) -> str:
    """Who is asking: the peer, unless the peer is a proxy we were told to trust; then the nearest address in
    X-Forwarded-For that is not one of those proxies. Never the header alone: anybody can send it."""
    networks = [ipaddress.ip_network(t, strict=False) for t in trusted]

    def is_trusted(host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in networks)

    if not networks or not forwarded_for or not is_trusted(peer):
        return peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
        if hop and not is_trusted(hop):
            return hop
    return peer
