"""The spool and the dead-letter log on disk: order, torn records, restarts, bounds, recovery, full disks."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.deadletter import DeadLetters
from gateway.spool import Spool, decode_records, encode_record
from lauks.contract import Reason, Rejection


def drain(spool: Spool, max_bytes: int = 8 * 1024 * 1024) -> list[bytes]:
    bodies = []
    while (chunk := spool.peek(max_bytes)) is not None:
        bodies.append(chunk.body)
        spool.advance(chunk)
    return bodies


def test_batches_come_back_in_the_order_they_were_spooled(tmp_path: Path) -> None:
    spool = Spool(tmp_path, fsync=False, segment_bytes=100)  # a new segment every few records
    for n in range(20):
        spool.append(f"m v={n} {n}\n".encode(), 1)
    assert spool.depth_points == 20 and spool.depth_records == 20
    assert len(list(tmp_path.glob("*.spool"))) > 3
    replayed = b"".join(drain(spool, max_bytes=64)).decode().splitlines()
    assert replayed == [f"m v={n} {n}" for n in range(20)]
    assert spool.empty and spool.depth_points == 0
    assert list(tmp_path.glob("*.spool")) == []


def test_a_restart_resumes_the_replay_where_it_stopped(tmp_path: Path) -> None:
    spool = Spool(tmp_path, fsync=False, segment_bytes=1000)
    for n in range(10):
        spool.append(f"m v={n} {n}\n".encode(), 1)
    chunk = spool.peek(max_bytes=40)
    assert chunk is not None
    spool.advance(chunk)
    spool.close()
    again = Spool(tmp_path, fsync=False)
    assert again.depth_points == 10 - chunk.points
    rest = b"".join(drain(again)).decode().splitlines()
    assert rest == [f"m v={n} {n}" for n in range(chunk.points, 10)]


def test_a_record_torn_by_a_crash_is_cut_away_and_appending_goes_on(tmp_path: Path) -> None:
    spool = Spool(tmp_path, fsync=False)
    spool.append(b"m v=1 1\n", 1)
    spool.close()
    (segment,) = tmp_path.glob("*.spool")
    with segment.open("ab") as file:
        file.write(encode_record(b"m v=2 2\n", 1)[:-3])  # the crash hit mid-write
    again = Spool(tmp_path, fsync=False)
    assert again.depth_records == 1
    again.append(b"m v=3 3\n", 1)
    assert b"".join(drain(again)) == b"m v=1 1\nm v=3 3\n"


def test_a_corrupted_record_is_not_replayed(tmp_path: Path) -> None:
    data = encode_record(b"m v=1 1\n", 1) + encode_record(b"m v=2 2\n", 1)
    records, end = decode_records(data.replace(b"v=2", b"v=9"))
    assert [body for _, _, body in records] == [b"m v=1 1\n"]
    assert end == len(encode_record(b"m v=1 1\n", 1))


def test_a_failed_append_leaves_the_spool_as_it_was(tmp_path: Path) -> None:
    spool = Spool(tmp_path, fsync=False)
    spool.append(b"m v=1 1\n", 1)
    import os

    real_write = os.write
    calls = {"n": 0}

    def failing_write(fd: int, data: bytes) -> int:
        calls["n"] += 1
        written = real_write(fd, bytes(data)[:5])  # a part lands, then the disk is full
        raise OSError(28, f"No space left on device after {written} bytes")

    os.write = failing_write  # type: ignore[assignment]
    try:
        try:
            spool.append(b"m v=2 2\n", 1)
        except OSError:
            pass
    finally:
        os.write = real_write
    assert calls["n"] == 1 and spool.depth_records == 1
    assert b"".join(drain(spool)) == b"m v=1 1\n"


def test_the_dead_letter_log_keeps_raw_payloads_within_its_bound(tmp_path: Path) -> None:
    letters = DeadLetters(tmp_path, max_bytes=4096)
    rejection = Rejection(Reason.NOT_JSON, "the message is not valid UTF-8 JSON")
    for n in range(100):
        letters.add("lauks/v1/s/k/readings", b"\xff\xfe" if n % 2 else b"not json %d" % n, n, [rejection])
    letters.close()
    files = sorted(tmp_path.glob("*.jsonl"))
    assert [f.name for f in files] == ["dead-letter.1.jsonl", "dead-letter.jsonl"]
    assert all(f.stat().st_size <= 4096 for f in files)
    last = json.loads(files[1].read_text().splitlines()[-1])
    assert last["payload_base64"] == "//4=" and last["reasons"][0]["reason"] == "not_json"


# --- recovery from what a crash can leave (issue 10, item 12) ----------------------------------------


def spooled(directory: Path, bodies: list[bytes], segment_bytes: int = 1000) -> None:
    spool = Spool(directory, fsync=False, segment_bytes=segment_bytes)
    for body in bodies:
        spool.append(body, 1)
    spool.close()


def batches(n: int, first: int = 0) -> list[bytes]:
    return [f"m v={i} {i}\n".encode() for i in range(first, first + n)]


def test_a_cursor_left_pointing_into_a_deleted_segment_costs_no_later_batch(tmp_path: Path) -> None:
    # what the earlier advance() left when killed between deleting the segments and moving the cursor:
    # a cursor in a segment that is gone; the next outage's batches were then lost on replay
    (tmp_path / "cursor").write_text("0 4130\n")
    spooled(tmp_path, batches(5))
    assert b"".join(drain(Spool(tmp_path, fsync=False))) == b"".join(batches(5))


def test_a_cursor_past_the_end_of_its_segment_replays_that_segment_from_its_start(tmp_path: Path) -> None:
    spooled(tmp_path, batches(3))
    (segment,) = tmp_path.glob("*.spool")
    (tmp_path / "cursor").write_text(f"{int(segment.stem)} 99999\n")
    assert b"".join(drain(Spool(tmp_path, fsync=False))) == b"".join(batches(3))


def test_a_cursor_off_the_record_boundaries_replays_that_segment_from_its_start(tmp_path: Path) -> None:
    spooled(tmp_path, batches(3))
    (segment,) = tmp_path.glob("*.spool")
    (tmp_path / "cursor").write_text(f"{int(segment.stem)} 7\n")
    assert b"".join(drain(Spool(tmp_path, fsync=False))) == b"".join(batches(3))


def test_a_missing_cursor_or_one_never_renamed_replays_everything(tmp_path: Path) -> None:
    spooled(tmp_path, batches(4), segment_bytes=40)
    spool = Spool(tmp_path, fsync=False, segment_bytes=40)
    spool.advance(spool.peek(max_bytes=1) or pytest.fail("nothing to replay"))
    spool.close()
    (tmp_path / "cursor").unlink()
    (tmp_path / "cursor.tmp").write_text("0 999\n")
    assert b"".join(drain(Spool(tmp_path, fsync=False))) == b"".join(batches(4))  # the first one again
    assert not (tmp_path / "cursor.tmp").exists()


def test_a_torn_cursor_slot_falls_back_to_the_one_before(tmp_path: Path) -> None:
    spooled(tmp_path, batches(4))
    spool = Spool(tmp_path, fsync=False)
    for _ in range(2):
        spool.advance(spool.peek(max_bytes=1) or pytest.fail("nothing to replay"))
    spool.close()
    cursor = bytearray((tmp_path / "cursor").read_bytes())
    newest = max((0, 64), key=lambda at: int(cursor[at : at + 16], 16))
    cursor[newest + 20 : newest + 30] = b"\0" * 10  # the crash hit while this slot was written
    (tmp_path / "cursor").write_bytes(bytes(cursor))
    assert b"".join(drain(Spool(tmp_path, fsync=False))) == b"".join(batches(4)[1:])


def test_the_next_batches_after_a_restart_go_to_a_fresh_segment(tmp_path: Path) -> None:
    spooled(tmp_path, batches(2))
    before = sorted(p.name for p in tmp_path.glob("*.spool"))
    spooled(tmp_path, batches(2, first=2))
    after = sorted(p.name for p in tmp_path.glob("*.spool"))
    assert len(after) == 2 and after[0] == before[0]
    assert b"".join(drain(Spool(tmp_path, fsync=False))) == b"".join(batches(4))


def test_a_damaged_record_inside_a_segment_is_skipped_and_the_records_after_it_are_kept(tmp_path: Path) -> None:
    spooled(tmp_path, batches(3))
    (segment,) = tmp_path.glob("*.spool")
    segment.write_bytes(segment.read_bytes().replace(b"v=1 1", b"v=9 1"))
    assert b"".join(drain(Spool(tmp_path, fsync=False))) == b"m v=0 0\nm v=2 2\n"


# --- a full disk, for real (a small tmpfs) -------------------------------------------------------------


def test_the_spool_drains_on_a_full_disk(small_fs: Callable[..., Any]) -> None:
    fs = small_fs(256)
    spool = Spool(fs.path / "spool", segment_bytes=1 << 20)
    for body in batches(6):
        spool.append(body, 1)
    fs.fill()
    replayed = b"".join(drain(spool, max_bytes=1))  # moving the cursor needs no new space
    assert replayed == b"".join(batches(6))
    assert spool.empty and list((fs.path / "spool").glob("*.spool")) == []


def test_a_full_disk_fails_an_append_cleanly_until_there_is_room(small_fs: Callable[..., Any]) -> None:
    fs = small_fs(256)
    spool = Spool(fs.path / "spool")
    spool.append(b"m v=0 0\n", 1)
    fs.fill()
    with pytest.raises(OSError):
        spool.append(b"m v=1 1 " + b"x" * 8192 + b"\n", 1)
    fs.free()
    spool.append(b"m v=2 2\n", 1)
    spool.close()
    again = Spool(fs.path / "spool")
    assert again.depth_records == 2
    assert b"".join(drain(again)) == b"m v=0 0\nm v=2 2\n"


def test_the_spool_opens_on_a_full_disk_and_cuts_a_torn_record_away(
        small_fs: Callable[..., Any]) -> None:
    fs = small_fs(256)
    spooled(fs.path / "spool", batches(2))
    (segment,) = (fs.path / "spool").glob("*.spool")
    with segment.open("ab") as file:
        file.write(encode_record(b"m v=2 2\n", 1)[:-3])
    fs.fill()
    spool = Spool(fs.path / "spool")
    assert spool.depth_records == 2
    assert b"".join(drain(spool)) == b"".join(batches(2))
