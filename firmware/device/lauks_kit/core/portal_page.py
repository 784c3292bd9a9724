# The Wi-Fi setup page's pure core: when the kit opens its access point, the page in lv/lt/ru/en (its
# sentences in core/portal_text.py), the HTTP request and form it reads (bounded, hostile input refused),
# and the config with the new network. No sockets here: net/portal_server.py moves the bytes; the same
# code runs under MicroPython and CPython.

AP_AFTER_MS = 180000  # "cannot join any configured network for a few minutes": 3 minutes without Wi-Fi
AP_BUTTON_MS = 600000  # opened with the button: the page waits 10 minutes for a choice
MAX_HEAD = 2048  # request line and headers; a phone's browser sends well under 1 KB
MAX_BODY = 512  # the form: an SSID (32 bytes) and a password (63), percent-encoded at most 3x, and names
MAX_NETWORKS = 5  # networks kept in config.json, the newest first
MAX_LISTED = 20  # networks shown from a scan
LANGUAGES = ("lv", "lt", "ru", "en")
LANGUAGE_NAMES = {"lv": "Latviešu", "lt": "Lietuvių", "ru": "Русский", "en": "English"}

# What the page says after a join attempt, by the board's result (board.wifi_try)
JOIN_NOTICE = {"joined": "joined", "wrong_password": "wrong_password", "not_found": "vanished",
               "no_answer": "no_answer"}


class FormError(Exception):
    """The request or form is unusable; args[0] is a TEXT key (a sentence in every language), args[1]
    the HTTP status when it is not 400."""

    def status(self):
        return self.args[1] if len(self.args) > 1 else 400


def should_open(button_held, failing_since_ms, now_ms, after_ms=AP_AFTER_MS):
    """Open the access point when the button was held at boot, or no configured network has been joined
    for ``after_ms`` (``failing_since_ms``: when the kit first found itself without Wi-Fi, or None)."""
    if button_held:
        return True
    return failing_since_ms is not None and now_ms - failing_since_ms >= after_ms


def ap_name(kit):
    return "Lauks-%s" % kit


# -- language ---------------------------------------------------------------------------------------
def pick_language(accept_language, chosen=None):
    """The page's language: one chosen on the page (?lang=), else the browser's best of ours, else English."""
    if chosen in LANGUAGES:
        return chosen
    best, best_q = "en", -1.0
    for part in (accept_language or "")[:256].split(","):
        pieces = part.strip().split(";")
        tag = pieces[0].strip().lower().split("-")[0]
        q = 1.0
        for p in pieces[1:]:
            p = p.strip()
            if p.startswith("q="):
                try:
                    q = float(p[2:])
                except ValueError:
                    q = 0.0
        if tag in LANGUAGES and q > best_q and q > 0:
            best, best_q = tag, q
    return best


def texts(lang):
    from lauks_kit.core.portal_text import TEXT

    return TEXT.get(lang, TEXT["en"])


def say(lang, key, **args):
    text = texts(lang)[key]
    if args:
        text = text % dict((k, escape(v)) for k, v in args.items())
    return text


def escape(text):
    """Text made safe inside HTML elements and quoted attributes."""
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
            .replace("'", "&#39;"))


# -- HTTP -------------------------------------------------------------------------------------------
def _hex(c):
    if 48 <= c <= 57:
        return c - 48
    if 97 <= c <= 102:
        return c - 87
    if 65 <= c <= 70:
        return c - 55
    raise FormError("bad_form")


def url_decode(raw):
    """Percent-decoding of application/x-www-form-urlencoded bytes, then strict UTF-8."""
    if isinstance(raw, str):
        raw = raw.encode()
    out = bytearray()
    i, n = 0, len(raw)
    while i < n:
        c = raw[i]
        if c == 43:  # '+'
            out.append(32)
            i += 1
        elif c == 37:  # '%'
            if i + 2 >= n:
                raise FormError("bad_form")
            out.append(_hex(raw[i + 1]) * 16 + _hex(raw[i + 2]))
            i += 3
        else:
            out.append(c)
            i += 1
    try:
        text = bytes(out).decode("utf-8")
    except (UnicodeError, ValueError):
        raise FormError("bad_form")
    for ch in text:
        if ord(ch) < 32 or ord(ch) == 127:
            raise FormError("bad_form")  # no control characters in a network name or password
    return text


def parse_pairs(raw):
    """name -> value of an urlencoded query or form; a repeated name keeps its first value."""
    out = {}
    if isinstance(raw, str):
        raw = raw.encode()
    for item in raw.split(b"&"):
        if not item:
            continue
        name, _, value = item.partition(b"=")
        key = url_decode(name)
        if key not in out:
            out[key] = url_decode(value)
    return out


def parse_head(head):
    """(method, path, query dict, headers dict with lower-case names) from the bytes before the blank line."""
    if len(head) > MAX_HEAD:
        raise FormError("bad_form")
    try:
        text = head.decode("utf-8")
    except (UnicodeError, ValueError):
        raise FormError("bad_form")
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise FormError("bad_form")
    method, target = parts[0], parts[1]
    path, _, query = target.partition("?")
    headers = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise FormError("bad_form")
        headers[name.strip().lower()] = value.strip()
    try:
        params = parse_pairs(query)
    except FormError:
        params = {}  # a mangled query on a GET still gets the page
    return method, path, params, headers


def body_length(headers):
    """The request body's length from Content-Length; FormError if it is missing, bad or too long."""
    value = headers.get("content-length", "0")
    try:
        n = int(value)
    except ValueError:
        raise FormError("bad_form")
    if n < 0:
        raise FormError("bad_form")
    if n > MAX_BODY:
        raise FormError("bad_form", 413)
    return n


def parse_join(body):
    """(ssid, password, lang) from the page's form; FormError with the reason."""
    if len(body) > MAX_BODY:
        raise FormError("bad_form", 413)
    form = parse_pairs(body)
    ssid, password = form.get("ssid", ""), form.get("password", "")
    if not ssid:
        raise FormError("no_network")
    if len(ssid.encode()) > 32:
        raise FormError("ssid_too_long")
    if password and not 8 <= len(password) <= 63:
        raise FormError("password_length")
    return ssid, password, form.get("lang")


def response(status, body, content_type="text/html; charset=utf-8"):
    """A whole HTTP/1.0 response; the page allows nothing but itself (no scripts at all)."""
    if isinstance(body, str):
        body = body.encode()
    reason = {200: "OK", 303: "See Other", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
              413: "Payload Too Large"}.get(status, "OK")
    head = ("HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nCache-Control: no-store\r\n"
            "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; form-action 'self'\r\n"
            "X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n" % (status, reason, content_type, len(body)))
    return head.encode() + body


# -- the page ---------------------------------------------------------------------------------------
def _bars(rssi):
    level = 4 if rssi >= -55 else 3 if rssi >= -67 else 2 if rssi >= -78 else 1
    return "▮" * level + "▯" * (4 - level)


def listed(networks):
    """The scan as the page shows it: each name once (its strongest), strongest first, at most MAX_LISTED."""
    best = {}
    for ssid, rssi, secured in networks:
        if ssid and (ssid not in best or rssi > best[ssid][0]):
            best[ssid] = (rssi, secured)
    out = [(ssid, best[ssid][0], best[ssid][1]) for ssid in best]
    out.sort(key=lambda n: -n[1])
    return out[:MAX_LISTED]


def render(lang, kit, networks, notice=None, notice_args=None, ok=False, chosen=None):
    """The whole page: languages, the notice of the last attempt, the scan as a choice, the password field."""
    t = texts(lang)
    out = ['<!DOCTYPE html><html lang="%s"><head><meta charset="utf-8">' % lang,
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           "<title>%s</title>" % say(lang, "title", kit=kit),
           "<style>body{font-family:sans-serif;max-width:32em;margin:1em auto;padding:0 1em}"
           "label{display:block;padding:.5em;border-bottom:1px solid #ddd}.notice{padding:.7em;border-radius:4px;"
           "background:#fde8e8}.ok{background:#e6f6e6}"
           "input[type=password]{width:100%;box-sizing:border-box;font-size:1.2em}"
           "button{font-size:1.2em;margin:1em 0;padding:.4em 1.5em}nav a,nav strong{margin-right:.8em}"
           "</style></head><body>",
           '<nav aria-label="%s">' % escape(t["language"])]
    for code in LANGUAGES:
        if code == lang:
            out.append("<strong>%s</strong> " % LANGUAGE_NAMES[code])
        else:
            out.append('<a href="/?lang=%s" hreflang="%s">%s</a> ' % (code, code, LANGUAGE_NAMES[code]))
    out.append("</nav><h1>%s</h1>" % say(lang, "title", kit=kit))
    if notice:
        out.append('<p class="notice%s" role="status">%s</p>' % (" ok" if ok else "",
                                                              say(lang, notice, **(notice_args or {}))))
    if ok:
        out.append("</body></html>")
        return "".join(out)
    out.append("<p>%s</p>" % escape(t["intro"]))
    shown = listed(networks)
    out.append('<form method="post" action="/join"><input type="hidden" name="lang" value="%s">' % lang)
    out.append("<fieldset><legend>%s</legend>" % escape(t["networks"]))
    if not shown:
        out.append("<p>%s</p>" % escape(t["none_found"]))
    for i, (ssid, rssi, secured) in enumerate(shown):
        checked = " checked" if ssid == chosen or (chosen is None and i == 0) else ""
        out.append('<label><input type="radio" name="ssid" value="%s"%s> %s <span title="%s">%s</span>%s</label>'
                   % (escape(ssid), checked, escape(ssid), escape(t["signal"]), _bars(rssi),
                      "" if secured else " (%s)" % escape(t["open_network"])))
    out.append("</fieldset>")
    out.append('<p><label for="pw">%s</label><input type="password" id="pw" name="password" maxlength="63" '
               'autocomplete="off" autocapitalize="none"></p>' % escape(t["password"]))
    out.append('<button type="submit">%s</button></form>' % escape(t["join"]))
    out.append('<p><a href="/?lang=%s&amp;scan=1">%s</a></p></body></html>' % (lang, escape(t["scan_again"])))
    return "".join(out)


# -- config -----------------------------------------------------------------------------------------
def with_network(cfg, ssid, password):
    """A copy of cfg with the network first in 'wifi' (tried first), a former entry of it dropped, and at
    most MAX_NETWORKS kept; the rest of the config as it was."""
    new = dict(cfg)
    networks = [{"ssid": ssid, "password": password}]
    for net in cfg.get("wifi", []):
        if isinstance(net, dict) and net.get("ssid") != ssid and len(networks) < MAX_NETWORKS:
            networks.append(net)
    new["wifi"] = networks
    return new
