"""The rollup worker in the gateway: it keeps the rollups of what is stored, survives InfluxDB being down, and
says honestly from when the rollups are complete; ``lauks rollups`` refuses bad input and reports."""

from __future__ import annotations

import asyncio
import io
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from rollup_seed import NOW, SITE, compare, minute_lines

from gateway.rollups import RollupWorker, read_kept, write_state
from gateway.rollups_cli import rebuild, status
from gateway.service import Gateway
from harness.publisher import Publisher
from lauks import rollups, schema
from lauks.influx import InfluxClient
from lauks.services import free_port
from lauks.topics import Topics
from stack.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gateway"))  # the gateway tests' helpers
from gateway_helpers import running, settings


async def test_the_gateway_keeps_the_rollups_of_the_readings_it_finds(
        tmp_path: Path, mqtt_port: int, influx: InfluxClient, influx_url: str, database: str, topics: Topics) -> None:
    now = datetime.now(UTC)
    lines = minute_lines(SITE, "k1", now - timedelta(hours=3), now)
    await influx.write(database, lines, precision="ms")
    config = settings(tmp_path, mqtt_port, influx_url, database, topics, gateway_rollups_period_s=1.0)
    async with running(config) as gateway:
        assert gateway.rollups is not None
        for _ in range(200):
            if gateway.rollups.stats.passes:
                break
            await asyncio.sleep(0.05)
        assert gateway.rollups.stats.passes >= 1
    rows = await influx.query_rows(f'SELECT SUM("count_temperature") FROM "{schema.ROLLUP_1H}"', database=database)
    assert rows[0]["sum"] == len(lines)
    kept = await read_kept(influx, database)
    assert kept[schema.ROLLUP_1H].complete_from == rollups.EARLIEST  # nothing older was there
    assert kept[schema.ROLLUP_1H].kept_to > now - rollups.LATE_MARGIN - timedelta(seconds=1)


def test_a_gateway_with_rollups_off_runs_no_worker(tmp_path: Path, topics: Topics) -> None:
    config = settings(tmp_path, 1883, "http://127.0.0.1:9", "db", topics, gateway_rollups=False)
    assert Gateway(config).rollups is None


async def test_the_worker_survives_influxdb_down_and_catches_up_from_where_it_was(
        influx: InfluxClient, database: str) -> None:
    await influx.write(database, minute_lines(SITE, "k1", NOW - timedelta(hours=30), NOW), precision="ms")
    async with InfluxClient(f"http://127.0.0.1:{free_port()}", timeout_s=1) as nobody:
        keeper = RollupWorker(nobody, database, period_s=0.01, clock=NOW.timestamp)
        assert not await keeper.run_pass()
        loop = asyncio.create_task(keeper.run())
        await asyncio.sleep(0.3)
        assert not loop.done() and keeper.stats.failures >= 3 and keeper.stats.passes == 0
        loop.cancel()
        with pytest.raises(asyncio.CancelledError):
            await loop
    assert keeper.cursor is None  # nothing was done, so nothing is skipped
    keeper.client = influx
    assert await keeper.run_pass()
    rows = await influx.query_rows(f'SELECT SUM("count_humidity") FROM "{schema.ROLLUP_1H}"', database=database)
    assert rows[0]["sum"] == 27 * 60  # the default look-back of 26 hours, less the late margin, in whole hours
    assert (await read_kept(influx, database))[schema.ROLLUP_1H].complete_from == NOW - timedelta(hours=26)


async def test_a_worker_back_after_longer_than_it_resumes_says_the_rollups_are_complete_only_from_then(
        influx: InfluxClient, database: str) -> None:
    await write_state(influx, database, NOW - timedelta(days=20), complete_from=rollups.EARLIEST,
                      kept_to=NOW - timedelta(days=20))
    keeper = RollupWorker(influx, database, clock=NOW.timestamp, resume_max=timedelta(days=8))
    assert await keeper.run_pass()
    kept = (await read_kept(influx, database))[schema.ROLLUP_1H]
    assert kept == rollups.Kept(NOW - timedelta(hours=26), NOW - rollups.LATE_MARGIN)
    # a request over the hole reads raw
    assert rollups.statement_for([("t", "mean", "temperature")], "time > 0", 3600, ZoneInfo("UTC"),
                                 NOW - timedelta(days=10), NOW - timedelta(days=9), kept={"readings_1h": kept}) is None


def test_a_rebuild_with_a_time_that_is_not_one_says_what_it_expects(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rollups", "rebuild", "--start", "2025-13-01"]) == 2
    assert "--start '2025-13-01' is not a day like 2025-03-01" in capsys.readouterr().err


def test_a_rebuild_that_cannot_reach_influxdb_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LAUKS_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("LAUKS_INFLUX_URL", f"http://127.0.0.1:{free_port()}")
    assert main(["rollups", "rebuild", "--start", "2026-03-01"]) == 1
    assert "InfluxDB failed" in capsys.readouterr().err


async def test_status_says_how_far_each_rollup_is_kept_and_how_many_points_it_has(influx: InfluxClient,
                                                                                   database: str) -> None:
    out = io.StringIO()
    await status(influx, database, out)
    assert "readings_1h: not kept yet (0 points)" in out.getvalue()
    await influx.write(database, minute_lines(SITE, "k1", NOW - timedelta(hours=2), NOW), precision="ms")
    assert await RollupWorker(influx, database, clock=NOW.timestamp).run_pass()
    out = io.StringIO()
    await status(influx, database, out)
    assert f"readings_1h: complete from {rollups.EARLIEST.isoformat()} to " \
           f"{(NOW - rollups.LATE_MARGIN).isoformat()}" in out.getvalue()
    assert ", 2 points" in out.getvalue()  # the hourly buckets of two hours


async def test_backfill_published_days_late_through_the_gateway_is_in_the_rollups_a_pass_later(
        tmp_path: Path, mqtt_port: int, influx: InfluxClient, influx_url: str, database: str, topics: Topics) -> None:
    """End to end: a kit's readings of two days ago arrive through MQTT; the gateway's seen point says from when
    (late_from), and its rollup worker recomputes those buckets, so the hourly rollup equals raw again."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    gap = (rollups.floor_to(now - timedelta(days=2), 3600), rollups.floor_to(now - timedelta(days=2), 3600)
           + timedelta(hours=2))
    await influx.write(database, minute_lines(SITE, "k1", now - timedelta(days=3), now, skip=gap), precision="ms")
    await rebuild(influx, database, site=None, start=None, end=None, out=io.StringIO())
    config = settings(tmp_path, mqtt_port, influx_url, database, topics, gateway_rollups_period_s=1.0)
    async with running(config) as gateway:
        assert gateway.rollups is not None
        with Publisher(mqtt_port) as publisher:
            for seq in range(2):
                samples = [{"t": (gap[0] + timedelta(minutes=60 * seq + m)).timestamp(), "temperature": m * 0.25}
                           for m in range(60)]
                publisher.publish(topics.readings(SITE, "k1"), json.dumps(
                    {"v": 1, "kit": "k1", "boot": 1, "seq": seq, "samples": samples}).encode())
            publisher.wait_acked(2)
        for _ in range(300):
            if gateway.rollups.stats.backfills:
                break
            await asyncio.sleep(0.05)
        assert gateway.rollups.stats.backfills >= 1
    kept = await read_kept(influx, database)
    start, end = gap[0] - timedelta(hours=5), gap[1] + timedelta(hours=5)
    statement, rolled, raw = await compare(influx, database, kept, ["mean", "count", "max"], 3600, ZoneInfo("UTC"),
                                           start, end, fields=["temperature"], kits=["k1"])
    assert f'FROM "{schema.ROLLUP_1H}"' in statement and rolled == raw
    assert [row[2] for row in raw[0][2][5:7]] == [60, 60]  # the two backfilled hours are in it


def test_of_several_gateway_workers_only_the_first_keeps_the_rollups(monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.cli import worker_env
    from gateway.settings import GatewaySettings

    monkeypatch.delenv("LAUKS_GATEWAY_ROLLUPS", raising=False)
    config = GatewaySettings(gateway_instance="gw", gateway_workers=3)
    keeping = []
    for index in range(3):
        with monkeypatch.context() as env:
            for name, value in worker_env(config, index).items():
                env.setenv(name, value)
            keeping.append(GatewaySettings().gateway_rollups)
    assert keeping == [True, False, False]
