# The boot loader: run first at every start (main.py). It finishes a switch to a staged firmware, counts the
# boots of a version on trial and rolls it back when it crashes or cannot confirm in time.
# Never updated over the air (a broken boot loader would brick the kit), so it imports nothing from lauks_kit
# and keeps its own few lines of file handling. Every step is journaled in /update.json (written to a temporary
# file, then renamed: atomic on LittleFS), so a power cut between two renames is finished at the next boot.
import json
import os

STATE = "/update.json"
NEXT = "/next"  # the staged release, each file verified (lauks_kit/core/update.py writes it)
PREV = "/prev"  # the version before the one on trial, until it is confirmed
ACTIVE = "lauks_kit"
MAX_BOOTS = 3  # boots a version on trial has to confirm a reading
TRIAL_S = 900  # and seconds per boot: a version that runs but never confirms is reset (and counted again)


class Flash:
    """The file operations an update needs, each one atomic on LittleFS; paths are the kit's ("/next/...")."""

    def __init__(self, root=""):
        self.root = root  # "" on a kit; a simulated kit's flash folder

    def exists(self, path):
        try:
            os.stat(self.root + path)
            return True
        except OSError:
            return False

    def isdir(self, path):
        try:
            return os.stat(self.root + path)[0] & 0x4000 != 0
        except OSError:
            return False

    def read(self, path):
        with open(self.root + path, "rb") as f:
            return f.read()

    def open_read(self, path):
        return open(self.root + path, "rb")

    def open_write(self, path):
        return open(self.root + path, "wb")

    def write(self, path, data):
        with open(self.root + path, "wb") as f:
            f.write(data)

    def rename(self, old, new):
        os.rename(self.root + old, self.root + new)

    def remove(self, path):
        os.remove(self.root + path)

    def mkdir(self, path):
        os.mkdir(self.root + path)

    def rmdir(self, path):
        os.rmdir(self.root + path)

    def listdir(self, path):
        return os.listdir(self.root + path)

    def free(self):
        """Bytes free on the file system."""
        stat = os.statvfs(self.root or "/")
        return stat[0] * stat[3]


def read_state(fs):
    try:
        state = json.loads(fs.read(STATE))
    except (OSError, ValueError):
        return {}  # no update yet (a torn temporary file is never the state: it is renamed only once whole)
    return state if isinstance(state, dict) else {}


def write_state(fs, state):
    fs.write(STATE + ".tmp", json.dumps(state).encode())
    fs.rename(STATE + ".tmp", STATE)


def remove_tree(fs, path):
    if fs.isdir(path):
        for name in fs.listdir(path):
            remove_tree(fs, path + "/" + name)
        fs.rmdir(path)
    elif fs.exists(path):
        fs.remove(path)


def _switch(fs):
    """/lauks_kit -> /prev/lauks_kit, /next/lauks_kit -> /lauks_kit; whichever of the two is still to do."""
    active, prev, new = "/" + ACTIVE, PREV + "/" + ACTIVE, NEXT + "/" + ACTIVE
    if not fs.exists(PREV):
        fs.mkdir(PREV)
    if fs.exists(new):
        if fs.exists(active):
            fs.rename(active, prev)
        fs.rename(new, active)


def rollback(fs, state, reason):
    """Put the previous version back; the state says rolled_back with the reason."""
    active, prev = "/" + ACTIVE, PREV + "/" + ACTIVE
    if state.get("state") != "rolling_back":
        if not fs.exists(prev):  # nothing to go back to (a kit flashed by hand while on trial): stay
            state["state"], state["reason"] = "failed", (reason + "; no previous version kept")[:120]
            write_state(fs, state)
            return state
        state["state"], state["reason"] = "rolling_back", reason[:120]
        write_state(fs, state)
    if fs.exists(prev):  # absent: the rename below was done before a power cut
        remove_tree(fs, active)
        fs.rename(prev, active)
    state["state"] = "rolled_back"
    state.pop("tries", None)
    write_state(fs, state)
    remove_tree(fs, PREV)
    remove_tree(fs, NEXT)
    return state


def boot(fs, woke=False):
    """The update state the firmware starts with, after finishing or undoing whatever a reset interrupted.
    woke: a wake from deep sleep, which is not a new boot of the version on trial."""
    state = read_state(fs)
    if state.get("state") == "staged":
        if not (fs.exists(NEXT + "/manifest.json") and fs.isdir(NEXT + "/" + ACTIVE)):
            state["state"], state["reason"] = "failed", "the staged files were gone at boot"
            write_state(fs, state)
            return state
        remove_tree(fs, PREV)  # left by an earlier update: the running version is the confirmed one
        state["state"] = "switching"
        write_state(fs, state)
    if state.get("state") == "switching":
        _switch(fs)
        state["state"], state["tries"] = "trial", 0
        state.pop("reason", None)
        write_state(fs, state)
    kind = state.get("state")
    if kind == "trial":
        remove_tree(fs, NEXT)
        if not woke:
            state["tries"] = state.get("tries", 0) + 1
            if state["tries"] > MAX_BOOTS:
                return rollback(fs, state, "no confirmed reading within %d boots" % MAX_BOOTS)
            write_state(fs, state)
    elif kind == "rolling_back":
        return rollback(fs, state, state.get("reason") or "rolled back")
    elif kind in ("confirmed", "rolled_back"):
        remove_tree(fs, PREV)
        remove_tree(fs, NEXT)
    if not fs.isdir("/" + ACTIVE) and fs.isdir(PREV + "/" + ACTIVE):  # the last resort against a bricked kit
        fs.rename(PREV + "/" + ACTIVE, "/" + ACTIVE)
    return state


def crashed(fs, reason):
    """The firmware raised: a version on trial is rolled back at once (True); any other just restarts."""
    state = read_state(fs)
    if state.get("state") == "trial":
        rollback(fs, state, reason)
        return True
    return False


def start(fs, load, woke=False, log=print, on_trial=None):
    """Boot, then load() the firmware (imports) and run it. Returns (what went wrong, whether it rolled back)
    once the firmware has raised; a reset or deep sleep never returns."""
    try:
        state = boot(fs, woke)
    except Exception as e:  # the loader must never keep the kit from running what is there
        log("boot loader: %r" % (e,))
        state = {}
    if state.get("state") == "trial" and on_trial is not None:
        on_trial()
    phase = "import"
    try:
        kit = load()
        phase = "run"
        kit.run()
        return "the firmware returned", False
    except Exception as e:
        text = "crashed at %s: %s: %s" % (phase, type(e).__name__, e)
        import sys
        if hasattr(sys, "print_exception"):  # MicroPython: the traceback on the serial console
            sys.print_exception(e)
        log(text)
        try:
            return text, crashed(fs, text[:120])
        except Exception as e2:
            log("boot loader: %r" % (e2,))
            return text, False


def main(load):
    """On an ESP32: boot, run, and after a crash restart (at once after a rollback, else after a pause)."""
    import machine
    import time
    fs = Flash("")
    timer = machine.Timer(0)

    def trial_over(_):
        if read_state(fs).get("state") == "trial":  # not confirmed within TRIAL_S: counts as a failed boot
            machine.reset()

    def on_trial():
        timer.init(mode=machine.Timer.ONE_SHOT, period=TRIAL_S * 1000, callback=trial_over)

    _, rolled_back = start(fs, load, machine.reset_cause() == machine.DEEPSLEEP_RESET, print, on_trial)
    time.sleep(1 if rolled_back else 30)
    machine.reset()
