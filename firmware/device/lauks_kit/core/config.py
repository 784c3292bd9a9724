# The kit's config.json: site, kit, Wi-Fi networks, broker, interval, sensors and pins, calibration.
# Checked at start so a bad file is reported clearly (serial log, LED pattern) instead of a crash loop.
import json

KIT_TYPES = ("weather", "environment")
SENSOR_TYPES = ("bme280", "bh1750", "anemometer", "wind_vane", "rain_gauge", "ds18b20", "soil_moisture",
                "sds011", "pms5003", "scd30", "scd4x", "battery")


class ConfigError(Exception):
    pass


def _id_ok(value):
    if not isinstance(value, str) or not 1 <= len(value) <= 32 or value[0] == "-":
        return False
    for ch in value:
        if not ("a" <= ch <= "z" or "0" <= ch <= "9" or ch == "-"):
            return False
    return True


def problems(cfg):
    """Every problem of a config dict, as sentences; an empty list when it is usable."""
    out = []
    if not isinstance(cfg, dict):
        return ["config.json must hold one JSON object {...}"]
    for key in ("site", "kit"):
        if not _id_ok(cfg.get(key)):
            out.append("'%s' must be 1-32 of a-z, 0-9 and '-' (got %r)" % (key, cfg.get(key)))
    if cfg.get("type") not in KIT_TYPES:
        out.append("'type' must be weather or environment (got %r)" % (cfg.get("type"),))
    wifi = cfg.get("wifi")
    if not isinstance(wifi, list) or not wifi:
        out.append("'wifi' must be a list of networks, each {\"ssid\": ..., \"password\": ...}")
    else:
        for i, net in enumerate(wifi):
            if not isinstance(net, dict) or not isinstance(net.get("ssid"), str) or not net.get("ssid"):
                out.append("wifi network %d has no 'ssid'" % i)
    broker = cfg.get("broker")
    if not isinstance(broker, dict) or not isinstance(broker.get("host"), str) or not broker.get("host"):
        out.append("'broker' must be an object with at least 'host'")
    else:
        port = broker.get("port", 1883)
        if not isinstance(port, int) or not 0 < port < 65536:
            out.append("broker 'port' must be a number from 1 to 65535")
    interval = cfg.get("interval_s", 60)
    if not isinstance(interval, int) or not 10 <= interval <= 86400:
        out.append("'interval_s' must be a whole number of seconds from 10 to 86400")
    sensors = cfg.get("sensors", [])
    if not isinstance(sensors, list):
        out.append("'sensors' must be a list")
    else:
        for i, sensor in enumerate(sensors):
            if not isinstance(sensor, dict) or sensor.get("type") not in SENSOR_TYPES:
                out.append("sensor %d: 'type' must be one of %s" % (i, ", ".join(SENSOR_TYPES)))
    return out


def load(path):
    """The checked config from a file; ConfigError with every problem if it is missing or wrong."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        raise ConfigError("no %s on the kit: create it with 'lauks kit add' and flash it" % path)
    try:
        cfg = json.loads(text)
    except ValueError:
        raise ConfigError("%s is not valid JSON" % path)
    found = problems(cfg)
    if found:
        raise ConfigError("; ".join(found))
    cfg.setdefault("interval_s", 60)
    cfg.setdefault("sensors", [])
    cfg.setdefault("deep_sleep", False)
    cfg["broker"].setdefault("port", 1883)
    return cfg
