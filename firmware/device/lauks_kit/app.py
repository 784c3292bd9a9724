# The kit: sample on schedule into the flash ring, send the ring oldest first, report status.
# Everything hardware-specific comes from a board (board_esp32 on a kit, firmware/sim on a PC).
import json

from lauks_boot import Flash
from lauks_kit import VERSION
from lauks_kit.core import message
from lauks_kit.core.backoff import Backoff
from lauks_kit.core.config import ConfigError, load
from lauks_kit.core.record import SYNCED, Record
from lauks_kit.core.ring import Ring
from lauks_kit.core.schedule import next_sample_at, sleep_ms_until
from lauks_kit.core.state import next_boot, pack_rtc, unpack_rtc
from lauks_kit.drivers import SensorError
from lauks_kit.net.mqtt import Client, MQTTError
from lauks_kit.net.portal import Setup  # provision: the Wi-Fi setup access point

LED_BAD_CONFIG = (200, 200, 200, 200, 200, 1000)  # three short blinks, a pause: "fix config.json"


def _updates():
    """The update's code, loaded only when an offer or a trial needs it: some 15 KB of heap the other boots keep."""
    from lauks_kit.core import update
    return update


def journal_status(path):
    """The status message's "update" object from the update journal (lauks_boot.py keeps it), or None."""
    try:
        with open(path) as f:
            state = json.loads(f.read())
        out = {"version": state["version"], "state": state["state"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if state.get("reason"):
        out["reason"] = state["reason"][:120]
    return out


class Kit:
    def __init__(self, board, topic_root="lauks"):
        self.board = board
        self.topic_root = topic_root
        self.cfg = None
        self.drivers = []
        self.failed = []
        self.mqtt = None
        self.wifi_backoff = Backoff(2, 300, board.random)
        self.mqtt_backoff = Backoff(2, 300, board.random)
        self.next_net_try = 0
        self.status_dirty = True
        self.awake_ms = None
        self.setup = Setup(board)  # provision: opens Lauks-<kit> when no configured network joins
        self.fs = None
        self.update = None  # the status message's "update" object
        self.offer = None  # a verified offer, downloaded from the main loop (not inside an MQTT callback)
        self.retry = None  # (offer, ticks_ms) to try again after a download failed on the network

    # -- start ---------------------------------------------------------------------------------
    def start(self):
        """Load config and state; False (with a log line and an LED pattern) if the config is unusable."""
        b = self.board
        try:
            self.cfg = load(b.root + "/config.json")
        except ConfigError as e:
            b.log("config problem: %s" % e)
            b.led_pattern(LED_BAD_CONFIG)
            return False
        cfg = self.cfg
        self.site, self.kit = cfg["site"], cfg["kit"]
        base = "%s/v1/%s/%s/" % (self.topic_root, self.site, self.kit)
        self.topics = {k: base + k for k in ("readings", "status", "config", "rejected", "update")}
        self.fs = Flash(b.root)
        self.update = journal_status(b.root + "/update.json")
        saved = unpack_rtc(b.rtc_memory()) if b.woke_from_deep_sleep() else None
        if saved:
            self.boot, self.seq, self.epoch = saved["boot"], saved["seq"], saved["epoch"]
            self.offset, self.interval = saved["offset"], saved["interval"]
            self.epoch_start = saved["epoch_start"]
        else:
            self.boot = next_boot(b.root + "/state.json")
            self.seq, self.epoch, self.offset = 0, self.boot, None
            self.interval = cfg["interval_s"]
            self.epoch_start = b.time()
        self.ring = Ring(b.root + "/ring", cfg.get("ring_segment_samples", 60), cfg.get("ring_segments", 256))
        self.drivers = b.make_drivers(cfg)
        b.log("kit %s/%s boot %d, %d samples buffered" % (self.site, self.kit, self.boot, self.ring.buffered))
        return True

    def remember(self):
        """Keep boot, seq and clock in RTC memory before deep sleep."""
        self.board.set_rtc_memory(pack_rtc({
            "magic": "lauks1", "boot": self.boot, "seq": self.seq, "epoch": self.epoch, "offset": self.offset,
            "interval": self.interval, "epoch_start": self.epoch_start}))

    # -- sampling ------------------------------------------------------------------------------
    def clock(self):
        now = self.board.time()
        return {"epoch": self.epoch, "now": now, "offset": self.offset, "uptime": now - self.epoch_start}

    def sample(self):
        b = self.board
        b.pump()
        values, failed = {}, []
        for driver in self.drivers:
            try:
                if hasattr(driver, "read_at"):
                    values.update(driver.read_at(b.ticks_ms()))
                else:
                    values.update(driver.read())
            except SensorError as e:
                failed.append(driver.name)
                b.log(str(e))
            except Exception as e:  # a driver bug must not stop the kit either
                failed.append(driver.name)
                b.log("%s: %r" % (driver.name, e))
            b.wdt_feed()
        rssi = b.rssi()
        if rssi is not None:
            values["rssi"] = rssi
        if failed != self.failed:
            self.failed, self.status_dirty = failed, True
        now = b.time()
        secs, ms = int(now), int((now - int(now)) * 1000)
        flags = SYNCED if self.offset is not None else 0
        if values:
            self.ring.append(Record(flags, self.epoch, secs, ms, values))
        self.battery = values.get("battery")
        return values

    # -- network -------------------------------------------------------------------------------
    def network_up(self):
        """Wi-Fi, clock, MQTT, each with its own backoff; True when readings can be sent."""
        b = self.board
        if self.mqtt is not None and self.mqtt.connected and b.wifi_connected():
            return True
        if self.setup.step(self):  # provision: the setup page joined a network; go on with it at once
            self.wifi_backoff.reset()
            self.next_net_try = 0
        if b.ticks_ms() < self.next_net_try:
            return False
        if not b.wifi_connected():
            if not b.wifi_connect(self.cfg["wifi"]):
                self.next_net_try = b.ticks_ms() + int(self.wifi_backoff.next() * 1000)
                return False
            self.wifi_backoff.reset()
        if self.offset is None:
            before = b.time()
            if b.ntp_sync():
                self.offset = b.time() - before
                b.log("clock set by NTP")
        try:
            self.connect_mqtt()
        except (OSError, MQTTError) as e:
            b.log("mqtt: %s" % e)
            if self.mqtt:
                self.mqtt.close()
            self.next_net_try = b.ticks_ms() + int(self.mqtt_backoff.next() * 1000)
            return False
        self.mqtt_backoff.reset()
        return True

    def connect_mqtt(self):
        broker = self.cfg["broker"]
        b = self.board
        if self.mqtt is None:
            self.mqtt = Client(lambda: b.socket(broker["host"], broker["port"], broker.get("tls", False)),
                               "%s-%s" % (self.site, self.kit), 60, broker.get("username"),
                               broker.get("password"), self.topics["status"], message.OFFLINE, b.ticks_ms)
            self.mqtt.on_message = self.on_message
        self.mqtt.connect()
        self.mqtt.subscribe(self.topics["config"])
        self.mqtt.subscribe(self.topics["rejected"])
        try:
            self.mqtt.subscribe(self.topics["update"])
        except MQTTError as e:
            if not self.mqtt.connected:
                raise
            self.board.log("no updates over the air: %s" % e)  # an ACL without the update topic: go on
        self.status_dirty = True

    def on_message(self, topic, payload):
        if topic == self.topics["config"]:
            interval, problem = message.parse_config(payload)
            if problem:
                self.board.log("config message ignored: %s" % problem)
            elif interval != self.interval:
                self.board.log("interval now %d s" % interval)
                self.interval, self.status_dirty = interval, True
        elif topic == self.topics["rejected"]:
            self.board.log("gateway rejected: %s" % payload[:200])
        elif topic == self.topics["update"] and payload:  # empty: the offer was withdrawn
            if self.nothing_new(payload):
                return
            update = _updates()
            offer, problem = update.check_offer(payload, update.key_of(self.cfg))
            if offer is not None:
                self.offer, self.retry = offer, None
            else:
                self.board.log("update offer refused: %s" % problem)
                version = update.claimed_version(payload)
                if version is not None and not (self.update and self.update["state"] == "trial"):
                    self.update = {"version": version, "state": "failed", "reason": problem}
                    self.status_dirty = True

    # -- updates over the air ------------------------------------------------------------------
    def nothing_new(self, payload):
        """An offer of the version running, or of one that has rolled back here, or any during a trial: known
        without loading the update's code (the offer stays retained, so it comes at every connection)."""
        try:
            version = json.loads(payload).get("version")
        except (ValueError, AttributeError):
            return False
        u = self.update
        return version == VERSION or (u is not None and (u["state"] == "trial" or (
            u["version"] == version and u["state"] == "rolled_back")))

    def note_update(self, state, send=True):
        self.update, self.status_dirty = _updates().status_of(state), True
        if send and self.mqtt is not None and self.mqtt.connected:
            try:
                self.send_status()
            except (OSError, MQTTError) as e:
                self.board.log("status not sent: %s" % e)

    def maybe_update(self):
        if self.offer is None and self.retry is not None and self.board.ticks_ms() >= self.retry[1]:
            self.offer, self.retry = self.retry[0], None
        if self.offer is not None and self.mqtt is not None and self.mqtt.connected:
            offer, self.offer = self.offer, None
            if self.run_update(offer):
                self.board.log("update %s staged: restarting to switch to it" % offer["version"])
                self.board.reset()

    def run_update(self, offer):
        """Download and stage offer; True when it is staged (the caller resets to switch)."""
        from lauks_kit.net import http
        b, fs, update = self.board, self.fs, _updates()
        state = update.read_state(fs)
        action = update.decide(offer, state, VERSION)
        if action != "fetch":
            return action == "reset"
        state = update.begin(fs, state, offer, VERSION)
        self.note_update(state)

        def connect(host, port):
            return b.socket(host, port, False)

        try:
            data = http.get_bytes(connect, offer["url"] + "manifest.json", update.MAX_MANIFEST)
            manifest, problem = update.check_manifest(data, offer)
            if problem:
                return self.update_failed(state, problem, True)
            self.note_update(update.set_state(fs, state, "downloading"))
            todo = update.missing(fs, manifest)
            need = update.total_size({"files": todo}) + 16384
            if need > fs.free():
                return self.update_failed(state, "not enough flash: %d KB needed, %d KB free" % (
                    need // 1024, fs.free() // 1024), True)
            for entry in todo:
                part = update.Part(fs, entry)
                try:
                    http.get(connect, offer["url"] + "files/" + entry["path"], part.write)
                finally:
                    part.close()
                problem = part.finish()
                if problem:
                    return self.update_failed(state, problem, True)
                b.wdt_feed()
        except update.UpdateError as e:
            return self.update_failed(state, str(e), True)
        except OSError as e:  # the network or the server: kept files stay for the next try
            final = state.get("attempts", 1) >= update.MAX_ATTEMPTS
            if not final:
                self.retry = (offer, b.ticks_ms() + 120000 * state.get("attempts", 1))
            return self.update_failed(state, "download failed: %s" % e, final)
        self.note_update(update.stage(fs, state, data))
        return True

    def update_failed(self, state, reason, final):
        update = _updates()
        self.board.log("update %s failed: %s" % (state.get("version"), reason))
        if final:
            update.remove_tree(self.fs, update.NEXT)
        self.note_update(update.set_state(self.fs, state, "failed", reason, final))
        return False

    def send_status(self, state="online"):
        payload = message.status(
            state, VERSION, boot=self.boot, interval_s=self.interval,
            sensors=[d.name for d in self.drivers], failed_sensors=self.failed, battery=getattr(self, "battery", None),
            rssi=self.board.rssi(), buffered=self.ring.buffered, dropped=self.ring.dropped, awake_ms=self.awake_ms,
            update=self.update)
        self.mqtt.publish(self.topics["status"], payload, retain=True)
        self.status_dirty = False

    def flush(self):
        """Send the ring oldest first; each batch leaves the ring only after its PUBACK."""
        try:
            if self.status_dirty and self.update and self.update["state"] == "trial":
                self.send_status()  # first: a version on trial says so before it tries its first reading
            pending = self.ring.pending
            if pending:
                boot, seq, count = pending
                self._publish(boot, seq, self.ring.peek(count))
            while self.ring.buffered:
                records = self.ring.peek(message.MAX_SAMPLES)
                if not records:
                    break
                self.ring.begin(self.boot, self.seq, len(records))
                self.seq += 1
                self._publish(self.boot, self.seq - 1, records)
                self.board.wdt_feed()
            if self.status_dirty:
                self.send_status()
            self.mqtt.poll(0)
        except (OSError, MQTTError) as e:
            self.board.log("send interrupted: %s" % e)
            if self.mqtt:
                self.mqtt.close()

    def _publish(self, boot, seq, records):
        if records:
            payload = message.readings(self.kit, boot, seq, VERSION, records, self.clock())
            self.mqtt.publish(self.topics["readings"], payload)
            if self.update and self.update["state"] == "trial" and self.update["version"] == VERSION:
                self.board.log("update %s confirmed" % VERSION)  # the broker has a reading of this version
                update = _updates()
                self.note_update(update.confirm(self.fs, update.read_state(self.fs)), send=False)
        self.ring.ack(len(records))

    # -- the loop ------------------------------------------------------------------------------
    def wait_until(self, at_s):
        """Sleep until the kit's clock reads at_s, handling config messages and the network meanwhile."""
        b = self.board
        while True:
            b.wdt_feed()
            left = sleep_ms_until(b.time(), at_s)
            if left <= 0:
                return
            if self.mqtt is not None and self.mqtt.connected:
                try:
                    self.mqtt.poll(min(left, 1000) / 1000 / b.speed())
                except (OSError, MQTTError):
                    self.mqtt.close()
                if self.status_dirty and self.mqtt.connected:
                    self.flush()
                self.maybe_update()
            else:
                b.sleep_ms(min(left, 1000))
                if self.network_up():
                    self.flush()

    def cycle(self):
        started = self.board.ticks_ms()
        self.sample()
        if self.network_up():
            self.flush()
            self.maybe_update()
        self.awake_ms = self.board.ticks_ms() - started

    def run(self):
        """Forever: sample, send, wait (or deep sleep) until the next sample time."""
        if not self.start():
            while True:
                self.board.led_pattern(LED_BAD_CONFIG)
                self.board.sleep_ms(5000)
        while True:
            self.cycle()
            if self.cfg.get("deep_sleep"):
                if self.mqtt is not None and self.mqtt.connected:
                    try:
                        self.send_status("sleeping")
                    except (OSError, MQTTError):
                        pass
                    self.mqtt.disconnect()
                self.remember()
                self.board.deep_sleep(sleep_ms_until(self.board.time(), next_sample_at(self.board.time(),
                                                                                        self.interval)))
            self.wait_until(next_sample_at(self.board.time(), self.interval))
