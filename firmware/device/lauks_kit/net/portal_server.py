# The setup access point's web server (loaded only while the access point is open, net/portal.py):
# one request at a time, bounded reads, the page from core/portal_page.py, and config.json replaced
# through a temporary file and a rename when a network has been joined.
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


class Server:
    """The open access point: its listening socket, the last scan, and the page's requests."""

    def __init__(self, board, kit):
        b = self.board = board
        name = page.ap_name(kit.kit)
        self.scan = list(b.wifi_scan())
        self.attempts = 0  # join attempts made on the page (for the log and the tests)
        self.sock = b.ap_open(name)
        b.log("Wi-Fi setup access point %s open (%d networks in sight)" % (name, len(self.scan)))
        b.led_pattern(LED_SETUP)
        b.led_steady(True)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
        self.board.ap_close()
        self.board.led_steady(False)

    def serve(self, kit, timeout_s):
        """Answer the requests waiting now (up to a few); True when one of them joined a network."""
        for _ in range(4):
            self.sock.settimeout(timeout_s)
            try:
                conn, _ = self.sock.accept()
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
