"""The security tests' MQTT client: the harness's publisher with every publish waiting for its PUBACK (so a
test's next step comes after it) and a dropped connection left dropped while the test looks at why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.publisher import WAIT_S, Publisher, Refused

__all__ = ["WAIT_S", "Client", "Refused", "refused"]


class Client(Publisher):
    def __init__(self, port: int, username: str | None = None, password: str | None = None, *,
                 ca_certs: Path | None = None, client_id: str | None = None, mqtt5: bool = False) -> None:
        super().__init__(port, username, password, ca_certs=ca_certs, client_id=client_id, mqtt5=mqtt5,
                         reconnect=False, start=False)

    def connect(self) -> Client:
        self.start()
        self.wait_connected(WAIT_S)
        return self

    def publish(self, topic: str, payload: bytes | str, retain: bool = False) -> None:  # type: ignore[override]
        self.publish_and_wait(topic, payload, retain)


def refused(port: int, username: str | None, password: str | None, **options: Any) -> bool:
    try:
        Client(port, username, password, **options).connect().close()
    except Refused:
        return True
    return False
