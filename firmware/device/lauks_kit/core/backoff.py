# Capped exponential backoff with full jitter, for Wi-Fi and MQTT reconnects.


class Backoff:
    def __init__(self, base_s=1.0, cap_s=300.0, rand=None):
        self.base_s = base_s
        self.cap_s = cap_s
        self.attempt = 0
        self._rand = rand  # a function returning a float in [0, 1); None = the midpoint, for tests

    def ceiling(self):
        """The longest wait of the current attempt: base * 2**attempt, at most cap."""
        if self.attempt >= 30:
            return self.cap_s
        return min(self.cap_s, self.base_s * (1 << self.attempt))

    def next(self):
        """Seconds to wait before the next try; each call doubles the ceiling up to the cap."""
        top = self.ceiling()
        self.attempt += 1
        fraction = self._rand() if self._rand else 0.5
        # never 0: half the ceiling at least, so a flapping link cannot make the kit spin
        return top * (0.5 + fraction / 2)

    def reset(self):
        self.attempt = 0
