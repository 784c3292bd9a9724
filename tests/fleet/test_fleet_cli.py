"""`lauks fleet release|update|withdraw|status` against a real Mosquitto with the platform's ACL and a real InfluxDB.

An offer is checked the way a kit meets it: a fresh subscription receives it retained. To know that every retained
message has arrived, the same client then publishes a marker it may write; the broker delivers in order.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fleet_helpers import Broker, Client

from lauks import fleet, schema
from lauks.brokerauth import STAFF_USER
from lauks.contract import decode_status
from lauks.influx import InfluxClient
from stack.cli import main

pytestmark = pytest.mark.services

SITE = "school-1"
KITS = [f"kit-{i:02d}" for i in range(20)]
SERVER = "http://10.0.0.5:8000"


@pytest.fixture
def env(broker: Broker, monkeypatch: pytest.MonkeyPatch) -> Broker:
    for key, value in {"LAUKS_STATE_DIR": str(broker.state_dir), "LAUKS_MQTT_HOST": "127.0.0.1",
                       "LAUKS_MQTT_PORT": str(broker.mosquitto.port), "LAUKS_TOPIC_ROOT": broker.topics.root,
                       "LAUKS_API_PUBLIC_URL": SERVER}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("LAUKS_UPDATE_KEY", raising=False)
    return broker


@pytest.fixture
def master(env: Broker) -> bytes:
    return fleet.master_key(env.state_dir, create=True)


def release(version: str) -> None:
    assert main(["fleet", "release", "--version", version, "--format", "py"]) == 0


def retained_offers(broker: Broker, site: str = SITE) -> dict[str, bytes]:
    """Every retained offer of ``site``, as a kit's fresh subscription would get them."""
    staff = Client(broker.mosquitto.port, STAFF_USER, broker.services[STAFF_USER]).connect()
    try:
        staff.subscribe(broker.topics.filter("update", site=site), broker.topics.config("marker", "m"))
        marker = broker.topics.config("marker", "m")
        staff.publish(marker, b"end")  # not retained: arrives after every retained offer
        got: dict[str, bytes] = {}
        while True:
            topic, payload = staff.next_message()
            if topic == marker:
                return got
            parsed = broker.topics.parse(topic)
            assert parsed is not None
            got[parsed.kit] = payload
    finally:
        staff.close()


@pytest.fixture
def clean(env: Broker) -> Iterator[None]:
    """No offer retained and no offer recorded before or after the test."""
    def clear() -> None:
        assert main(["fleet", "withdraw", SITE]) == 0
        fleet.offers_path(env.state_dir).unlink(missing_ok=True)
    clear()
    yield
    clear()


def test_release_builds_and_a_second_of_the_same_version_is_refused(env: Broker,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    release("2.0.0")
    out = capsys.readouterr().out
    assert "built release 2.0.0 (py)" in out and "files" in out
    folder = env.state_dir / "releases/2.0.0"
    before = (folder / fleet.MANIFEST).read_bytes()
    assert main(["fleet", "release", "--version", "2.0.0"]) == 2
    assert "exists already" in capsys.readouterr().err
    assert (folder / fleet.MANIFEST).read_bytes() == before


def test_a_release_version_that_is_not_allowed_is_refused(env: Broker, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fleet", "release", "--version", "../evil"]) == 2
    assert "is not allowed" in capsys.readouterr().err
    assert not (env.state_dir / "evil").exists()


def test_a_ten_percent_rollout_offers_two_of_twenty_kits_and_the_same_two_again(
        env: Broker, master: bytes, clean: None, capsys: pytest.CaptureFixture[str]) -> None:
    release("1.4.0")
    assert main(["fleet", "update", SITE, "--version", "1.4.0", "--percent", "10"]) == 0
    offers = retained_offers(env)
    expected = fleet.choose_kits(SITE, KITS, "1.4.0", 10)
    assert sorted(offers) == expected and len(expected) == 2
    for kit, payload in offers.items():
        offer = fleet.check_offer(payload, fleet.kit_update_key(master, SITE, kit))
        assert offer["url"] == f"{SERVER}/v1/firmware/1.4.0/" and offer["version"] == "1.4.0"
    assert "offered 1.4.0 to 2 of 20 kits" in capsys.readouterr().out
    assert main(["fleet", "update", SITE, "--version", "1.4.0", "--percent", "10"]) == 0
    assert sorted(retained_offers(env)) == expected
    recorded = fleet.read_offers(env.state_dir)
    assert [o["kit"] for o in recorded] == expected + expected
    assert retained_offers(env, "school-2") == {}


def test_named_kits_get_the_offer_and_withdrawing_clears_it(env: Broker, master: bytes, clean: None) -> None:
    release("1.4.1")
    assert main(["fleet", "update", SITE, "kit-03", "kit-07", "--version", "1.4.1"]) == 0
    assert sorted(retained_offers(env)) == ["kit-03", "kit-07"]
    assert main(["fleet", "withdraw", SITE, "kit-03"]) == 0
    assert sorted(retained_offers(env)) == ["kit-07"]
    assert fleet.last_offers(env.state_dir)[(SITE, "kit-03")]["version"] is None


@pytest.mark.parametrize(("argv", "error"), [
    (["school-1", "kit-99", "--version", "1.5.0"], "site school-1 has no kit kit-99: its kits are kit-00, kit-01"),
    (["school-9", "--version", "1.5.0"], "site school-9 has no kits"),
    (["school-1", "--version", "7.7.7"], "there is no release 7.7.7: the releases are"),
    (["school-1", "--version", "1.5.0", "--percent", "0"], "--percent 0 is not allowed"),
    (["school-1", "--version", "1.5.0", "--percent", "150"], "--percent 150 is not allowed"),
    (["school-1", "--version", "1.5.0/../x"], "version '1.5.0/../x' is not allowed"),
    (["school-1", "--version", "1.5.0", "--server", "ftp://x"], "must be an http:// address"),
])
def test_bad_input_to_update_is_refused_and_changes_nothing(
        env: Broker, master: bytes, clean: None, capsys: pytest.CaptureFixture[str], argv: list[str],
        error: str) -> None:
    if not (env.state_dir / "releases/1.5.0").exists():
        release("1.5.0")
    capsys.readouterr()
    assert main(["fleet", "update", *argv]) == 2
    assert error in capsys.readouterr().err
    assert retained_offers(env) == {}
    assert fleet.read_offers(env.state_dir) == []


def test_a_release_altered_on_disk_is_not_offered(env: Broker, master: bytes, clean: None,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    release("1.6.0")
    target = env.state_dir / "releases/1.6.0/files/lauks_kit/app.py"
    target.write_bytes(target.read_bytes() + b"\nimport os\n")
    assert main(["fleet", "update", SITE, "--version", "1.6.0"]) == 2
    assert "lauks_kit/app.py does not match its SHA-256" in capsys.readouterr().err
    assert retained_offers(env) == {} and fleet.read_offers(env.state_dir) == []


def test_without_the_master_key_nothing_is_offered(env: Broker, clean: None, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    release("1.7.0")
    key = fleet.master_key_path(env.state_dir)
    kept = key.read_bytes() if key.exists() else None
    key.unlink(missing_ok=True)
    try:
        assert main(["fleet", "update", SITE, "--version", "1.7.0"]) == 2
        assert "no update master key" in capsys.readouterr().err
        assert not key.exists() and retained_offers(env) == {}
    finally:
        if kept is not None:
            key.write_bytes(kept)


async def test_status_shows_each_kits_firmware_offer_and_update(
        env: Broker, master: bytes, clean: None, influx: InfluxClient, database: str, influx_url: str,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LAUKS_INFLUX_URL", influx_url)
    monkeypatch.setenv("LAUKS_INFLUX_DATABASE", database)
    fleet.record_offers(env.state_dir, SITE, ["kit-01", "kit-02"], "1.4.0")
    now = int(time.time() * 1000)
    failed = decode_status(json.dumps({"v": 1, "state": "online", "fw": "1.3.0", "update": {
        "version": "1.4.0", "state": "failed", "reason": "file lauks_kit/app.mpy: sha256 mismatch"}}).encode())
    confirmed = decode_status(b'{"v":1,"state":"online","fw":"1.4.0","update":{"version":"1.4.0","state":"confirmed"}}')
    await influx.write(database, [schema.status_line(SITE, "kit-01", failed, now - 1000),
                                  schema.status_line(SITE, "kit-02", confirmed, now - 1000),
                                  schema.seen_line(SITE, "kit-02", now, samples=1, late=0, boot=2, fw="1.4.0")])
    assert await asyncio.to_thread(main, ["fleet", "status", SITE]) == 0  # the command runs its own event loop
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["SITE", "KIT", "FW", "OFFERED", "UPDATE", "REASON"]
    rows = {line.split()[1]: line for line in lines[1:]}
    assert len(rows) == 20
    assert rows["kit-01"].split()[:5] == [SITE, "kit-01", "1.3.0", "1.4.0", "failed"]
    assert rows["kit-01"].endswith("file lauks_kit/app.mpy: sha256 mismatch")
    assert rows["kit-02"].split()[:6] == [SITE, "kit-02", "1.4.0", "1.4.0", "confirmed", "(1.4.0)"]
    assert rows["kit-05"].split()[2:] == ["-", "-", "-"]


def test_status_says_so_when_influxdb_cannot_be_reached(env: Broker, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from lauks.services import free_port

    monkeypatch.setenv("LAUKS_INFLUX_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("LAUKS_INFLUX_TIMEOUT_S", "2")
    assert main(["fleet", "status", SITE]) == 2
    assert "cannot read the kits' status from InfluxDB" in capsys.readouterr().err


def test_update_says_so_when_the_broker_cannot_be_reached_and_records_nothing(
        env: Broker, master: bytes, clean: None, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from lauks.services import free_port

    if not (env.state_dir / "releases/1.8.0").exists():
        release("1.8.0")
    with monkeypatch.context() as patched:  # the fixture's clean-up needs the broker again
        patched.setenv("LAUKS_MQTT_PORT", str(free_port()))
        assert main(["fleet", "update", SITE, "--version", "1.8.0"]) == 2
    assert "cannot reach the broker" in capsys.readouterr().err
    assert fleet.read_offers(env.state_dir) == []
