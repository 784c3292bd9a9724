# Over-the-air updates, the running firmware's part (docs/firmware.md, "Updates over the air"): check the
# offer's HMAC and the manifest, stage each file verified into /next, confirm the new version once a reading of
# it is PUBACKed. The switch and the rollback at boot are lauks_boot.py's, which this code can never break.
# File operations go through an fs object (lauks_boot.Flash on a kit), so the crash tests can cut the power
# at each one. MicroPython has hashlib.sha256 but no hmac module, hence RFC 2104 below.
import binascii
import hashlib
import json

# the journal is the boot loader's (on every kit, never updated): one reader and writer of its format
from lauks_boot import NEXT, PREV, read_state, remove_tree, write_state

MAX_OFFER = 512
MAX_MANIFEST = 16 * 1024
MAX_FILE = 256 * 1024
MAX_ATTEMPTS = 3  # downloads of one offer that fail on the network before the kit gives it up
KEY_PREFIX = "lauks_kit/"  # the only folder an update may write: main.py and lauks_boot.py stay as flashed
VERSION_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.+-"
PATH_CHARS = VERSION_CHARS + "_"
HEX = "0123456789abcdef"


class UpdateError(Exception):
    pass


def hexof(data):
    return binascii.hexlify(data).decode()


def sha256_hex(data):
    return hexof(hashlib.sha256(data).digest())


def hmac_sha256(key, msg):
    """HMAC-SHA256 (RFC 2104, block size 64)."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    inner_pad, outer_pad = bytearray(64), bytearray(64)
    for i in range(64):
        byte = key[i] if i < len(key) else 0
        inner_pad[i], outer_pad[i] = byte ^ 0x36, byte ^ 0x5C
    inner = hashlib.sha256(bytes(inner_pad))
    inner.update(msg)
    outer = hashlib.sha256(bytes(outer_pad))
    outer.update(inner.digest())
    return outer.digest()


def same(a, b):
    """Equal, looking at every byte whatever the first difference (no early exit to time)."""
    if len(a) != len(b):
        return False
    diff = 0
    for i in range(len(a)):
        diff |= ord(a[i]) ^ ord(b[i]) if isinstance(a, str) else a[i] ^ b[i]
    return diff == 0


def _string(text):
    out = '"'
    for ch in text:
        code = ord(ch)
        if ch == '"' or ch == "\\":
            out += "\\" + ch
        elif 0x20 <= code < 0x7F:
            out += ch
        elif ch in "\n\r\t\b\f":
            out += {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}[ch]
        elif code < 0x10000:
            out += "\\u%04x" % code
        else:
            code -= 0x10000
            out += "\\u%04x\\u%04x" % (0xD800 + (code >> 10), 0xDC00 + (code & 0x3FF))
    return out + '"'


def canonical(obj):
    """Python's json.dumps(obj, sort_keys=True, separators=(",", ":")): MicroPython's json cannot sort keys."""
    if obj is None:
        return "null"
    if obj is True:
        return "true"
    if obj is False:
        return "false"
    if isinstance(obj, int):
        return str(obj)
    if isinstance(obj, str):
        return _string(obj)
    if isinstance(obj, (list, tuple)):
        return "[" + ",".join([canonical(x) for x in obj]) + "]"
    if isinstance(obj, dict):
        return "{" + ",".join([_string(k) + ":" + canonical(obj[k]) for k in sorted(obj)]) + "}"
    raise UpdateError("cannot sign a %s" % type(obj).__name__)  # floats print differently across Pythons


def version_ok(text):
    if not isinstance(text, str) or not 1 <= len(text) <= 32:
        return False
    for ch in text:
        if ch not in VERSION_CHARS:
            return False
    return True


def _hex64(text):
    if not isinstance(text, str) or len(text) != 64:
        return False
    for ch in text:
        if ch not in HEX:
            return False
    return True


def key_of(cfg):
    """The kit's update key from config.json as bytes, or None without a usable one."""
    text = cfg.get("update_key")
    if not _hex64(text):
        return None
    return binascii.unhexlify(text)


def claimed_version(payload):
    """The version an offer names, for the status of a refused one (None if it names no valid one)."""
    try:
        version = json.loads(payload).get("version")
    except (ValueError, AttributeError):
        return None
    return version if version_ok(version) else None


def check_offer(payload, key):
    """(offer dict, None) for an offer signed with key, else (None, a reason a person can act on)."""
    if len(payload) > MAX_OFFER:
        return None, "offer is larger than %d bytes" % MAX_OFFER
    try:
        offer = json.loads(payload)
    except ValueError:
        return None, "offer is not JSON"
    if not isinstance(offer, dict):
        return None, "offer is not a JSON object"
    if offer.get("v") != 1:
        return None, "offer v must be 1"
    if not version_ok(offer.get("version")):
        return None, "offer version must be 1-32 of 0-9 A-Z a-z . + -"
    url = offer.get("url")
    if not isinstance(url, str) or not url.startswith("http://") or not url.endswith("/") or len(url) > 200:
        return None, "offer url must be http://.../ (the school server's API)"
    if not _hex64(offer.get("manifest_sha256")) or not _hex64(offer.get("hmac")):
        return None, "offer manifest_sha256 and hmac must be 64 hex digits"
    if key is None:
        return None, "no update_key in config.json: add the kit again with 'lauks kit add --force' and flash it"
    body = {}
    for name in offer:
        if name != "hmac":
            body[name] = offer[name]
    try:
        mac = hexof(hmac_sha256(key, canonical(body).encode()))
    except UpdateError as e:
        return None, "offer: %s" % e
    if not same(mac, offer["hmac"]):
        return None, "offer signature does not match (not from this kit's school server, or another key)"
    return offer, None


def path_problem(path):
    if not isinstance(path, str) or not path.startswith(KEY_PREFIX) or len(path) > 120:
        return "every path must be under lauks_kit/"
    for part in path.split("/"):
        if part in ("", ".", ".."):
            return "path %s has an empty, . or .. part" % path
        for ch in part:
            if ch not in PATH_CHARS:
                return "path %s has a character other than 0-9 A-Z a-z _ . + -" % path
    return None


def check_manifest(data, offer):
    """(manifest dict, None) if data is the manifest the offer names and it is well formed, else (None, why)."""
    if not same(sha256_hex(data), offer["manifest_sha256"]):
        return None, "manifest sha256 does not match the offer"
    try:
        manifest = json.loads(data)
    except ValueError:
        return None, "manifest is not JSON"
    if not isinstance(manifest, dict) or manifest.get("v") != 1:
        return None, "manifest v must be 1"
    if manifest.get("version") != offer["version"]:
        return None, "manifest is of version %s, the offer of %s" % (manifest.get("version"), offer["version"])
    if manifest.get("format") not in ("mpy", "py"):
        return None, "manifest format must be mpy or py"
    files = manifest.get("files")
    if not isinstance(files, list) or not files:
        return None, "manifest lists no files"
    seen = {}
    for entry in files:
        if not isinstance(entry, dict):
            return None, "manifest file entries must be objects"
        path = entry.get("path")
        problem = path_problem(path)
        if problem:
            return None, "manifest: " + problem
        if path in seen or path + ".part" in seen:
            return None, "manifest lists %s twice" % path
        seen[path] = True
        size = entry.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_FILE:
            return None, "manifest: %s size must be 0..%d bytes" % (path, MAX_FILE)
        if not _hex64(entry.get("sha256")):
            return None, "manifest: %s sha256 must be 64 hex digits" % path
    if KEY_PREFIX + "__init__.py" not in seen and KEY_PREFIX + "__init__.mpy" not in seen:
        return None, "release has no lauks_kit/__init__: it could not start"
    return manifest, None


def total_size(manifest):
    total = 0
    for entry in manifest["files"]:
        total += entry["size"]
    return total


# -- the state journal and the staging folder -----------------------------------------------------------------
def make_parents(fs, path):
    at = 0
    while True:
        at = path.find("/", at + 1)
        if at < 0:
            return
        if not fs.exists(path[:at]):
            fs.mkdir(path[:at])


def status_of(state):
    """The status message's "update" object for a journal state, or None before any update."""
    version, kind = state.get("version"), state.get("state")
    if not version or not kind:
        return None
    out = {"version": version, "state": {"switching": "staged", "rolling_back": "trial"}.get(kind, kind)}
    if state.get("reason"):
        out["reason"] = state["reason"][:120]
    return out


def decide(offer, state, running):
    """What a verified offer asks for now: "ignore", "fetch" (start or resume the download) or "reset"
    (it is staged already: switch)."""
    kind = state.get("state")
    if offer["version"] == running or kind == "trial":
        return "ignore"  # running it, or the version on trial has to confirm (or roll back) first
    if state.get("version") == offer["version"] and state.get("manifest_sha256") == offer["manifest_sha256"]:
        if kind == "rolled_back" or (kind == "failed" and state.get("final")):
            return "ignore"  # it has failed here once: a retained offer must not make the kit try forever
        if kind == "staged":
            return "reset"
    return "fetch"


def begin(fs, state, offer, running):
    """The journal for a download of offer: resumes one of the same manifest (its verified files are kept)."""
    resume = state.get("manifest_sha256") == offer["manifest_sha256"] and state.get("version") == offer["version"]
    if not resume:
        remove_tree(fs, NEXT)
    new = {"version": offer["version"], "state": "offered", "manifest_sha256": offer["manifest_sha256"],
           "prev": running, "attempts": (state.get("attempts", 0) if resume else 0) + 1}
    write_state(fs, new)
    return new


def set_state(fs, state, kind, reason=None, final=False):
    state["state"] = kind
    if reason:
        state["reason"] = reason[:120]
    else:
        state.pop("reason", None)
    if final:
        state["final"] = True
    write_state(fs, state)
    return state


def _hash_file(fs, path):
    h = hashlib.sha256()
    size = 0
    f = fs.open_read(path)
    try:
        while True:
            chunk = f.read(1024)
            if not chunk:
                break
            h.update(chunk)
            size += len(chunk)
    finally:
        f.close()
    return size, hexof(h.digest())


def _files_under(fs, folder, prefix=""):
    out = []
    for name in fs.listdir(folder):
        path = folder + "/" + name
        if fs.isdir(path):
            out += _files_under(fs, path, prefix + name + "/")
        else:
            out.append(prefix + name)
    return out


def missing(fs, manifest):
    """The manifest's entries still to fetch. What a power cut left in /next is kept only if it is a file of
    the manifest that hashes right; .part files and anything else are deleted."""
    wanted = {}
    for entry in manifest["files"]:
        wanted[entry["path"]] = entry
    have = {}
    if fs.isdir(NEXT):
        for rel in _files_under(fs, NEXT):
            entry = wanted.get(rel)
            if entry is not None and _hash_file(fs, NEXT + "/" + rel) == (entry["size"], entry["sha256"]):
                have[rel] = True
            else:
                fs.remove(NEXT + "/" + rel)
    else:
        fs.mkdir(NEXT)
    return [e for e in manifest["files"] if e["path"] not in have]


class Part:
    """One file of the release, written to /next/<path>.part while it is hashed, renamed once it matches."""

    def __init__(self, fs, entry):
        self.fs, self.entry = fs, entry
        self.path = NEXT + "/" + entry["path"]
        make_parents(fs, self.path)
        self.hash = hashlib.sha256()
        self.size = 0
        self.file = fs.open_write(self.path + ".part")

    def write(self, chunk):
        self.size += len(chunk)
        if self.size > self.entry["size"]:
            raise UpdateError("file %s: larger than the manifest says" % self.entry["path"])
        self.hash.update(chunk)
        self.file.write(chunk)

    def close(self):
        if self.file is not None:
            self.file.close()
            self.file = None

    def finish(self):
        """None once the file is in place, else why it is not (its .part is deleted)."""
        self.close()
        problem = None
        if self.size != self.entry["size"]:
            problem = "file %s: %d bytes, the manifest says %d" % (self.entry["path"], self.size, self.entry["size"])
        elif not same(hexof(self.hash.digest()), self.entry["sha256"]):
            problem = "file %s: sha256 mismatch" % self.entry["path"]
        if problem:
            self.fs.remove(self.path + ".part")
            return problem
        self.fs.rename(self.path + ".part", self.path)
        return None


def stage(fs, state, manifest_bytes):
    """Every file is in /next and verified: the manifest goes last, then the journal says staged."""
    fs.write(NEXT + "/manifest.json.tmp", manifest_bytes)
    fs.rename(NEXT + "/manifest.json.tmp", NEXT + "/manifest.json")
    state.pop("attempts", None)
    return set_state(fs, state, "staged")


def confirm(fs, state):
    """A reading of the version on trial was PUBACKed: keep it, forget the one before."""
    state.pop("tries", None)
    set_state(fs, state, "confirmed")
    remove_tree(fs, PREV)
    return state
