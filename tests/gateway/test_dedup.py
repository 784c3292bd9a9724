"""The de-duplication state: its bounds (boots per kit, age, a key budget) in memory and in keys.log,
what a restart and a damaged log bring back, and a real full disk (issue 10, items 2, 13, 14, 15)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.dedup import BOOTS_PER_KIT, PROTECTED_KEYS, TABLE_COST, Dedup, decode_run

HOUR_MS = 3_600_000


def lines(directory: Path) -> list[bytes]:
    return (directory / "keys.log").read_bytes().splitlines(keepends=True)


def test_a_kit_raising_boot_at_every_message_keeps_only_its_last_boots(tmp_path: Path) -> None:
    dedup = Dedup(tmp_path, fsync=False, compact_bytes=4096)
    for boot in range(5000):
        dedup.see(("s", "k", boot, 0), 1000 + boot)
        dedup.persist()
    assert len(dedup) == 5000  # all among the latest keys: what the broker may still redeliver
    for seq in range(PROTECTED_KEYS):  # other kits' traffic moves them out of that
        dedup.see(("s", "other", 1, seq), 9000)
    dedup.see(("s", "k", 5000, 0), 9000)
    dedup.close()
    assert len(dedup) == BOOTS_PER_KIT + 4096
    again = Dedup(tmp_path, fsync=False)
    assert len(again) == BOOTS_PER_KIT + 4096
    assert not again.see(("s", "k", 4997, 0), 5).new and again.see(("s", "k", 10, 0), 5).new
    assert len(lines(tmp_path)) == BOOTS_PER_KIT + 1  # the start-up rewrite dropped the rest on disk too


def test_what_the_broker_may_redeliver_is_known_after_a_restart_even_at_a_boot_a_message(tmp_path: Path) -> None:
    dedup = Dedup(tmp_path, fsync=False, compact_bytes=4096)
    for n in range(3 * 4000):  # three times the gateway's in-flight window, every message a boot of its own
        dedup.see(("s", f"k{n % 3}", n, 0), 1000 + n)
        dedup.persist()
    dedup.close()
    again = Dedup(tmp_path, fsync=False)
    assert not any(again.see(("s", f"k{n % 3}", n, 0), 5).new for n in range(3 * 4000))


def test_the_message_a_previous_boot_left_unacknowledged_is_still_recognised(tmp_path: Path) -> None:
    dedup = Dedup(tmp_path, fsync=False)
    dedup.see(("s", "k", 5, 9), 1000)
    for seq in range(100):
        dedup.see(("s", "k", 6, seq), 2000 + seq)
    dedup.close()
    again = Dedup(tmp_path, fsync=False)
    seen = again.see(("s", "k", 5, 9), 99_000)  # the kit resends its pending message after a reboot
    assert not seen.new and seen.received_ms == 1000


def test_keys_older_than_the_age_bound_are_forgotten_in_memory_and_in_the_log(tmp_path: Path) -> None:
    dedup = Dedup(tmp_path, fsync=False, max_age_s=3600)
    dedup.see(("s", "old", 1, 0), 0)
    dedup.see(("s", "k", 1, 0), 1000)
    dedup.see(("s", "k", 1, 1), 2 * HOUR_MS)
    dedup.persist()
    assert dedup.see(("s", "old", 1, 0), 2 * HOUR_MS).new
    dedup.close()
    again = Dedup(tmp_path, fsync=False, max_age_s=3600)
    assert not again.see(("s", "k", 1, 1), 5).new
    assert again.see(("s", "k", 1, 0), 5).new
    assert all(b" old " not in line and not line.startswith(b"s k 1 0 ") for line in lines(tmp_path))


def test_the_age_counts_from_the_newest_receipt_so_a_long_stopped_gateway_still_knows_its_keys(
        tmp_path: Path) -> None:
    dedup = Dedup(tmp_path, fsync=False, max_age_s=60)
    dedup.see(("s", "k", 1, 0), 1000)  # received in 1970: far older than a minute by the wall clock
    dedup.close()
    assert not Dedup(tmp_path, fsync=False, max_age_s=60).see(("s", "k", 1, 0), 5).new


def test_the_key_budget_drops_superseded_boots_first_then_keeps_each_kits_newest_keys(tmp_path: Path) -> None:
    budget = 2000
    dedup = Dedup(tmp_path, fsync=False, max_keys=budget)
    for seq in range(200):
        dedup.see(("s", "k0", 1, seq), seq)
    for kit in range(10):
        for seq in range(200):
            dedup.see(("s", f"k{kit}", 2, seq), 1000 + seq)
    assert len(dedup) + TABLE_COST * 10 <= budget
    assert dedup.see(("s", "k0", 1, 199), 5).new  # the old boot went first
    for kit in range(10):
        for seq in range(100, 200):  # the newest 100 of every kit stay (a fair share: (1750 - 10 * 64) / 10)
            assert not dedup.see(("s", f"k{kit}", 2, seq), 5).new
    dedup.close()
    assert len(Dedup(tmp_path, fsync=False, max_keys=budget)) <= budget


def test_a_window_keeps_the_highest_seqs_of_a_boot(tmp_path: Path) -> None:
    dedup = Dedup(tmp_path, window=16, fsync=False)
    for seq in range(100):
        dedup.see(("s", "k", 1, seq), 1000 + seq)
    dedup.close()
    again = Dedup(tmp_path, window=16, fsync=False)
    assert len(again) == 16
    assert again.see(("s", "k", 1, 99), 5).received_ms == 1099
    assert again.see(("s", "k", 1, 83), 5).new
    assert len(lines(tmp_path)) == 1  # one run of 16 consecutive keys


def test_a_damaged_line_in_the_middle_of_the_log_costs_only_its_own_keys(tmp_path: Path) -> None:
    dedup = Dedup(tmp_path, fsync=False)
    for kit in ("a", "b", "c"):
        dedup.see(("s", kit, 1, 0), 1000)
        dedup.persist()
    dedup.close()
    log = lines(tmp_path)
    log[1] = log[1].replace(b"1000", b"1001")
    (tmp_path / "keys.log").write_bytes(b"".join(log))
    again = Dedup(tmp_path, fsync=False)
    assert [again.see(("s", kit, 1, 0), 5).new for kit in ("a", "b", "c")] == [False, True, False]


def test_lines_of_the_earlier_format_still_load(tmp_path: Path) -> None:
    (tmp_path / "keys.log").write_bytes(b"s k 1 1 1000\ns k 1 2 1001\n")
    seen = Dedup(tmp_path, fsync=False).see(("s", "k", 1, 2), 5)
    assert not seen.new and seen.received_ms == 1001


def test_a_run_line_round_trips() -> None:
    from gateway.dedup import encode_run

    line = encode_run("site-1", "kit-2", 3, 40, [1000, 1060, 1050, 2000])
    assert decode_run(line) == ("site-1", "kit-2", 3, 40, [1000, 1060, 1050, 2000])
    assert decode_run(line[:-4] + b"\n") is None and decode_run(line[:-1]) is None


# --- a full disk, for real (a small tmpfs) -------------------------------------------------------------


def test_a_persist_cut_short_by_a_full_disk_leaves_no_broken_line_and_keeps_its_keys(
        small_fs: Callable[..., Any]) -> None:
    fs = small_fs(256)
    where = fs.path / "dedup"
    dedup = Dedup(where, compact_bytes=1 << 30)
    seq = 0
    while not 0 < -(where / "keys.log").stat().st_size % 4096 < 12:  # room for less than one line
        dedup.see(("s", "k", 1, seq), 1000)
        dedup.persist()
        seq += 2  # a line each
    fs.fill()
    for kit in range(300):  # more than the log's last page holds: a short write cutting a line, then ENOSPC
        dedup.see(("s", f"k{kit}", 2, 0), 2000)
    with pytest.raises(OSError):
        dedup.persist()
    fs.free()
    dedup.persist()  # the keys waited for the retry
    dedup.close()
    assert all(decode_run(line) is not None for line in lines(where))
    again = Dedup(where)
    assert not any(again.see(("s", f"k{kit}", 2, 0), 5).new for kit in range(300))


def test_a_rewrite_on_a_full_disk_keeps_the_old_log_in_use(small_fs: Callable[..., Any]) -> None:
    fs = small_fs(256)
    where = fs.path / "dedup"
    dedup = Dedup(where, compact_bytes=200)
    dedup.see(("s", "k", 1, 0), 999)
    dedup.persist()
    fs.fill()  # keys.log holds a few bytes in its page: short appends still fit, a new file does not
    for seq in range(1, 12):
        dedup.see(("s", "k", 1, seq * 2), 1000 + seq)  # gaps: a line each
        dedup.persist()
    assert dedup.compaction_failures >= 1
    fs.free()
    for seq in range(12, 20):
        dedup.see(("s", "k", 1, seq * 2), 1000 + seq)
        dedup.persist()
    dedup.close()
    assert all(p.name == "keys.log" for p in where.iterdir())
    again = Dedup(where)
    assert not any(again.see(("s", "k", 1, seq * 2), 5).new for seq in range(20))


def test_the_state_opens_on_a_full_disk_and_writes_again_once_there_is_room(small_fs: Callable[..., Any]) -> None:
    fs = small_fs(256)
    where = fs.path / "dedup"
    dedup = Dedup(where, window=16, fsync=False, compact_bytes=1 << 30)
    for seq in range(0, 2000, 2):  # a line each, all but 8 beyond the window: the rewrite would drop them
        dedup.see(("s", "k", 1, seq), 1000)
        dedup.persist()
    dedup.close()
    with (where / "keys.log").open("ab") as file:
        file.write(b"s k 1 2000 20")  # torn by a crash
    fs.fill()
    again = Dedup(where, window=16)  # must not raise: the old log stays in use
    assert again.compaction_failures == 1
    assert not again.see(("s", "k", 1, 1998), 5).new
    again.see(("s", "k", 1, 2000), 3000)
    fs.free()
    again.persist()
    again.close()
    third = Dedup(where, window=16)
    assert third.see(("s", "k", 1, 2000), 5).received_ms == 3000 and not third.see(("s", "k", 1, 1986), 5).new
    assert len(lines(where)) == 8  # rewritten now
