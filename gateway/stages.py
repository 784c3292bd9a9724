"""Where the gateway's stages meet: what the ``Gateway`` needs from a source of messages and from a writer
of points. The real ones are ``gateway.mqtt.MqttSource`` and ``gateway.writer.ThreadedWriter``; a test
hands in fakes to test the commit and the spool's replay without a broker or a database.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

A = TypeVar("A")  # the source's token for one message, handed back to acknowledge it

# one message, as the source hands it over: (topic, payload, retained, ack token or None for QoS 0)
Handler = Callable[[str, bytes, bool, A | None], None]


class MessageSource(Protocol[A]):
    """Delivers messages to a handler and takes back the tokens of those that are durable."""

    @property
    def connected(self) -> bool: ...

    @property
    def refusal(self) -> str | None:
        """Why the broker last refused to connect or subscribe (for /healthz)."""

    @property
    def sessions_lost(self) -> int: ...

    @property
    def notices_too_large(self) -> int:
        """Notices not sent: larger than the broker takes."""

    @property
    def session_lost_at(self) -> float | None:
        """Unix time the broker last lost our session."""

    @property
    def lost_at(self) -> float | None:
        """Monotonic time the last connection was lost."""

    async def run(self) -> None:
        """Deliver messages (reconnecting as needed) until ``stop``."""

    def stop(self) -> None: ...

    async def close(self) -> None:
        """Send what is acknowledged so far, then disconnect."""

    def acknowledge(self, acks: list[A]) -> None:
        """These messages are durable: the broker may forget them."""

    def acknowledge_soon(self, ack: A) -> None:
        """Acknowledge with the others of this event-loop turn (a message with nothing to wait for)."""

    def hold(self, paused: bool) -> None:
        """Stop (or go on) delivering: the gateway holds as many messages as it may."""

    def publish(self, topic: str, payload: bytes) -> None:
        """Best effort: a notice to a kit."""


class SourceFactory(Protocol[A]):
    """Makes the source once the gateway knows its handler, filters and session state."""

    def __call__(self, handler: Handler[A], filters: list[str], *, expect_session: bool,
                 on_connect: Callable[[bool], None]) -> MessageSource[A]: ...


class PointWriter(Protocol):
    """Writes line protocol; raises what ``lauks.influx.write_error`` gives (the write policy)."""

    async def write(self, database: str, body: bytes) -> None: ...

    async def create_database(self, database: str) -> None: ...

    def waiting_s(self) -> float:
        """How long the oldest write still unanswered has waited (0 if none is)."""

    async def aclose(self) -> None: ...


__all__ = ["A", "Handler", "MessageSource", "PointWriter", "SourceFactory"]
