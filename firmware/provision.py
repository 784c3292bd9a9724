"""A new ESP32 made a kit: ``lauks kit prepare`` puts MicroPython on it with esptool, ``lauks kit probe``
asks it what is wired to it and proposes the sensors block of its config.json.

The image is checked before anything touches the kit: an ESP image (magic byte 0xE9) built for the chip
the kit has (the chip id in its header), with the partition table where the whole-flash image has it
(an app-only image written at the bootloader's offset would brick the boot), and MicroPython in it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import struct
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from firmware.chips import CHIPS, Chip
from firmware.device_path import use_device_code
from firmware.kitconfig import KIT_TYPES, sensors_for
from firmware.tools import ToolError, mpremote_program

IMAGE_MAGIC = 0xE9
PARTITION_TABLE_AT = 0x8000  # flash address of the partition table in MicroPython's ESP32 builds
PARTITION_MAGIC = b"\xaa\x50"
MAX_IMAGE_BYTES = 16 * 1024 * 1024
BAUD = 460800  # what MicroPython's install notes use; esptool falls back if the adapter cannot


def download_page(chip: Chip | None = None) -> str:
    return f"https://micropython.org/download/{chip.board if chip else 'ESP32_GENERIC'}/"


# -- the image ----------------------------------------------------------------------------------------

def fetch_image(source: str, into: Path, timeout_s: float = 60.0) -> Path:
    """The image as a local file: ``source`` itself, or downloaded from an http(s) URL into ``into``."""
    if "://" not in source:
        path = Path(source)
        if not path.is_file():
            raise ToolError(f"no image file at {source}: download the .bin for your chip from "
                            f"{download_page()} (or give its URL)")
        return path
    if not source.startswith(("http://", "https://")):
        raise ToolError(f"--image {source}: give a file or an http:// or https:// URL")
    into.mkdir(parents=True, exist_ok=True)
    name = Path(urllib.request.url2pathname(source.split("?")[0].rsplit("/", 1)[-1])).name
    if name in ("", ".", ".."):
        name = "image.bin"
    try:
        with urllib.request.urlopen(source, timeout=timeout_s) as response:
            data = response.read(MAX_IMAGE_BYTES + 1)
    except urllib.error.HTTPError as e:
        raise ToolError(f"cannot download {source}: the server answered {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        raise ToolError(f"cannot download {source}: {reason} (check the URL and this machine's network)") from None
    if len(data) > MAX_IMAGE_BYTES:
        raise ToolError(f"{source} is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB: not an ESP32 image")
    fd, tmp = tempfile.mkstemp(dir=into, prefix=".download.", suffix=".bin")
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    path = into / name
    os.replace(tmp, path)
    return path


@dataclass(frozen=True)
class Image:
    path: Path
    chip: Chip
    size: int
    version: str | None  # "v1.24.1" when the image names it


def inspect_image(path: Path) -> Image:
    """The chip a whole-flash MicroPython image is for; ToolError saying what is wrong with any other file."""
    data = path.read_bytes()
    hint = f"download the .bin (not .app-bin, .elf or .uf2) for your chip from {download_page()}"
    if len(data) < 64 * 1024:
        raise ToolError(f"{path} is {len(data)} bytes: too small to be a MicroPython image; {hint}")
    if data[0] != IMAGE_MAGIC:
        what = ("a UF2 file" if data[:4] == b"UF2\n" else "an ELF file" if data[:4] == b"\x7fELF" else
                "a web page" if data.lstrip()[:1] == b"<" else "not an ESP32 firmware image")
        raise ToolError(f"{path} is {what} (an ESP32 image starts with the byte 0xE9); {hint}")
    (chip_id,) = struct.unpack_from("<H", data, 12)
    chip = next((c for c in CHIPS.values() if c.image_chip_id == chip_id), None)
    if chip is None:
        raise ToolError(f"{path} is an image for a chip Lauks does not know (chip id {chip_id}): use one for "
                        + ", ".join(c.label for c in CHIPS.values()))
    table = PARTITION_TABLE_AT - chip.offset
    if data[table:table + 2] != PARTITION_MAGIC:
        raise ToolError(f"{path} has no partition table at 0x{PARTITION_TABLE_AT:x}: it is an app-only image "
                        f"(MicroPython's .app-bin, written at 0x10000). Use the whole firmware .bin from "
                        f"{download_page(chip)}")
    if b"MicroPython" not in data:
        raise ToolError(f"{path} is an {chip.label} image, but not MicroPython; {hint}")
    found = re.search(rb"MicroPython (v\d+\.\d+(?:\.\d+)?)", data)
    return Image(path, chip, len(data), found.group(1).decode() if found else None)


# -- the kit on its port ------------------------------------------------------------------------------

def port_problem(port: str) -> str | None:
    """Why ``port`` cannot be a kit's serial port, in words a person can act on; None if it may be."""
    if not os.path.exists(port):
        return (f"no serial port {port}: is the kit plugged in (with a data cable, not a charging-only one)? "
                "`ls /dev/ttyUSB* /dev/ttyACM*` lists the ports; a CP210x or CH340 adapter appears as "
                "/dev/ttyUSB0 (docs/firmware.md, 'A new ESP32')")
    if not os.access(port, os.R_OK | os.W_OK):
        return (f"no permission to open {port}: add yourself to the dialout group "
                "(`sudo usermod -aG dialout $USER`), then log out and in again")
    return None


def esptool_command() -> list[str]:
    """esptool from this interpreter's environment (installed with Lauks)."""
    return [sys.executable, "-m", "esptool"]


CHIP_LINE = re.compile(r"(?:Chip type:|Chip is|Detecting chip type\.*|Connected to)\s*(ESP32(?:-[A-Z]\d+)?)")


def chip_from_esptool(output: str) -> Chip | None:
    """The chip esptool's ``chip-id`` output names (its wording differs between v4 and v5)."""
    for match in CHIP_LINE.finditer(output):
        label = match.group(1)
        for chip in CHIPS.values():
            if chip.label == label:
                return chip
    return None


def detect_chip(port: str, timeout_s: float = 30.0) -> Chip:
    problem = port_problem(port)
    if problem:
        raise ToolError(problem)
    command = [*esptool_command(), "--port", port, "--connect-attempts", "2", "chip-id"]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise ToolError(f"no ESP32 answered on {port} within {timeout_s:g} s: hold the BOOT button while "
                        "pressing EN (reset), then try again") from None
    output = result.stdout + result.stderr
    chip = chip_from_esptool(output)
    if chip is None:
        lines = [x.strip() for x in output.splitlines() if x.strip()]
        said = next((x for x in reversed(lines) if "error" in x.lower()), lines[-1] if lines else "no output")
        said = said.split("fatal error occurred: ", 1)[-1]
        raise ToolError(f"esptool found no ESP32 on {port} ({said}): hold the BOOT button while pressing "
                        "EN (reset), then try again")
    return chip


@dataclass(frozen=True)
class PreparePlan:
    chip: Chip
    image: Image
    commands: list[list[str]]

    def describe(self) -> str:
        return "\n".join(shlex.join(c) for c in self.commands)


def prepare_plan(port: str, image: Image, chip: Chip) -> PreparePlan:
    """Erase the whole flash (a file system of an earlier firmware would confuse the new one), then write
    the image at the chip's bootloader offset."""
    base = [*esptool_command(), "--chip", chip.name, "--port", port, "--baud", str(BAUD)]
    return PreparePlan(chip, image, [[*base, "erase-flash"],
                                     [*base, "write-flash", f"0x{chip.offset:x}", str(image.path)]])


def prepare(port: str, source: str, chip_name: str = "auto", dry_run: bool = False,
            downloads: Path | None = None, timeout_s: float = 300.0) -> PreparePlan:
    """Check the image (and, unless dry, the kit's chip), then erase and write; the plan either way."""
    if chip_name != "auto" and chip_name not in CHIPS:
        raise ToolError(f"--chip {chip_name}: use auto or one of {', '.join(CHIPS)}")
    with tempfile.TemporaryDirectory(prefix="lauks-image-") as scratch:
        image = inspect_image(fetch_image(source, downloads or Path(scratch)))
        if chip_name != "auto":
            chip = CHIPS[chip_name]
        elif dry_run:
            chip = image.chip  # nothing is connected to: the image says which chip it is for
        else:
            chip = detect_chip(port)
        if chip != image.chip:
            raise ToolError(f"{image.path} is MicroPython for the {image.chip.label}, but the kit is an "
                            f"{chip.label}: download the image from {download_page(chip)}")
        plan = prepare_plan(port, image, chip)
        if dry_run:
            return plan
        problem = port_problem(port)
        if problem:
            raise ToolError(problem)
        for command in plan.commands:
            try:
                result = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
            except subprocess.TimeoutExpired:
                raise ToolError(f"'{shlex.join(command)}' took longer than {timeout_s:g} s: unplug the kit, "
                                "plug it in again and run prepare again") from None
            if result.returncode != 0:
                tail = (result.stderr.strip() or result.stdout.strip()).splitlines()[-3:]
                raise ToolError(f"'{shlex.join(command)}' failed: {' / '.join(tail)} (hold BOOT while pressing "
                                "EN if it cannot connect)")
        return plan


# -- probe --------------------------------------------------------------------------------------------

def _standard_pins() -> dict[str, Any]:
    """The buses and pins of every standard kit (docs/firmware.md): what the probe looks at."""
    i2c, onewire, adc, uart = set(), set(), {}, set()
    for kit_type in KIT_TYPES:
        for s in sensors_for(kit_type):
            if "sda" in s:
                i2c.add((s["sda"], s["scl"]))
            elif s["type"] == "ds18b20":
                onewire.add(s["pin"])
            elif s["type"] in ("soil_moisture", "wind_vane", "battery"):
                adc[s["pin"]] = s["type"]
            elif "uart" in s:
                uart.add((s["uart"], s["tx"], s["rx"]))
    return {"i2c": sorted(i2c), "onewire": sorted(onewire), "adc": sorted(adc), "uart": sorted(uart)}


# Runs on the kit itself, which may hold bare MicroPython (no Lauks files yet): only built-in modules.
# It prints one line, PROBE_MARK and JSON; the host names what it found.
PROBE_MARK = "LAUKS-PROBE "
PROBE_SCRIPT = """\
import json, time, machine
PINS = %(pins)s
out = {"i2c": [], "onewire": [], "adc": [], "uart": [], "errors": []}
for sda, scl in PINS["i2c"]:
    try:
        bus = machine.SoftI2C(sda=machine.Pin(sda), scl=machine.Pin(scl), freq=100000)
        for a in bus.scan():
            chip = None
            if a in (0x76, 0x77):
                try:
                    chip = bus.readfrom_mem(a, 0xD0, 1)[0]
                except OSError:
                    pass
            out["i2c"].append([sda, scl, a, chip])
    except Exception as e:
        out["errors"].append("i2c %%d/%%d: %%r" %% (sda, scl, e))
for pin in PINS["onewire"]:
    try:
        import onewire
        ow = onewire.OneWire(machine.Pin(pin))
        roms = ow.scan()
        temps = {}
        try:
            import ds18x20
            ds = ds18x20.DS18X20(ow)
            ds.convert_temp()
            time.sleep_ms(750)
            for r in roms:
                temps[bytes(r).hex()] = ds.read_temp(r)
        except Exception:
            pass
        for r in roms:
            out["onewire"].append([pin, bytes(r).hex(), temps.get(bytes(r).hex())])
    except Exception as e:
        out["errors"].append("1-wire %%d: %%r" %% (pin, e))
for pin in PINS["adc"]:
    try:
        adc = machine.ADC(machine.Pin(pin))
        adc.atten(machine.ADC.ATTN_11DB)
        u16 = [adc.read_u16() for _ in range(16)]
        uv = [adc.read_uv() for _ in range(16)]
        out["adc"].append([pin, sum(u16) // 16, min(u16), max(u16), sum(uv) // 16])
    except Exception as e:
        out["errors"].append("adc %%d: %%r" %% (pin, e))
for number, tx, rx in PINS["uart"]:
    try:
        u = machine.UART(number, baudrate=9600, tx=tx, rx=rx, timeout=100)
        got = b""
        t0 = time.ticks_ms()
        while time.ticks_diff(time.ticks_ms(), t0) < 2500 and len(got) < 256:
            got += u.read() or b""
            time.sleep_ms(50)
        out["uart"].append([number, tx, rx, got.hex()])
    except Exception as e:
        out["errors"].append("uart %%d: %%r" %% (number, e))
print("%(mark)s" + json.dumps(out))
"""


def probe_script() -> str:
    return PROBE_SCRIPT % {"pins": json.dumps(_standard_pins()), "mark": PROBE_MARK}


class ProbeOutputError(ToolError):
    pass


def parse_probe_output(text: str) -> dict[str, Any]:
    """What the probe script found, from everything the kit printed; ProbeOutputError if it did not finish."""
    for line in text.splitlines():
        if line.startswith(PROBE_MARK):
            try:
                found = json.loads(line[len(PROBE_MARK):])
            except ValueError:
                break
            if isinstance(found, dict) and all(isinstance(found.get(k), list) for k in ("i2c", "onewire", "adc")):
                return found
            break
    tail = " / ".join(x.strip() for x in text.strip().splitlines()[-3:]) or "nothing"
    raise ProbeOutputError(f"the kit did not finish the probe (it printed: {tail})")


I2C_SENSORS = {0x23: "bh1750", 0x5C: "bh1750", 0x61: "scd30", 0x62: "scd4x"}
BME280_CHIP_ID, BMP280_CHIP_ID = 0x60, 0x58


@dataclass
class Proposal:
    kit_type: str
    sensors: list[dict[str, Any]]
    found: list[str] = field(default_factory=list)  # what the kit answered, one line each
    notes: list[str] = field(default_factory=list)  # what a person should check or do

    def describe(self) -> str:
        lines = ["found:"] + [f"  {x}" for x in self.found or ["nothing on the standard pins"]]
        if self.notes:
            lines += ["check:"] + [f"  {x}" for x in self.notes]
        lines += [f"proposed \"sensors\" for a {self.kit_type} kit (config.json):",
                  json.dumps(self.sensors, indent=2)]
        return "\n".join(lines)


def propose(found: dict[str, Any], kit_type: str | None = None, soil_dry: int | None = None,
            soil_wet: int | None = None) -> Proposal:
    """The sensors block of config.json from what the probe found: detected sensors with their addresses,
    ROM codes and readings; sensors no bus can see (reed switches) kept from the standard kit type."""
    use_device_code()
    from lauks_kit.drivers import SensorError
    from lauks_kit.drivers.ds18b20 import rom_ok
    from lauks_kit.drivers.pm import find_frame
    from lauks_kit.drivers.vane import direction

    sensors: list[dict[str, Any]] = []
    seen: list[str] = []
    notes: list[str] = []
    for sda, scl, address, chip in found.get("i2c", []):
        where = f"I2C 0x{address:02x} (SDA {sda}, SCL {scl})"
        if address in (0x76, 0x77):
            if chip == BME280_CHIP_ID:
                sensors.append({"type": "bme280", "sda": sda, "scl": scl, "address": address})
                seen.append(f"{where}: BME280 (temperature, humidity, pressure)")
            else:
                seen.append(f"{where}: chip id {chip!r}, not a BME280")
                notes.append(f"the chip at 0x{address:02x} is " + ("a BMP280 (no humidity): " if chip ==
                             BMP280_CHIP_ID else "not a BME280: ") + "Lauks reads BME280s, replace it")
        elif address in I2C_SENSORS:
            kind = I2C_SENSORS[address]
            entry: dict[str, Any] = {"type": kind, "sda": sda, "scl": scl}
            if kind == "bh1750":
                entry["address"] = address
            sensors.append(entry)
            seen.append(f"{where}: {kind.upper()}")
        else:
            seen.append(f"{where}: unknown device")
            notes.append(f"nothing Lauks knows answers at I2C 0x{address:02x}: it is left out")
    probes: dict[int, list[tuple[str, Any]]] = {}
    for pin, rom, celsius in found.get("onewire", []):
        if rom_ok(bytes.fromhex(rom)):
            probes.setdefault(pin, []).append((rom, celsius))
            seen.append(f"1-Wire pin {pin}: DS18B20 {rom}" + (f" reading {celsius:.1f} °C" if
                                                               isinstance(celsius, int | float) else ""))
        else:
            seen.append(f"1-Wire pin {pin}: {rom} is not a DS18B20 (or its ROM CRC is wrong: check the cable)")
    adc = {pin: (mean, low, high, uv) for pin, mean, low, high, uv in found.get("adc", [])}
    uart_bytes = {(n, tx, rx): bytes.fromhex(hexed) for n, tx, rx, hexed in found.get("uart", [])}
    pm: list[dict[str, Any]] = []
    for (number, tx, rx), data in uart_bytes.items():
        for kind in ("sds011", "pms5003"):
            try:
                find_frame(data, kind)
            except SensorError:
                continue
            pm.append({"type": kind, "uart": number, "tx": tx, "rx": rx})
            seen.append(f"UART{number} (TX {tx}, RX {rx}): {kind.upper()} data frames")
            break
    if kit_type is None:
        found_types = {s["type"] for s in sensors}
        kit_type = "weather" if found_types & {"bh1750", "bme280"} and not probes else "environment"
        notes.append(f"kit type guessed as {kit_type} from what was found: pass --type to choose")
    standard = sensors_for(kit_type)
    for s in standard:
        kind = s["type"]
        if kind in ("anemometer", "rain_gauge"):
            sensors.append(dict(s))
            notes.append(f"{kind} on pin {s['pin']} is a switch no bus can see: kept as in the standard kit")
        elif kind == "ds18b20":
            pin = s["pin"]
            roms = probes.get(pin, [])
            if not roms:
                notes.append(f"no DS18B20 answers on pin {pin}: check the probes and their 4.7 kΩ pull-up")
                continue
            quantities = [p["quantity"] for p in s["probes"]]
            chosen = [{"rom": rom, "quantity": quantities[i] if i < len(quantities) else quantities[-1]}
                      for i, (rom, _) in enumerate(roms)]
            sensors.append({"type": "ds18b20", "pin": pin, "probes": chosen})
            if len(chosen) > 1:
                notes.append("which DS18B20 measures what cannot be seen on the bus: hold one probe in your hand, "
                             "probe again, and give the warmer ROM the quantity it measures")
        elif kind in ("soil_moisture", "wind_vane", "battery"):
            reading = adc.get(s["pin"])
            if reading is None:
                notes.append(f"{kind}: pin {s['pin']} could not be read on this board")
                continue
            mean, low, high, uv = reading
            analog = _analog(kind, s, mean, low, high, uv, seen, notes, direction, SensorError, soil_dry, soil_wet)
            if analog is not None:
                sensors.append(analog)
        elif kind in ("sds011", "pms5003"):
            if pm:
                sensors.extend(pm)
            else:
                notes.append(f"no particulate sensor sends frames on UART{s['uart']} (TX {s['tx']}, RX {s['rx']}): "
                             "check its 5 V supply; it is left out")
    # detected sensors the standard kit does not list stay in: the kit reads what is wired to it
    return Proposal(kit_type, sensors, seen, notes)


def _analog(kind: str, standard: dict[str, Any], mean: int, low: int, high: int, uv: int, seen: list[str],
            notes: list[str], direction: Any, sensor_error: type[Exception], soil_dry: int | None,
            soil_wet: int | None) -> dict[str, Any] | None:
    pin = standard["pin"]
    at_rail = mean <= 64 or mean >= 65535 - 64
    if kind == "soil_moisture":
        seen.append(f"ADC pin {pin}: {mean} (of 65535)" + (" at the rail: no probe" if at_rail else ""))
        if at_rail:
            notes.append(f"the soil probe on pin {pin} reads {mean}: unplugged or shorted, it is left out")
            return None
        dry = soil_dry if soil_dry is not None else standard["dry"]
        wet = soil_wet if soil_wet is not None else standard["wet"]
        if soil_dry is None or soil_wet is None:
            notes.append(f"soil probe now reads {mean}: probe once with it in dry air and once in a glass of water, "
                         "then run again with --soil-dry N --soil-wet N (dry/wet below are placeholders)")
        if dry == wet:
            notes.append("soil dry and wet are equal: measure both again")
        return {"type": "soil_moisture", "pin": pin, "dry": dry, "wet": wet}
    if kind == "wind_vane":
        ratio = mean / 65535
        try:
            degrees = direction(ratio, standard["pullup"])
        except sensor_error:
            seen.append(f"ADC pin {pin}: {mean} (of 65535): no wind vane direction")
            notes.append(f"pin {pin} reads no wind-vane direction: no vane, or check its cable and 10 kΩ pull-up")
            return None
        seen.append(f"ADC pin {pin}: wind vane pointing {degrees:g}°")
        return dict(standard)
    volts = uv / 1e6 * standard["ratio"]
    if not 2.5 <= volts <= 4.5:
        seen.append(f"ADC pin {pin}: {volts:.2f} V through the divider: no battery")
        notes.append(f"pin {pin} reads {volts:.2f} V, not a LiPo through the divider: battery left out")
        return None
    seen.append(f"ADC pin {pin}: battery {volts:.2f} V")
    return dict(standard)


def probe(port: str, timeout_s: float = 30.0, mpremote: str | None = None) -> dict[str, Any]:
    """Run the probe script on the kit at ``port``; what it found, or ToolError within ``timeout_s``."""
    problem = port_problem(port)
    if problem:
        raise ToolError(problem)
    program = mpremote or mpremote_program()
    with tempfile.TemporaryDirectory(prefix="lauks-probe-") as scratch:
        script = Path(scratch) / "probe.py"
        script.write_text(probe_script())
        command = [program, "connect", port, "run", str(script)]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False,
                                    stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise ToolError(f"nothing answered on {port} within {timeout_s:g} s: is it a kit with MicroPython? "
                            "(a new ESP32 needs 'lauks kit prepare' first; close any other serial monitor)") from None
    output = result.stdout + result.stderr
    if result.returncode != 0 and PROBE_MARK not in result.stdout:
        tail = " / ".join(x.strip() for x in output.strip().splitlines()[-2:]) or f"exit {result.returncode}"
        raise ToolError(f"no MicroPython kit answered on {port} ({tail}): a new ESP32 needs 'lauks kit prepare' "
                        "first; close any other serial monitor")
    return parse_probe_output(result.stdout)



def write_sensors(config: Path, sensors: list[dict[str, Any]]) -> None:
    """Replace the sensors block of ``config`` (it holds the kit's password: 0600, atomically), after the
    firmware's own checks of the result."""
    from lauks.privatefile import write_private

    use_device_code()
    from lauks_kit.core.config import problems

    try:
        cfg = json.loads(config.read_text())
    except FileNotFoundError:
        raise ToolError(f"no config at {config}: write one with 'lauks kit add <site> <kit> --type ...'") from None
    except (OSError, ValueError) as e:
        raise ToolError(f"{config} cannot be read as JSON: {e}") from None
    if not isinstance(cfg, dict):
        raise ToolError(f"{config} does not hold a kit's config (one JSON object)")
    cfg["sensors"] = sensors
    found = problems(cfg)
    if found:
        raise ToolError(f"{config} would not start the kit with these sensors: " + "; ".join(found))
    write_private(config, json.dumps(cfg, indent=2) + "\n")
