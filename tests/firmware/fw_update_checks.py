# Checks of the over-the-air update's pure core (lauks_kit/core/update.py) and the boot loader (lauks_boot.py),
# written once and run twice: under CPython (test_fw_update.py) and under real MicroPython in Node
# (test_fw_micropython.py). MicroPython syntax only.
#
# The crash sweep: a kit's whole update (offer, download into /next, stage, switch at boot, trial, confirm or
# roll back) runs on a flash in memory that counts every operation that changes it (write of a file or of a
# chunk, rename, remove, mkdir, rmdir) and loses the power at operation N, for every N. A write cut by the
# power leaves half of what it was writing (a torn file); renames and removes are atomic (LittleFS). The kit
# then powers on again (boot loader, then the firmware with the retained offer) until it settles. At every
# boot the firmware in /lauks_kit must be one whole version, and the end must be the scenario's.
import json

import lauks_boot
from lauks_kit.core import update
from lauks_kit.net import http


class Crash(BaseException):
    """The power is gone: no except OSError / except Exception in the code under test may catch it."""


class Writer:
    def __init__(self, fs, path):
        self.fs, self.path = fs, path
        fs.files[path] = b""

    def write(self, data):
        self.fs.op(self.path, data)
        self.fs.files[self.path] = self.fs.files[self.path] + bytes(data)

    def close(self):
        pass


class Reader:
    def __init__(self, data):
        self.data, self.at = data, 0

    def read(self, n):
        out = self.data[self.at:self.at + n]
        self.at += len(out)
        return out

    def close(self):
        pass


class FakeFlash:
    """lauks_boot.Flash's operations on dicts, with a power cut at the plan's counts of changing operations."""

    def __init__(self, files, plan=None):
        self.files = {}
        self.dirs = {}
        self.plan = list(plan or [])  # operations until each power cut, one per power-on
        self.ops = 0
        self.total = 0
        for path in files:
            self._parents(path)
            self.files[path] = files[path]

    def _parents(self, path):
        at = path.find("/", 1)
        while at > 0:
            self.dirs[path[:at]] = True
            at = path.find("/", at + 1)

    def op(self, path=None, data=None):
        self.ops += 1
        self.total += 1
        if self.plan and self.ops == self.plan[0]:
            self.plan.pop(0)
            self.ops = 0
            if data is not None:  # the write lands half
                self.files[path] = self.files.get(path, b"") + bytes(data)[:len(data) // 2]
            raise Crash()

    def _parent_ok(self, path):
        parent = path[:path.rfind("/")]
        if parent and parent not in self.dirs:
            raise OSError(2, "no folder " + parent)

    def exists(self, path):
        return path in self.files or path in self.dirs

    def isdir(self, path):
        return path in self.dirs

    def read(self, path):
        if path not in self.files:
            raise OSError(2, path)
        return self.files[path]

    def open_read(self, path):
        return Reader(self.read(path))

    def open_write(self, path):
        self._parent_ok(path)
        self.op()
        return Writer(self, path)

    def write(self, path, data):
        self._parent_ok(path)
        self.op(path, data)
        self.files[path] = bytes(data)

    def rename(self, old, new):
        if not self.exists(old) or new in self.dirs:
            raise OSError(17, "rename %s %s" % (old, new))  # noqa: UP031  # MicroPython's f-strings are not the house's
        self._parent_ok(new)
        self.op()
        if old in self.files:
            self.files[new] = self.files.pop(old)
            return
        for table in (self.files, self.dirs):
            for key in list(table):
                if key == old or key.startswith(old + "/"):
                    table[new + key[len(old):]] = table.pop(key)

    def remove(self, path):
        if path not in self.files:
            raise OSError(2, path)
        self.op()
        del self.files[path]

    def mkdir(self, path):
        if self.exists(path):
            raise OSError(17, path)
        self._parent_ok(path)
        self.op()
        self.dirs[path] = True

    def rmdir(self, path):
        if path not in self.dirs or self.listdir(path):
            raise OSError(39, path)
        self.op()
        del self.dirs[path]

    def listdir(self, path):
        out = {}
        for table in (self.files, self.dirs):
            for key in table:
                if key.startswith(path + "/"):
                    out[key[len(path) + 1:].split("/")[0]] = True
        return sorted(out)

    def free(self):
        return 1 << 20


# -- two versions, a release, an offer --------------------------------------------------------------------
V1 = {"lauks_kit/__init__.py": b'VERSION = "1.0.0"\n', "lauks_kit/app.py": b"old app " * 90,
      "lauks_kit/core/old.py": b"gone in 2.0.0\n" * 20}
V2 = {"lauks_kit/__init__.py": b'VERSION = "2.0.0"\n', "lauks_kit/app.py": b"new app " * 320,
      "lauks_kit/net/new.py": b"new in 2.0.0\n" * 30}
KEPT = {"/main.py": b"import lauks_boot\n", "/lauks_boot.py": b"# the boot loader\n", "/config.json": b"{}"}
KEY = bytes(range(32))
URL = "http://10.0.0.2:8000/v1/firmware/2.0.0/"


def flash_with(files, plan=None):
    start = {}
    for path in KEPT:
        start[path] = KEPT[path]
    for path in files:
        start["/" + path] = files[path]
    return FakeFlash(start, plan)


def manifest_of(files, version):
    entries = []
    for path in sorted(files):
        entries.append({"path": path, "size": len(files[path]), "sha256": update.sha256_hex(files[path])})
    return update.canonical({"v": 1, "version": version, "format": "py", "files": entries}).encode()


def offer_of(manifest, version, key=KEY):
    offer = {"v": 1, "version": version, "url": URL, "manifest_sha256": update.sha256_hex(manifest)}
    offer["hmac"] = update.hexof(update.hmac_sha256(key, update.canonical(offer).encode()))
    return update.canonical(offer).encode()


def installed(fs):
    """The version whose files /lauks_kit holds exactly, else None (a mix or a torn file: a bricked kit)."""
    have = {}
    for path in fs.files:
        if path.startswith("/lauks_kit/"):
            have[path[1:]] = fs.files[path]
    for version, files in (("1.0.0", V1), ("2.0.0", V2)):
        if have == files:
            return version
    return None


class World:
    """The server's side of a scenario: what the kit is offered and served, and how the new version behaves."""

    def __init__(self, served=None, new_version_runs=True, confirms=True):
        self.manifest = manifest_of(V2, "2.0.0")
        self.offer = offer_of(self.manifest, "2.0.0")
        self.served = served or V2
        self.runs, self.confirms = new_version_runs, confirms

    def get(self, url, sink):
        path = url[len(URL):]
        data = self.manifest if path == "manifest.json" else self.served[path[len("files/"):]]
        for at in range(0, len(data), 512):
            sink(data[at:at + 512])


def power_on(fs, world, log):
    """One start of the kit: "settled" when it runs on with nothing more to do, "reset" when it restarts."""
    lauks_boot.boot(fs)
    running = installed(fs)
    assert running is not None, "no whole firmware in /lauks_kit after boot: %r" % (log,)  # noqa: UP031  # MicroPython's f-strings are not the house's
    for path in KEPT:
        assert fs.files.get(path) == KEPT[path], path
    state = update.read_state(fs)
    if running == "2.0.0":
        assert state.get("state") in ("trial", "confirmed"), state
        if not world.runs:
            lauks_boot.crashed(fs, "crashed at import: RuntimeError: broken")
            return "reset"
        if state["state"] == "trial":
            if not world.confirms:
                return "reset"  # the trial time ran out
            update.confirm(fs, state)
        return "settled"
    offer, problem = update.check_offer(world.offer, KEY)
    assert problem is None, problem
    action = update.decide(offer, state, running)
    if action != "fetch":
        return "reset" if action == "reset" else "settled"
    state = update.begin(fs, state, offer, running)
    manifest_bytes = bytearray()
    world.get(offer["url"] + "manifest.json", manifest_bytes.extend)
    manifest, problem = update.check_manifest(bytes(manifest_bytes), offer)
    assert problem is None, problem
    update.set_state(fs, state, "downloading")
    for entry in update.missing(fs, manifest):
        part = update.Part(fs, entry)
        world.get(offer["url"] + "files/" + entry["path"], part.write)
        problem = part.finish()
        if problem:
            update.remove_tree(fs, update.NEXT)
            update.set_state(fs, state, "failed", problem, True)
            return "settled"
    update.stage(fs, state, bytes(manifest_bytes))
    return "reset"


def live(fs, world, limit=12):
    """Power the kit on again and again (after each power cut or reset) until it settles."""
    log = []
    for _ in range(limit):
        try:
            outcome = power_on(fs, world, log)
            log.append(outcome)
            if outcome == "settled":
                return log
        except Crash:
            log.append("power cut")
    raise AssertionError("the kit never settled: %r" % (log,))  # noqa: UP031  # MicroPython's f-strings are not the house's


def sweep(world, expect, make=None):
    """The scenario once without a cut (counting its operations), then with a power cut at each of them.
    make(files, plan): the flash (flash_with, a FakeFlash, unless given)."""
    make = make or flash_with
    clean = make(V1, None)
    live(clean, world)
    expect(clean)
    count = clean.total
    for n in range(1, count + 1):
        fs = make(V1, [n])
        live(fs, world)
        try:
            expect(fs)
        except AssertionError as e:
            raise AssertionError("power cut at operation %d of %d: %s" % (n, count, e)) from e  # noqa: UP031
    return count


def _settled_on(version, state_kind, reason=None):
    def expect(fs):
        assert installed(fs) == version, installed(fs)
        state = update.read_state(fs)
        assert state.get("state") == state_kind and state.get("version") == "2.0.0", state
        if reason is not None:
            assert state.get("reason", "").startswith(reason), state
        assert not fs.exists("/prev") and not fs.exists("/next"), sorted(fs.files)
    return expect


# -- the checks ---------------------------------------------------------------------------------------------
def check_hmac_sha256_matches_rfc_4231():
    assert update.hexof(update.hmac_sha256(b"\x0b" * 20, b"Hi There")) == \
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
    assert update.hexof(update.hmac_sha256(b"Jefe", b"what do ya want for nothing?")) == \
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    assert update.hexof(update.hmac_sha256(b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First")) \
        == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"


def check_canonical_json_is_pythons_sorted_compact_json():
    assert update.canonical({"v": 1, "url": "http://a/", "b": [1, True, None]}) == \
        '{"b":[1,true,null],"url":"http://a/","v":1}'
    assert update.canonical({"q": 'say "hi"\\\n', "u": "\u0101"}) == '{"q":"say \\"hi\\"\\\\\\n","u":"\\u0101"}'


def check_an_offer_signed_with_the_kits_key_is_accepted():
    offer, problem = update.check_offer(offer_of(manifest_of(V2, "2.0.0"), "2.0.0"), KEY)
    assert problem is None and offer["version"] == "2.0.0" and offer["url"] == URL


def check_offers_that_are_not_the_kits_are_refused_with_a_reason():
    good = offer_of(manifest_of(V2, "2.0.0"), "2.0.0")
    assert update.check_offer(good, bytes(32))[1].startswith("offer signature does not match")
    assert update.check_offer(good, None)[1].startswith("no update_key in config.json")
    tampered = json.loads(good)
    tampered["url"] = "http://10.6.6.6/v1/firmware/2.0.0/"
    assert update.check_offer(json.dumps(tampered).encode(), KEY)[1].startswith("offer signature does not match")
    assert update.check_offer(b"x" * 600, KEY)[1] == "offer is larger than 512 bytes"
    assert update.check_offer(b"nope", KEY)[1] == "offer is not JSON"
    bad_version = json.loads(good)
    bad_version["version"] = "1 0"
    assert update.check_offer(json.dumps(bad_version).encode(), KEY)[1].startswith("offer version must be")
    assert update.claimed_version(good) == "2.0.0" and update.claimed_version(b"[]") is None
    assert update.key_of({"update_key": "ab" * 32}) == bytes([0xAB] * 32) and update.key_of({}) is None


def check_a_manifest_must_be_the_offers_and_well_formed():
    manifest = manifest_of(V2, "2.0.0")
    offer = update.check_offer(offer_of(manifest, "2.0.0"), KEY)[0]
    assert update.check_manifest(manifest, offer)[1] is None
    assert update.check_manifest(manifest + b" ", offer)[1] == "manifest sha256 does not match the offer"
    for files, reason in (
            ({"lauks_kit/../boot.py": b"x", "lauks_kit/__init__.py": b""}, "manifest: path lauks_kit/../boot.py"),
            ({"main.py": b"x", "lauks_kit/__init__.py": b""}, "manifest: every path must be under lauks_kit/"),
            ({"lauks_kit/app.py": b"x"}, "release has no lauks_kit/__init__")):
        other = manifest_of(files, "2.0.0")
        got = update.check_manifest(other, update.check_offer(offer_of(other, "2.0.0"), KEY)[0])[1]
        assert got is not None and got.startswith(reason), got
    other = manifest_of(V2, "2.0.1")
    assert update.check_manifest(other, update.check_offer(offer_of(other, "2.0.0"), KEY)[0])[1] == \
        "manifest is of version 2.0.1, the offer of 2.0.0"


def check_what_a_verified_offer_asks_for_depends_on_the_journal():
    offer = {"version": "2.0.0", "manifest_sha256": "a" * 64}
    assert update.decide(offer, {}, "1.0.0") == "fetch"
    assert update.decide(offer, {}, "2.0.0") == "ignore"
    assert update.decide(offer, {"state": "trial", "version": "1.5.0"}, "1.5.0") == "ignore"
    same = {"version": "2.0.0", "manifest_sha256": "a" * 64}
    for kind, action in (("rolled_back", "ignore"), ("staged", "reset"), ("downloading", "fetch"),
                         ("failed", "fetch")):
        state = dict(same)
        state["state"] = kind
        assert update.decide(offer, state, "1.0.0") == action, kind
    state = dict(same)
    state["state"], state["final"] = "failed", True
    assert update.decide(offer, state, "1.0.0") == "ignore"
    assert update.status_of({}) is None
    assert update.status_of({"version": "2.0.0", "state": "failed", "reason": "r" * 200}) == {
        "version": "2.0.0", "state": "failed", "reason": "r" * 120}


def check_a_boot_on_trial_is_counted_and_the_fourth_rolls_back():
    fs = flash_with(V1)
    live(fs, World(confirms=False))
    state = update.read_state(fs)
    assert installed(fs) == "1.0.0" and state["state"] == "rolled_back", state
    assert state["reason"] == "no confirmed reading within 3 boots"


def check_a_deep_sleep_wake_is_not_a_boot_of_the_version_on_trial():
    fs = flash_with(V2)
    fs.files["/prev/lauks_kit/__init__.py"] = V1["lauks_kit/__init__.py"]
    fs.dirs["/prev"] = fs.dirs["/prev/lauks_kit"] = True
    lauks_boot.write_state(fs, {"version": "2.0.0", "state": "trial", "tries": 3})
    for _ in range(5):
        assert lauks_boot.boot(fs, True)["state"] == "trial"
    assert lauks_boot.boot(fs, False)["state"] == "rolled_back"


def check_power_cut_at_every_step_of_a_good_update_ends_confirmed():
    count = sweep(World(), _settled_on("2.0.0", "confirmed"))
    assert count > 20, count


def check_power_cut_at_every_step_of_a_crashing_release_ends_rolled_back():
    sweep(World(new_version_runs=False), _settled_on("1.0.0", "rolled_back", "crashed at import: RuntimeError"))


def check_power_cut_at_every_step_of_a_release_that_never_confirms_ends_rolled_back():
    sweep(World(confirms=False), _settled_on("1.0.0", "rolled_back", "no confirmed reading within 3 boots"))


def check_power_cut_at_every_step_of_a_corrupt_download_ends_failed_on_the_old_version():
    served = {}
    for path in V2:
        served[path] = V2[path]
    served["lauks_kit/app.py"] = b"new app!" * 320  # the same size, other bytes
    sweep(World(served=served), _settled_on("1.0.0", "failed", "file lauks_kit/app.py: sha256 mismatch"))


class FakeSocket:
    """A server's response, handed out a few bytes at a time, as a slow link does."""

    def __init__(self, response, step=7):
        self.response, self.step, self.sent, self.closed = response, step, b"", False

    def send(self, data):
        self.sent += bytes(data[:5])  # a short send: the client must send the rest
        return min(5, len(data))

    def recv(self, n):
        out = self.response[:min(n, self.step)]
        self.response = self.response[len(out):]
        return out

    def close(self):
        self.closed = True


def _get(response, limit=None):
    sock = FakeSocket(response)
    got = bytearray()
    try:
        http.get(lambda host, port: sock, "http://10.0.0.2:8000/v1/firmware/2.0.0/files/a.py", got.extend, limit)
    except http.HTTPError as e:
        assert sock.closed
        return str(e)
    assert sock.closed
    return bytes(got), sock.sent


def check_http_get_streams_a_body_and_says_what_went_wrong():
    assert http.split_url("http://10.0.0.2:8000/v1/x") == ("10.0.0.2", 8000, "/v1/x")
    assert http.split_url("http://school.lan/") == ("school.lan", 80, "/")
    body, sent = _get(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nContent-Type: x\r\n\r\n0123456789extra")
    assert body == b"0123456789"  # no more than Content-Length, whatever follows
    assert sent == b"GET /v1/firmware/2.0.0/files/a.py HTTP/1.0\r\nHost: 10.0.0.2:8000\r\nConnection: close\r\n\r\n"
    assert _get(b"HTTP/1.0 200 OK\r\n\r\nall of it")[0] == b"all of it"  # no length: until the server closes
    assert _get(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n").startswith("HTTP 404 for ")
    assert _get(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234") == "connection closed after 5 of 10 bytes"
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde"
    assert _get(chunked).startswith("the server sent a chunked")
    assert _get(b"HTTP/1.1 200 OK\r\nX: " + b"y" * 3000) == "response headers longer than 2048 bytes"
    assert _get(b"SSH-2.0-OpenSSH\r\n\r\n").startswith("not an HTTP response")
    assert _get(b"HTTP/1.1 200 OK\r\nContent-Length: 99999\r\n\r\n", 16384).endswith("more than 16384")
    try:
        http.split_url("https://10.0.0.2/")
        raise AssertionError("https accepted")
    except http.HTTPError:
        pass


def all_update_checks():
    g = globals()
    return [(name, g[name]) for name in sorted(g) if name.startswith("check_")]
