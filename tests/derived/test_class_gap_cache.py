"""The class page's gaps: worked out once for a fixed window and again each minute for a rolling one, by a task
that goes on when a page stops waiting for it; InfluxDB down is said, and tried again at the next view.
(The gap finding itself is replaced here: tests/derived/test_gaps.py runs it against a real InfluxDB.)"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from api.gaps import Gap
from lauks.influx import InfluxUnavailable
from metastore.db import Dataset
from web.pages import classes

AT = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


class FakeGaps:
    """Stands in for find_gaps and kit_intervals: counts its calls, waits ``delay_s``, or fails."""

    def __init__(self) -> None:
        self.calls = 0
        self.delay_s = 0.0
        self.fail = False

    async def find(self, client: Any, database: str, site: str, kits: list[str], quantities: list[str],
                   start: datetime, end: datetime, intervals: dict[str, int], *, now: datetime) -> list[Gap]:
        self.calls += 1
        await asyncio.sleep(self.delay_s)
        if self.fail:
            raise InfluxUnavailable("InfluxDB at http://127.0.0.1:1 is unreachable")
        return [Gap(kits[0], start, start + timedelta(hours=1))]

    async def intervals(self, client: Any, database: str, site: str, kits: list[str]) -> dict[str, int]:
        return dict.fromkeys(kits, 60)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGaps]:
    made = FakeGaps()
    monkeypatch.setattr(classes, "find_gaps", made.find)
    monkeypatch.setattr(classes, "kit_intervals", made.intervals)
    monkeypatch.setattr(classes, "GAPS_WAIT_S", 0.2)
    classes._GAPS.clear()
    yield made
    classes._GAPS.clear()


def request() -> Any:
    state = SimpleNamespace(settings=SimpleNamespace(influx_database="lauks"), influx=object())
    return SimpleNamespace(app=SimpleNamespace(state=state))


def fixed() -> Dataset:
    return Dataset(code="ABCD2345", site="s", kits=["k-01"], quantities=["temperature"], timezone="Europe/Riga",
                   start=AT - timedelta(days=7), end=AT - timedelta(days=1), rolling_days=None)


def rolling() -> Dataset:
    return Dataset(code="EFGH2345", site="s", kits=["k-01"], quantities=["temperature"], timezone="Europe/Riga",
                   start=AT - timedelta(days=7), end=AT, rolling_days=7)


async def test_a_fixed_window_s_gaps_are_worked_out_once(fake: FakeGaps) -> None:
    first = await classes.dataset_gaps(request(), fixed(), AT)
    again = await classes.dataset_gaps(request(), fixed(), AT + timedelta(days=3))
    assert first[0] == again[0] == "ok" and first[1] == again[1] and len(first[1]) == 1
    assert fake.calls == 1


async def test_a_rolling_window_s_gaps_are_worked_out_again_after_a_minute(fake: FakeGaps) -> None:
    await classes.dataset_gaps(request(), rolling(), AT)
    await classes.dataset_gaps(request(), rolling(), AT + timedelta(seconds=30))
    assert fake.calls == 1
    state, _found, made = await classes.dataset_gaps(request(), rolling(), AT + timedelta(seconds=90))
    assert fake.calls == 2 and state == "ok" and made == AT + timedelta(seconds=90)


async def test_a_fixed_window_that_ends_later_is_worked_out_again_as_it_goes_on(fake: FakeGaps) -> None:
    dataset = fixed()
    dataset.end = AT + timedelta(days=2)
    await classes.dataset_gaps(request(), dataset, AT)
    await classes.dataset_gaps(request(), dataset, AT + timedelta(seconds=30))
    assert fake.calls == 1
    await classes.dataset_gaps(request(), dataset, AT + timedelta(seconds=90))
    assert fake.calls == 2


async def test_a_long_wait_says_pending_and_the_work_goes_on_for_the_next_view(fake: FakeGaps) -> None:
    fake.delay_s = 0.5
    state, found, _made = await classes.dataset_gaps(request(), fixed(), AT)
    assert (state, found) == ("pending", [])
    await asyncio.sleep(0.5)
    state, found, _made = await classes.dataset_gaps(request(), fixed(), AT)
    assert state == "ok" and len(found) == 1 and fake.calls == 1


async def test_influxdb_down_is_said_and_tried_again_at_the_next_view(fake: FakeGaps) -> None:
    fake.fail = True
    assert (await classes.dataset_gaps(request(), fixed(), AT))[0] == "unavailable"
    fake.fail = False
    state, found, _made = await classes.dataset_gaps(request(), fixed(), AT)
    assert state == "ok" and len(found) == 1 and fake.calls == 2


async def test_a_changed_dataset_is_worked_out_anew(fake: FakeGaps) -> None:
    dataset = fixed()
    await classes.dataset_gaps(request(), dataset, AT)
    dataset.kits = ["k-01", "k-02"]
    await classes.dataset_gaps(request(), dataset, AT)
    assert fake.calls == 2


async def test_the_process_keeps_the_gaps_of_a_bounded_number_of_datasets(fake: FakeGaps,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(classes, "GAPS_KEPT", 3)
    for n in range(5):
        dataset = fixed()
        dataset.code = f"ABCD{2345 + n}"
        await classes.dataset_gaps(request(), dataset, AT)
    assert len(classes._GAPS) == 3
