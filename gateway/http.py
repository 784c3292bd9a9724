"""A small HTTP endpoint on the event loop: Prometheus ``/metrics`` and ``/healthz``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.core import Stats


class StatsCollector(Collector):
    """Reads the gateway's counters at scrape time, so the hot path only adds integers."""

    def __init__(self, stats: Stats, gauges: Callable[[], dict[str, float]],
                 counters: Callable[[], dict[str, tuple[float, str]]] | None = None) -> None:
        self.stats = stats
        self.gauges = gauges
        self.counters = counters  # counters kept outside Stats (the MQTT session's): name -> (value, help)

    def collect(self) -> Iterator[Metric]:
        s = self.stats
        for name, value, text in (
            ("received", s.received, "MQTT messages received"),
            ("stored_messages", s.stored_messages, "readings messages stored"),
            ("stored_points", s.stored_points, "samples stored"),
            ("duplicates", s.duplicates, "copies of messages already received"),
            ("rejected_messages", s.rejected_messages, "messages with at least one rejection"),
            ("ignored", s.ignored, "messages on topics the gateway does not handle"),
            ("spooled_points", s.spooled, "points written to the on-disk spool"),
            ("replayed_points", s.replayed, "points replayed from the spool"),
            ("write_errors", s.write_errors, "InfluxDB writes that failed, were refused or went unanswered"),
            ("processing_errors", s.processing_errors,
             "bugs in the gateway while handling a message or building a batch"),
            ("refused_points", s.refused_points, "points InfluxDB refused as bad data"),
            ("dead_letters_skipped", s.dead_letters_skipped,
             "rejected payloads not kept in the dead-letter log: their kit had used its budget"),
        ):
            yield CounterMetricFamily(f"lauks_gateway_{name}", text, value=value)
        for name, (level, text) in (self.counters() if self.counters else {}).items():
            yield CounterMetricFamily(f"lauks_gateway_{name}", text, value=level)
        by_reason = CounterMetricFamily("lauks_gateway_rejections", "rejections by reason", labels=["reason"])
        for reason, count in sorted(s.by_reason.items()):
            by_reason.add_metric([reason], count)
        yield by_reason
        for gauge, level in self.gauges().items():
            yield GaugeMetricFamily(f"lauks_gateway_{gauge}", gauge.replace("_", " "), value=level)
        yield GaugeMetricFamily("lauks_gateway_write_latency_ms_p50", "InfluxDB write latency p50",
                                value=s.latency_percentile(0.5))
        yield GaugeMetricFamily("lauks_gateway_write_latency_ms_p99", "InfluxDB write latency p99",
                                value=s.latency_percentile(0.99))


class StatusServer:
    def __init__(self, registry: CollectorRegistry, health: Callable[[], tuple[bool, dict[str, object]]]) -> None:
        self.registry = registry
        self.health = health
        self.server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        self.server = await asyncio.start_server(self._handle, host, port)
        return int(self.server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        import orjson

        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            path = request.split(b" ", 2)[1].split(b"?")[0] if request.count(b" ") >= 2 else b"/"
            if path == b"/metrics":
                status, ctype, body = 200, "text/plain; version=0.0.4", generate_latest(self.registry)
            elif path == b"/healthz":
                ok, detail = self.health()
                status, ctype, body = (200 if ok else 503), "application/json", orjson.dumps(detail)
            else:
                status, ctype, body = 404, "text/plain", b"try /metrics or /healthz\n"
            reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[status]
            writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                         "Connection: close\r\n\r\n".encode() + body)
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
