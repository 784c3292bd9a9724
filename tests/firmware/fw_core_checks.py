# Checks of the firmware's pure core, written once and run twice: by pytest under CPython
# (test_fw_core.py) and under real MicroPython in Node (test_fw_micropython.py). MicroPython syntax only:
# no f-strings with format specs, no pathlib, no typing, plain asserts.
import os
import struct

from lauks_kit.core import message
from lauks_kit.core.backoff import Backoff
from lauks_kit.core.config import problems
from lauks_kit.core.crc import crc8_maxim, crc8_sensirion
from lauks_kit.core.record import SYNCED, Record, decode, encode
from lauks_kit.core.ring import Ring
from lauks_kit.core.schedule import missed_slots, next_sample_at, sleep_ms_until
from lauks_kit.drivers import SensorError, bme280
from lauks_kit.drivers.analog import battery_volts, soil_percent
from lauks_kit.drivers.bh1750 import lux
from lauks_kit.drivers.co2 import command, scd4x_measurement, scd30_measurement
from lauks_kit.drivers.ds18b20 import rom_ok, temperature
from lauks_kit.drivers.pm import find_frame, pms5003_frame, sds011_frame
from lauks_kit.drivers.pulses import RainCounter, WindCounter
from lauks_kit.drivers.vane import LADDER, direction, expected_ratio
from lauks_kit.net import mqtt_packets as P


def raises(fn, *args):
    try:
        fn(*args)
    except SensorError:
        return True
    return False


def fresh_dir(name):
    try:
        for entry in os.listdir(name):
            os.remove(name + "/" + entry)
        os.rmdir(name)
    except OSError:
        pass
    return name


# -- checksums --------------------------------------------------------------------------------------
def check_crc8_sensirion_matches_the_datasheet_example():
    assert crc8_sensirion(b"\xbe\xef") == 0x92


def check_crc8_maxim_matches_the_1wire_application_note_example():
    assert crc8_maxim(bytes([0x02, 0x1C, 0xB8, 0x01, 0, 0, 0])) == 0xA2


# -- BME280 -----------------------------------------------------------------------------------------
BMP_EXAMPLE = struct.pack("<HhhHhhhhhhhh", 27504, 26435, -1000, 36477, -10685, 3024, 2855, 140, -7, 15500, -14600,
                          6000)
HUM = bytes([0x6A, 0x01, 0x00, 0x13, 0x2A, 0x03, 0x1E])


def _cal():
    return bme280.parse_calibration(BMP_EXAMPLE, bytes([75]), HUM)


def check_bme280_temperature_and_pressure_match_the_datasheet_worked_example():
    cal = _cal()
    t100, t_fine = bme280.compensate_temperature(cal, 519888)
    assert t100 == 2508 and t_fine == 128422
    p = bme280.compensate_pressure(cal, 415148, t_fine) / 256
    assert abs(p - 100653.27) < 0.05, p  # the datasheet: 100653.27 Pa


def check_bme280_humidity_integer_formula_agrees_with_the_float_formula():
    cal = _cal()
    assert cal["H2"] == 362 and cal["H4"] == 314 and cal["H5"] == 50 and cal["H6"] == 30
    t_fine = 128422
    for adc_h in (20000, 27000, 32000, 40000):
        v = t_fine - 76800.0
        v = (adc_h - (cal["H4"] * 64.0 + cal["H5"] / 16384.0 * v)) * (
            cal["H2"] / 65536.0 * (1.0 + cal["H6"] / 67108864.0 * v * (1.0 + cal["H3"] / 67108864.0 * v)))
        v = v * (1.0 - cal["H1"] * v / 524288.0)
        v = 0.0 if v < 0 else 100.0 if v > 100 else v
        got = bme280.compensate_humidity(cal, adc_h, t_fine) / 1024
        assert abs(got - v) < 0.05, (adc_h, got, v)


def check_bme280_negative_humidity_trimming_is_sign_extended():
    cal = bme280.parse_calibration(BMP_EXAMPLE, bytes([0]), bytes([0, 0, 0, 0xFF, 0xFF, 0xFF, 0xF6]))
    assert cal["H4"] == -1 and cal["H5"] == -1 and cal["H6"] == -10


def check_bme280_skipped_measurement_is_an_error_not_a_value():
    assert raises(bme280.convert, _cal(), bytes([0x80, 0, 0, 0x80, 0, 0, 0x80, 0]))


def check_bme280_converts_data_registers_to_catalog_quantities():
    data = bytes([415148 >> 12, (415148 >> 4) & 0xFF, (415148 & 0xF) << 4,
                  519888 >> 12, (519888 >> 4) & 0xFF, (519888 & 0xF) << 4, 0x69, 0x78])
    out = bme280.convert(_cal(), data)
    assert out["temperature"] == 25.08 and abs(out["pressure"] - 1006.53) < 0.01
    assert 0 <= out["humidity"] <= 100


# -- other drivers ----------------------------------------------------------------------------------
def check_bh1750_count_divided_by_1_2_is_lux():
    assert lux(b"\x01\x90") == 333.3
    assert raises(lux, b"\x01")


def check_sds011_datasheet_frame_and_bad_checksum():
    frame = bytes([0xAA, 0xC0, 0xD4, 0x04, 0x3A, 0x0A, 0xA1, 0x60, 0x1D, 0xAB])
    assert sds011_frame(frame) == {"pm2_5": 123.6, "pm10": 261.8}
    assert raises(sds011_frame, frame[:8] + b"\x1e\xab")
    assert find_frame(b"\x00\xab" + frame + frame[:3], "sds011")["pm10"] == 261.8
    assert raises(find_frame, b"\xff" * 30, "sds011")


def _pms(pm1, pm25, pm10):
    words = [0] * 13
    words[3], words[4], words[5] = pm1, pm25, pm10
    body = b"\x42\x4d\x00\x1c" + struct.pack(">13H", *words)
    return body + struct.pack(">H", sum(body) & 0xFFFF)


def check_pms5003_frame_atmospheric_values_and_checksum():
    frame = _pms(3, 5, 9)
    assert pms5003_frame(frame) == {"pm1": 3.0, "pm2_5": 5.0, "pm10": 9.0}
    bad = frame[:31] + bytes([frame[31] ^ 1])
    assert raises(pms5003_frame, bad)
    assert find_frame(b"\x4d\x00" + frame, "pms5003")["pm2_5"] == 5.0


def _words(values):
    out = b""
    for w in values:
        pair = bytes([w >> 8, w & 0xFF])
        out += pair + bytes([crc8_sensirion(pair)])
    return out


def check_scd4x_datasheet_example_and_crc():
    data = _words([0x01F4, 0x6667, 0x5EB9])
    assert data == bytes([0x01, 0xF4, 0x33, 0x66, 0x67, 0xA2, 0x5E, 0xB9, 0x3C])
    out = scd4x_measurement(data)
    assert out["co2"] == 500.0 and abs(out["temperature"] - 25.0) < 0.01 and abs(out["humidity"] - 37.0) < 0.01
    assert raises(scd4x_measurement, data[:2] + b"\x00" + data[3:])
    assert command(0x0010, 0) == bytes([0x00, 0x10, 0x00, 0x00, 0x81])


def check_scd30_reads_three_big_endian_floats():
    raw = struct.unpack(">HHHHHH", struct.pack(">fff", 415.5, 21.25, 48.5))
    out = scd30_measurement(_words(raw))
    assert out == {"co2": 415.5, "temperature": 21.25, "humidity": 48.5}
    assert raises(scd30_measurement, b"\xff" * 18)


def _scratchpad(raw):
    pad = bytes([raw & 0xFF, (raw >> 8) & 0xFF, 0x4B, 0x46, 0x7F, 0xFF, 0x0C, 0x10])
    return pad + bytes([crc8_maxim(pad)])


def check_ds18b20_scratchpad_values_from_the_datasheet_table():
    assert temperature(_scratchpad(0x0191)) == 25.0625
    assert temperature(_scratchpad(0xFF5E)) == -10.125
    assert temperature(_scratchpad(0xFC90)) == -55.0
    assert raises(temperature, _scratchpad(0x0550))  # power-on value
    assert raises(temperature, b"\xff" * 9)  # nobody answered
    bad = bytearray(_scratchpad(0x0191))
    bad[0] ^= 0x04
    assert raises(temperature, bytes(bad))
    assert rom_ok(bytes([0x28, 1, 2, 3, 4, 5, 6]) + bytes([crc8_maxim(bytes([0x28, 1, 2, 3, 4, 5, 6]))]))


def check_wind_vane_maps_every_position_and_refuses_a_broken_cable():
    for degrees, ohms in LADDER:
        assert direction(expected_ratio(ohms)) == degrees
    assert raises(direction, 0.0) and raises(direction, 1.0)


def check_soil_moisture_two_point_calibration():
    assert soil_percent(52000, 52000, 21000) == 0.0
    assert soil_percent(21000, 52000, 21000) == 100.0
    assert soil_percent(36500, 52000, 21000) == 50.0
    assert soil_percent(60000, 52000, 21000) == 0.0
    assert raises(soil_percent, 100, 5, 5)
    assert battery_volts(1960000, 2.0) == 3.92


def check_anemometer_mean_gust_and_debounce():
    w = WindCounter(0.667)
    w.read_at(0)
    times = [i * 100 for i in range(600)]  # 10 Hz for 60 s
    times += [57000 + i * 50 + 25 for i in range(60)]  # a 3-second burst of +20 Hz in the last window
    times.append(57000 + 26)  # contact bounce, 1 ms after a pulse: ignored
    for t in sorted(times):
        w.pulse(t)
    out = w.read_at(60000)
    assert abs(out["wind_speed"] - 660 * 0.667 / 60) < 0.01
    assert out["wind_gust"] > out["wind_speed"]
    assert abs(out["wind_gust"] - 90 * 0.667 / 3) < 0.01
    assert w.read_at(120000)["wind_speed"] == 0


def check_rain_gauge_counts_tips_since_the_previous_sample():
    r = RainCounter()
    for t in (0, 1000, 1010, 5000):  # 1010 is bounce
        r.pulse(t)
    assert r.read_at(6000) == {"rain": 0.8382}
    assert r.read_at(7000) == {"rain": 0.0}


# -- backoff and schedule ---------------------------------------------------------------------------
def check_backoff_doubles_up_to_the_cap_with_jitter_and_resets():
    b = Backoff(1, 60, lambda: 0.999)
    ceilings = []
    for _ in range(9):
        ceilings.append(b.ceiling())
        wait = b.next()
        assert ceilings[-1] * 0.5 <= wait <= ceilings[-1]
    assert ceilings == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    b.reset()
    assert b.ceiling() == 1


def check_schedule_aligns_samples_to_the_interval():
    assert next_sample_at(125, 60) == 180
    assert next_sample_at(180, 60) == 240
    assert sleep_ms_until(100.5, 102) == 1500 and sleep_ms_until(103, 102) == 0
    assert missed_slots(0, 300, 60) == 4 and missed_slots(None, 5, 60) == 0


# -- records, ring and messages ---------------------------------------------------------------------
WEATHER = {"temperature": 17.13, "pressure": 1003.14, "humidity": 56.03, "light": 3028.3, "wind_speed": 2.43,
           "wind_gust": 5.1, "wind_direction": 225.0, "rain": 0.2794, "battery": 4.15, "rssi": -63}


def check_a_record_survives_the_round_trip_and_a_torn_one_is_refused():
    rec = Record(SYNCED, 7, 1795285242, 500, WEATHER)
    data = encode(rec)
    got, end = decode(data, 0)
    assert end == len(data) and got.secs == 1795285242 and got.ms == 500 and got.synced
    for name in WEATHER:
        assert got.values[name] == WEATHER[name], (name, got.values[name])
    assert decode(data[:-3], 0) == (None, -1)
    flipped = bytearray(data)
    flipped[14] ^= 0xFF
    assert decode(bytes(flipped), 0) == (None, -1)


def _rec(i):
    return Record(SYNCED, 1, 1795280000 + 60 * i, 0, {"temperature": float(i % 50), "battery": 4.0})


def check_ring_sends_oldest_first_and_forgets_only_after_ack():
    ring = Ring(fresh_dir("ring_a"), seg_records=4, max_segments=10)
    for i in range(10):
        ring.append(_rec(i))
    assert ring.buffered == 10
    first = ring.peek(3)
    assert [r.secs for r in first] == [1795280000, 1795280060, 1795280120]
    assert ring.peek(3)[0].secs == 1795280000  # peek is not a send
    ring.begin(5, 0, 3)
    ring.ack(3)
    assert ring.buffered == 7 and ring.peek(1)[0].secs == 1795280180
    ring.ack(4)  # crosses a segment: the finished one is deleted
    assert ring.buffered == 3
    assert sorted(n for n in os.listdir("ring_a") if n.endswith(".seg")) == ["00000001.seg", "00000002.seg"]


def check_ring_keeps_its_cursor_and_message_in_flight_across_a_reboot():
    ring = Ring(fresh_dir("ring_b"), seg_records=4, max_segments=10)
    for i in range(6):
        ring.append(_rec(i))
    ring.ack(2)
    ring.begin(9, 41, 3)  # power lost before the PUBACK of message (9, 41)
    again = Ring("ring_b", seg_records=4, max_segments=10)
    assert again.pending == [9, 41, 3]
    assert again.buffered == 4
    assert [r.secs for r in again.peek(3)] == [1795280120, 1795280180, 1795280240]
    again.append(_rec(6))
    assert again.buffered == 5


def check_full_ring_drops_the_oldest_and_counts_them():
    ring = Ring(fresh_dir("ring_c"), seg_records=4, max_segments=3)
    for i in range(20):
        ring.append(_rec(i))
    assert ring.dropped == 8 and ring.buffered == 12
    assert ring.peek(1)[0].secs == 1795280000 + 60 * 8
    assert Ring("ring_c", seg_records=4, max_segments=3).dropped == 8


def check_ring_after_a_torn_write_keeps_what_was_whole_and_writes_on():
    ring = Ring(fresh_dir("ring_d"), seg_records=10, max_segments=10)
    for i in range(3):
        ring.append(_rec(i))
    with open("ring_d/00000000.seg", "ab") as f:
        f.write(encode(_rec(3))[:7])  # the power went mid-write
    again = Ring("ring_d", seg_records=10, max_segments=10)
    assert again.buffered == 3
    again.append(_rec(4))
    assert [r.secs for r in again.peek(10)] == [1795280000, 1795280060, 1795280120, 1795280240]


def check_message_dates_samples_by_clock_state():
    clock = {"epoch": 3, "now": 946685000.0, "offset": None, "uptime": 200.0}
    synced = Record(SYNCED, 3, 1795285242, 0, {"temperature": 21.5})
    unsynced = Record(0, 3, 946684970, 0, {"temperature": 21.4})
    old_epoch = Record(0, 2, 946684900, 0, {"temperature": 21.3})
    assert message.sample_time(synced, clock) == ("t", 1795285242)
    assert message.sample_time(unsynced, clock) == ("age", 30)
    clock2 = dict(clock)
    clock2["offset"] = 848600000.0
    assert message.sample_time(unsynced, clock2) == ("t", 946684970 + 848600000)
    assert message.sample_time(old_epoch, clock)[0] == "age"


def check_status_and_config_messages():
    import json
    s = json.loads(message.status("online", "0.4.0", boot=3, interval_s=60, sensors=["bme280"], failed_sensors=[],
                                  buffered=5, dropped=0, awake_ms=None))
    assert s["v"] == 1 and s["state"] == "online" and s["buffered"] == 5 and "awake_ms" not in s
    assert message.parse_config(b'{"interval_s": 300}') == (300, None)
    assert message.parse_config(b'{"interval_s": 5}')[0] is None
    assert message.parse_config(b"nope")[0] is None
    assert message.parse_config(b'{"interval_s": true}')[0] is None


def check_config_problems_are_listed_in_words():
    good = {"site": "demo", "kit": "k01", "type": "weather", "wifi": [{"ssid": "x", "password": "y"}],
            "broker": {"host": "10.0.0.2", "port": 1883}, "interval_s": 60, "sensors": [{"type": "bme280"}]}
    assert problems(good) == []
    bad = {"site": "Demo!", "kit": "k01", "type": "boat", "wifi": [], "broker": {"port": 0}, "interval_s": 1,
           "sensors": [{"type": "laser"}]}
    found = problems(bad)
    assert len(found) == 6, found
    assert problems([1]) == ["config.json must hold one JSON object {...}"]


def check_mqtt_packets_encode_as_the_spec_says():
    assert P.remaining_length(0) == b"\x00" and P.remaining_length(127) == b"\x7f"
    assert P.remaining_length(321) == b"\xc1\x02" and P.remaining_length(16384) == b"\x80\x80\x01"
    c = P.connect("k1", 60, "demo.k1", "pw", "a/status", b"off")
    assert c[0] == 0x10 and c[2:10] == b"\x00\x04MQTT\x04\xee"
    pkt = P.publish("a/b", b"hi", 1, True, 0x1234)
    assert pkt[0] == 0x33 and pkt[1] == len(pkt) - 2
    assert P.parse_publish(pkt[0], pkt[2:]) == ("a/b", b"hi", 1, 0x1234, True)
    assert P.puback(0x1234) == b"\x40\x02\x12\x34"
    assert P.subscribe(1, "a/c") == b"\x82\x08\x00\x01\x00\x03a/c\x01"


def all_checks():
    g = globals()
    return [(name, g[name]) for name in sorted(g) if name.startswith("check_")]
