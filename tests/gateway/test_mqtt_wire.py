"""The gateway's MQTT 5 codec (pure): what it writes follows the spec, what it reads it reads whatever
the TCP chunks, and bytes that are not MQTT 5 raise ProtocolError instead of being half-read."""

from __future__ import annotations

import itertools
import struct
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import mqttwire as wire


@pytest.mark.parametrize(("value", "encoded"), [
    (0, b"\x00"), (127, b"\x7f"), (128, b"\x80\x01"), (16_383, b"\xff\x7f"), (16_384, b"\x80\x80\x01"),
    (2_097_151, b"\xff\xff\x7f"), (268_435_455, b"\xff\xff\xff\x7f"),
])
def test_variable_byte_integers_match_the_spec_table(value: int, encoded: bytes) -> None:
    assert wire.varint(value) == encoded
    assert wire.read_varint(encoded, 0) == (value, len(encoded))
    assert wire.read_varint(encoded[:-1], 0) is None  # not all there yet


def test_a_variable_byte_integer_of_five_bytes_is_a_protocol_error() -> None:
    with pytest.raises(wire.ProtocolError):
        wire.read_varint(b"\xff\xff\xff\xff\x01", 0)
    with pytest.raises(ValueError):
        wire.varint(268_435_456)


def test_connect_carries_the_persistent_session_the_receive_maximum_and_the_credentials() -> None:
    packet = wire.connect_packet("gw-1", keepalive_s=30, clean_start=False, session_expiry_s=0xFFFFFFFF,
                                 receive_maximum=1000, username="lauks-gateway", password="sécret",
                                 maximum_packet_size=1 << 20)
    assert packet[0] == 0x10
    length, body_at = wire.read_varint(packet, 1) or (0, 0)
    body = packet[body_at:]
    assert len(body) == length
    assert body[:7] == b"\x00\x04MQTT\x05"
    assert body[7] == 0x80 | 0x40  # user name and password, clean start off, no will
    assert struct.unpack(">H", body[8:10]) == (30,)
    properties, index = wire.parse_properties(body, 10)
    assert properties == {"session_expiry": 0xFFFFFFFF, "receive_maximum": 1000, "maximum_packet_size": 1 << 20}
    client_id, index = wire._read_binary(body, index)
    username, index = wire._read_binary(body, index)
    password, index = wire._read_binary(body, index)
    assert (client_id, username, password, index) == (b"gw-1", b"lauks-gateway", "sécret".encode(), len(body))


def test_connect_without_credentials_and_with_clean_start() -> None:
    packet = wire.connect_packet("x", keepalive_s=5, clean_start=True, session_expiry_s=0, receive_maximum=10)
    _, body_at = wire.read_varint(packet, 1) or (0, 0)
    assert packet[body_at + 7] == 0x02


def test_subscribe_asks_for_qos_1_on_every_filter() -> None:
    packet = wire.subscribe_packet(7, ["lauks/v1/+/+/readings", "$share/g/lauks/v1/+/+/status"])
    assert packet[0] == 0x82  # SUBSCRIBE has fixed flags 0010
    _, body_at = wire.read_varint(packet, 1) or (0, 0)
    body = packet[body_at:]
    assert body[:3] == b"\x00\x07\x00"
    first, index = wire._read_binary(body, 3)
    assert (first, body[index]) == (b"lauks/v1/+/+/readings", 1)
    second, index = wire._read_binary(body, index + 1)
    assert (second, body[index], index + 1) == (b"$share/g/lauks/v1/+/+/status", 1, len(body))


def test_unsubscribe_names_each_filter_with_no_options() -> None:
    packet = wire.unsubscribe_packet(9, ["lauks/v1/+/+/readings", "lauks/v1/+/+/status"])
    assert packet[0] == 0xA2  # UNSUBSCRIBE has fixed flags 0010, like SUBSCRIBE
    _, body_at = wire.read_varint(packet, 1) or (0, 0)
    body = packet[body_at:]
    assert body[:3] == b"\x00\x09\x00"  # packet identifier, no properties
    first, index = wire._read_binary(body, 3)
    second, index = wire._read_binary(body, index)
    assert (first, second, index) == (b"lauks/v1/+/+/readings", b"lauks/v1/+/+/status", len(body))


def test_pubacks_are_four_bytes_each_in_order() -> None:
    assert wire.puback_packets([1, 258, 65535]) == b"\x40\x02\x00\x01" b"\x40\x02\x01\x02" b"\x40\x02\xff\xff"
    assert wire.puback_packets([]) == b""


@given(topic=st.text(min_size=1, max_size=80).filter(lambda t: "\x00" not in t), payload=st.binary(max_size=300),
       qos=st.sampled_from([0, 1]), packet_id=st.integers(1, 65535), retain=st.booleans())
def test_a_publish_reads_back_as_written(topic: str, payload: bytes, qos: int, packet_id: int, retain: bool) -> None:
    packet = wire.publish_packet(topic, payload, qos, packet_id if qos else None, retain)
    [(first, body)] = wire.PacketReader().feed(packet)
    message = wire.parse_publish(first, body)
    assert (message.topic, message.payload, message.qos, message.retain) == (topic, payload, qos, retain)
    assert message.packet_id == (packet_id if qos else None)


def test_a_publish_with_properties_has_them_skipped_not_read_as_payload() -> None:
    properties = b"\x01\x01" + b"\x03" + wire.text("application/json") + b"\x26" + wire.text("k") + wire.text("v")
    body = wire.text("a/b") + b"\x00\x09" + wire.varint(len(properties)) + properties + b'{"v":1}'
    message = wire.parse_publish(0x32, body)
    assert (message.topic, message.packet_id, message.payload) == ("a/b", 9, b'{"v":1}')


@pytest.mark.parametrize(("first", "body"), [
    (0x32, b"\x00"),  # too short for the topic length
    (0x32, b"\x00\x09a/b"),  # topic runs past the packet
    (0x32, b"\x00\x03a/b\x00"),  # no room for the packet identifier
    (0x30, b"\x00\x03a/b\x10"),  # properties run past the packet
    (0x30, b"\x00\x02\xff\xfe\x00"),  # topic is not UTF-8
    (0x36, b"\x00\x03a/b\x00\x01\x00"),  # QoS 3
])
def test_a_malformed_publish_is_a_protocol_error(first: int, body: bytes) -> None:
    with pytest.raises(wire.ProtocolError):
        wire.parse_publish(first, body)


@settings(max_examples=200)
@given(payloads=st.lists(st.binary(max_size=200), min_size=1, max_size=20), cuts=st.lists(st.integers(0, 5000)))
def test_packets_come_out_whole_and_in_order_however_the_stream_is_cut(payloads: list[bytes],
                                                                      cuts: list[int]) -> None:
    stream = b"".join(wire.publish_packet(f"t/{i}", p, 1, i + 1) for i, p in enumerate(payloads))
    stream += wire.PINGREQ_PACKET
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    reader = wire.PacketReader()
    packets = []
    for start, end in itertools.pairwise(points):
        packets.extend(reader.feed(stream[start:end]))
    assert [wire.parse_publish(f, b).payload for f, b in packets[:-1]] == payloads
    assert packets[-1] == (0xC0, b"")
    assert reader.pending_bytes == 0


def test_a_packet_over_the_size_limit_is_refused_before_it_is_buffered() -> None:
    reader = wire.PacketReader(max_packet_bytes=1000)
    with pytest.raises(wire.ProtocolError, match="larger than"):
        reader.feed(b"\x30" + wire.varint(1001))


def test_connack_with_properties() -> None:
    properties = b"\x21" + struct.pack(">H", 20) + b"\x13" + struct.pack(">H", 60) + b"\x1f" + wire.text("hello")
    connack = wire.parse_connack(b"\x01\x00" + wire.varint(len(properties)) + properties)
    assert connack.session_present and connack.reason == 0
    assert connack.properties == {"receive_maximum": 20, "server_keep_alive": 60, "reason_string": "hello"}
    refused = wire.parse_connack(b"\x00\x86\x00")
    assert (refused.session_present, refused.reason) == (False, 0x86)
    assert wire.reason_text(0x86) == "bad user name or password (0x86)"


def test_suback_unsuback_puback_and_disconnect() -> None:
    assert wire.parse_suback(b"\x00\x07\x00\x01\x87") == (7, [1, 0x87], {})
    assert wire.parse_suback(b"\x00\x07\x00\x00") == (7, [0], {})  # granted QoS 0
    assert wire.parse_unsuback(b"\x00\x08\x00\x00\x11") == (8, [0, 0x11], {})
    assert wire.reason_text(0x11) == "no subscription existed (0x11)"
    assert wire.parse_puback(b"\x00\x05") == (5, 0)
    assert wire.parse_puback(b"\x00\x05\x10") == (5, 0x10)
    reason = b"\x1f" + wire.text("bye")
    assert wire.parse_disconnect(b"\x8b" + wire.varint(len(reason)) + reason) == (0x8B, {"reason_string": "bye"})
    assert wire.parse_disconnect(b"") == (0, {})


@pytest.mark.parametrize("parse", [wire.parse_suback, wire.parse_unsuback])
def test_a_suback_or_unsuback_without_a_reason_code_is_a_protocol_error(parse: Callable[[bytes], object]) -> None:
    with pytest.raises(wire.ProtocolError, match="without a reason code"):
        parse(b"\x00\x07\x00")


@pytest.mark.parametrize("block", [b"\x05\x7f\x00\x00\x00\x00", b"\x03\x21\x00", b"\x09", b"\x02\x21\x00",
                                   b"\x02\x27\x00", b"\x03\x1f\x00\x05", b"\x02\x0b\x80"])
def test_unknown_or_cut_properties_are_protocol_errors(block: bytes) -> None:
    with pytest.raises(wire.ProtocolError):
        wire.parse_properties(block, 0)


@given(st.binary(max_size=64))
def test_any_bytes_as_properties_give_properties_or_a_protocol_error(block: bytes) -> None:
    try:
        properties, end = wire.parse_properties(block, 0)
    except wire.ProtocolError:
        return
    assert end <= len(block) and isinstance(properties, dict)


@given(st.binary(max_size=64), st.integers(0, 15))
def test_any_bytes_as_a_control_packet_give_a_value_or_a_protocol_error(body: bytes, flags: int) -> None:
    for parse in (wire.parse_connack, wire.parse_suback, wire.parse_unsuback, wire.parse_puback,
                  wire.parse_disconnect):
        try:
            parse(body)
        except wire.ProtocolError:
            pass
    try:
        wire.parse_publish(0x30 | flags, body)
    except wire.ProtocolError:
        pass
