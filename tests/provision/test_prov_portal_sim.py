"""The Wi-Fi setup access point of a simulated kit (the real firmware), over loopback HTTP: its page in
each language, wrong passwords, vanished networks, hostile requests, and a right password after which the
kit saves the network and reports through the real Mosquitto."""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from firmware.kitconfig import kit_config
from firmware.sim.accesspoint import Air, Network
from firmware.sim.board import Faults
from firmware.sim.runner import SimKit, Simulation
from harness.inbox import Inbox
from lauks.services import Mosquitto
from lauks.topics import Topics

SPEEDUP = 120.0  # the 3 minutes without Wi-Fi before the access point opens take 1.5 s
HOSTILE_SSID = '<script>alert("x")</script>&Lab'


def wait_for(predicate: Callable[[], bool], timeout_s: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@dataclass
class SetupKit:
    air: Air
    kit: SimKit
    inbox: Inbox

    @property
    def config_file(self) -> Path:
        return self.kit.root / "config.json"

    def http(self, request: bytes, timeout_s: float = 10.0) -> tuple[int, str]:
        """Send raw bytes to the kit's page; (status, body)."""
        assert self.air.ap_port is not None
        with socket.create_connection(("127.0.0.1", self.air.ap_port), timeout=timeout_s) as sock:
            try:
                sock.sendall(request)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the kit answered and closed before reading it all: its answer is still there
            data = b""
            while True:
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        return int(head.split(b" ")[1]), body.decode()

    def get(self, path: str = "/", accept_language: str | None = None) -> tuple[int, str]:
        lang = f"Accept-Language: {accept_language}\r\n" if accept_language else ""
        return self.http(f"GET {path} HTTP/1.1\r\nHost: 192.168.4.1\r\n{lang}\r\n".encode())

    def post(self, body: bytes, headers: str = "") -> tuple[int, str]:
        return self.http(b"POST /join HTTP/1.1\r\nHost: 192.168.4.1\r\nContent-Type: application/x-www-form-urlencoded"
                         b"\r\nContent-Length: %d\r\n%s\r\n" % (len(body), headers.encode()) + body)


@contextmanager
def setup_kit(tmp: Path, mosquitto: Mosquitto, topics: Topics, button: bool = False,
              configured: tuple[str, str] = ("old-school-net", "gone-for-good")) -> Iterator[SetupKit]:
    air = Air([Network("school-outdoor", "correct horse", -52), Network("library", "books4all", -70),
               Network(HOSTILE_SSID, "", -80), Network(configured[0], configured[1], -60, present=button)],
              button_held=button)
    cfg = kit_config("demo", "p1", "weather", interval_s=10, wifi=[configured])
    kit = SimKit(tmp / "kit", cfg, Faults(air=air), seed=3)
    inbox = Inbox(mosquitto.port, topics)
    sim = Simulation([kit], ("127.0.0.1", mosquitto.port), topics.root, SPEEDUP, 6 * 3600, quiet=True)
    sim.start()
    try:
        assert air.ap_opened.wait(20), "the access point did not open"
        yield SetupKit(air, kit, inbox)
    finally:
        sim.shutdown()
        inbox.close()
    assert kit.error is None, repr(kit.error)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, mosquitto: Mosquitto) -> Iterator[SetupKit]:
    """One kit for the tests that leave its config and its air as they were (each checks that it did)."""
    with setup_kit(tmp_path_factory.mktemp("shared"), mosquitto, Topics(f"t{uuid.uuid4().hex[:10]}")) as kit:
        yield kit


@pytest.fixture
def ap(tmp_path: Path, mosquitto: Mosquitto, topics: Topics) -> Iterator[SetupKit]:
    with setup_kit(tmp_path, mosquitto, topics) as kit:
        yield kit


def test_a_kit_that_cannot_join_opens_its_access_point_named_after_it(shared: SetupKit) -> None:
    assert shared.air.ap_ssid == "Lauks-p1"
    assert shared.inbox.of("readings") == []  # no configured network: nothing reached the broker


@pytest.mark.parametrize(("accept", "lang", "title", "password"), [
    ("lv-LV,lv;q=0.9,en;q=0.5", "lv", "Lauks komplekta p1 Wi-Fi", "Parole"),
    ("lt,en;q=0.3", "lt", "Lauks rinkinio p1 Wi-Fi", "Slaptažodis"),
    ("ru-RU,ru;q=0.9", "ru", "Wi-Fi для комплекта Lauks p1", "Пароль"),
    ("de-DE,fr;q=0.8", "en", "Wi-Fi for the Lauks kit p1", "Password"),
])
def test_the_page_lists_the_scan_in_the_browsers_language(shared: SetupKit, accept: str, lang: str, title: str,
                                                          password: str) -> None:
    status, page = shared.get("/", accept)
    assert status == 200
    assert f'<html lang="{lang}">' in page and title in page and password in page
    assert page.index("school-outdoor") < page.index("library")  # strongest first
    assert "old-school-net" not in page  # it is not in the air


def test_the_language_switch_overrides_the_browser(shared: SetupKit) -> None:
    status, page = shared.get("/?lang=lt", "ru")
    assert status == 200 and '<html lang="lt">' in page
    for code in ("lv", "ru", "en"):
        assert f'href="/?lang={code}"' in page


def test_an_ssid_with_markup_is_shown_escaped(shared: SetupKit) -> None:
    _, page = shared.get("/")
    assert "<script" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;Lab" in page


def test_a_wrong_password_says_so_and_changes_nothing(shared: SetupKit) -> None:
    before = shared.config_file.read_bytes()
    status, page = shared.post(b"ssid=school-outdoor&password=wrong+horse&lang=en")
    assert status == 200 and "the password is wrong" in page
    assert 'value="school-outdoor" checked' in page  # the choice stays for the next try
    assert shared.config_file.read_bytes() == before
    assert shared.air.ap_opened.is_set()
    assert shared.get("/")[0] == 200  # still there


def test_a_wrong_password_is_explained_in_latvian_too(shared: SetupKit) -> None:
    _, page = shared.post(b"ssid=library&password=wrongwrong&lang=lv")
    assert "parole ir nepareiza" in page and '<html lang="lv">' in page


def test_a_network_that_vanished_says_so(ap: SetupKit) -> None:
    ap.air.vanish("library")
    before = ap.config_file.read_bytes()
    status, page = ap.post(b"ssid=library&password=books4all&lang=en")
    assert status == 200 and "The network library cannot be seen any more" in page
    assert ap.config_file.read_bytes() == before
    assert ">library<" not in page and "school-outdoor" in page  # the page shows the new scan


@pytest.mark.parametrize(("request_bytes", "status", "says"), [
    # a body far beyond the form's size, declared
    (b"POST /join HTTP/1.1\r\nContent-Length: 1000000\r\n\r\n" + b"a" * 4096, 413, "could not be read"),
    # bad percent-encoding, and bytes that are not UTF-8
    (b"POST /join HTTP/1.1\r\nContent-Length: 19\r\n\r\nssid=%zz&password=x", 400, "could not be read"),
    (b"POST /join HTTP/1.1\r\nContent-Length: 31\r\n\r\nssid=%ff%fe&password=abcdefgh12", 400, "could not be read"),
    # a control character smuggled into the network name
    (b"POST /join HTTP/1.1\r\nContent-Length: 33\r\n\r\nssid=a%0d%0aX&password=abcdefgh12", 400, "could not be read"),
    (b"POST /join HTTP/1.1\r\nContent-Length: 12\r\n\r\npassword=abc", 400, "Choose a network"),
    (b"POST /join HTTP/1.1\r\nContent-Length: 50\r\n\r\nssid=" + b"x" * 33 + b"&password=abcdefgh", 400, "32 bytes"),
    (b"POST /join HTTP/1.1\r\nContent-Length: 25\r\n\r\nssid=library&password=abc", 400, "8 to 63"),
    (b"POST /join HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400, "could not be read"),
    (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\n\r\n", 400, "could not be read"),
    (b"\x00\xff garbage\r\n\r\n", 400, "could not be read"),
    (b"DELETE / HTTP/1.1\r\n\r\n", 405, "could not be read"),
])
def test_hostile_requests_are_refused_and_the_page_stays(shared: SetupKit, request_bytes: bytes, status: int,
                                                          says: str) -> None:
    before = shared.config_file.read_bytes()
    got, page = shared.http(request_bytes)
    assert got == status and says in page
    assert shared.config_file.read_bytes() == before
    assert shared.get("/")[0] == 200


def test_a_megabyte_sent_at_the_page_does_not_stop_the_kit(shared: SetupKit) -> None:
    body = b"ssid=" + b"A" * 1_000_000
    try:
        shared.http(b"POST /join HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    except (OSError, IndexError, ValueError):
        pass  # the kit may cut the connection: what matters is that it goes on
    assert shared.get("/")[0] == 200


def test_the_right_password_saves_the_network_and_the_kit_reports(ap: SetupKit) -> None:
    ap.post(b"ssid=school-outdoor&password=wrong+horse&lang=en")  # a first try that fails changes nothing
    status, page = ap.post(b"ssid=school-outdoor&password=correct+horse&lang=ru")
    assert status == 200 and "Комплект подключился к school-outdoor" in page
    saved = json.loads(ap.config_file.read_text())
    assert saved["wifi"] == [{"ssid": "school-outdoor", "password": "correct horse"},
                             {"ssid": "old-school-net", "password": "gone-for-good"}]
    assert saved["broker"] == ap.kit.config["broker"] and saved["sensors"] == ap.kit.config["sensors"]
    from lauks_kit.core.config import problems

    assert problems(saved) == []
    assert ap.config_file.stat().st_mode & 0o777 == 0o600  # it holds the kit's broker password
    assert ap.air.ap_closed.wait(5)
    assert wait_for(lambda: len(ap.inbox.of("readings")) >= 2 and any(
        s["state"] == "online" for s in ap.inbox.of("status")))
    with pytest.raises(OSError):
        ap.get("/")  # the access point is gone


def test_the_saved_network_is_used_after_a_restart(tmp_path: Path, mosquitto: Mosquitto, topics: Topics) -> None:
    with setup_kit(tmp_path, mosquitto, topics) as ap:
        ap.post(b"ssid=library&password=books4all")
        assert wait_for(lambda: len(ap.inbox.of("readings")) >= 1)
    air = Air([Network("library", "books4all")])
    cfg = json.loads((tmp_path / "kit" / "config.json").read_text())
    kit = SimKit(tmp_path / "kit", cfg, Faults(air=air), seed=3)
    inbox = Inbox(mosquitto.port, topics)
    before = len(inbox.of("readings"))
    sim = Simulation([kit], ("127.0.0.1", mosquitto.port), topics.root, SPEEDUP, 3600, quiet=True)
    sim.start()
    try:
        assert wait_for(lambda: len(inbox.of("readings")) > before)
        assert not air.ap_opened.is_set()
    finally:
        sim.shutdown()
        inbox.close()


def test_the_button_held_at_boot_opens_the_page_beside_a_working_network(
        tmp_path: Path, mosquitto: Mosquitto, topics: Topics) -> None:
    with setup_kit(tmp_path, mosquitto, topics, button=True) as ap:
        status, page = ap.get("/", "en")
        assert status == 200 and "old-school-net" in page
        time.sleep(0.5)  # 60 world seconds: the kit keeps off its old network while the page waits
        assert ap.air.ap_opened.is_set() and ap.inbox.of("readings") == []
        status, page = ap.post(b"ssid=school-outdoor&password=correct+horse")
        assert "The kit joined school-outdoor" in page
        assert wait_for(lambda: len(ap.inbox.of("readings")) >= 1)
        assert json.loads(ap.config_file.read_text())["wifi"][0]["ssid"] == "school-outdoor"
