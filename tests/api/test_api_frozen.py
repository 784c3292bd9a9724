"""Frozen dataset files: one writer, checked before kept, and whole or absent after any crash or cancel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from api_fixtures import api_process, lauks, point, process_env, staff_token

from api import streaming
from api.dataset import request_of
from api.frozen import FileOps, Freezer
from lauks.influx import InfluxClient
from lauks.services import Influxd
from metastore.db import Dataset, one_session

CONTENT = [bytes([65 + i]) * 10_000 for i in range(20)]  # 200 kB in 20 chunks
WHOLE = b"".join(CONTENT)


async def export() -> AsyncIterator[bytes]:
    for chunk in CONTENT:
        await asyncio.sleep(0)
        yield chunk


async def download(freezer: Freezer, target: Path) -> bytes:
    return b"".join([chunk async for chunk in freezer.serve(target, export)])


class Crash(BaseException):
    """The process dies here: nothing after it runs, no finally block cleans up."""


class CrashingOps(FileOps):
    """Real file operations, until the n-th (counting from 0): that one and every later one crash."""

    def __init__(self, crash_at: int | None = None) -> None:
        self.crash_at = crash_at
        self.calls: list[str] = []

    def _step(self, name: str) -> None:
        self.calls.append(name)
        if self.crash_at is not None and len(self.calls) > self.crash_at:
            raise Crash(name)

    def write(self, fd: int, data: bytes) -> None:
        self._step("write")
        super().write(fd, data)

    def fsync(self, fd: int) -> None:
        self._step("fsync")
        super().fsync(fd)

    def rename(self, source: str, target: str) -> None:
        self._step("rename")
        super().rename(source, target)

    def unlink(self, path: str) -> None:
        self._step("unlink")
        super().unlink(path)


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.tmp"))


async def test_a_crash_at_any_write_fsync_rename_or_unlink_leaves_no_file_or_the_whole_file(tmp_path: Path) -> None:
    clean = CrashingOps()
    await download(Freezer(tmp_path / "clean", clean), tmp_path / "clean" / "X.csv")
    assert {"write", "fsync", "rename"} <= set(clean.calls)
    # a leftover of an earlier crash, so that unlink is among the crash points too
    steps = len(clean.calls) + 1
    for crash_at in range(steps):
        folder = tmp_path / f"crash-{crash_at}"
        folder.mkdir()
        (folder / ".X.csv.older.tmp").write_bytes(b"half")
        target = folder / "X.csv"
        ops = CrashingOps(crash_at)
        with pytest.raises(Crash):
            await download(Freezer(folder, ops), target)
        assert not target.exists() or target.read_bytes() == WHOLE, f"crash at {ops.calls[-1]} #{crash_at}"
        # restarted: the next download is whole, the kept file is whole, and nothing temporary stays
        assert await download(Freezer(folder), target) == WHOLE
        assert target.read_bytes() == WHOLE and temporaries(folder) == [], f"crash at {ops.calls[-1]} #{crash_at}"


def test_start_up_removes_the_temporary_files_a_crash_left(tmp_path: Path) -> None:
    (tmp_path / ".X.csv.abc123.tmp").write_bytes(b"half")
    (tmp_path / ".Y.json.def456.tmp").write_bytes(b"half")
    assert Freezer(tmp_path).sweep() == 2 and temporaries(tmp_path) == []


async def test_a_file_that_reads_back_different_from_the_export_is_not_kept(tmp_path: Path) -> None:
    class Corrupting(FileOps):
        def write(self, fd: int, data: bytes) -> None:
            super().write(fd, data[:-1] + b"\0")

    target = tmp_path / "X.csv"
    assert await download(Freezer(tmp_path, Corrupting()), target) == WHOLE  # the class still gets it whole
    assert not target.exists() and temporaries(tmp_path) == []


async def test_a_download_cancelled_half_way_keeps_nothing_and_the_next_keeps_the_whole(tmp_path: Path) -> None:
    freezer = Freezer(tmp_path)
    target = tmp_path / "X.csv"
    stream = freezer.serve(target, export)
    assert [await anext(stream) for _ in range(10)] == CONTENT[:10]
    await stream.aclose()  # type: ignore[attr-defined]
    assert not target.exists() and temporaries(tmp_path) == []
    assert await download(freezer, target) == WHOLE and target.read_bytes() == WHOLE


@pytest.mark.both_stores
async def test_eight_first_downloads_and_one_cancelled_all_get_the_whole_file_of_a_fresh_export(
        tmp_path: Path, influxd: Influxd, database: str, store_url: str) -> None:
    env = process_env(tmp_path, influxd.url, database, DATABASE_URL=store_url)
    assert lauks(env, "site", "add", "school", "--timezone", "Europe/Riga").returncode == 0
    assert lauks(env, "kit", "register", "school", "k1").returncode == 0
    token = staff_token(env)
    t0 = datetime(2025, 4, 1, tzinfo=UTC)
    async with InfluxClient(influxd.url) as influx:
        lines = [point("school", "k1", t0 + timedelta(seconds=i), temperature=i / 100) for i in range(40_000)]
        for start in range(0, len(lines), 10_000):
            await influx.write(database, lines[start:start + 10_000], precision="ms")
        with api_process(env) as url:
            async with httpx.AsyncClient(base_url=url, timeout=60) as client:
                made = await client.post("/v1/datasets", headers={"Authorization": f"Bearer {token}"}, json={
                    "title": "Many", "site": "school", "quantities": ["temperature"], "start": "2025-04-01",
                    "end": "2025-04-01"})
                assert made.status_code == 201, made.text
                code = made.json()["code"]
                path = f"/v1/datasets/{code}/data.csv"

                async def whole() -> bytes:
                    return (await client.get(path)).content

                async def cancelled() -> int:
                    received = 0
                    async with httpx.AsyncClient(base_url=url, timeout=60) as own, own.stream("GET", path) as got:
                        async for chunk in got.aiter_raw():
                            received += len(chunk)
                            if received > 700_000:
                                break
                    return received

                first = asyncio.create_task(cancelled())
                await asyncio.sleep(0.05)
                bodies = await asyncio.gather(*(whole() for _ in range(8)))
                assert await first > 700_000
                after = await whole()
        with one_session(store_url) as session:
            dataset = session.get(Dataset, code.replace("-", ""))
            fresh = b"".join([part async for part in streaming.body(influx, database, request_of(dataset), "csv")])
    stored = (tmp_path / "datasets" / f"{code.replace('-', '')}.csv").read_bytes()
    assert len(fresh) > 1_400_000 and stored == fresh
    assert all(body == fresh for body in bodies) and after == fresh
    assert temporaries(tmp_path / "datasets") == []
