"""The gateway's settings: the shared ``LAUKS_`` ones plus its own ``LAUKS_GATEWAY_*``."""

from __future__ import annotations

import socket
from pathlib import Path

from pydantic import Field

from lauks.settings import Settings


class GatewaySettings(Settings):
    gateway_http_port: int | None = Field(9108, ge=0, le=65535)  # /metrics, /healthz; 0: any free port, None: off
    gateway_http_host: str = "127.0.0.1"
    gateway_share_group: str | None = None  # join $share/<group>/... so several gateways split the load
    gateway_instance: str = Field(default_factory=lambda: socket.gethostname().split(".")[0] or "gateway")
    # default: lauks-gateway-<instance>; with LAUKS_MQTT_USERNAME the username (see client_id)
    gateway_client_id: str | None = None
    gateway_batch_points: int = Field(5000, ge=1)  # flush at this many points ...
    gateway_batch_ms: int = Field(50, ge=1)  # ... or this long after the first point, whichever is first
    gateway_max_inflight: int = Field(4000, ge=1, le=65535)  # unacknowledged messages (MQTT receive maximum)
    gateway_concurrent_writes: int = Field(2, ge=1, le=16)  # batches being made durable at once
    gateway_spool_dir: Path | None = None  # default <state_dir>/spool-<instance>
    gateway_dead_letter_dir: Path | None = None  # default <state_dir>/dead-letter-<instance>
    gateway_dead_letter_bytes: int = Field(16 * 1024 * 1024, ge=4096)  # per file; two files are kept
    gateway_dedup_dir: Path | None = None  # default <state_dir>/dedup-<instance>
    gateway_dedup_window: int = Field(4096, ge=16)  # messages remembered per kit and boot
    gateway_dedup_max_keys: int = Field(2_000_000, ge=1000)  # de-duplication keys kept in all (~8 bytes each)
    gateway_dedup_max_age_s: float = Field(7 * 86400, ge=3600)  # forget keys this much older than the newest
    gateway_fsync: bool = True  # fsync the spool and the de-duplication log (off only for benchmarks)
    gateway_stats_interval_s: float = Field(10.0, gt=0)
    gateway_reconnect_max_s: float = Field(30.0, gt=0)
    gateway_mqtt_keepalive_s: int = Field(30, ge=2, le=65535)  # a broker silent this long is taken for gone
    # a write to InfluxDB unanswered this long: InfluxDB is reported unreachable and the batch goes to the
    # spool instead of holding its messages for the whole LAUKS_INFLUX_TIMEOUT_S (a hung InfluxDB)
    gateway_write_stall_s: float = Field(2.0, gt=0)
    # SIGTERM: how long to go on making held batches durable (a full disk, InfluxDB hung); then the rest is
    # left unacknowledged in the broker, which delivers it again, and the gateway exits 0
    gateway_shutdown_timeout_s: float = Field(10.0, gt=0)
    # fair share per kit (docs/gateway.md): a token bucket of messages and one of bytes per (site, kit);
    # what a kit sends beyond it is acknowledged, counted and not stored. Rate 0: no limit; bytes rate 0: none on bytes
    gateway_kit_rate: float = Field(20.0, ge=0)  # messages a second, sustained ...
    gateway_kit_burst: int = Field(5_000, ge=1)  # ... after a burst of this many
    gateway_kit_bytes_rate: int = Field(64 * 1024, ge=0)  # bytes a second, sustained ...
    gateway_kit_burst_bytes: int = Field(5 * 1024 * 1024, ge=16 * 1024)  # ... after this many (≥ one message)
    # after the gateway was away (stopped, disconnected, not reading), each second of it lets every kit send
    # this much more during the catch-up: the broker's backlog is no kit's doing (docs/gateway.md)
    gateway_kit_backlog_rate: float = Field(1.0, ge=0)  # messages per second away
    gateway_kit_backlog_bytes_rate: float = Field(4096.0, ge=0)  # bytes per second away
    # >1: `lauks gateway` runs this many worker processes in one shared subscription (group
    # LAUKS_GATEWAY_SHARE_GROUP, default lauks-gateway), instance <instance>-w<i>, HTTP port <port>+i
    gateway_workers: int = Field(1, ge=1, le=64)
    # the rollups (gateway.rollups, docs/schema.md "Rollups"): recomputed every period from the raw readings;
    # off only where another gateway of the share group keeps them (doing it twice is harmless, only work)
    gateway_rollups: bool = True
    gateway_rollups_period_s: float = Field(60.0, ge=1, le=3600)
    # at a first start (or after longer than resume_max away) the rollups are recomputed this far back
    gateway_rollups_lookback_s: float = Field(26 * 3600, ge=3600, le=31 * 86400)
    gateway_rollups_resume_max_s: float = Field(8 * 86400, ge=3600, le=366 * 86400)

    @property
    def client_id(self) -> str:
        """The MQTT client id. With a username it is the username: the brokers we ship replace a
        client's id with its username (``use_username_as_clientid``, so no other user can take over
        the gateway's session), and the id we send should be the one the session is kept under."""
        if self.mqtt_username:
            return self.mqtt_username
        return self.gateway_client_id or f"lauks-gateway-{self.gateway_instance}"

    def _dir(self, explicit: Path | None, name: str) -> Path:
        return explicit if explicit is not None else self.state_dir / f"{name}-{self.gateway_instance}"

    @property
    def spool_dir(self) -> Path:
        return self._dir(self.gateway_spool_dir, "spool")

    @property
    def dead_letter_dir(self) -> Path:
        return self._dir(self.gateway_dead_letter_dir, "dead-letter")

    @property
    def dedup_dir(self) -> Path:
        return self._dir(self.gateway_dedup_dir, "dedup")
