"""The radio around a simulated kit: the Wi-Fi networks it can see (with their passwords), its button,
and its setup access point, whose page is a real HTTP server on a loopback port.

Handed to a kit as ``Faults(air=Air(...))``; a kit without one joins any network, as before.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Network:
    ssid: str
    password: str = ""  # "" for an open network
    rssi: int = -60
    present: bool = True


@dataclass
class Air:
    networks: list[Network] = field(default_factory=list)
    button_held: bool = False
    ap_ssid: str | None = None
    ap_port: int | None = None
    joined: str | None = None  # the network the kit is on
    ap_opened: threading.Event = field(default_factory=threading.Event)
    ap_closed: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, ssid: str, password: str = "", rssi: int = -60) -> Network:
        net = Network(ssid, password, rssi)
        with self.lock:
            self.networks.append(net)
        return net

    def vanish(self, ssid: str) -> None:
        """The network goes out of reach (switched off, or the kit moved)."""
        with self.lock:
            for net in self.networks:
                if net.ssid == ssid:
                    net.present = False
            if self.joined == ssid:
                self.joined = None

    def scan(self) -> list[tuple[str, int, bool]]:
        with self.lock:
            return [(n.ssid, n.rssi, bool(n.password)) for n in self.networks if n.present]

    def try_join(self, ssid: str, password: str) -> str:
        """What the ESP32's station reports: joined, wrong_password or not_found."""
        with self.lock:
            net = next((n for n in self.networks if n.ssid == ssid and n.present), None)
            if net is None:
                return "not_found"
            if net.password != password:
                return "wrong_password"
            self.joined = ssid
            return "joined"

    def connect_any(self, configured: list[dict[str, Any]]) -> bool:
        """The kit's own attempt with its config.json networks, in order."""
        for entry in configured:
            if self.try_join(str(entry.get("ssid", "")), str(entry.get("password", ""))) == "joined":
                return True
        return False

    def connected(self) -> bool:
        with self.lock:
            return self.joined is not None and any(n.ssid == self.joined and n.present for n in self.networks)

    def open_ap(self, ssid: str) -> socket.socket:
        """The access point's web server: on a phone it is http://192.168.4.1/, here a loopback port."""
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        self.ap_ssid, self.ap_port = ssid, server.getsockname()[1]
        self.ap_closed.clear()
        self.ap_opened.set()
        return server

    def close_ap(self) -> None:
        self.ap_opened.clear()
        self.ap_closed.set()
