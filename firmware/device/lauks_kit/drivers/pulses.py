# Pulse-counting sensors: cup anemometer (speed and 3-second gust) and tipping-bucket rain gauge.
# The counters are pure; an interrupt handler (or the simulator) calls pulse(ticks_ms).

GUST_WINDOW_MS = 3000  # WMO: a gust is the highest 3-second mean


class WindCounter:
    name = "anemometer"

    def __init__(self, ms_per_hz=0.667, debounce_ms=5):
        self.factor = ms_per_hz  # metres per second for one pulse per second (0.667: 2.4 km/h per Hz)
        self.debounce_ms = debounce_ms
        self.reset(None)

    def reset(self, now_ms):
        self.count = 0
        self.last_ms = None
        self.start_ms = now_ms
        self.window = None
        self.window_count = 0
        self.best_window = 0

    def pulse(self, ticks_ms):
        if self.last_ms is not None and ticks_ms - self.last_ms < self.debounce_ms:
            return  # contact bounce
        self.last_ms = ticks_ms
        self.count += 1
        window = ticks_ms // GUST_WINDOW_MS
        if window != self.window:
            self.window, self.window_count = window, 0
        self.window_count += 1
        if self.window_count > self.best_window:
            self.best_window = self.window_count

    def read_at(self, now_ms):
        """Mean speed and gust since the previous read, in m/s; starts the next interval."""
        if self.start_ms is None:
            self.reset(now_ms)
            return {}
        seconds = (now_ms - self.start_ms) / 1000
        if seconds <= 0:
            return {}
        speed = self.count * self.factor / seconds
        gust = self.best_window * self.factor / (GUST_WINDOW_MS / 1000)
        if gust < speed:
            gust = speed
        self.reset(now_ms)
        return {"wind_speed": round(speed, 2), "wind_gust": round(gust, 2)}


class RainCounter:
    name = "rain_gauge"

    def __init__(self, mm_per_tip=0.2794, debounce_ms=50):
        self.mm_per_tip, self.debounce_ms = mm_per_tip, debounce_ms
        self.tips, self.last_ms = 0, None

    def pulse(self, ticks_ms):
        if self.last_ms is not None and ticks_ms - self.last_ms < self.debounce_ms:
            return
        self.last_ms = ticks_ms
        self.tips += 1

    def read_at(self, now_ms):
        """Rain in mm since the previous read."""
        mm = self.tips * self.mm_per_tip
        self.tips = 0
        return {"rain": round(mm, 4)}
