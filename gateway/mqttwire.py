"""MQTT 5 on the wire: the few packets the gateway sends and reads, as pure functions.

The gateway is a subscriber that acknowledges by hand, and the whole of what it needs from MQTT 5
is: CONNECT (persistent session, receive maximum), SUBSCRIBE (and UNSUBSCRIBE, to take back a
subscription granted at too low a QoS), PUBLISH both ways at QoS 0 and 1, PUBACK both ways,
PINGREQ/PINGRESP and DISCONNECT (docs/gateway.md, "MQTT protocol subset"). ``PacketReader`` splits a byte stream into
packets; ``parse_publish`` reads an incoming PUBLISH; the ``*_packet`` functions build outgoing
ones. No I/O here; ``gateway.mqtt`` moves the bytes. Spec: MQTT Version 5.0 (OASIS, 2019).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

# packet types (the high nibble of the first byte)
CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH = 8, 9, 10, 11, 12, 13, 14, 15

PINGREQ_PACKET = b"\xc0\x00"
DISCONNECT_PACKET = b"\xe0\x00"  # reason 0, normal disconnection: the session is kept
MAX_REMAINING_LENGTH = 268_435_455  # four bytes of variable byte integer

# property identifiers (spec 2.2.2.2) and how each is encoded
_BYTE, _TWO, _FOUR, _VARINT, _TEXT, _BINARY, _PAIR = range(7)
_FIXED_SIZES = {_BYTE: 1, _TWO: 2, _FOUR: 4}
PROPERTY_TYPES: dict[int, tuple[str, int]] = {
    0x01: ("payload_format", _BYTE), 0x02: ("message_expiry", _FOUR), 0x03: ("content_type", _TEXT),
    0x08: ("response_topic", _TEXT), 0x09: ("correlation_data", _BINARY), 0x0B: ("subscription_id", _VARINT),
    0x11: ("session_expiry", _FOUR), 0x12: ("assigned_client_id", _TEXT), 0x13: ("server_keep_alive", _TWO),
    0x15: ("auth_method", _TEXT), 0x16: ("auth_data", _BINARY), 0x17: ("request_problem_info", _BYTE),
    0x18: ("will_delay", _FOUR), 0x19: ("request_response_info", _BYTE), 0x1A: ("response_info", _TEXT),
    0x1C: ("server_reference", _TEXT), 0x1F: ("reason_string", _TEXT), 0x21: ("receive_maximum", _TWO),
    0x22: ("topic_alias_maximum", _TWO), 0x23: ("topic_alias", _TWO), 0x24: ("maximum_qos", _BYTE),
    0x25: ("retain_available", _BYTE), 0x26: ("user_property", _PAIR), 0x27: ("maximum_packet_size", _FOUR),
    0x28: ("wildcard_available", _BYTE), 0x29: ("subscription_ids_available", _BYTE),
    0x2A: ("shared_available", _BYTE),
}

# reason codes a person may see in the log (spec 2.4)
REASONS: dict[int, str] = {
    0x00: "success", 0x04: "disconnect with will message", 0x11: "no subscription existed", 0x80: "unspecified error",
    0x81: "malformed packet", 0x82: "protocol error", 0x83: "implementation specific error",
    0x84: "unsupported protocol version", 0x85: "client identifier not valid",
    0x86: "bad user name or password", 0x87: "not authorized", 0x88: "server unavailable",
    0x89: "server busy", 0x8A: "banned", 0x8B: "server shutting down", 0x8C: "bad authentication method",
    0x8D: "keep alive timeout", 0x8E: "session taken over (another client connected with the same client id)",
    0x8F: "topic filter invalid", 0x90: "topic name invalid", 0x93: "receive maximum exceeded",
    0x94: "topic alias invalid", 0x95: "packet too large", 0x97: "quota exceeded",
    0x98: "administrative action", 0x99: "payload format invalid", 0x9A: "retain not supported",
    0x9B: "QoS not supported", 0x9C: "use another server", 0x9D: "server moved",
    0x9E: "shared subscriptions not supported", 0x9F: "connection rate exceeded",
    0xA1: "subscription identifiers not supported", 0xA2: "wildcard subscriptions not supported",
}


class ProtocolError(ValueError):
    """Bytes that are not the MQTT 5 we expect: the connection must be closed."""


def reason_text(code: int) -> str:
    return f"{REASONS.get(code, 'reason')} (0x{code:02x})"


# --- encoding ---------------------------------------------------------------------------------------

def varint(value: int) -> bytes:
    """A variable byte integer (spec 1.5.5)."""
    if not 0 <= value <= MAX_REMAINING_LENGTH:
        raise ValueError(f"{value} does not fit a variable byte integer")
    out = bytearray()
    while True:
        byte, value = value % 128, value // 128
        out.append(byte | 0x80 if value else byte)
        if not value:
            return bytes(out)


def text(value: str) -> bytes:
    data = value.encode()
    return binary(data)


def binary(data: bytes) -> bytes:
    if len(data) > 0xFFFF:
        raise ValueError("a string or binary field is at most 65,535 bytes")
    return struct.pack(">H", len(data)) + data


def _packet(first: int, body: bytes) -> bytes:
    return bytes((first,)) + varint(len(body)) + body


def connect_packet(client_id: str, *, keepalive_s: int, clean_start: bool, session_expiry_s: int,
                   receive_maximum: int, username: str | None = None, password: str | None = None,
                   maximum_packet_size: int | None = None) -> bytes:
    flags = 0x02 if clean_start else 0
    if username is not None:
        flags |= 0x80
    if password is not None:
        flags |= 0x40
    properties = b"\x11" + struct.pack(">I", session_expiry_s) + b"\x21" + struct.pack(">H", receive_maximum)
    if maximum_packet_size is not None:  # the broker must not send us bigger ones: it drops them (spec 3.1.2.11.4)
        properties += b"\x27" + struct.pack(">I", maximum_packet_size)
    body = b"\x00\x04MQTT\x05" + bytes((flags,)) + struct.pack(">H", keepalive_s) + varint(len(properties)) + \
        properties + text(client_id)
    if username is not None:
        body += text(username)
    if password is not None:
        body += binary(password.encode())
    return _packet(CONNECT << 4, body)


def subscribe_packet(packet_id: int, filters: list[str], qos: int = 1) -> bytes:
    body = struct.pack(">H", packet_id) + b"\x00" + b"".join(text(f) + bytes((qos,)) for f in filters)
    return _packet(SUBSCRIBE << 4 | 0x02, body)


def unsubscribe_packet(packet_id: int, filters: list[str]) -> bytes:
    body = struct.pack(">H", packet_id) + b"\x00" + b"".join(text(f) for f in filters)
    return _packet(UNSUBSCRIBE << 4 | 0x02, body)


def publish_packet(topic: str, payload: bytes, qos: int = 0, packet_id: int | None = None,
                   retain: bool = False) -> bytes:
    body = text(topic)
    if qos:
        if packet_id is None:
            raise ValueError("a QoS 1 or 2 PUBLISH needs a packet identifier")
        body += struct.pack(">H", packet_id)
    body += b"\x00" + payload  # no properties
    return _packet(PUBLISH << 4 | qos << 1 | int(retain), body)


_PUBACK = struct.Struct(">BBH")


def puback_packets(packet_ids: list[int]) -> bytes:
    """PUBACKs with reason 0 (success), which MQTT 5 lets us send without the reason byte."""
    pack = _PUBACK.pack
    return b"".join([pack(0x40, 2, packet_id) for packet_id in packet_ids])


# --- decoding ---------------------------------------------------------------------------------------

def read_varint(data: bytes | bytearray, start: int) -> tuple[int, int] | None:
    """(value, index after it), or None if the bytes end first; ``ProtocolError`` past four bytes."""
    value = 0
    shift = 0
    index = start
    while True:
        if index >= len(data):
            return None
        byte = data[index]
        index += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, index
        shift += 7
        if shift >= 28:
            raise ProtocolError("a variable byte integer is longer than four bytes")


class PacketReader:
    """Splits a TCP byte stream into (first byte, body) packets, whatever the chunks' boundaries."""

    def __init__(self, max_packet_bytes: int = MAX_REMAINING_LENGTH) -> None:
        self._buffer = bytearray()
        self.max_packet_bytes = max_packet_bytes

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        buffer = self._buffer
        buffer += data
        packets: list[tuple[int, bytes]] = []
        position = 0
        end = len(buffer)
        while end - position >= 2:
            length_at = read_varint(buffer, position + 1)
            if length_at is None:
                break
            length, body_at = length_at
            if length > self.max_packet_bytes:
                raise ProtocolError(f"a packet of {length} bytes is larger than the {self.max_packet_bytes} allowed")
            if body_at + length > end:
                break
            packets.append((buffer[position], bytes(buffer[body_at:body_at + length])))
            position = body_at + length
        if position:
            del buffer[:position]
        return packets

    @property
    def pending_bytes(self) -> int:
        return len(self._buffer)


@dataclass(slots=True)
class Publish:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    packet_id: int | None


def parse_publish(first: int, body: bytes) -> Publish:
    """An incoming PUBLISH. Its properties are skipped: the gateway asks for none (no topic aliases)."""
    qos = (first >> 1) & 0x03
    if qos == 3:
        raise ProtocolError("PUBLISH with QoS 3")
    if len(body) < 2:
        raise ProtocolError("PUBLISH too short for its topic")
    topic_end = 2 + (body[0] << 8 | body[1])
    if topic_end > len(body):
        raise ProtocolError("PUBLISH topic runs past the packet")
    try:
        topic = body[2:topic_end].decode()
    except UnicodeDecodeError:
        raise ProtocolError("PUBLISH topic is not UTF-8") from None
    position = topic_end
    packet_id = None
    if qos:
        if position + 2 > len(body):
            raise ProtocolError("PUBLISH too short for its packet identifier")
        packet_id = body[position] << 8 | body[position + 1]
        position += 2
    properties = read_varint(body, position)
    if properties is None or properties[1] + properties[0] > len(body):
        raise ProtocolError("PUBLISH properties run past the packet")
    return Publish(topic, body[properties[1] + properties[0]:], qos, bool(first & 0x01), packet_id)


def parse_properties(data: bytes, start: int) -> tuple[dict[str, Any], int]:
    """The properties block at ``start``: (name -> value, index after it). User properties are a list."""
    length_at = read_varint(data, start)
    if length_at is None:
        raise ProtocolError("properties length missing")
    length, index = length_at
    end = index + length
    if end > len(data):
        raise ProtocolError("properties run past the packet")
    out: dict[str, Any] = {}
    while index < end:
        identifier = data[index]
        index += 1
        if identifier not in PROPERTY_TYPES:
            raise ProtocolError(f"unknown property 0x{identifier:02x}")
        name, kind = PROPERTY_TYPES[identifier]
        value: Any
        if index + _FIXED_SIZES.get(kind, 0) > end:
            raise ProtocolError(f"property {name} runs past the properties")
        if kind == _BYTE:
            value, index = data[index], index + 1
        elif kind == _TWO:
            (value,), index = struct.unpack_from(">H", data, index), index + 2
        elif kind == _FOUR:
            (value,), index = struct.unpack_from(">I", data, index), index + 4
        elif kind == _VARINT:
            read = read_varint(data, index)
            if read is None:
                raise ProtocolError("property value missing")
            value, index = read
        else:
            value, index = _read_binary(data, index)
            if kind == _TEXT:
                value = value.decode(errors="replace")
            elif kind == _PAIR:
                second, index = _read_binary(data, index)
                value = (value.decode(errors="replace"), second.decode(errors="replace"))
        if index > end:
            raise ProtocolError(f"property {name} runs past the properties")
        if kind == _PAIR:
            out.setdefault(name, []).append(value)
        else:
            out[name] = value
    return out, end


def _read_binary(data: bytes, index: int) -> tuple[bytes, int]:
    if index + 2 > len(data):
        raise ProtocolError("string length missing")
    (size,) = struct.unpack_from(">H", data, index)
    if index + 2 + size > len(data):
        raise ProtocolError("string runs past the packet")
    return bytes(data[index + 2:index + 2 + size]), index + 2 + size


@dataclass(slots=True)
class Connack:
    session_present: bool
    reason: int
    properties: dict[str, Any]


def parse_connack(body: bytes) -> Connack:
    if len(body) < 2:
        raise ProtocolError("CONNACK too short")
    properties, _ = parse_properties(body, 2) if len(body) > 2 else ({}, 2)
    return Connack(bool(body[0] & 0x01), body[1], properties)


def parse_suback(body: bytes, kind: str = "SUBACK") -> tuple[int, list[int], dict[str, Any]]:
    """A SUBACK's (or, alike, an UNSUBACK's) packet identifier, reason codes (one per filter) and properties.
    In a SUBACK a code below 0x80 is the QoS granted."""
    if len(body) < 3:
        raise ProtocolError(f"{kind} too short")
    packet_id = body[0] << 8 | body[1]
    properties, index = parse_properties(body, 2)
    if index == len(body):
        raise ProtocolError(f"{kind} without a reason code")
    return packet_id, list(body[index:]), properties


def parse_unsuback(body: bytes) -> tuple[int, list[int], dict[str, Any]]:
    return parse_suback(body, "UNSUBACK")


def parse_puback(body: bytes) -> tuple[int, int]:
    """A PUBACK's packet identifier and reason (absent means success)."""
    if len(body) < 2:
        raise ProtocolError("PUBACK too short")
    return body[0] << 8 | body[1], body[2] if len(body) > 2 else 0


def parse_disconnect(body: bytes) -> tuple[int, dict[str, Any]]:
    if not body:
        return 0, {}
    properties, _ = parse_properties(body, 1) if len(body) > 1 else ({}, 1)
    return body[0], properties
