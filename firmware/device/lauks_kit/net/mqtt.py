# A small MQTT 3.1.1 client over a blocking socket with timeouts. Our own rather than umqtt.simple:
# the kit must know which PUBLISH a PUBACK answers while config messages arrive in between, must
# bound every wait (umqtt.simple's publish at QoS 1 waits for its PUBACK forever), and the same code
# must run unchanged on CPython sockets for the simulated kits.
from lauks_kit.net import mqtt_packets as P


class MQTTError(OSError):
    pass


class Client:
    def __init__(self, connect_socket, client_id, keepalive_s=60, username=None, password=None,
                 will_topic=None, will_message=None, ticks_ms=None):
        self._connect_socket = connect_socket  # () -> socket-like with send/recv/settimeout/close
        self.client_id = client_id
        self.keepalive_s = keepalive_s
        self.username, self.password = username, password
        self.will_topic, self.will_message = will_topic, will_message
        self.sock = None
        self._next_id = 0
        self._ticks_ms = ticks_ms
        self._last_out = 0
        self.on_message = None  # (topic, payload) -> None

    def _id(self):
        self._next_id = self._next_id % 65535 + 1
        return self._next_id

    # -- bytes on the wire -------------------------------------------------------------------------
    def _send(self, data):
        if self.sock is None:
            raise MQTTError("not connected")
        try:
            view = memoryview(data)
            while len(view):
                n = self.sock.send(view)
                if not n:
                    raise OSError("socket closed")
                view = view[n:]
        except OSError as e:
            self.close()
            raise MQTTError("send failed: %s" % e)
        if self._ticks_ms:
            self._last_out = self._ticks_ms()

    def _recv_exact(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise OSError("broker closed the connection")
            out += chunk
        return out

    def _read_packet(self, timeout_s):
        """(first byte, body) of the next packet, or None if nothing arrived within timeout_s."""
        if self.sock is None:
            raise MQTTError("not connected")
        try:
            self.sock.settimeout(timeout_s)
            try:
                first = self.sock.recv(1)
            except OSError as e:
                if "timed out" in str(e) or (e.args and e.args[0] in (11, 110, 116)):
                    return None
                raise
            if not first:
                raise OSError("broker closed the connection")
            self.sock.settimeout(10)
            length, shift = 0, 0
            while True:
                byte = self._recv_exact(1)[0]
                length |= (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    break
            return first[0], self._recv_exact(length) if length else b""
        except OSError as e:
            self.close()
            raise MQTTError("receive failed: %s" % e)

    # -- sessions ------------------------------------------------------------------------------
    def connect(self, timeout_s=10):
        self.close()
        self.sock = self._connect_socket()
        self._send(P.connect(self.client_id, self.keepalive_s, self.username, self.password,
                             self.will_topic, self.will_message))
        packet = self._read_packet(timeout_s)
        if packet is None or packet[0] >> 4 != P.CONNACK or len(packet[1]) != 2:
            self.close()
            raise MQTTError("no CONNACK from the broker")
        code = packet[1][1]
        if code:
            self.close()
            raise MQTTError("broker refused the connection: %s" % P.CONNACK_WORDS.get(code, code))

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None

    def disconnect(self):
        try:
            self._send(P.DISCONNECT_BYTES)
        except OSError:
            pass
        self.close()

    @property
    def connected(self):
        return self.sock is not None

    def _dispatch(self, packet):
        """Handle one incoming packet; returns the packet id if it was a PUBACK, else None."""
        first, body = packet
        kind = first >> 4
        if kind == P.PUBLISH:
            topic, payload, qos, packet_id, _ = P.parse_publish(first, body)
            if qos == 1:
                self._send(P.puback(packet_id))
            if self.on_message:
                self.on_message(topic, payload)
        elif kind == P.PUBACK and len(body) == 2:
            return (body[0] << 8) | body[1]
        return None

    def publish(self, topic, payload, retain=False, qos=1, timeout_s=10):
        """Publish and, at QoS 1, wait for the PUBACK of this message (MQTTError if it does not come)."""
        packet_id = self._id() if qos else 0
        self._send(P.publish(topic, payload, qos, retain, packet_id))
        if not qos:
            return
        waited = 0.0
        while waited < timeout_s:
            packet = self._read_packet(0.5)
            if packet is None:
                waited += 0.5
                continue
            if self._dispatch(packet) == packet_id:
                return
        self.close()
        raise MQTTError("no PUBACK within %d s" % timeout_s)

    def subscribe(self, topic, timeout_s=10):
        packet_id = self._id()
        self._send(P.subscribe(packet_id, topic))
        waited = 0.0
        while waited < timeout_s:
            packet = self._read_packet(0.5)
            if packet is None:
                waited += 0.5
                continue
            if packet[0] >> 4 == P.SUBACK:
                if packet[1][2:3] == b"\x80":
                    raise MQTTError("broker refused the subscription to %s" % topic)
                return
            self._dispatch(packet)
        raise MQTTError("no SUBACK within %d s" % timeout_s)

    def poll(self, timeout_s=0.0):
        """Handle what the broker sent (config messages); ping when the link has been quiet."""
        while True:
            packet = self._read_packet(timeout_s)
            if packet is None:
                break
            self._dispatch(packet)
            timeout_s = 0.01
        if self._ticks_ms and self._ticks_ms() - self._last_out > self.keepalive_s * 500:
            self._send(P.PINGREQ_BYTES)
