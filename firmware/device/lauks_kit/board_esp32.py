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

    def reset(self):
        machine.reset()  # to switch to a staged update: lauks_boot does it before the firmware starts

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

    # -- provision: the Wi-Fi setup access point (lauks_kit/net/portal.py) ----------------------
    def ap_available(self):
        return True

    def wifi_scan(self):
        self.wlan.active(True)
        out = []
        try:
            found = self.wlan.scan()
        except OSError:
            return out
        for ssid, _bssid, _channel, rssi, authmode, hidden in found:
            try:
                name = ssid.decode()
            except UnicodeError:
                continue  # a name that is not text cannot be chosen on the page
            if name and not hidden:
                out.append((name, rssi, authmode != 0))
        return out

    def wifi_try(self, ssid, password):
        """joined, wrong_password, not_found or no_answer within 15 s."""
        self.wlan.active(True)
        self.wlan.disconnect()  # a connect while the station still tries another network is refused
        self.wlan.connect(ssid, password)
        wrong = (getattr(network, "STAT_WRONG_PASSWORD", -1), getattr(network, "STAT_HANDSHAKE_TIMEOUT", -1))
        for _ in range(150):
            if self.wlan.isconnected():
                return "joined"
            status = self.wlan.status()
            if status in wrong:
                self.wlan.disconnect()
                return "wrong_password"
            if status == getattr(network, "STAT_NO_AP_FOUND", -1):
                self.wlan.disconnect()
                return "not_found"
            time.sleep_ms(100)
            self.wdt.feed()
        self.wlan.disconnect()
        return "no_answer"

    def button_held(self, pin=0):
        """The BOOT button (GPIO 0) held within 3 s of start; held at power-on it would start the ROM
        loader instead, so: press EN, release, then hold BOOT while the LED blinks fast."""
        if self.woke_from_deep_sleep():
            return False
        button = machine.Pin(pin, machine.Pin.IN, machine.Pin.PULL_UP)
        for i in range(30):
            self.led.value(i % 2)
            if button.value() == 0:
                self.led.value(0)
                return True
            time.sleep_ms(100)
            self.wdt.feed()
        self.led.value(0)
        return False

    def ap_open(self, essid):
        import socket
        self.ap = network.WLAN(network.AP_IF)
        self.ap.active(True)
        self.ap.config(essid=essid, authmode=network.AUTH_OPEN)  # the page is at http://192.168.4.1/
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(socket.getaddrinfo("0.0.0.0", 80)[0][-1])
        server.listen(2)
        return server

    def ap_close(self):
        ap = getattr(self, "ap", None)
        if ap is not None:
            ap.active(False)

    def ap_poll_s(self):
        return 0.2

    def led_steady(self, on):
        self.led.value(1 if on else 0)
    # -- end of provision ------------------------------------------------------------------------

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
