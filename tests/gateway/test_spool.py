"""The spool and the dead-letter log on disk: order, torn records, restarts, bounds."""

from __future__ import annotations

import json
from pathlib import Path

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
