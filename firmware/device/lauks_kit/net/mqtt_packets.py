# MQTT 3.1.1 packets as bytes, and parsing of what the broker sends: pure, so it runs anywhere.
CONNECT, CONNACK, PUBLISH, PUBACK, SUBSCRIBE, SUBACK, PINGREQ, PINGRESP, DISCONNECT = 1, 2, 3, 4, 8, 9, 12, 13, 14


def remaining_length(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


def _str(s):
    if isinstance(s, str):
        s = s.encode()
    return bytes([len(s) >> 8, len(s) & 0xFF]) + s


def _packet(first, body):
    return bytes([first]) + remaining_length(len(body)) + body


def connect(client_id, keepalive_s=60, username=None, password=None, will_topic=None, will_message=None,
            will_qos=1, will_retain=True, clean_session=True):
    flags = 0x02 if clean_session else 0
    payload = _str(client_id)
    if will_topic is not None:
        flags |= 0x04 | (will_qos << 3) | (0x20 if will_retain else 0)
        payload += _str(will_topic) + _str(will_message)
    if username is not None:
        flags |= 0x80
        payload += _str(username)
        if password is not None:
            flags |= 0x40
            payload += _str(password)
    body = _str("MQTT") + bytes([4, flags, keepalive_s >> 8, keepalive_s & 0xFF]) + payload
    return _packet(CONNECT << 4, body)


def publish(topic, payload, qos=1, retain=False, packet_id=0, dup=False):
    first = (PUBLISH << 4) | (qos << 1) | (1 if retain else 0) | (0x08 if dup else 0)
    body = _str(topic)
    if qos:
        body += bytes([packet_id >> 8, packet_id & 0xFF])
    return _packet(first, body + payload)


def subscribe(packet_id, topic, qos=1):
    return _packet((SUBSCRIBE << 4) | 0x02, bytes([packet_id >> 8, packet_id & 0xFF]) + _str(topic) + bytes([qos]))


def puback(packet_id):
    return bytes([PUBACK << 4, 2, packet_id >> 8, packet_id & 0xFF])


PINGREQ_BYTES = bytes([PINGREQ << 4, 0])
DISCONNECT_BYTES = bytes([DISCONNECT << 4, 0])

CONNACK_WORDS = {1: "unacceptable protocol version", 2: "client id rejected", 3: "broker unavailable",
                 4: "bad username or password", 5: "not authorised"}


def parse_publish(first, body):
    """(topic, payload, qos, packet_id, retain) of an incoming PUBLISH body."""
    qos = (first >> 1) & 3
    n = (body[0] << 8) | body[1]
    topic = bytes(body[2:2 + n]).decode()
    at = 2 + n
    packet_id = 0
    if qos:
        packet_id = (body[at] << 8) | body[at + 1]
        at += 2
    return topic, bytes(body[at:]), qos, packet_id, bool(first & 1)
