# Wind vane: a resistor ladder read through a divider on an ADC; the nearest of 16 directions wins.
from lauks_kit.drivers import SensorError

# degrees and the vane's resistance in ohms at each of its 16 positions (SparkFun/Argent 80422 sheet)
LADDER = ((0.0, 33000), (22.5, 6570), (45.0, 8200), (67.5, 891), (90.0, 1000), (112.5, 688),
          (135.0, 2200), (157.5, 1410), (180.0, 3900), (202.5, 3140), (225.0, 16000), (247.5, 14120),
          (270.0, 120000), (292.5, 42120), (315.0, 64900), (337.5, 21880))


def expected_ratio(ohms, pullup=10000):
    return ohms / (ohms + pullup)


def direction(ratio, pullup=10000, tolerance=0.04):
    """Degrees for an ADC reading given as a fraction of full scale; SensorError if it fits no position."""
    best, best_gap = None, 2.0
    for degrees, ohms in LADDER:
        gap = abs(expected_ratio(ohms, pullup) - ratio)
        if gap < best_gap:
            best, best_gap = degrees, gap
    if best_gap > tolerance:
        raise SensorError("wind vane: reading %.3f of full scale matches no direction: check the cable" % ratio)
    return best


class WindVane:
    name = "wind_vane"

    def __init__(self, adc, pullup=10000, full_scale=65535):
        self.adc, self.pullup, self.full_scale = adc, pullup, full_scale

    def read(self):
        return {"wind_direction": direction(self.adc.read_u16() / self.full_scale, self.pullup)}
