"""The simulated outdoors and its clock: plausible weather signals as functions of time.

A daily temperature curve, humidity that moves against it, pressure that drifts, daylight, gusty wind,
showers with rain, a slowly draining battery; each kit a little different (its ``seed``).
The world clock may run faster than real time but never ahead of it, so a kit's ``t`` is never in
the gateway's future: a sped-up world starts in the past and catches up.
"""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Clock:
    speedup: float = 1.0
    start_ago_s: float = 0.0
    real_start: float = field(default_factory=time.time)

    def now(self) -> float:
        """World Unix time: start_ago behind real time, running speedup times faster, capped at real now."""
        real = time.time()
        world = self.real_start - self.start_ago_s + (real - self.real_start) * self.speedup
        return min(world, real)

    def speed(self) -> float:
        """How many world seconds pass in one real second right now."""
        real = time.time()
        world = self.real_start - self.start_ago_s + (real - self.real_start) * self.speedup
        return self.speedup if world < real else 1.0

    def sleep(self, world_seconds: float, stop: threading.Event) -> None:
        """Sleep until the world clock has moved world_seconds on (or stop is set)."""
        target = self.now() + world_seconds
        while not stop.is_set():
            left = target - self.now()
            if left <= 0:
                return
            stop.wait(min(left / self.speed(), 0.5))


def _smooth_noise(seed: int, t: float, period: float) -> float:
    """A smooth value in about [-1, 1] varying over ``period`` seconds (sum of two sines)."""
    a = math.sin(2 * math.pi * t / period + seed * 1.7)
    b = math.sin(2 * math.pi * t / (period * 0.37) + seed * 0.3)
    return 0.7 * a + 0.3 * b


@dataclass
class Weather:
    seed: int = 0

    def temperature(self, t: float) -> float:
        hour = (t % 86400) / 3600
        return 11 + 7 * math.sin(2 * math.pi * (hour - 9) / 24) + 1.5 * _smooth_noise(self.seed, t, 7200)

    def humidity(self, t: float) -> float:
        return max(5.0, min(100.0, 72 - 2.6 * (self.temperature(t) - 11) + 12 * self.raining(t)))

    def pressure(self, t: float) -> float:
        return 1009 + 8 * _smooth_noise(self.seed + 5, t, 3 * 86400)

    def light(self, t: float) -> float:
        hour = (t % 86400) / 3600
        sun = math.sin(math.pi * (hour - 6) / 12) if 6 < hour < 18 else 0.0
        cloud = 0.55 + 0.45 * _smooth_noise(self.seed + 9, t, 5400)
        return max(0.0, 65000 * sun * cloud * (0.3 if self.raining(t) else 1.0))

    def raining(self, t: float) -> float:
        """Showers: about one hour in six, each some tens of minutes."""
        return 1.0 if _smooth_noise(self.seed + 3, t, 6 * 3600) > 0.75 else 0.0

    def rain_rate_mm_h(self, t: float) -> float:
        return 4.0 * self.raining(t)

    def wind_mean(self, t: float) -> float:
        return max(0.0, 3.5 + 2.5 * _smooth_noise(self.seed + 11, t, 4 * 3600))

    def wind_direction(self, t: float) -> float:
        return (225 + 60 * _smooth_noise(self.seed + 13, t, 8 * 3600)) % 360

    def battery(self, t: float, since: float) -> float:
        return max(3.3, 4.15 - 0.004 * (t - since) / 3600)

    def water_temperature(self, t: float) -> float:
        return 9 + 2 * math.sin(2 * math.pi * ((t % 86400) / 3600 - 14) / 24)

    def soil_temperature(self, t: float) -> float:
        return 8 + 3 * math.sin(2 * math.pi * ((t % 86400) / 3600 - 15) / 24)

    def soil_moisture(self, t: float) -> float:
        return 35 + 10 * _smooth_noise(self.seed + 17, t, 2 * 86400) + 15 * self.raining(t)

    def pm2_5(self, t: float) -> float:
        return max(0.5, 8 + 6 * _smooth_noise(self.seed + 19, t, 3 * 3600))

    def co2(self, t: float) -> float:
        return 420 + 30 * _smooth_noise(self.seed + 23, t, 86400)

    def wind_pulses(self, start: float, end: float, ms_per_hz: float, rng: random.Random) -> list[float]:
        """Anemometer pulse times (world seconds) in [start, end): gusts every few seconds."""
        times: list[float] = []
        t = start
        while t < end and len(times) < 200_000:
            speed = self.wind_mean(t) * (1 + 0.5 * max(0.0, rng.gauss(0, 0.6)))
            hz = speed / ms_per_hz
            step = 1 / hz if hz > 0.05 else 20.0
            t += step
            if t < end:
                times.append(t)
        return times

    def rain_tips(self, start: float, end: float, mm_per_tip: float) -> int:
        mm = 0.0
        step = 60.0
        t = start
        while t < end:
            mm += self.rain_rate_mm_h(t) * min(step, end - t) / 3600
            t += step
        return int(mm / mm_per_tip + 0.5)
