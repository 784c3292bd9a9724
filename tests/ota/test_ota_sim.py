"""Updates over the air end to end: simulated kits, each a process running the firmware in its own flash folder,
through the real Mosquitto, with releases built by lauks.fleet and served over HTTP (issue 14, part 1).
World time runs 60 times faster; a kit samples every 10 world seconds."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from ota_helpers import Inbox, file_server, kits, offer, offer_bytes, publish_offer, release, running, wait_for

from firmware.device_path import DEVICE_DIR
from firmware.sim.board import Faults
from lauks.contract import decode_status
from lauks.fleet import choose_kits
from lauks.services import Mosquitto
from lauks.topics import Topics

pytestmark = [pytest.mark.slow]

OLD = DEVICE_DIR.joinpath("lauks_kit", "__init__.py").read_text().split('"')[1]


def _confirmed(inbox: Inbox, kit: str, version: str) -> bool:
    return inbox.last_update(kit) == {"version": version, "state": "confirmed"} and \
        version in inbox.fw_of_readings(kit)


def test_a_good_release_reaches_every_offered_kit_and_each_confirms_it(
        tmp_path: Path, mosquitto: Mosquitto, topics: Topics) -> None:
    good = release(tmp_path / "releases", "0.9.0")
    names = ["g1", "g2", "g3"]
    fleet = kits(tmp_path, mosquitto.port, topics, names)
    inbox = Inbox(mosquitto.port, topics)
    with file_server(tmp_path) as url, running(fleet):
        assert wait_for(lambda: all(inbox.fw_of_readings(k) for k in names), 20)
        started = time.monotonic()
        for name in names:
            offer(mosquitto.port, topics, name, good, url)
        assert wait_for(lambda: all(_confirmed(inbox, k, "0.9.0") for k in names), 40), \
            {k: inbox.updates(k) for k in names}
        took = time.monotonic() - started
    inbox.close()
    assert inbox.statuses_hold_to_the_contract() >= 15
    print(f"\nthree simulated kits took {took:.1f} s (real time, world x60) from the offer to confirmed")
    for name, kit in zip(names, fleet, strict=True):
        states = [u["state"] for u in inbox.updates(name)]
        assert states == ["offered", "downloading", "staged", "trial", "confirmed"], states
        fws = inbox.fw_of_readings(name)
        assert fws[0] == OLD and fws[-1] == "0.9.0"
        assert fws == sorted(fws, key=lambda v: v != OLD), "once on the new version, never back"
        assert not (kit.flash / "prev").exists() and not (kit.flash / "next").exists()
        assert (kit.flash / "lauks_kit" / "__init__.py").read_text().count('"0.9.0"') == 1
        assert (kit.flash / "lauks_boot.py").read_bytes() == (DEVICE_DIR / "lauks_boot.py").read_bytes()
        last = [s for s in inbox.of("status", name) if s["state"] == "online"][-1]
        assert decode_status(orjson.dumps(last)).fw == "0.9.0"


def _crash_at_import(source: Path) -> None:
    app = source / "lauks_kit" / "app.py"
    app.write_text(app.read_text() + '\nraise RuntimeError("this release is broken")\n')


def _syntax_error(source: Path) -> None:
    message = source / "lauks_kit" / "core" / "message.py"
    message.write_text(message.read_text() + "\ndef broken(:\n")


@pytest.mark.parametrize(("change", "reason"), [
    (_crash_at_import, "crashed at import: RuntimeError: this release is broken"),
    (_syntax_error, "crashed at import: SyntaxError"),
], ids=["crash-at-import", "syntax-error"])
def test_a_release_that_cannot_start_rolls_back_by_itself(
        tmp_path: Path, mosquitto: Mosquitto, topics: Topics, change: object, reason: str) -> None:
    bad = release(tmp_path / "releases", "0.9.1", change)  # type: ignore[arg-type]
    fleet = kits(tmp_path, mosquitto.port, topics, ["b1"])
    inbox = Inbox(mosquitto.port, topics)
    with file_server(tmp_path) as url, running(fleet):
        assert wait_for(lambda: inbox.fw_of_readings("b1"), 20)
        offer(mosquitto.port, topics, "b1", bad, url)
        assert wait_for(lambda: (inbox.last_update("b1") or {}).get("state") == "rolled_back", 40), \
            inbox.updates("b1")
        after = len(inbox.of("readings", "b1"))
        assert wait_for(lambda: len(inbox.of("readings", "b1")) >= after + 3, 20), "the old version reports on"
    inbox.close()
    assert inbox.statuses_hold_to_the_contract() >= 5
    last = inbox.last_update("b1")
    assert last is not None and last["version"] == "0.9.1" and last["reason"].startswith(reason), last
    assert set(inbox.fw_of_readings("b1")) == {OLD}, "no reading of the broken version was ever sent"
    assert (fleet[0].flash / "lauks_kit" / "__init__.py").read_text().count(f'"{OLD}"') == 1
    assert not (fleet[0].flash / "prev").exists() and not (fleet[0].flash / "next").exists()
    # the retained offer is still there: the kit did not try it again
    assert [u["state"] for u in inbox.updates("b1")].count("trial") <= 1


def test_a_corrupt_file_fails_the_download_and_the_kit_stays_on_its_version(
        tmp_path: Path, mosquitto: Mosquitto, topics: Topics) -> None:
    corrupt = release(tmp_path / "releases", "0.9.2")
    fleet = kits(tmp_path, mosquitto.port, topics, ["c1"])
    inbox = Inbox(mosquitto.port, topics)
    with file_server(tmp_path) as url, running(fleet):
        payload = offer_bytes("c1", corrupt, url)
        # what the kit is served differs from what the server signed (a disk fault, a spoofed server)
        served = corrupt / "files" / "lauks_kit" / "app.py"
        data = bytearray(served.read_bytes())
        data[100] ^= 0x01  # one bit, the size unchanged: only the SHA-256 can tell
        served.write_bytes(bytes(data))
        assert wait_for(lambda: inbox.fw_of_readings("c1"), 20)
        publish_offer(mosquitto.port, topics, "c1", payload)
        assert wait_for(lambda: (inbox.last_update("c1") or {}).get("state") == "failed", 30), inbox.updates("c1")
        after = len(inbox.of("readings", "c1"))
        assert wait_for(lambda: len(inbox.of("readings", "c1")) >= after + 3, 20)
    inbox.close()
    assert inbox.last_update("c1") == {"version": "0.9.2", "state": "failed",
                                       "reason": "file lauks_kit/app.py: sha256 mismatch"}
    assert set(inbox.fw_of_readings("c1")) == {OLD}
    assert fleet[0].boots() == 1, "a failed download never resets the kit"
    assert not (fleet[0].flash / "next").exists(), "nothing of the refused release is kept"


def test_a_power_cut_mid_download_is_survived_and_the_update_completes(
        tmp_path: Path, mosquitto: Mosquitto, topics: Topics) -> None:
    good = release(tmp_path / "releases", "0.9.3")
    fleet = kits(tmp_path, mosquitto.port, topics, ["p1"], {"p1": Faults(power_cut_after_http_bytes=40_000)})
    inbox = Inbox(mosquitto.port, topics)
    kit = fleet[0]
    at_cut: list[list[str]] = []
    kit.on_exit = lambda code: at_cut.append(sorted(p.relative_to(kit.flash / "next").as_posix()
                                                    for p in (kit.flash / "next").rglob("*") if p.is_file()))
    with file_server(tmp_path) as url, running(fleet):
        assert wait_for(lambda: inbox.fw_of_readings("p1"), 20)
        offer(mosquitto.port, topics, "p1", good, url)
        assert wait_for(lambda: _confirmed(inbox, "p1", "0.9.3"), 40), inbox.updates("p1")
    inbox.close()
    assert kit.exits[0] == 137, "the power was cut once, mid-download"
    left = at_cut[0]
    assert [p for p in left if p.endswith(".part")], left  # a file was being written
    assert "manifest.json" not in left and 3 < len(left) < len(good.joinpath("manifest.json").read_text().split(
        '"path"')) - 1, left
    log = kit.log()
    cut = log.index("simulated power cut")
    assert "update 0.9.3 staged" not in log[:cut]
    fws = inbox.fw_of_readings("p1")
    assert fws[0] == OLD and fws[-1] == "0.9.3"
    states = [u["state"] for u in inbox.updates("p1")]
    assert states[-3:] == ["staged", "trial", "confirmed"] and states.count("downloading") >= 2, states


def test_a_ten_percent_rollout_updates_one_kit_of_ten(
        tmp_path: Path, mosquitto: Mosquitto, topics: Topics) -> None:
    good = release(tmp_path / "releases", "0.9.4")
    names = [f"r{i:02d}" for i in range(10)]
    chosen = choose_kits("ota", names, "0.9.4", 10)
    assert len(chosen) == 1
    fleet = kits(tmp_path, mosquitto.port, topics, names)
    inbox = Inbox(mosquitto.port, topics)
    with file_server(tmp_path) as url, running(fleet):
        assert wait_for(lambda: all(inbox.fw_of_readings(k) for k in names), 30)
        for name in chosen:
            offer(mosquitto.port, topics, name, good, url)
        assert wait_for(lambda: _confirmed(inbox, chosen[0], "0.9.4"), 40), inbox.updates(chosen[0])
        counts = {k: len(inbox.of("readings", k)) for k in names}
        assert wait_for(lambda: all(len(inbox.of("readings", k)) >= counts[k] + 2 for k in names), 20)
    inbox.close()
    for name in names:
        if name in chosen:
            assert inbox.fw_of_readings(name)[-1] == "0.9.4"
        else:
            assert set(inbox.fw_of_readings(name)) == {OLD}, name
            assert inbox.updates(name) == [], name


def _never_sends_readings(source: Path) -> None:
    app = source / "lauks_kit" / "app.py"
    text = app.read_text()
    sending = 'self.mqtt.publish(self.topics["readings"], payload)\n'
    assert text.count(sending) == 1
    app.write_text(text.replace(sending, "return  # this release starts, but never sends a reading\n"))


def test_a_release_that_never_confirms_rolls_back_after_three_boots(
        tmp_path: Path, mosquitto: Mosquitto, topics: Topics) -> None:
    mute = release(tmp_path / "releases", "0.9.5", _never_sends_readings)
    fleet = kits(tmp_path, mosquitto.port, topics, ["m1"])
    kit = fleet[0]
    kit.trial_s = 60  # world seconds per boot on trial (15 minutes on a kit): one real second here
    inbox = Inbox(mosquitto.port, topics)
    with file_server(tmp_path) as url, running(fleet):
        assert wait_for(lambda: inbox.fw_of_readings("m1"), 20)
        offer(mosquitto.port, topics, "m1", mute, url)
        assert wait_for(lambda: (inbox.last_update("m1") or {}).get("state") == "rolled_back", 40), \
            inbox.updates("m1")
        after = len(inbox.of("readings", "m1"))
        assert wait_for(lambda: len(inbox.of("readings", "m1")) >= after + 3, 20)
    inbox.close()
    assert inbox.last_update("m1") == {"version": "0.9.5", "state": "rolled_back",
                                       "reason": "no confirmed reading within 3 boots"}
    assert set(inbox.fw_of_readings("m1")) == {OLD}
    on_trial = [s for s in inbox.of("status", "m1") if s.get("fw") == "0.9.5"]
    assert on_trial and all(s["update"]["state"] == "trial" for s in on_trial)
    assert kit.exits.count(3) >= 4, kit.exits  # the reset to switch, then three trial boots timed out
    assert kit.log().count("not confirmed within the trial time") == 3


def test_offers_a_kit_cannot_trust_are_refused_and_the_status_says_why(
        tmp_path: Path, mosquitto: Mosquitto, topics: Topics) -> None:
    good = release(tmp_path / "releases", "0.9.6")
    fleet = kits(tmp_path, mosquitto.port, topics, ["n1", "s1"])
    keyless = fleet[0]
    del keyless.config["update_key"]  # a kit added before updates existed
    from firmware.sim.flashkit import install

    install(keyless.flash, keyless.config)
    inbox = Inbox(mosquitto.port, topics)
    with file_server(tmp_path) as url, running(fleet):
        assert wait_for(lambda: inbox.fw_of_readings("n1") and inbox.fw_of_readings("s1"), 20)
        publish_offer(mosquitto.port, topics, "s1", b'{"v": 1, "version": "not one"}')  # not an offer at all
        assert wait_for(lambda: "update offer refused: offer version must be" in fleet[1].log(), 10)
        offer(mosquitto.port, topics, "n1", good, url)
        publish_offer(mosquitto.port, topics, "s1", offer_bytes("n1", good, url))  # n1's offer on s1's topic
        assert wait_for(lambda: inbox.last_update("n1") and inbox.last_update("s1"), 20)
        counts = {k: len(inbox.of("readings", k)) for k in ("n1", "s1")}
        assert wait_for(lambda: all(len(inbox.of("readings", k)) >= counts[k] + 2 for k in counts), 20)
    inbox.close()
    assert inbox.statuses_hold_to_the_contract() >= 4
    n1, s1 = inbox.last_update("n1"), inbox.last_update("s1")
    assert n1 is not None and n1["state"] == "failed" and n1["reason"].startswith("no update_key in config.json")
    assert s1 is not None and s1["state"] == "failed" and s1["reason"].startswith("offer signature does not match")
    for kit in fleet:
        assert set(inbox.fw_of_readings(kit.flash.name)) == {OLD} and kit.boots() == 1
        assert not (kit.flash / "next").exists() and not (kit.flash / "update.json").exists()


def test_a_kit_of_the_thread_simulator_refuses_an_offer_and_runs_on(
        tmp_path: Path, mosquitto: Mosquitto, topics: Topics) -> None:
    from ota_helpers import MASTER, SITE

    from firmware.kitconfig import kit_config
    from firmware.sim.runner import SimKit, Simulation
    from lauks.fleet import kit_update_key

    good = release(tmp_path / "releases", "0.9.7")
    cfg = kit_config(SITE, "t1", "weather", interval_s=10)
    cfg["update_key"] = kit_update_key(MASTER, SITE, "t1").hex()  # as `lauks kit add` writes it for `lauks up`
    kit = SimKit(tmp_path / "t1", cfg, seed=1)
    sim = Simulation([kit], ("127.0.0.1", mosquitto.port), topics.root, 60, 6 * 3600, quiet=True)
    inbox = Inbox(mosquitto.port, topics)
    with file_server(tmp_path) as url:
        sim.start()
        try:
            assert wait_for(lambda: inbox.fw_of_readings("t1"), 20)
            offer(mosquitto.port, topics, "t1", good, url)
            assert wait_for(lambda: inbox.last_update("t1") is not None, 20)
            after = len(inbox.of("readings", "t1"))
            assert wait_for(lambda: len(inbox.of("readings", "t1")) >= after + 2, 20)
        finally:
            sim.shutdown()
            inbox.close()
    assert kit.error is None and len(kit.boards) == 1
    update = inbox.last_update("t1")
    assert update is not None and update["state"] == "failed" and "cannot switch versions" in update["reason"]
    assert not (kit.root / "next").exists() and not (kit.root / "update.json").exists()


def test_a_release_the_server_no_longer_has_is_tried_three_times_then_given_up(
        tmp_path: Path, mosquitto: Mosquitto, topics: Topics) -> None:
    gone = release(tmp_path / "releases", "0.9.8")
    fleet = kits(tmp_path, mosquitto.port, topics, ["h1"])
    inbox = Inbox(mosquitto.port, topics)
    with file_server(tmp_path) as url, running(fleet):
        payload = offer_bytes("h1", gone, url)
        gone.rename(tmp_path / "removed-0.9.8")  # the server answers 404 from now on
        assert wait_for(lambda: inbox.fw_of_readings("h1"), 20)
        publish_offer(mosquitto.port, topics, "h1", payload)
        # retried 2 and 4 world minutes later: 6 real seconds
        assert wait_for(lambda: [u["state"] for u in inbox.updates("h1")].count("failed") >= 3, 30), \
            inbox.updates("h1")
        after = len(inbox.of("readings", "h1"))
        assert wait_for(lambda: len(inbox.of("readings", "h1")) >= after + 3, 20)
    inbox.close()
    assert inbox.statuses_hold_to_the_contract() >= 7
    failures = [u for u in inbox.updates("h1") if u["state"] == "failed"]
    assert len(failures) == 3, inbox.updates("h1")
    assert all(u["reason"].startswith("download failed: HTTP 404") for u in failures), failures
    journal = orjson.loads((fleet[0].flash / "update.json").read_bytes())
    assert journal["final"] is True and journal["attempts"] == 3
    assert set(inbox.fw_of_readings("h1")) == {OLD} and fleet[0].boots() == 1
