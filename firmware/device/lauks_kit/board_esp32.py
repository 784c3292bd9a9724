# The ESP32 board: machine, network and time for the kit, and drivers built from config.json.
import os
import time

import machine
import network

from lauks_kit.drivers.factory import make_drivers


# MicroPython ports before 1.23 count time from 2000-01-01
EPOCH_OFFSET = 946684800 if time.gmtime(0)[0] == 2000 else 0


class Board:
    root = ""

    def __init__(self):
        self.wlan = network.WLAN(network.STA_IF)
        self.rtc = machine.RTC()
        self.wdt = machine.WDT(timeout=120000)
        self.led = machine.Pin(2, machine.Pin.OUT)
        self._i2c = {}

    # time
    def time(self):
        return time.time() + EPOCH_OFFSET

    def ticks_ms(self):
        return time.ticks_ms()

    def sleep_ms(self, ms):
        time.sleep_ms(ms)

    def speed(self):
        return 1

    def random(self):
        return (os.urandom(1)[0]) / 256

    def woke_from_deep_sleep(self):
        return machine.reset_cause() == machine.DEEPSLEEP_RESET

    def rtc_memory(self):
        return self.rtc.memory()

    def set_rtc_memory(self, data):
        self.rtc.memory(data)

    def deep_sleep(self, ms):
        machine.deepsleep(ms)

    def wdt_feed(self):
        self.wdt.feed()

    def log(self, text):
        print(text)

    def led_pattern(self, pattern):
        for i, ms in enumerate(pattern):
            self.led.value(1 - i % 2)
            time.sleep_ms(ms)
            self.wdt.feed()
        self.led.value(0)

    def pump(self):
        pass  # interrupts count the pulses on a real kit

    # network
    def wifi_connected(self):
        return self.wlan.isconnected()

    def wifi_connect(self, networks):
        self.wlan.active(True)
        for net in networks:
            self.wlan.connect(net["ssid"], net.get("password", ""))
            for _ in range(100):
                if self.wlan.isconnected():
                    return True
                time.sleep_ms(100)
                self.wdt.feed()
            self.wlan.disconnect()
        return False

    def rssi(self):
        try:
            return self.wlan.status("rssi") if self.wlan.isconnected() else None
        except OSError:
            return None

    def ntp_sync(self):
        try:
            import ntptime
            ntptime.settime()
            return True
        except (OSError, OverflowError, ImportError):
            return False

    def socket(self, host, port, tls):
        import socket
        addr = socket.getaddrinfo(host, port)[0][-1]
        sock = socket.socket()
        sock.settimeout(10)
        sock.connect(addr)
        if tls:
            import ssl
            if hasattr(ssl, "SSLContext"):  # MicroPython 1.23+
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                try:
                    with open("/ca.pem", "rb") as f:  # the school's CA (lauks tls), when flashed with the kit
                        ctx.load_verify_locations(cadata=f.read())
                except OSError:
                    ctx.verify_mode = ssl.CERT_NONE  # no CA on the kit: encrypted, not authenticated
                sock = ctx.wrap_socket(sock, server_hostname=host)
            else:
                sock = ssl.wrap_socket(sock, server_hostname=host)
        return sock

    # sensors
    def i2c(self, sda, scl):
        key = (sda, scl)
        if key not in self._i2c:
            self._i2c[key] = machine.SoftI2C(sda=machine.Pin(sda), scl=machine.Pin(scl), freq=100000)
        return self._i2c[key]

    def adc(self, pin):
        adc = machine.ADC(machine.Pin(pin))
        adc.atten(machine.ADC.ATTN_11DB)
        return adc

    def pulses(self, pin, counter):
        p = machine.Pin(pin, machine.Pin.IN, machine.Pin.PULL_UP)
        p.irq(trigger=machine.Pin.IRQ_FALLING, handler=lambda _: counter.pulse(time.ticks_ms()))
        return counter

    def make_drivers(self, cfg):
        return make_drivers(self, cfg)


def _onewire(self, pin):
    import onewire
    return onewire.OneWire(machine.Pin(pin))


def _uart(self, number, tx, rx):
    return machine.UART(number, baudrate=9600, tx=tx, rx=rx, timeout=1500)


Board.onewire = _onewire
Board.uart = _uart
