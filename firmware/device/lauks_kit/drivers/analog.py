# Analog sensors: capacitive soil moisture (two-point calibration) and battery voltage (divider).
from lauks_kit.drivers import SensorError


def soil_percent(raw, dry, wet):
    """0 % at the dry reading, 100 % at the wet one (capacitive probes read lower when wet), clamped."""
    if dry == wet:
        raise SensorError("soil moisture: calibration has dry == wet; measure both again")
    pct = (dry - raw) * 100 / (dry - wet)
    return round(0.0 if pct < 0 else 100.0 if pct > 100 else pct, 1)


class SoilMoisture:
    name = "soil_moisture"

    def __init__(self, adc, dry, wet):
        self.adc, self.dry, self.wet = adc, dry, wet

    def read(self):
        raw = self.adc.read_u16()
        if raw in (0, 65535):
            raise SensorError("soil moisture: ADC at the rail (%d): probe unplugged or shorted" % raw)
        return {"soil_moisture": soil_percent(raw, self.dry, self.wet)}


def battery_volts(microvolts, ratio):
    return round(microvolts * ratio / 1e6, 3)


class Battery:
    name = "battery"

    def __init__(self, adc, ratio=2.0):
        self.adc, self.ratio = adc, ratio  # ratio: (R1 + R2) / R2 of the divider

    def read(self):
        volts = battery_volts(self.adc.read_uv(), self.ratio)
        if not 0 <= volts <= 6:
            raise SensorError("battery: %.2f V is impossible: check the divider ratio" % volts)
        return {"battery": volts}
