"""A standard kit's config.json: its sensors on the pins of docs/firmware.md, its broker and its Wi-Fi.

Written for real kits by ``lauks kit add`` (firmware/tools.py) and for simulated ones by
``lauks kit simulate`` and ``lauks up``: one definition, so a simulated kit is configured like a real one.
"""

from __future__ import annotations

from typing import Any

KIT_TYPES = ("weather", "environment")
PLACEHOLDER_WIFI = {"ssid": "school-outdoor", "password": "change-me"}


def sensors_for(kit_type: str) -> list[dict[str, Any]]:
    """The sensors of a standard kit of this type, on the pins of docs/firmware.md."""
    if kit_type == "weather":
        return [
            {"type": "bme280", "sda": 21, "scl": 22, "address": 0x76},
            {"type": "bh1750", "sda": 21, "scl": 22, "address": 0x23},
            {"type": "anemometer", "pin": 27, "ms_per_hz": 0.667},
            {"type": "wind_vane", "pin": 35, "pullup": 10000},
            {"type": "rain_gauge", "pin": 26, "mm_per_tip": 0.2794},
            {"type": "battery", "pin": 33, "ratio": 2.0},
        ]
    return [
        {"type": "ds18b20", "pin": 4, "probes": [
            {"rom": "28aa3b1c0500006a", "quantity": "water_temperature"},
            {"rom": "28bb4c2d05000058", "quantity": "soil_temperature"}]},
        {"type": "soil_moisture", "pin": 34, "dry": 52000, "wet": 21000},
        {"type": "sds011", "uart": 2, "tx": 17, "rx": 16},
        {"type": "scd30", "sda": 21, "scl": 22},
        {"type": "battery", "pin": 33, "ratio": 2.0},
    ]


def kit_config(site: str, kit: str, kit_type: str, host: str = "127.0.0.1", port: int = 1883,
               username: str | None = None, password: str | None = None, interval_s: int = 60,
               *, tls: bool = False, wifi: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """The config.json of a standard kit; a placeholder Wi-Fi network when none is given."""
    broker: dict[str, Any] = {"host": host, "port": port, "tls": tls}
    if username:
        broker["username"] = username
    if password:
        broker["password"] = password
    networks = [{"ssid": ssid, "password": pw} for ssid, pw in wifi] if wifi else [dict(PLACEHOLDER_WIFI)]
    return {"site": site, "kit": kit, "type": kit_type, "wifi": networks,
            "broker": broker, "interval_s": interval_s, "deep_sleep": False, "sensors": sensors_for(kit_type)}
