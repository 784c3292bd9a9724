"""Per-kit credentials against a real Mosquitto: each kit may write only its own readings and status,
read only its own config and rejected; the services have their own users; anonymous access is off.

A forbidden publish is acknowledged by the broker and then dropped, so "never arrives" is shown by
ordering, not by waiting: the same client then publishes an allowed message, and the subscriber,
which receives a client's messages in order, must see that one and nothing before it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mqtt_helpers import Client, Refused, refused

from lauks import brokerauth
from lauks.brokerauth import API_USER, GATEWAY_USER, STAFF_USER, BrokerAuth
from lauks.contract import MessageRejected, Reason, decode_readings
from lauks.services import Mosquitto, free_port
from lauks.topics import Topics

pytestmark = pytest.mark.services

ROOT = "sec"
T = Topics(ROOT)


class Broker:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.auth = BrokerAuth(state_dir, root=ROOT)
        self.services = self.auth.ensure_service_users()
        self.kits = {(site, kit): self.auth.add_kit(site, kit)
                     for site, kit in [("school-1", "k01"), ("school-1", "k02"), ("school-2", "k01"),
                                       ("school-1", "gone")]}
        # The broker of `lauks up` lives in <state_dir>/mosquitto, where reload_broker finds its pid file.
        self.mosquitto = Mosquitto(state_dir / "mosquitto", free_port(), password_file=self.auth.password_file,
                                   acl_file=self.auth.acl_file)

    def kit(self, site: str, kit: str) -> Client:
        return Client(self.mosquitto.port, brokerauth.kit_username(site, kit), self.kits[site, kit]).connect()

    def service(self, username: str) -> Client:
        return Client(self.mosquitto.port, username, self.services[username]).connect()


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    b = Broker(tmp_path_factory.mktemp("acl"))
    b.mosquitto.start()
    yield b
    b.mosquitto.stop()


def reading(kit: str, seq: int) -> bytes:
    return json.dumps({"v": 1, "kit": kit, "boot": 1, "seq": seq, "samples": [{"age": 0, "temperature": 20}]}).encode()


def test_a_kit_with_its_password_publishes_readings_that_the_gateway_receives(broker: Broker) -> None:
    gateway = broker.service(GATEWAY_USER)
    gateway.subscribe(T.shared_filter("gw", "readings"))
    kit = broker.kit("school-1", "k01")
    kit.publish(T.readings("school-1", "k01"), reading("k01", 1))
    assert gateway.next_message() == (T.readings("school-1", "k01"), reading("k01", 1))
    kit.close()
    gateway.close()


def test_kit_a_cannot_publish_as_kit_b(broker: Broker) -> None:
    gateway = broker.service(GATEWAY_USER)
    gateway.subscribe(T.filter("readings"), T.filter("status"))
    a = broker.kit("school-1", "k01")
    a.publish(T.readings("school-1", "k02"), reading("k02", 7))  # another kit of the same site
    a.publish(T.readings("school-2", "k01"), reading("k01", 8))  # the same kit name at another site
    a.publish(T.status("school-1", "k02"), b'{"v":1,"state":"offline"}')
    a.publish(T.readings("school-1", "k01"), reading("k01", 9))  # its own: allowed, and last
    assert gateway.next_message() == (T.readings("school-1", "k01"), reading("k01", 9))
    assert gateway.drain() == []
    a.close()
    gateway.close()


def test_a_kit_cannot_write_config_or_rejected_even_its_own(broker: Broker) -> None:
    staff = broker.service(STAFF_USER)
    staff.subscribe(f"{ROOT}/v1/#")
    a = broker.kit("school-1", "k01")
    a.publish(T.config("school-1", "k01"), b'{"interval_s": 10}')
    a.publish(T.rejected("school-1", "k01"), b"{}")
    a.publish(T.status("school-1", "k01"), b'{"v":1,"state":"online"}')
    assert staff.next_message() == (T.status("school-1", "k01"), b'{"v":1,"state":"online"}')
    assert staff.drain() == []
    a.close()
    staff.close()


def test_kit_a_cannot_read_other_kits_topics(broker: Broker) -> None:
    a = broker.kit("school-1", "k01")
    a.subscribe(f"{ROOT}/v1/#", T.filter("readings"), T.config("school-1", "k02"), T.config("school-1", "k01"),
                T.rejected("school-1", "k01"))
    b = broker.kit("school-1", "k02")
    b.publish(T.readings("school-1", "k02"), reading("k02", 1))
    api = broker.service(API_USER)
    api.publish(T.config("school-1", "k02"), b'{"interval_s": 30}', retain=True)
    gateway = broker.service(GATEWAY_USER)
    gateway.publish(T.rejected("school-1", "k02"), b'{"v":1}')
    gateway.publish(T.rejected("school-1", "k01"), b'{"v":1,"seq":1}')
    api.publish(T.config("school-1", "k01"), b'{"interval_s": 60}', retain=True)
    # Its own rejected and config arrive (each publisher's messages in order), nothing of k02's.
    got = {a.next_message(), a.next_message()}
    assert got == {(T.rejected("school-1", "k01"), b'{"v":1,"seq":1}'),
                   (T.config("school-1", "k01"), b'{"interval_s": 60}')}
    assert a.drain() == []
    for c in (a, b, api, gateway):
        c.close()


def test_a_kit_sees_its_own_retained_config_but_not_another_kits(broker: Broker) -> None:
    api = broker.service(API_USER)
    api.publish(T.config("school-2", "k01"), b'{"interval_s": 120}', retain=True)
    api.publish(T.config("school-1", "k02"), b'{"interval_s": 90}', retain=True)
    api.close()
    kit = broker.kit("school-2", "k01")
    kit.subscribe(T.filter("config"))
    assert kit.next_message() == (T.config("school-2", "k01"), b'{"interval_s": 120}')
    assert kit.drain() == []
    kit.close()


def test_a_wrong_password_is_refused(broker: Broker) -> None:
    user = brokerauth.kit_username("school-1", "k01")
    assert refused(broker.mosquitto.port, user, "not-the-password")
    assert refused(broker.mosquitto.port, user, broker.kits["school-1", "k02"])  # another kit's password
    assert refused(broker.mosquitto.port, "school-9.k01", broker.kits["school-1", "k01"])  # an unknown user
    assert not refused(broker.mosquitto.port, user, broker.kits["school-1", "k01"])


def test_anonymous_access_is_off(broker: Broker) -> None:
    assert refused(broker.mosquitto.port, None, None)
    assert "allow_anonymous false" in broker.mosquitto.config_text()


def test_a_revoked_kit_is_refused_after_a_reload_without_restarting_the_broker(broker: Broker) -> None:
    pid = broker.mosquitto.child.process.pid if broker.mosquitto.child and broker.mosquitto.child.process else 0
    staying = broker.kit("school-1", "k02")  # connected before and after: must not be dropped
    assert not refused(broker.mosquitto.port, "school-1.gone", broker.kits["school-1", "gone"])

    assert brokerauth.revoke_kit(broker.state_dir, "school-1", "gone") is True  # also SIGHUPs the broker
    deadline = time.monotonic() + 10
    while not refused(broker.mosquitto.port, "school-1.gone", broker.kits["school-1", "gone"]):
        assert time.monotonic() < deadline, "the revoked kit could still connect 10 s after the reload"
        time.sleep(0.1)

    assert broker.mosquitto.child is not None and broker.mosquitto.child.process is not None
    assert broker.mosquitto.child.process.pid == pid and broker.mosquitto.child.running  # the same broker
    gateway = broker.service(GATEWAY_USER)
    gateway.subscribe(T.filter("readings"))
    staying.publish(T.readings("school-1", "k02"), reading("k02", 3))
    assert gateway.next_message() == (T.readings("school-1", "k02"), reading("k02", 3))
    assert brokerauth.revoke_kit(broker.state_dir, "school-1", "gone") is False  # nothing left to revoke
    staying.close()
    gateway.close()


def test_a_kit_added_while_the_broker_runs_can_connect_after_the_reload(broker: Broker) -> None:
    password = brokerauth.add_kit_credentials(broker.state_dir, "school-3", "new")
    deadline = time.monotonic() + 10
    while True:
        try:
            Client(broker.mosquitto.port, "school-3.new", password).connect().close()
            break
        except Refused:
            assert time.monotonic() < deadline, "a new kit could not connect 10 s after it was added"
            time.sleep(0.1)


def test_the_gateway_rejects_a_message_whose_payload_names_another_kit(broker: Broker) -> None:
    """Kit k01 may publish on its own topic only, and a payload claiming to be k02 is rejected whole."""
    gateway = broker.service(GATEWAY_USER)
    gateway.subscribe(T.filter("readings"))
    a = broker.kit("school-1", "k01")
    a.publish(T.readings("school-1", "k01"), reading("k02", 11))
    topic, payload = gateway.next_message()
    parsed = T.parse(topic)
    assert parsed is not None and (parsed.site, parsed.kit) == ("school-1", "k01")
    with pytest.raises(MessageRejected) as caught:
        decode_readings(payload, parsed.site, parsed.kit, received_at=time.time())
    assert caught.value.rejection.reason == Reason.KIT_MISMATCH
    # ...and the gateway may tell the kit so, on the kit's own rejected topic, which the kit reads.
    a.subscribe(T.rejected("school-1", "k01"))
    gateway.publish(T.rejected("school-1", "k01"), b'{"v":1,"boot":1,"seq":11}')
    assert a.next_message() == (T.rejected("school-1", "k01"), b'{"v":1,"boot":1,"seq":11}')
    a.close()
    gateway.close()


def test_the_gateway_cannot_publish_readings_and_the_api_cannot_read_them(broker: Broker) -> None:
    staff = broker.service(STAFF_USER)
    staff.subscribe(f"{ROOT}/v1/school-4/#")  # a site no other test leaves retained messages on
    gateway = broker.service(GATEWAY_USER)
    gateway.publish(T.readings("school-4", "k01"), reading("k01", 99))
    gateway.publish(T.config("school-4", "k01"), b'{"interval_s": 5}')
    gateway.publish(T.rejected("school-4", "k01"), b"{}")
    assert staff.next_message() == (T.rejected("school-4", "k01"), b"{}")
    assert staff.drain() == []
    api = broker.service(API_USER)
    api.subscribe(T.filter("readings"))
    kit = broker.kit("school-1", "k01")
    kit.publish(T.readings("school-1", "k01"), reading("k01", 100))
    kit.publish(T.status("school-1", "k01"), b'{"v":1,"state":"online"}', retain=True)
    api.subscribe(T.filter("status"))
    assert api.next_message() == (T.status("school-1", "k01"), b'{"v":1,"state":"online"}')
    assert api.drain() == []
    for c in (staff, gateway, api, kit):
        c.close()


def test_a_refused_connection_raises(broker: Broker) -> None:
    with pytest.raises(Refused):
        Client(broker.mosquitto.port, GATEWAY_USER, "wrong").connect()
