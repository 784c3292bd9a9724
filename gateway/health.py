"""What the gateway knows about its own health: the disk writes that fail, what InfluxDB last said, and
the /healthz answer built from them. Logs each problem loudly when it starts and once when it ends.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from lauks.influx import InfluxWriteRejected

log = logging.getLogger("lauks.gateway")

DISK_LOG_EVERY_S = 30.0  # a disk failure is logged when it starts, then this often while it lasts

# what each disk write of the gateway is for, and what its failure means
DISK_WRITES = {
    "dedup": ("appending to the de-duplication key log in {dedup}",
              "No point is written before its key is on disk, so messages are NOT acknowledged and stay in the "
              "broker until the disk has room"),
    "spool": ("appending a batch to the spool in {spool}",
              "Messages are NOT acknowledged and stay in the broker until the disk has room"),
    "cursor": ("recording how far the spool in {spool} is replayed",
               "Those points are in InfluxDB; the replay is tried again (a point written twice overwrites "
               "itself)"),
    "probe": ("writing a test file in {where}",
              "Messages will not be acknowledged until they can be kept; they stay in the broker"),
}


class InfluxHealth:
    """What the last writes said: answered, unreachable (and why), refused (credentials, database), or
    throttled (no write before ``not_before``)."""

    def __init__(self) -> None:
        self.ok = True
        self.problem: str | None = None  # why InfluxDB is taken for unreachable
        self.refused: str | None = None  # while InfluxDB refuses every write: "<status>: <its words>"
        self.not_before = 0.0  # monotonic: InfluxDB asked us to wait until then (Retry-After)

    def answered(self) -> None:
        if self.refused is not None:
            log.warning("InfluxDB takes writes again (it had refused them: %s); the spool is replayed", self.refused)
        self.ok = True
        self.problem = self.refused = None

    def down(self, why: str) -> None:
        self.ok = False
        self.problem = why

    def refuse(self, error: InfluxWriteRejected) -> None:
        """Credentials or database wrong: said in /healthz and, once per change, as an ERROR in the log."""
        refused = f"{error.status}: {error.message}"
        self.down(str(error))
        if refused == self.refused:
            return
        self.refused = refused
        log.error("INFLUXDB REFUSES EVERY WRITE (%s). Check LAUKS_INFLUX_USERNAME, LAUKS_INFLUX_PASSWORD (or "
                  "LAUKS_INFLUX_TOKEN) and LAUKS_INFLUX_DATABASE. Messages are kept in the spool and acknowledged; "
                  "nothing reaches InfluxDB until this is fixed", refused)

    def throttle(self, wait_s: float, why: str) -> None:
        self.down(why)
        self.not_before = max(self.not_before, time.monotonic() + wait_s)

    def wait_s(self) -> float:
        """How long InfluxDB asked us to wait yet (0: a write may go now)."""
        return max(0.0, self.not_before - time.monotonic())


class DiskHealth:
    """The disk writes failing now, by what they were for ("dedup", "spool", "cursor", "probe")."""

    def __init__(self, dedup_dir: Path, spool_dir: Path) -> None:
        self.dedup_dir = dedup_dir
        self.spool_dir = spool_dir
        self.failures: dict[str, str] = {}  # what -> what failed and the error, for /healthz
        self._failing_since: dict[str, float] = {}  # monotonic
        self._logged_at: dict[str, float] = {}

    @property
    def ok(self) -> bool:
        return not self.failures

    def failed(self, what: str, error: OSError, attempt: int, influx: str, where: Path | None = None) -> None:
        """``influx`` says how InfluxDB is doing, for the log line (it decides what the failure costs)."""
        doing, meaning = DISK_WRITES[what]
        doing = doing.format(dedup=self.dedup_dir, spool=self.spool_dir, where=where)
        self.failures[what] = f"{doing}: {error}"
        now = time.monotonic()
        since = self._failing_since.setdefault(what, now)
        if now - self._logged_at.get(what, -DISK_LOG_EVERY_S) < DISK_LOG_EVERY_S:
            return
        self._logged_at[what] = now
        log.error("CANNOT WRITE TO DISK: %s failed (%s); %s. %s. Retrying every few seconds (for %.0f s so far, "
                  "attempt %d)", doing, error, influx, meaning, now - since, attempt + 1)

    def probe(self, folders: list[Path], attempt: int, influx: str) -> bool:
        """Write, fsync and remove a small file in each state folder: does the disk take writes? Tells a
        full disk at start-up, before any message needs it."""
        for where in dict.fromkeys(folders):
            probe = where / ".disk-probe"
            try:
                where.mkdir(parents=True, exist_ok=True)  # a folder a full disk kept from being made at start
                fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                try:
                    os.write(fd, b"lauks\n")
                    os.fsync(fd)
                finally:
                    os.close(fd)
                    probe.unlink(missing_ok=True)
            except OSError as error:
                self.failed("probe", error, attempt, influx, where)
                return False
        self.recovered("probe")
        return True

    def recovered(self, what: str, how: str = "the disk takes writes again") -> None:
        if self.failures.pop(what, None) is not None:
            since = self._failing_since.pop(what, time.monotonic())
            self._logged_at.pop(what, None)
            log.warning("%s (%s failed for %.0f s)", how, DISK_WRITES[what][0].split(" in ")[0],
                        time.monotonic() - since)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything /healthz reports, gathered by the gateway at the moment of asking."""

    instance: str
    mqtt_connected: bool
    mqtt_refused: str | None
    sessions_lost: int
    session_lost_at: float | None  # Unix time
    influx_reachable: bool
    influx_problem: str | None
    influx_refused: str | None
    disk: DiskHealth
    spool_depth_points: int
    inflight: int
    processing_errors: int
    oldest_batch_waiting_s: float
    write_stall_s: float
    stopping: bool


def report(now: Snapshot) -> tuple[bool, dict[str, object]]:
    """ok: connected, and what arrives is made durable and reaches InfluxDB in the end. Not ok: a full disk,
    a batch stuck for twice ``gateway_write_stall_s``, or InfluxDB refusing every write (credentials, database).
    InfluxDB unreachable alone is ok: the spool takes the batches."""
    detail: dict[str, object] = {"mqtt_connected": now.mqtt_connected, "influx_reachable": now.influx_reachable,
                                 "disk_writable": now.disk.ok, "spool_depth_points": now.spool_depth_points,
                                 "inflight": now.inflight, "instance": now.instance,
                                 "sessions_lost": now.sessions_lost, "processing_errors": now.processing_errors}
    warnings: list[str] = []
    if now.mqtt_refused:
        detail["mqtt_refused"] = now.mqtt_refused
    if now.influx_problem:
        detail["influx_problem"] = now.influx_problem
    if now.influx_refused:
        detail["influx_refused"] = now.influx_refused
    if now.disk.failures:
        detail["disk_problem"] = "; ".join(now.disk.failures.values())
    stalled = now.oldest_batch_waiting_s > 2 * now.write_stall_s
    if stalled:
        detail["ingest_stalled"] = (f"a batch has waited {now.oldest_batch_waiting_s:.1f} s to become durable; its "
                                    "messages are not acknowledged")
    if now.session_lost_at is not None:
        at = datetime.fromtimestamp(now.session_lost_at, UTC).isoformat(timespec="seconds")
        detail["session_lost_at"] = at
        warnings.append(f"the broker lost the gateway's MQTT session ({now.sessions_lost} times, last at "
                        f"{at}): messages queued for the gateway then may be lost")
    if warnings:
        detail["warnings"] = warnings
    ok = (now.mqtt_connected and now.disk.ok and not stalled and not now.stopping
          and now.influx_refused is None)
    detail["ok"] = ok
    return ok, detail


__all__ = ["DISK_LOG_EVERY_S", "DISK_WRITES", "DiskHealth", "InfluxHealth", "Snapshot", "report"]
