"""Calibrations in the metadata store, on SQLite and on PostgreSQL: what is kept, what is refused (and that a
refusal changes nothing), the replacement of the one in force, and the migration of a store from before."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.orm import Session

from lauks.calibration import Calibration
from metastore import registry
from metastore.db import CalibrationRow, alembic_config, make_engine, open_store
from metastore.errors import Conflict, Invalid, NotFound, Required

both = pytest.mark.both_stores
T0 = datetime(2025, 3, 1, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture
def session(store_url: str) -> Iterator[Session]:
    sessions = open_store(store_url)
    with sessions() as session:
        registry.add_site(session, "school", timezone="Europe/Riga")
        registry.add_kit(session, "school", "k1")
        registry.add_kit(session, "school", "k2")
        yield session
    sessions.kw["bind"].dispose()


def add(session: Session, start: datetime, end: datetime | None = None, **overrides: Any) -> Calibration:
    fields: dict[str, Any] = {"offset": -0.4, "gain": 1.02, "valid_from": start, "valid_to": end,
                              "reason": "co-location", "created_by": "Ms Ozola", **overrides}
    kit = fields.pop("kit", "k1")
    quantity = fields.pop("quantity", "temperature")
    return registry.add_calibration(session, "school", kit, quantity, **fields)[0]


def stored(session: Session) -> list[Calibration]:
    session.expire_all()  # read back from the store, not from the session's memory
    return registry.list_calibrations(session, "school")


@both
def test_a_calibration_is_stored_listed_and_found_for_the_windows_it_overlaps(session: Session) -> None:
    first = add(session, T0, T0 + 10 * DAY)
    second = add(session, T0 + 10 * DAY, None, offset=0.1)
    humidity = add(session, T0, None, quantity="humidity", gain=0.97, offset=0.0)
    other = add(session, T0 + DAY, None, kit="k2")
    listed = stored(session)
    assert [c.id for c in listed] == [humidity.id, first.id, second.id, other.id]  # by kit, quantity, start
    assert (listed[1].gain, listed[1].offset, listed[1].valid_from, listed[1].valid_to, listed[1].created_by) == (
        1.02, -0.4, T0, T0 + 10 * DAY, "Ms Ozola")
    found = registry.calibrations_for(session, "school", ["k1"], ["temperature"], T0 + 9 * DAY, T0 + 11 * DAY)
    assert [c.id for c in found] == [first.id, second.id]
    assert registry.calibrations_for(session, "school", ["k1"], ["temperature"], T0 - DAY, T0) == []
    assert [c.id for c in registry.calibrations_for(session, "school", [], ["temperature"], T0 + 20 * DAY,
                                                    T0 + 21 * DAY)] == [second.id, other.id]
    assert [c.id for c in registry.list_calibrations(session, "school", "k1", "humidity")] == [humidity.id]


@both
def test_a_new_open_calibration_ends_the_one_in_force_at_its_start(session: Session) -> None:
    old = add(session, T0)
    new, ended = registry.add_calibration(session, "school", "k1", "temperature", offset=0.2, gain=1.0,
                                          valid_from=T0 + 5 * DAY, reason="recalibrated", created_by="Ms Ozola")
    assert ended is not None and ended.id == old.id and ended.valid_to == T0 + 5 * DAY
    assert [(c.id, c.valid_to) for c in stored(session)] == [(old.id, T0 + 5 * DAY), (new.id, None)]


@both
def test_a_window_that_overlaps_another_of_the_same_kit_and_quantity_is_refused_naming_it(session: Session) -> None:
    there = add(session, T0, T0 + 10 * DAY)
    before = stored(session)
    for start, end in ((T0 + 2 * DAY, T0 + 3 * DAY), (T0 - DAY, T0 + DAY), (T0, None), (T0 - DAY, None)):
        with pytest.raises(Conflict) as refused:
            add(session, start, end, offset=1.0)
        assert refused.value.code == "calibration_overlap" and f"calibration {there.id} " in refused.value.message
        assert stored(session) == before, (start, end)


@both
def test_a_closed_window_inside_the_one_in_force_and_an_open_one_starting_before_it_are_refused(
        session: Session) -> None:
    there = add(session, T0 + 5 * DAY)
    before = stored(session)
    for start, end in ((T0 + 6 * DAY, T0 + 7 * DAY), (T0 + 5 * DAY, None), (T0, None)):
        with pytest.raises(Conflict, match=f"calibration {there.id} "):
            add(session, start, end)
    assert stored(session) == before


BAD_INPUT: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"gain": 0.0}, Invalid, "bad_gain"),
    ({"gain": -2.0}, Invalid, "bad_gain"),
    ({"offset": float("nan")}, Invalid, "bad_number"),
    ({"quantity": "temprature"}, NotFound, "unknown_quantity"),
    ({"kit": "k9"}, NotFound, "unknown_kit"),
    ({"reason": "  "}, Invalid, "no_reason"),
    ({"reason": "x" * 501}, Invalid, "too_long"),
    ({"valid_to": T0}, Invalid, "reversed_window"),
    ({"created_by": "x\x00"}, Invalid, "bad_text"),
]


@both
def test_bad_input_gets_a_clear_error_and_changes_nothing(session: Session) -> None:
    there = add(session, T0 - 10 * DAY)  # in force: a refused replacement must not end it
    before = stored(session)
    for overrides, error, code in BAD_INPUT:
        with pytest.raises(error) as refused:
            add(session, T0, **overrides)
        assert refused.value.code == code, overrides  # type: ignore[attr-defined]
        assert stored(session) == before and before[0].valid_to is None and before[0].id == there.id


@both
def test_a_calibration_is_ended_its_reason_corrected_and_a_mistaken_one_deleted(session: Session) -> None:
    first = add(session, T0)
    ended = registry.edit_calibration(session, first.id, "school", "k1", valid_to=T0 + 3 * DAY,
                                      reason="co-location, 1 March")
    assert (ended.valid_to, ended.reason) == (T0 + 3 * DAY, "co-location, 1 March")
    later = add(session, T0 + 4 * DAY, T0 + 6 * DAY)
    with pytest.raises(Conflict, match=f"calibration {later.id} "):
        registry.edit_calibration(session, first.id, valid_to=None)  # in force again would overlap the later one
    with pytest.raises(Invalid) as reversed_:
        registry.edit_calibration(session, first.id, valid_to=T0)
    assert reversed_.value.code == "reversed_window"
    with pytest.raises(Required):
        registry.edit_calibration(session, first.id, reason=None)  # type: ignore[arg-type]
    with pytest.raises(Invalid) as field:
        registry.edit_calibration(session, first.id, gain=2.0)  # type: ignore[call-arg]
    assert field.value.code == "bad_field" and "add a new calibration" in field.value.message
    with pytest.raises(NotFound):
        registry.edit_calibration(session, first.id, "school", "k2", reason="wrong kit")
    kept = stored(session)[0]
    assert (kept.valid_to, kept.reason) == (T0 + 3 * DAY, "co-location, 1 March")
    registry.delete_calibration(session, later.id, "school", "k1")
    assert [c.id for c in stored(session)] == [first.id]
    with pytest.raises(NotFound) as gone:
        registry.delete_calibration(session, later.id)
    assert gone.value.code == "unknown_calibration"


@both
def test_the_migration_adds_calibrations_to_a_store_from_before_and_keeps_its_rows(store_url: str) -> None:
    engine = make_engine(store_url)
    try:
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), "0002")
            connection.execute(text("INSERT INTO sites (name, title, description, created_at) "
                                    "VALUES ('school', 'School', '', CURRENT_TIMESTAMP)"))
            connection.execute(text("INSERT INTO kits (site, name, kit_type, description, created_at, "
                                    "location_precision) VALUES ('school', 'k1', 'weather', '', CURRENT_TIMESTAMP, "
                                    "'exact')"))
    finally:
        engine.dispose()
    sessions = open_store(store_url)  # upgrades to the newest revision
    try:
        with sessions() as session:
            assert registry.get_kit(session, "school", "k1").location_precision == "exact"
            assert registry.list_calibrations(session, "school") == []
            made = add(session, T0)
            assert [c.id for c in registry.list_calibrations(session, "school", "k1")] == [made.id]
    finally:
        sessions.kw["bind"].dispose()


@both
def test_two_writers_adding_overlapping_calibrations_of_one_kit_take_turns_and_the_second_is_refused(
        store_url: str) -> None:
    sessions = open_store(store_url)
    try:
        with sessions() as first, sessions() as second:
            registry.add_site(first, "school")
            registry.add_kit(first, "school", "k1")
            registry._locked_kit(first, "school", "k1")  # the first writer is between its check and its commit
            first.add(CalibrationRow(site="school", kit="k1", quantity="temperature", offset=0.0, gain=1.0,
                                     valid_from=T0, valid_to=T0 + 2 * DAY, reason="first", created_by="a"))
            first.flush()
            outcome: list[BaseException | Calibration] = []

            def write() -> None:
                try:
                    outcome.append(add(second, T0 + DAY, T0 + 3 * DAY))
                except BaseException as error:  # handed to the test's thread
                    outcome.append(error)

            writer = threading.Thread(target=write)
            writer.start()
            time.sleep(0.5)  # let the second writer reach the lock (were it not there, it would insert now)
            first.commit()
            writer.join(timeout=30)
            assert len(outcome) == 1 and isinstance(outcome[0], Conflict), outcome
            assert [c.reason for c in registry.list_calibrations(first, "school")] == ["first"]
    finally:
        sessions.kw["bind"].dispose()
