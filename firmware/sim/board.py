"""SimBoard: what board_esp32.Board gives the firmware, made of the simulated world and real sockets."""

from __future__ import annotations

import os
import random
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from firmware.device_path import use_device_code
from firmware.sim import devices as dev
from firmware.sim.world import Clock, Weather

use_device_code()
from lauks_kit.drivers.factory import make_drivers  # noqa: E402
from lauks_kit.drivers.vane import LADDER  # noqa: E402

ESP32_RTC_START = 946_684_800  # a kit's RTC after power-on reads 2000-01-01 until NTP sets it
POWER_CUT = 137  # the exit code of a simulated kit's process whose power was cut (as if by SIGKILL)
VANE = dict(LADDER)  # the wind vane's resistance (ohms) at each of its 16 directions (degrees)


class SimReboot(Exception):
    """The simulated kit loses power (or its reset button is pressed): RAM and RTC are gone."""


class SimDeepSleep(Exception):
    def __init__(self, ms: int) -> None:
        super().__init__(ms)
        self.ms = ms


class SimStop(Exception):
    """The simulator is shutting down."""


@dataclass
class Faults:
    """Injected faults, in world seconds after the kit's first start."""

    wifi_drop_at: float | None = None
    wifi_drop_for: float = 0.0
    reboot_at: float | None = None
    no_ntp: bool = False
    dead_sensor: str | None = None
    dead_at: float = 0.0
    # the power goes once this many bytes have come over HTTP (an update's download); only for a kit run in a
    # process of its own (firmware/sim/flashkit.py), as the process ends on the spot
    power_cut_after_http_bytes: int | None = None
    # provision: the networks around the kit, its button and its setup access point (firmware/sim/accesspoint.py);
    # None: any network joins, as before
    air: Any = None


class LinkSocket:
    """A real TCP socket to the broker that fails like a dropped Wi-Fi link while an outage lasts."""

    def __init__(self, sock: socket.socket, board: SimBoard) -> None:
        self.sock, self.board = sock, board

    def _check(self) -> None:
        if not self.board.wifi_connected():
            self.close()
            raise OSError(113, "EHOSTUNREACH (simulated Wi-Fi outage)")

    def send(self, data: Any) -> int:
        self._check()
        return self.sock.send(data)

    def recv(self, n: int) -> bytes:
        self._check()
        return self.sock.recv(n)

    def settimeout(self, t: float | None) -> None:
        self.sock.settimeout(t)

    def close(self) -> None:
        self.sock.close()


class HttpSocket(LinkSocket):
    """A link to a server other than the broker: counts what it receives, for a power cut mid-download."""

    def recv(self, n: int) -> bytes:
        data = super().recv(n)
        self.board.http_bytes += len(data)
        limit = self.board.faults.power_cut_after_http_bytes
        if limit is not None and self.board.http_bytes >= limit:
            print(f"{self.board.log_prefix}simulated power cut after {self.board.http_bytes} bytes of HTTP", flush=True)
            os._exit(POWER_CUT)  # no clean-up, no flush: what the files hold now is what a power cut leaves
        return data


class SimBoard:
    def __init__(self, root: Path, clock: Clock, weather: Weather, stop: threading.Event, faults: Faults,
                 first_start: float, broker: tuple[str, int], rtc: dict[str, Any], woke: bool = False,
                 log_prefix: str = "") -> None:
        self.root = str(root)
        self.clock, self.weather, self.stop, self.faults = clock, weather, stop, faults
        self.first_start = first_start
        self.broker = broker
        self.rtc = rtc  # survives deep sleep (the runner keeps it), lost on reboot
        self.woke = woke
        self.rng = random.Random(weather.seed)
        self.power_on = float(rtc.setdefault("power_on", clock.now()))
        self.log_prefix = log_prefix
        self.lines: list[str] = []
        self.pulse_counters: list[tuple[Any, str, float]] = []
        self.last_pump = clock.now()
        self.i2c_bus = dev.FakeI2C()
        self.onewire_bus: dev.FakeOneWire | None = None
        self.rebooted = False
        self.http_bytes = 0
        self.broker_alias: tuple[str, int] | None = None  # the broker's address in config.json, if known

    # -- time ------------------------------------------------------------------------------------
    def elapsed(self) -> float:
        return self.clock.now() - self.first_start

    def time(self) -> float:
        if self.rtc.get("synced"):
            return self.clock.now()
        return ESP32_RTC_START + (self.clock.now() - self.power_on)

    def ticks_ms(self) -> int:
        return int((self.clock.now() - self.power_on) * 1000)

    def speed(self) -> float:
        return self.clock.speed()

    def _checkpoint(self) -> None:
        if self.stop.is_set():
            raise SimStop()
        f = self.faults
        if f.reboot_at is not None and not self.rtc.get("rebooted") and self.elapsed() >= f.reboot_at:
            self.rtc["rebooted"] = True
            raise SimReboot()

    def sleep_ms(self, ms: int) -> None:
        self._checkpoint()
        self.clock.sleep(ms / 1000, self.stop)
        self._checkpoint()

    def wdt_feed(self) -> None:
        self._checkpoint()

    def random(self) -> float:
        return self.rng.random()

    def woke_from_deep_sleep(self) -> bool:
        return self.woke

    def rtc_memory(self) -> bytes:
        return bytes(self.rtc.get("memory", b""))

    def set_rtc_memory(self, data: bytes) -> None:
        self.rtc["memory"] = bytes(data)

    def deep_sleep(self, ms: int) -> None:
        raise SimDeepSleep(ms)

    def reset(self) -> None:
        raise SimReboot()  # machine.reset(): RAM and RTC memory are gone, the flash folder stays

    def log(self, text: str) -> None:
        self.lines.append(text)
        print(f"{self.log_prefix}{text}", flush=True)

    def led_pattern(self, pattern: Any) -> None:
        self.log("LED " + "-".join(str(ms) for ms in pattern))

    # -- network ---------------------------------------------------------------------------------
    def in_outage(self) -> bool:
        f = self.faults
        return f.wifi_drop_at is not None and f.wifi_drop_at <= self.elapsed() < f.wifi_drop_at + f.wifi_drop_for

    def wifi_connected(self) -> bool:
        air = self.faults.air  # provision
        return bool(self.rtc.get("wifi")) and not self.in_outage() and (air is None or air.connected())

    def wifi_connect(self, networks: list[dict[str, Any]]) -> bool:
        air = self.faults.air  # provision: only a network in the air with its password joins
        self.rtc["wifi"] = not self.in_outage() and (air is None or air.connect_any(networks))
        return bool(self.rtc["wifi"])

    # -- provision: the Wi-Fi setup access point (lauks_kit/net/portal.py, firmware/sim/accesspoint.py) ----
    def ap_available(self) -> bool:
        return self.faults.air is not None

    def wifi_scan(self) -> list[tuple[str, int, bool]]:
        return self.faults.air.scan() if self.faults.air is not None else []

    def wifi_try(self, ssid: str, password: str) -> str:
        if self.faults.air is None or self.in_outage():
            return "not_found"
        result = str(self.faults.air.try_join(ssid, password))
        self.rtc["wifi"] = result == "joined"
        return result

    def button_held(self) -> bool:
        return self.faults.air is not None and bool(self.faults.air.button_held)

    def ap_open(self, ssid: str) -> socket.socket:
        if self.faults.air is None:
            raise OSError(19, "ENODEV (no simulated radio: Faults.air)")
        return self.faults.air.open_ap(ssid)  # type: ignore[no-any-return]

    def ap_close(self) -> None:
        if self.faults.air is not None:
            self.faults.air.close_ap()

    def ap_poll_s(self) -> float:
        return min(0.2, 0.2 / self.speed())  # a second of the kit's world, at most 0.2 s of real time

    def led_steady(self, on: bool) -> None:
        self.log("LED " + ("on" if on else "off"))
    # -- end of provision ------------------------------------------------------------------------------

    def rssi(self) -> int | None:
        return -58 - self.rng.randint(0, 12) if self.wifi_connected() else None

    def ntp_sync(self) -> bool:
        if self.faults.no_ntp or not self.wifi_connected():
            return False
        self.rtc["synced"] = True
        return True

    def socket(self, host: str, port: int, tls: bool) -> LinkSocket:
        if not self.wifi_connected():
            raise OSError(113, "EHOSTUNREACH (simulated Wi-Fi outage)")
        # the simulator's broker for the config's broker address; any other (an update's HTTP server) as it is
        to = self.broker if self.broker_alias is None or (host, port) == self.broker_alias else (host, port)
        sock = socket.create_connection(to, timeout=10)
        return LinkSocket(sock, self) if to == self.broker else HttpSocket(sock, self)

    # -- sensors ---------------------------------------------------------------------------------
    def dead(self, name: str) -> bool:
        f = self.faults
        return f.dead_sensor == name and self.elapsed() >= f.dead_at

    def _values(self) -> dict[str, float]:
        t, w = self.clock.now(), self.weather
        return {"temperature": w.temperature(t), "humidity": w.humidity(t), "pressure": w.pressure(t),
                "co2": w.co2(t)}

    def i2c(self, sda: int, scl: int) -> dev.FakeI2C:
        return self.i2c_bus

    def adc(self, pin: int) -> dev.FakeADC:
        return dev.FakeADC()  # given its meaning in make_drivers below

    def pulses(self, pin: int, counter: Any) -> Any:
        self.pulse_counters.append((counter, counter.name, getattr(counter, "factor", 0.0)))
        return counter

    def onewire(self, pin: int) -> dev.FakeOneWire:
        assert self.onewire_bus is not None
        return self.onewire_bus

    def uart(self, number: int, tx: int, rx: int) -> dev.FakeUART:
        w = self.weather

        def frame() -> bytes:
            if self.dead("sds011"):
                return b""
            t = self.clock.now()
            return dev.sds011_frame(w.pm2_5(t), w.pm2_5(t) * 1.6)

        return dev.FakeUART(frame)

    def make_drivers(self, cfg: dict[str, Any]) -> list[Any]:
        w = self.weather
        self.i2c_bus.devices = {0x76: dev.FakeBME280(self._values), 0x23: dev.FakeBH1750(lambda: w.light(
            self.clock.now())), 0x61: dev.FakeSCD30(self._values)}
        probes: dict[bytes, Any] = {}
        for s in cfg["sensors"]:
            for p in s.get("probes", []):
                quantity = p.get("quantity", "water_temperature")
                reader = w.water_temperature if quantity == "water_temperature" else w.soil_temperature
                probes[bytes.fromhex(p["rom"])] = (lambda r=reader: r(self.clock.now()))
        self.onewire_bus = dev.FakeOneWire(probes)
        drivers: list[Any] = list(make_drivers(self, cfg))  # the firmware's drivers, untyped
        for driver, sensor in zip(drivers, cfg["sensors"], strict=False):
            self._wire_adc(driver, sensor)
        return drivers

    def _wire_adc(self, driver: Any, sensor: dict[str, Any]) -> None:
        w, kind = self.weather, sensor["type"]
        if kind == "wind_vane":
            pullup = float(sensor.get("pullup", 10000))

            def vane() -> int:
                if self.dead("wind_vane"):
                    return 0
                deg = round(w.wind_direction(self.clock.now()) / 22.5) * 22.5 % 360
                ohms = VANE[deg]
                return round(ohms / (ohms + pullup) * 65535)

            driver.adc = dev.FakeADC(u16=vane)
        elif kind == "soil_moisture":
            dry, wet = sensor.get("dry", 52000), sensor.get("wet", 21000)
            driver.adc = dev.FakeADC(u16=lambda: 0 if self.dead("soil_moisture") else
                                     round(dry - w.soil_moisture(self.clock.now()) / 100 * (dry - wet)))
        elif kind == "battery":
            ratio = sensor.get("ratio", 2.0)
            driver.adc = dev.FakeADC(uv=lambda: round(w.battery(self.clock.now(), self.first_start) / ratio * 1e6))

    def pump(self) -> None:
        """Deliver the pulses the anemometer and rain gauge would have made since the last sample."""
        now = self.clock.now()
        start, self.last_pump = self.last_pump, now
        for dead in ("bme280", "bh1750", "scd30"):
            address = {"bme280": 0x76, "bh1750": 0x23, "scd30": 0x61}[dead]
            if self.dead(dead):
                self.i2c_bus.dead.add(address)
        if self.onewire_bus is not None:
            self.onewire_bus.present = not self.dead("ds18b20")
        for counter, name, factor in self.pulse_counters:
            if self.dead(name):
                continue
            if name == "anemometer":
                for t in self.weather.wind_pulses(start, now, factor, self.rng):
                    counter.pulse(int((t - self.power_on) * 1000))
            elif name == "rain_gauge":
                tips = self.weather.rain_tips(start, now, counter.mm_per_tip)
                span = max(now - start, 0.001)
                for i in range(tips):
                    counter.pulse(int((start + span * (i + 0.5) / tips - self.power_on) * 1000))
