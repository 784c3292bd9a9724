"""The update topic on a real Mosquitto with the platform's ACL: only staff write it, a kit reads only its own.

A forbidden publish is acknowledged and dropped, so "never arrives" is shown by order: the same client then
publishes an allowed message, and a subscriber, which gets one client's messages in order, sees only that.
"""

from __future__ import annotations

import pytest
from fleet_helpers import Broker

from lauks.brokerauth import API_USER, GATEWAY_USER, STAFF_USER

pytestmark = pytest.mark.services


def test_a_kit_reads_its_own_retained_offer_and_not_another_kits(broker: Broker) -> None:
    t = broker.topics
    staff = broker.service(STAFF_USER)
    staff.publish(t.update("school-1", "kit-01"), b'{"v":1,"for":"kit-01"}', retain=True)
    staff.publish(t.update("school-1", "kit-02"), b'{"v":1,"for":"kit-02"}', retain=True)
    staff.publish(t.update("school-2", "kit-00"), b'{"v":1,"for":"school-2"}', retain=True)
    staff.close()
    kit = broker.kit("school-1", "kit-01")
    kit.subscribe(f"{t.base}/#", t.filter("update"), t.update("school-1", "kit-02"), t.update("school-1", "kit-01"))
    # once per matching subscription, and nothing of any other kit's
    own = (t.update("school-1", "kit-01"), b'{"v":1,"for":"kit-01"}')
    assert kit.next_message() == own
    assert set(kit.drain()) <= {own}
    kit.close()


def test_no_kit_and_no_other_service_can_write_an_offer(broker: Broker) -> None:
    t = broker.topics
    staff = broker.service(STAFF_USER)
    staff.subscribe(t.update("school-1", "kit-03"), t.update("school-1", "kit-04"), t.status("school-1", "kit-03"))
    own = broker.kit("school-1", "kit-03")
    own.publish(t.update("school-1", "kit-03"), b"forged-by-itself")
    own.publish(t.update("school-1", "kit-04"), b"forged-for-another")
    own.publish(t.status("school-1", "kit-03"), b'{"v":1,"state":"online"}')
    assert staff.next_message() == (t.status("school-1", "kit-03"), b'{"v":1,"state":"online"}')
    for username in (GATEWAY_USER, API_USER):
        service = broker.service(username)
        service.publish(t.update("school-1", "kit-03"), b"forged-by-a-service")
        service.close()
    staff.publish(t.update("school-1", "kit-03"), b"from-staff")  # one staff client: the broker binds ids to users
    assert staff.next_message() == (t.update("school-1", "kit-03"), b"from-staff")
    assert staff.drain() == []
    for client in (own, staff):
        client.close()
