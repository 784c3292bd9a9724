# Drivers built from config.json's "sensors", on any board (the ESP32 one or the simulator's).
from lauks_kit.drivers.analog import Battery, SoilMoisture
from lauks_kit.drivers.bh1750 import BH1750
from lauks_kit.drivers.bme280 import BME280
from lauks_kit.drivers.co2 import CO2
from lauks_kit.drivers.ds18b20 import DS18B20
from lauks_kit.drivers.pm import ParticulateMatter
from lauks_kit.drivers.pulses import RainCounter, WindCounter
from lauks_kit.drivers.vane import WindVane


def make_drivers(board, cfg):
    """One driver per entry of config.json's "sensors"; shared by this board and the simulator."""
    out = []
    for s in cfg["sensors"]:
        kind = s["type"]
        if kind == "bme280":
            out.append(BME280(board.i2c(s.get("sda", 21), s.get("scl", 22)), s.get("address", 0x76), board.sleep_ms))
        elif kind == "bh1750":
            out.append(BH1750(board.i2c(s.get("sda", 21), s.get("scl", 22)), s.get("address", 0x23), board.sleep_ms))
        elif kind == "anemometer":
            out.append(board.pulses(s.get("pin", 27), WindCounter(s.get("ms_per_hz", 0.667))))
        elif kind == "rain_gauge":
            out.append(board.pulses(s.get("pin", 26), RainCounter(s.get("mm_per_tip", 0.2794))))
        elif kind == "wind_vane":
            out.append(WindVane(board.adc(s.get("pin", 35)), s.get("pullup", 10000)))
        elif kind == "ds18b20":
            probes = [(bytes.fromhex(p["rom"]), p.get("quantity", "water_temperature")) for p in s.get("probes", [])]
            out.append(DS18B20(board.onewire(s.get("pin", 4)), probes, board.sleep_ms))
        elif kind == "soil_moisture":
            out.append(SoilMoisture(board.adc(s.get("pin", 34)), s.get("dry", 52000), s.get("wet", 21000)))
        elif kind in ("sds011", "pms5003"):
            out.append(ParticulateMatter(board.uart(s.get("uart", 2), s.get("tx", 17), s.get("rx", 16)), kind))
        elif kind in ("scd30", "scd4x"):
            out.append(CO2(board.i2c(s.get("sda", 21), s.get("scl", 22)), kind, board.sleep_ms))
        elif kind == "battery":
            out.append(Battery(board.adc(s.get("pin", 33)), s.get("ratio", 2.0)))
    return out
