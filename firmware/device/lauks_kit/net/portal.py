# The Wi-Fi setup access point Lauks-<kit>: opened when the kit cannot join any configured network for a
# few minutes, or when its button is held at boot. Its page (core/portal_page.py) lists the scan; the
# chosen network is tried, saved into config.json (temp file, then rename) and the access point closes.
# The board gives the radio: wifi_scan, wifi_try, ap_open (a listening socket), ap_close, button_held.
# Only this small shell stays in RAM: the page and its server are imported while the kit is offline, and
# dropped again once it is back (an ESP32 has about 110 KB of heap).
import sys

HEAVY = ("lauks_kit.net.portal_server", "lauks_kit.core.portal_text", "lauks_kit.core.portal_page")


class Setup:
    """The access point and its page, stepped from the kit's network loop (never blocking it long)."""

    def __init__(self, board):
        self.board = board
        self.button = None  # read once, at the first step after boot
        self.failing_since = None
        self.server = None
        self.opened_by_button = False
        self.opened_at = 0

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
            if now - self.opened_at >= _page().AP_BUTTON_MS:
                b.log("no network chosen on the setup page: closing it")
                self.close()
                return False
            return self.serve_holding(kit)
        if b.wifi_connected():
            self.failing_since = None
            if self.server is not None:
                b.log("Wi-Fi is back: closing the setup access point")
                self.close()
            elif not self.button:
                _unload()
            return False
        if self.failing_since is None:
            self.failing_since = now
        if self.server is None:
            if not _page().should_open(self.button, self.failing_since, now):
                return False
            self.opened_by_button, self.opened_at = bool(self.button), now
            try:
                from lauks_kit.net.portal_server import Server

                self.server = Server(b, kit)
            except OSError as e:  # the radio refused: the kit goes on, and tries again in a few minutes
                b.log("setup access point not opened: %s" % e)
                self.server, self.button, self.failing_since = None, False, now
                return False
            if self.opened_by_button:
                return self.serve_holding(kit)
        return self.finish(self.server.serve(kit, b.ap_poll_s()))

    def serve_holding(self, kit):
        """Serve, keeping the kit's own tries of its networks off (they would pull the radio away)."""
        joined = self.finish(self.server.serve(kit, self.board.ap_poll_s()))
        if not joined:
            kit.next_net_try = max(kit.next_net_try, self.board.ticks_ms() + 60000)
        return joined

    def finish(self, joined):
        if joined:
            self.close()
        return joined

    def close(self):
        if self.server is not None:
            self.server.close()
        self.server = None
        self.button = False  # the held button opened it once; a join or returning Wi-Fi closes it for good
        _unload()


def _page():
    from lauks_kit.core import portal_page

    return portal_page


def _unload():
    """Forget the page and its server, so the collector can take them back. Only on MicroPython: in the
    simulator many kits share one interpreter, where one kit's unloading would race another's import."""
    if sys.implementation.name != "micropython":
        return
    for name in HEAVY:
        if name in sys.modules:
            del sys.modules[name]
            package, _, attr = name.rpartition(".")
            parent = sys.modules.get(package)
            if parent is not None and hasattr(parent, attr):
                delattr(parent, attr)
