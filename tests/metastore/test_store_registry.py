"""The registry's domain logic on the store itself, no HTTP: the same answers on SQLite and on PostgreSQL.

Tests marked ``both_stores`` run on each (``store_url``); checks of input alone run on SQLite only.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from metastore import registry, sharecode
from metastore.db import Dataset, StaffToken, open_store
from metastore.errors import Conflict, Gone, Invalid, NotFound, Required

both = pytest.mark.both_stores
T0 = datetime(2025, 4, 1, tzinfo=UTC)


@pytest.fixture
def session(store_url: str) -> Iterator[Session]:
    sessions = open_store(store_url)
    with sessions() as session:
        yield session
    sessions.kw["bind"].dispose()


def new_dataset(session: Session, **overrides: object) -> Dataset:
    fields: dict[str, object] = {"title": "Spring rain", "site": "school", "kits": ["k1"], "quantities": ["rain"],
                                 "start": T0, "end": T0 + timedelta(days=1), "timezone": "Europe/Riga",
                                 "every": "1h", "agg": None, "created_by": "Ms Ozola", **overrides}
    return registry.add_dataset(session, **fields)


@both
def test_a_site_and_its_kits_are_added_edited_listed_and_retired(session: Session) -> None:
    registry.add_site(session, "school", title="Riga School 3", timezone="Europe/Riga", latitude=56.95)
    registry.add_kit(session, "school", "k2", kit_type="soil", deployed_since=T0)
    registry.add_kit(session, "school", "k1")
    registry.edit_site(session, "school", description="roof", latitude=None)
    registry.edit_kit(session, "school", "k2", description="by the fence", elevation_m=8.5)
    session.expire_all()  # read back from the store, not from the session's memory
    site = registry.get_site(session, "school")
    assert (site.title, site.description, site.latitude, site.timezone) == ("Riga School 3", "roof", None,
                                                                           "Europe/Riga")
    kit = registry.get_kit(session, "school", "k2")
    assert (kit.kit_type, kit.description, kit.elevation_m, kit.deployed_since) == ("soil", "by the fence", 8.5, T0)
    assert [k.name for k in registry.list_kits(session, "school")] == ["k1", "k2"]
    registry.retire_kit(session, "school", "k1")
    assert [k.name for k in registry.list_kits(session, "school")] == ["k2"]
    assert registry.check_kits(session, "school", []) == ["k1", "k2"]  # a dataset may name a retired kit
    registry.retire_site(session, "school")
    assert registry.list_sites(session) == [] and registry.list_sites(session, include_retired=True)[0].retired_at


@both
def test_sites_and_kits_are_listed_in_the_order_of_their_names_on_every_store(session: Session) -> None:
    names = ["b", "a-b", "ab", "a1", "a", "a-1"]
    for name in names:
        registry.add_site(session, name)
    for name in names:
        registry.add_kit(session, "a", name)
    assert [s.name for s in registry.list_sites(session)] == sorted(names)
    assert [k.name for k in registry.list_kits(session, "a")] == sorted(names)


@both
def test_a_second_site_or_kit_of_the_same_name_is_a_conflict(session: Session) -> None:
    registry.add_site(session, "school")
    registry.add_kit(session, "school", "k1")
    with pytest.raises(Conflict, match="exists already") as site:
        registry.add_site(session, "school")
    with pytest.raises(Conflict, match="already") as kit:
        registry.add_kit(session, "school", "k1")
    assert (site.value.code, kit.value.code) == ("site_exists", "kit_exists")


@both
def test_a_site_or_kit_another_writer_adds_between_the_check_and_the_commit_is_a_conflict(store_url: str) -> None:
    """Two API replicas (or a replica and a command) adding the same name at once: one wins, one hears why."""
    sessions = open_store(store_url)
    with sessions() as ours, sessions() as theirs:
        registry.add_site(theirs, "garden")
        event.listen(ours, "before_flush", lambda *_: registry.add_site(theirs, "school"), once=True)
        with pytest.raises(Conflict, match="site 'school' exists already"):
            registry.add_site(ours, "school")
        event.listen(ours, "before_flush", lambda *_: registry.add_kit(theirs, "garden", "k1"), once=True)
        with pytest.raises(Conflict, match="has a kit 'k1' already"):
            registry.add_kit(ours, "garden", "k1")
        assert [s.name for s in registry.list_sites(ours)] == ["garden", "school"]  # and the session goes on
    sessions.kw["bind"].dispose()


@both
def test_names_that_could_never_exist_are_not_found_even_with_a_nul_or_300_characters(session: Session) -> None:
    registry.add_site(session, "school")
    for name in ("\x00", "school\x00", "x" * 300, "School", "../school"):
        with pytest.raises(NotFound) as error:
            registry.get_site(session, name)
        assert error.value.code == "unknown_site"
        with pytest.raises(NotFound):
            registry.get_kit(session, "school", name)
        with pytest.raises(NotFound):
            registry.get_kit(session, name, "k1")
    with pytest.raises(NotFound, match="has no kit 'k9'; its kits are: none yet"):
        registry.check_kits(session, "school", ["k9"])


@both
def test_text_the_store_cannot_hold_is_refused_alike_and_nothing_is_kept(session: Session) -> None:
    registry.add_site(session, "school")
    with pytest.raises(Invalid, match="NUL") as nul:
        registry.edit_site(session, "school", description="roof\x00")
    with pytest.raises(Invalid, match="at most 200 characters") as long:
        registry.edit_site(session, "school", title="x" * 201)
    with pytest.raises(Invalid, match="at most 200"):
        registry.add_site(session, "other", title="x" * 201)
    with pytest.raises(Invalid, match="at most 64"):
        registry.add_kit(session, "school", "k1", kit_type="y" * 65)
    with pytest.raises(Invalid, match="at most 100"):
        registry.create_token(session, "z" * 101)
    registry.add_kit(session, "school", "k1")
    with pytest.raises(Invalid, match="NUL"):
        new_dataset(session, title="Rain\x00")
    assert (nul.value.code, long.value.code) == ("bad_text", "too_long")
    session.rollback()
    session.expire_all()
    assert registry.get_site(session, "school").title == "school"
    assert [site.name for site in registry.list_sites(session)] == ["school"]
    assert registry.list_kits(session, "school")[0].kit_type == "weather"
    assert registry.list_datasets(session) == [] and registry.list_tokens(session) == []


def test_a_time_without_an_offset_a_coordinate_off_the_earth_and_an_unknown_field_are_refused(
        session: Session) -> None:
    registry.add_site(session, "school")
    registry.add_kit(session, "school", "k1")
    with pytest.raises(Invalid, match=r"no offset: give it like 2025-03-01T09:00\+02:00"):
        registry.edit_kit(session, "school", "k1", deployed_since=datetime(2025, 3, 1, 9))
    for field, value in (("latitude", 91.0), ("longitude", -180.5), ("elevation_m", float("nan"))):
        with pytest.raises(Invalid, match=f"{field} must be between") as error:
            registry.edit_site(session, "school", **{field: value})
        assert error.value.code == "bad_location"
    with pytest.raises(Invalid, match="'colour' cannot be set here"):
        registry.edit_kit(session, "school", "k1", colour="red")
    with pytest.raises(Required, match="kit_type cannot be null"):
        registry.edit_kit(session, "school", "k1", kit_type=None)
    with pytest.raises(Invalid, match="not an IANA time zone"):
        registry.add_site(session, "other", timezone="right/Europe/Riga")
    with pytest.raises(Invalid, match="not allowed") as name:
        registry.add_kit(session, "school", "Kit 1")
    assert name.value.code == "bad_kit_name"


@both
def test_a_staff_token_is_stored_hashed_and_a_revoked_one_is_refused(session: Session) -> None:
    token = registry.create_token(session, " Ms Ozola ")
    other = registry.create_token(session, "Mr Berzins")
    rows = list(session.query(StaffToken))
    assert token not in {r.token_hash for r in rows} and registry.token_hash(token) in {r.token_hash for r in rows}
    staff = registry.staff_for(session, token)
    assert staff is not None and staff.name == "Ms Ozola"
    assert registry.staff_for(session, token + "x") is None and registry.staff_for(session, "lauks_\x00") is None
    registry.revoke_token(session, staff.id)
    session.expire_all()
    assert registry.staff_for(session, token) is None and registry.staff_for(session, other) is not None
    assert [t.name for t in registry.list_tokens(session)] == ["Mr Berzins"]
    assert len(registry.list_tokens(session, include_revoked=True)) == 2
    with pytest.raises(NotFound, match="no staff token 999"):
        registry.revoke_token(session, 999)
    with pytest.raises(Invalid, match="give the token a name"):
        registry.create_token(session, "  ")


@both
def test_a_dataset_is_found_by_its_code_in_any_spelling_until_it_expires(session: Session) -> None:
    registry.add_site(session, "school")
    registry.add_kit(session, "school", "k1")
    made = new_dataset(session, expires_at=datetime.now(UTC) + timedelta(days=1))
    session.expire_all()
    found = registry.dataset_by_code(session, sharecode.display(made.code).lower())
    assert (found.title, found.kits, found.start, found.end) == ("Spring rain", ["k1"], T0, T0 + timedelta(days=1))
    assert found.start.tzinfo is not None and found.created_at.tzinfo is not None
    with pytest.raises(NotFound, match="check it for typos"):
        registry.dataset_by_code(session, "AAAA-AAAA\x00")
    found.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    session.commit()
    with pytest.raises(Gone, match="ask your teacher for a new one") as gone:
        registry.dataset_by_code(session, made.code)
    assert gone.value.code == "code_expired"
    with pytest.raises(NotFound, match="there is no site 'nowhere'"):
        new_dataset(session, site="nowhere")


@both
def test_a_datasets_title_description_and_expiry_are_edited_and_its_selection_stays(session: Session) -> None:
    registry.add_site(session, "school")
    registry.add_kit(session, "school", "k1")
    made = new_dataset(session, description="April")
    code = sharecode.display(made.code).lower()
    later = datetime.now(UTC) + timedelta(days=30)
    registry.edit_dataset(session, code, title="Spring rain, corrected", description=None, expires_at=later)
    session.expire_all()
    found = registry.dataset_by_code(session, made.code)
    assert (found.title, found.description, found.expires_at) == ("Spring rain, corrected", "", later)
    assert (found.kits, found.start, found.end) == (["k1"], T0, T0 + timedelta(days=1))
    registry.edit_dataset(session, made.code, expires_at=None)
    session.expire_all()
    assert registry.dataset_by_code(session, made.code).expires_at is None  # never expires
    with pytest.raises(Required, match="title cannot be null"):
        registry.edit_dataset(session, made.code, title=None)  # type: ignore[arg-type]
    with pytest.raises(Invalid, match="'site' cannot be set here"):
        registry.edit_dataset(session, made.code, site="other")  # type: ignore[call-arg]
    with pytest.raises(NotFound, match="check it for typos"):
        registry.edit_dataset(session, "AAAA-AAAA", title="x")


@both
def test_an_expiry_in_the_past_is_refused_and_a_later_one_brings_an_expired_code_back(session: Session) -> None:
    registry.add_site(session, "school")
    registry.add_kit(session, "school", "k1")
    with pytest.raises(Invalid, match="in the past: give a time to come, or null") as past:
        new_dataset(session, expires_at=datetime.now(UTC) - timedelta(minutes=1))
    assert past.value.code == "expiry_in_past" and registry.list_datasets(session) == []
    made = new_dataset(session, expires_at=datetime.now(UTC) + timedelta(days=1))
    made.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    session.commit()
    with pytest.raises(Gone):
        registry.dataset_by_code(session, made.code)
    with pytest.raises(Invalid, match="in the past"):
        registry.edit_dataset(session, made.code, expires_at=datetime(2025, 1, 1, tzinfo=UTC))
    registry.edit_dataset(session, made.code, expires_at=datetime.now(UTC) + timedelta(days=7))
    session.expire_all()
    assert registry.dataset_by_code(session, made.code).code == made.code


@both
def test_a_deleted_dataset_is_not_found_and_a_second_delete_says_so(session: Session) -> None:
    registry.add_site(session, "school")
    registry.add_kit(session, "school", "k1")
    made, kept = new_dataset(session), new_dataset(session, title="Kept")
    assert registry.delete_dataset(session, sharecode.display(made.code)) == made.code
    session.expire_all()
    with pytest.raises(NotFound, match="check it for typos"):
        registry.dataset_by_code(session, made.code)
    with pytest.raises(NotFound):
        registry.delete_dataset(session, made.code)
    assert [d.code for d in registry.list_datasets(session)] == [kept.code]


@both
def test_register_kit_records_the_kit_and_its_site_in_the_store_the_settings_name(
        store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAUKS_API_DATABASE_URL", store_url)
    registry.register_kit("field-3", "k9", "river", state_dir=tmp_path / "elsewhere", description="by the bridge")
    registry.register_kit("field-3", "k9", "river", state_dir=tmp_path / "elsewhere", description="moved",
                          latitude=56.9)
    sessions = open_store(store_url)
    with sessions() as session:
        kit = registry.get_kit(session, "field-3", "k9")
        assert (kit.kit_type, kit.description, kit.latitude) == ("river", "moved", 56.9)
    sessions.kw["bind"].dispose()


def test_register_kit_uses_sqlite_in_the_state_folder_by_default(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAUKS_API_DATABASE_URL", raising=False)
    registry.register_kit("garden", "k1", "soil", state_dir=tmp_path)
    sessions = open_store(f"sqlite:///{tmp_path / 'lauks.db'}")
    with sessions() as session:
        assert registry.get_kit(session, "garden", "k1").kit_type == "soil"
    sessions.kw["bind"].dispose()


@both
def test_a_rolling_dataset_keeps_its_days_and_they_can_change_but_not_a_fixed_windows(session: Session) -> None:
    registry.add_site(session, "school")
    rolling = new_dataset(session, rolling_days=7)
    assert registry.get_dataset(session, rolling.code).rolling_days == 7
    edited = registry.edit_dataset(session, rolling.code, rolling_days=30)
    assert edited.rolling_days == 30 and edited.end - edited.start == timedelta(days=30)
    fixed = new_dataset(session)
    with pytest.raises(Invalid, match="fixed window"):
        registry.edit_dataset(session, fixed.code, rolling_days=3)
    assert registry.get_dataset(session, fixed.code).rolling_days is None


@both
@pytest.mark.parametrize("days", [0, 367, -1, True])
def test_rolling_days_outside_a_day_to_a_year_are_refused_with_a_sentence(session: Session, days: object) -> None:
    registry.add_site(session, "school")
    with pytest.raises(Invalid, match="from 1 to 366"):
        new_dataset(session, rolling_days=days)
    rolling = new_dataset(session, rolling_days=7)
    with pytest.raises(Invalid, match="from 1 to 366"):
        registry.edit_dataset(session, rolling.code, rolling_days=days)  # type: ignore[arg-type]


@both
def test_the_datasets_of_one_staff_name_are_listed_alone(session: Session) -> None:
    registry.add_site(session, "school")
    mine = new_dataset(session, created_by="Ms Ozola")
    new_dataset(session, created_by="Mr Kalniņš")
    assert [d.code for d in registry.list_datasets(session, created_by="Ms Ozola")] == [mine.code]
    assert len(registry.list_datasets(session)) == 2


@both
def test_a_new_kit_is_blurred_and_its_precision_is_exact_or_blurred_only(session: Session) -> None:
    registry.add_site(session, "school")
    assert registry.add_kit(session, "school", "k1").location_precision == "blurred"
    assert registry.edit_kit(session, "school", "k1", location_precision="exact").location_precision == "exact"
    with pytest.raises(Invalid, match="'exact' or 'blurred'"):
        registry.edit_kit(session, "school", "k1", location_precision="fuzzy")
    with pytest.raises(Required):
        registry.edit_kit(session, "school", "k1", location_precision=None)  # type: ignore[typeddict-item]
    assert registry.add_kit(session, "school", "k2", location_precision="exact").location_precision == "exact"
