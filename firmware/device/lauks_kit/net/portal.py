# The Wi-Fi setup access point Lauks-<kit>: opened when the kit cannot join any configured network for a
# few minutes, or when its button is held at boot. Its page (core/portal_page.py) lists the scan; the
# chosen network is tried, saved into config.json (temp file, then rename) and the access point closes.
# The board gives the radio: wifi_scan, wifi_try, ap_open (a listening socket), ap_close, button_held.
import json
import os

from lauks_kit.core import portal_page as page

LED_SETUP = (1000, 300, 1000, 300, 1000, 300)  # three long blinks, then lit while the access point is open
LED_JOINED = (100, 100, 100, 100, 100, 100, 100, 100, 100, 100)  # five quick blinks: a network was saved


def save_config(path, cfg):
    """Replace config.json with cfg: the old file or the new one after a crash, never a torn one.
    LittleFS (the ESP32's file system) renames atomically over an existing file; under CPython the
    file and its folder are fsynced too."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        chmod = getattr(os, "chmod", None)  # it holds the broker password: a simulated kit's is its owner's alone
        if chmod is not None:
            chmod(tmp, 0o600)
        f.write(json.dumps(cfg))
        f.flush()
        _fsync(f)
    os.rename(tmp, path)
    _fsync_dir(path)


def _fsync(f):
    sync = getattr(os, "fsync", None)  # MicroPython has none: LittleFS commits the file on close
    if sync is not None:
        sync(f.fileno())


def _fsync_dir(path):
    sync, opener = getattr(os, "fsync", None), getattr(os, "open", None)
    if sync is None or opener is None:
        return
    folder = path.rsplit("/", 1)[0] if "/" in path else "."
    fd = opener(folder or "/", getattr(os, "O_RDONLY", 0))
    try:
        sync(fd)
    finally:
        os.close(fd)


class Setup:
    """The access point and its page, stepped from the kit's network loop (never blocking it long)."""

    def __init__(self, board):
        self.board = board
        self.button = None  # read once, at the first step after boot
        self.failing_since = None
        self.server = None
        self.scan = []
        self.attempts = 0  # join attempts made on the page (for the log and the tests)
        self.opened_by_button = False
        self.opened_at = 0

    @property
    def open(self):
        return self.server is not None

    def step(self, kit):
        """Open, serve or close the access point; True once the page has joined and saved a network."""
        b = self.board
        available = getattr(b, "ap_available", None)
        if available is None or not available():
            return False  # a board without an access point
        if self.button is None:
            self.button = bool(b.button_held())
            if self.button:
                b.log("button held at boot: opening the Wi-Fi setup access point")
        now = b.ticks_ms()
        if self.server is not None and self.opened_by_button:
            # a teacher asked for the page: the kit stays off its old networks until a join or time runs out
            if now - self.opened_at >= page.AP_BUTTON_MS:
                b.log("no network chosen on the setup page: closing it")
                self.close()
                return False
            return self.serve_holding(kit)
        if b.wifi_connected():
            self.failing_since = None
            if self.server is not None:
                b.log("Wi-Fi is back: closing the setup access point")
                self.close()
            return False
        if self.failing_since is None:
            self.failing_since = now
        if self.server is None:
            if not page.should_open(self.button, self.failing_since, now):
                return False
            self.opened_by_button, self.opened_at = bool(self.button), now
            try:
                self.start(kit)
            except OSError as e:  # the radio refused: the kit goes on, and tries again in a few minutes
                b.log("setup access point not opened: %s" % e)
                self.server, self.button, self.failing_since = None, False, now
                return False
            if self.opened_by_button:
                return self.serve_holding(kit)
        return self.serve(kit, b.ap_poll_s())

    def serve_holding(self, kit):
        """Serve, keeping the kit's own tries of its networks off (they would pull the radio away)."""
        joined = self.serve(kit, self.board.ap_poll_s())
        if not joined:
            kit.next_net_try = max(kit.next_net_try, self.board.ticks_ms() + 60000)
        return joined

    def start(self, kit):
        b = self.board
        name = page.ap_name(kit.kit)
        self.scan = list(b.wifi_scan())
        self.server = b.ap_open(name)
        b.log("Wi-Fi setup access point %s open (%d networks in sight)" % (name, len(self.scan)))
        b.led_pattern(LED_SETUP)
        b.led_steady(True)

    def close(self):
        b = self.board
        try:
            self.server.close()
        except (OSError, AttributeError):
            pass
        self.server = None
        b.ap_close()
        b.led_steady(False)
        self.button = False  # the held button opened it once; a join or returning Wi-Fi closes it for good

    def serve(self, kit, timeout_s):
        """Answer the requests waiting now (up to a few); True when one of them joined a network."""
        for _ in range(4):
            self.server.settimeout(timeout_s)
            try:
                conn, _ = self.server.accept()
            except OSError:
                return False  # no one is asking
            try:
                conn.settimeout(5)
                joined = self.handle(kit, conn)
            except OSError as e:
                self.board.log("setup page: %s" % e)
                joined = False
            finally:
                try:
                    conn.close()
                except OSError:
                    pass
            if joined:
                self.close()
                return True
            timeout_s = 0.01
        return False

    def handle(self, kit, conn):
        """One request, one answer; True if it joined and saved a network."""
        head, body = _read_request(conn)
        lang = "en"
        try:
            if head is None:
                raise page.FormError("bad_form")
            method, path, query, headers = page.parse_head(head)
            lang = page.pick_language(headers.get("accept-language"), query.get("lang"))
            if method == "GET":
                if query.get("scan"):
                    self.scan = list(self.board.wifi_scan())
                _send(conn, page.response(200, page.render(lang, kit.kit, self.scan)))
                return False
            if method != "POST" or path != "/join":
                _send(conn, page.response(405, page.render(lang, kit.kit, self.scan, "bad_form")))
                return False
            length = page.body_length(headers)
            body = _read_body(conn, body, length)
            ssid, password, form_lang = page.parse_join(body)
            lang = page.pick_language(headers.get("accept-language"), form_lang or query.get("lang"))
        except page.FormError as e:
            _send(conn, page.response(e.status(), page.render(lang, kit.kit, self.scan, e.args[0])))
            return False
        return self.join(kit, conn, lang, ssid, password)

    def join(self, kit, conn, lang, ssid, password):
        b = self.board
        self.attempts += 1
        result = b.wifi_try(ssid, password)
        b.log("setup page: joining %r: %s" % (ssid, result))
        if result != "joined":
            if result == "not_found":
                self.scan = list(b.wifi_scan())
            notice = page.JOIN_NOTICE.get(result, "no_answer")
            _send(conn, page.response(200, page.render(lang, kit.kit, self.scan, notice, {"ssid": ssid},
                                                       chosen=ssid)))
            return False
        new = page.with_network(_read_config(b.root + "/config.json", kit.cfg), ssid, password)
        try:
            save_config(b.root + "/config.json", new)
        except OSError as e:
            b.log("setup page: config.json not saved: %s" % e)
            _send(conn, page.response(200, page.render(lang, kit.kit, self.scan, "save_failed", {"ssid": ssid})))
            return False
        kit.cfg["wifi"] = new["wifi"]
        _send(conn, page.response(200, page.render(lang, kit.kit, self.scan, "joined", {"ssid": ssid}, ok=True)))
        b.led_pattern(LED_JOINED)
        return True


def _read_config(path, fallback):
    """The config as it is on flash (the kit's copy may hold defaults filled in at load)."""
    try:
        with open(path) as f:
            cfg = json.loads(f.read())
        if isinstance(cfg, dict):
            return cfg
    except (OSError, ValueError):
        pass
    return dict(fallback)


def _read_request(conn):
    """(head bytes, the body bytes read with it), or (None, b"") for a head too long or cut off."""
    data = b""
    while b"\r\n\r\n" not in data:
        if len(data) > page.MAX_HEAD:
            return None, b""
        chunk = conn.recv(512)
        if not chunk:
            return None, b""
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _read_body(conn, body, length):
    while len(body) < length:
        chunk = conn.recv(min(512, length - len(body)))
        if not chunk:
            break
        body += chunk
    return body[:length] if len(body) >= length else body


def _send(conn, data):
    view = memoryview(data)
    while len(view):
        sent = conn.send(view)
        if not sent:
            return
        view = view[sent:]
