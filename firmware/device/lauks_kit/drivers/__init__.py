# Sensor drivers: one module each; read() returns a dict of catalog quantities or raises SensorError.


class SensorError(Exception):
    """A sensor answered nothing, garbage, or a failed checksum; the kit reports it and goes on."""
