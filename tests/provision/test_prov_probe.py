"""``lauks kit probe``: the script the kit runs (under real MicroPython, on a board of fakes), what the host
reads from its output, the sensors block it proposes (which the firmware's own config loader accepts),
and a port with no kit behind it."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from prov_cli import lauks as main
from prov_micropython import run_micropython

from firmware.kitconfig import kit_config
from firmware.provision import PROBE_MARK, ProbeOutputError, parse_probe_output, probe, probe_script, propose
from firmware.sim.devices import rom_code, sds011_frame
from firmware.tools import ToolError

ROM_A, ROM_B = rom_code(0x1C3BAA).hex(), rom_code(0x2D4CBB).hex()


def found(**parts: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"i2c": [], "onewire": [], "adc": [], "uart": [], "errors": []}
    out.update(parts)
    return out


WEATHER = found(i2c=[[21, 22, 0x76, 0x60], [21, 22, 0x23, None]],
                adc=[[34, 0, 0, 0, 0], [35, round(33000 / 43000 * 65535), 50300, 50400, 1_500_000],
                     [33, 30000, 29900, 30100, 1_900_000]])
ENVIRONMENT = found(i2c=[[21, 22, 0x61, None]], onewire=[[4, ROM_A, 12.5], [4, ROM_B, 21.0]],
                    adc=[[34, 40000, 39800, 40100, 2_000_000], [35, 65535, 65535, 65535, 3_100_000],
                         [33, 30000, 29900, 30100, 1_950_000]],
                    uart=[[2, 17, 16, (b"\x12\x34" + sds011_frame(8.1, 13.0) * 3).hex()]])


class StubBoard:
    """Just enough of a board for make_drivers to build each sensor (it only constructs them)."""

    def sleep_ms(self, ms: int) -> None:
        pass

    def i2c(self, sda: int, scl: int) -> object:
        return object()

    def adc(self, pin: int) -> object:
        return object()

    def onewire(self, pin: int) -> object:
        return object()

    def uart(self, number: int, tx: int, rx: int) -> object:
        return object()

    def pulses(self, pin: int, counter: Any) -> Any:
        return counter


def accepted_by_the_firmware(tmp_path: Path, kit_type: str, sensors: list[dict[str, Any]]) -> list[str]:
    from lauks_kit.core.config import load
    from lauks_kit.drivers.factory import make_drivers

    cfg = kit_config("demo", "k1", kit_type)
    cfg["sensors"] = sensors
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    loaded = load(str(path))  # raises ConfigError with every problem
    return [d.name for d in make_drivers(StubBoard(), loaded)]


def test_a_weather_kits_findings_become_a_sensors_block_the_firmware_loads(tmp_path: Path) -> None:
    proposal = propose(WEATHER, "weather")
    kinds = [s["type"] for s in proposal.sensors]
    assert kinds == ["bme280", "bh1750", "anemometer", "wind_vane", "rain_gauge", "battery"]
    assert proposal.sensors[0] == {"type": "bme280", "sda": 21, "scl": 22, "address": 0x76}
    assert "I2C 0x76 (SDA 21, SCL 22): BME280 (temperature, humidity, pressure)" in proposal.found
    assert any("wind vane pointing 0°" in x for x in proposal.found)
    assert any("battery 3.80 V" in x for x in proposal.found)
    assert any("anemometer on pin 27 is a switch" in n for n in proposal.notes)
    names = accepted_by_the_firmware(tmp_path, "weather", proposal.sensors)
    assert names == ["bme280", "bh1750", "anemometer", "wind_vane", "rain_gauge", "battery"]


def test_an_environment_kits_roms_and_soil_calibration_replace_the_placeholders(tmp_path: Path) -> None:
    proposal = propose(ENVIRONMENT, "environment", soil_dry=51234, soil_wet=20111)
    by_type = {s["type"]: s for s in proposal.sensors}
    assert by_type["ds18b20"]["probes"] == [{"rom": ROM_A, "quantity": "water_temperature"},
                                            {"rom": ROM_B, "quantity": "soil_temperature"}]
    assert by_type["soil_moisture"] == {"type": "soil_moisture", "pin": 34, "dry": 51234, "wet": 20111}
    assert by_type["sds011"] == {"type": "sds011", "uart": 2, "tx": 17, "rx": 16}
    assert by_type["scd30"] == {"type": "scd30", "sda": 21, "scl": 22}
    assert any("hold one probe in your hand" in n for n in proposal.notes)
    assert not any("placeholders" in n for n in proposal.notes)
    assert sorted(accepted_by_the_firmware(tmp_path, "environment", proposal.sensors)) == sorted(
        ["ds18b20", "soil_moisture", "sds011", "scd30", "battery"])


def test_without_soil_numbers_the_current_reading_is_shown_and_the_placeholders_said_so() -> None:
    proposal = propose(ENVIRONMENT, "environment")
    assert any("soil probe now reads 40000" in n and "--soil-dry N --soil-wet N" in n for n in proposal.notes)


def test_what_is_missing_or_wrong_is_left_out_with_a_reason(tmp_path: Path) -> None:
    odd = found(i2c=[[21, 22, 0x76, 0x58], [21, 22, 0x3C, None]], onewire=[[4, "28" + "00" * 7, None]],
                adc=[[34, 65535, 65535, 65535, 3_300_000], [33, 100, 90, 110, 10_000]])
    proposal = propose(odd, "environment")
    assert [s["type"] for s in proposal.sensors] == []
    notes = " | ".join(proposal.notes)
    assert "a BMP280 (no humidity)" in notes and "I2C 0x3c" in notes
    assert "no DS18B20 answers on pin 4" in notes and "unplugged or shorted" in notes
    assert "no particulate sensor" in notes and "battery left out" in notes
    assert any("is not a DS18B20" in x for x in proposal.found)
    assert accepted_by_the_firmware(tmp_path, "environment", proposal.sensors) == []


def test_the_kit_type_is_guessed_from_what_is_found() -> None:
    assert propose(WEATHER).kit_type == "weather"
    assert propose(ENVIRONMENT).kit_type == "environment"
    assert any("guessed as weather" in n for n in propose(WEATHER).notes)


def test_the_probe_output_is_found_among_the_kits_other_lines() -> None:
    text = "MPY: soft reboot\nsome log\n" + PROBE_MARK + json.dumps(WEATHER) + "\n>>> "
    assert parse_probe_output(text) == WEATHER


@pytest.mark.parametrize(("text", "says"), [
    ("Traceback (most recent call last):\n  File \"<stdin>\"\nImportError: no module named 'machine'\n",
     "ImportError: no module named 'machine'"),
    (PROBE_MARK + "{not json", "did not finish the probe"),
    (PROBE_MARK + '{"i2c": 5}', "did not finish the probe"),
    ("", "printed: nothing"),
])
def test_output_without_a_whole_probe_line_is_a_clear_error(text: str, says: str) -> None:
    with pytest.raises(ProbeOutputError, match=says):
        parse_probe_output(text)


FAKE_BOARD = """
import sys
class Pin:
    IN = 1
    def __init__(self, n, *a):
        if n == 35:
            raise ValueError("invalid pin")
        self.n = n
class SoftI2C:
    def __init__(self, sda, scl, freq):
        pass
    def scan(self):
        return [0x23, 0x76]
    def readfrom_mem(self, a, reg, n):
        return bytes([0x60])
class ADC:
    ATTN_11DB = 3
    def __init__(self, pin):
        self.pin = pin
    def atten(self, a):
        pass
    def read_u16(self):
        return 40000 if self.pin.n == 34 else 30000
    def read_uv(self):
        return 1900000
class UART:
    def __init__(self, n, baudrate, tx, rx, timeout):
        pass
    def read(self):
        return %(frames)r
class Machine:
    pass
machine = Machine()
machine.Pin, machine.SoftI2C, machine.ADC, machine.UART = Pin, SoftI2C, ADC, UART
class OneWire:
    def __init__(self, pin):
        pass
    def scan(self):
        return [bytearray(%(rom)r)]
ow = Machine()
ow.OneWire = OneWire
class DS:
    def __init__(self, bus):
        pass
    def convert_temp(self):
        pass
    def read_temp(self, rom):
        return 19.5
ds = Machine()
ds.DS18X20 = DS
sys.modules["machine"], sys.modules["onewire"], sys.modules["ds18x20"] = machine, ow, ds
"""


def test_the_probe_script_runs_under_micropython_and_its_output_is_read(tmp_path: Path) -> None:
    fake = FAKE_BOARD % {"frames": sds011_frame(7.5, 11.0) * 26, "rom": rom_code(0x1C3BAA)}
    stdout = run_micropython(tmp_path, fake + "\n" + probe_script())
    got = parse_probe_output(stdout)
    assert [a for _, _, a, _ in got["i2c"]] == [0x23, 0x76]
    assert got["onewire"] == [[4, ROM_A, 19.5]]
    assert [pin for pin, *_ in got["adc"]] == [33, 34] and any("adc 35" in e for e in got["errors"])
    proposal = propose(got, "environment", 52000, 21000)
    assert {s["type"] for s in proposal.sensors} == {"bme280", "bh1750", "ds18b20", "soil_moisture", "sds011",
                                                     "battery"}
    accepted_by_the_firmware(tmp_path, "environment", proposal.sensors)


def test_probe_on_a_port_that_does_not_exist_says_what_to_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kit", "probe", "--port", "/dev/ttyLAUKS9"]) == 2
    err = capsys.readouterr().err
    assert "no serial port /dev/ttyLAUKS9: is the kit plugged in" in err and "/dev/ttyUSB0" in err


def test_probe_on_a_port_where_nothing_answers_gives_up_in_time(capsys: pytest.CaptureFixture[str]) -> None:
    controller, device = os.openpty()  # a serial line with nothing at the other end
    try:
        started = time.monotonic()
        assert main(["kit", "probe", "--port", os.ttyname(device), "--timeout", "2"]) == 2
        took = time.monotonic() - started
    finally:
        os.close(controller)
        os.close(device)
    assert took < 10
    err = capsys.readouterr().err
    assert "nothing answered on /dev/pts/" in err and "within 2 s" in err and "lauks kit prepare" in err


def test_a_port_without_permission_names_the_dialout_group(monkeypatch: pytest.MonkeyPatch) -> None:
    controller, device = os.openpty()
    try:
        monkeypatch.setattr(os, "access", lambda path, mode: False)  # as for a user outside dialout
        with pytest.raises(ToolError, match=r"usermod -aG dialout"):
            probe(os.ttyname(device))
    finally:
        os.close(controller)
        os.close(device)


def test_write_puts_the_proposal_into_a_config_the_firmware_accepts(tmp_path: Path) -> None:
    from lauks_kit.core.config import load

    from firmware.provision import write_sensors

    path = tmp_path / "config.json"
    path.write_text(json.dumps(kit_config("demo", "k1", "environment")))
    sensors = propose(ENVIRONMENT, "environment", 50000, 20000).sensors
    write_sensors(path, sensors)
    assert load(str(path))["sensors"] == sensors
    assert path.stat().st_mode & 0o777 == 0o600  # it holds the kit's broker password
    with pytest.raises(ToolError, match="no config at"):
        write_sensors(tmp_path / "missing.json", sensors)
