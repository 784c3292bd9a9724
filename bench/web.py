"""Benchmark: the web app's pages, chart data, first load, publish-to-visible and memory, on a year of data.

    python -m bench.web [--days 365] [--kits 20] [--repeat 40] [--publishes 5]

Starts its own InfluxDB and Mosquitto (lauks.services), seeds ``--days`` of one-minute readings for a
``--kits``-kit site (5 quantities, line protocol in large batches, time order; seen points for the last
30 days, a few status messages and rejections) and prints how long seeding took. Then, with a real
gateway and the real ``lauks api`` process (harness), it prints:

- page HTML p50/p95 of /, /s/<site>, /s/<site>/<kit>, /d, /d/<code> and /fleet (signed in through
  the sign-in form: its CSRF cookie and field, then the session cookie); a page that answers 404 is
  "not there" (pages are being written);
- chart data p50/p95 for 24 h and for 1 y (/w/series/kit/...?range=...&width=800);
- the kit page's first load, compressed: its HTML and every script and style it links, fetched with
  Accept-Encoding: gzip, bytes on the wire (and with its charts' data too);
- publish-to-visible: a reading published through Mosquitto and the gateway, until the kit's live
  stream (/w/live/kit/...) delivers it;
- the API process's peak RSS over the whole run (psutil, sampled every 20 ms).

Beside each timing it prints the CPU milliseconds per request that the API and InfluxDB spent, and the
load average before and after: on a busy machine the wall clock includes waiting for a core.

It prints figures and never asserts them. Targets (issue 12): page HTML p95 <= 100 ms, 24 h chart
data <= 100 ms, first load <= 300 KB compressed, publish-to-visible <= 5 s.
"""

from __future__ import annotations

import concurrent.futures
import html.parser
import json
import math
import os
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urljoin, urlsplit

import httpx
import psutil

from bench.command import arguments
from bench.gateway_common import stack
from harness.api import start_api
from harness.command import ROOT, lauks_command
from harness.publisher import Publisher
from lauks import schema
from lauks.services import free_port
from lauks.topics import Topics
from metastore.registry import register_kit

SITE = "bench-school"
DATABASE = "web"
QUANTITIES = ("temperature", "humidity", "pressure", "battery", "rssi")
SEEN_DAYS = 30  # the fleet page looks 30 days back for a kit's last facts (web.fleetdata.LOOKBACK)
BATCH_LINES = 60_000
TOPIC_ROOT = "lauks"


# --- seeding ---------------------------------------------------------------------------------------------


def kit_names(kits: int) -> list[str]:
    return [f"k{k:02d}" for k in range(kits)]


def day_lines(kits: list[str], day_start_s: int, seen: bool, site: str = SITE) -> list[str]:
    """One day of one-minute readings of every kit (and their seen points), in time order per kit.

    The values follow a daily and a yearly cycle, so charts look like weather; formatted with fixed
    decimals, which is what most of the seeding's time goes to."""
    lines: list[str] = []
    day_of_year = (day_start_s // 86_400) % 365
    season = 8.0 * math.sin(2 * math.pi * day_of_year / 365)
    for index, kit in enumerate(kits):
        head = f"{schema.READINGS},{schema.KIT}={kit},{schema.SITE}={site} "
        seen_head = f"{schema.KIT_STATUS},{schema.KIT}={kit},{schema.SITE}={site} "
        offset = index * 0.1
        for minute in range(1440):
            t_ms = (day_start_s + minute * 60) * 1000
            daily = 6.0 * math.sin(2 * math.pi * (minute - 480) / 1440)
            lines.append(f"{head}temperature={5 + season + daily + offset:.2f},humidity={70 - 2 * daily:.1f},"
                         f"pressure={1012 + season / 2:.2f},battery={4.1 - minute / 14400:.3f},"
                         f"rssi={-60 - index % 20:.0f} {t_ms}")
            if seen:
                lines.append(f"{seen_head}{schema.SEEN}=1i,{schema.SAMPLES}=1i,{schema.LATE}=0i,"
                             f"{schema.BOOT}=1i,{schema.FW}=\"1.4.0\" {t_ms}")
    return lines


def write(client: httpx.Client, url: str, lines: list[str]) -> None:
    body = ("\n".join(lines) + "\n").encode()
    for attempt in range(20):
        answer = client.post(f"{url}/write", params={"db": DATABASE, "precision": "ms"}, content=body)
        if answer.status_code == 204:
            return
        if answer.status_code < 500:
            raise RuntimeError(f"InfluxDB refused a batch: {answer.status_code} {answer.text[:200]}")
        time.sleep(0.5 * (attempt + 1))  # the cache is full while it snapshots: wait and write again
    raise RuntimeError("InfluxDB kept refusing a batch")


def seed(url: str, kits: list[str], days: int, now: datetime) -> int:
    """``days`` of readings up to ``now`` for ``kits``, two batches in flight while the next is made."""
    httpx.post(f"{url}/query", data={"q": f'CREATE DATABASE "{DATABASE}"'}, timeout=30).raise_for_status()
    first_day = int((now - timedelta(days=days)).timestamp()) // 86_400 * 86_400
    last_minute = int(now.timestamp()) // 60 * 60 - 60
    written = 0
    with httpx.Client(timeout=300) as client, concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        pending: list[concurrent.futures.Future[None]] = []
        batch: list[str] = []
        day = first_day
        while day <= last_minute:
            lines = day_lines(kits, day, seen=day >= last_minute - SEEN_DAYS * 86_400)
            if day + 86_400 > last_minute:  # today: nothing after now
                lines = [line for line in lines if int(line.rsplit(" ", 1)[1]) <= last_minute * 1000]
            batch += lines
            day += 86_400
            if len(batch) >= BATCH_LINES or day > last_minute:
                while len(pending) >= 2:
                    pending.pop(0).result()
                pending.append(pool.submit(write, client, url, batch))
                written += len(batch)
                batch = []
        for future in pending:
            future.result()
    return written


def other_sites(fleet_kits: int, kits: int) -> dict[str, list[str]]:
    """The other schools of the fleet, ``kits`` kits each, until the fleet has ``fleet_kits``."""
    sites: dict[str, list[str]] = {}
    left = fleet_kits - kits
    while left > 0:
        sites[f"school-{len(sites) + 1:02d}"] = kit_names(min(kits, left))
        left -= kits
    return sites


def seed_fleet(url: str, sites: dict[str, list[str]], now: datetime) -> int:
    """The other schools' last two days of readings and seen points, and a status message per kit; each
    school's last kit fell silent three hours ago (so the fleet page asks for its older facts)."""
    last_minute = int(now.timestamp()) // 60 * 60 - 60
    first_day = last_minute // 86_400 * 86_400 - 86_400
    written = 0
    with httpx.Client(timeout=300) as client:
        for site, kits in sites.items():
            lines = []
            for day in (first_day, first_day + 86_400):
                lines += day_lines(kits, day, seen=True, site=site)
            silent_after = (last_minute - 3 * 3600) * 1000
            silent = f",{schema.KIT}={kits[-1]},"
            lines = [line for line in lines if int(line.rsplit(" ", 1)[1]) <= last_minute * 1000
                     and not (silent in line and int(line.rsplit(" ", 1)[1]) > silent_after)]
            for kit in kits:
                lines.append(f'{schema.KIT_STATUS},{schema.KIT}={kit},{schema.SITE}={site} {schema.STATE}="online",'
                             f'{schema.FW}="1.4.0",{schema.INTERVAL_S}=60i {(last_minute - 86_400) * 1000}')
            write(client, url, lines)
            written += len(lines)
    return written


def extras(url: str, kits: list[str], now: datetime) -> None:
    """A status message per kit (two firmware versions, one low battery) and some rejections, for /fleet."""
    now_ms = int(now.timestamp() * 1000)
    lines = []
    for index, kit in enumerate(kits):
        head = f"{schema.KIT_STATUS},{schema.KIT}={kit},{schema.SITE}={SITE} "
        battery = 3.3 if index == 1 else 3.95
        fw = "1.3.0" if index % 5 == 0 else "1.4.0"
        lines.append(f'{head}{schema.STATE}="online",{schema.FW}="{fw}",{schema.INTERVAL_S}=60i,'
                     f"{schema.BATTERY}={battery},{schema.BUFFERED}=0i,{schema.DROPPED}=0i {now_ms - 3_600_000}")
    for n in range(50):
        lines.append(schema.rejection_line(SITE, kits[2], "out_of_range", "temperature 999 is above 70",
                                           now_ms - n * 60_000, field_name="temperature", bad_value=999.0,
                                           bound=70.0))
    with httpx.Client(timeout=60) as client:
        write(client, url, lines)


# --- measuring -------------------------------------------------------------------------------------------


@dataclass
class PeakRss:
    """The highest RSS of a process, sampled every 20 ms on a thread of its own."""

    pid: int
    peak: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> PeakRss:
        process = psutil.Process(self.pid)

        def sample() -> None:
            while not self._stop.is_set():
                try:
                    self.peak = max(self.peak, process.memory_info().rss)
                except psutil.Error:
                    return
                time.sleep(0.02)

        threading.Thread(target=sample, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


# The API's and InfluxDB's processes, whose CPU time per request is printed beside the wall-clock figures: on a
# machine busy with other work the wall clock includes waiting for a core, the CPU time does not.
SERVERS: dict[str, psutil.Process] = {}


def cpu_s() -> dict[str, float]:
    found = {}
    for name, process in SERVERS.items():
        try:
            times = process.cpu_times()
            found[name] = times.user + times.system
        except psutil.Error:
            found[name] = 0.0
    return found


def timed(client: httpx.Client, path: str, repeat: int) -> tuple[int, list[float], int, dict[str, float]]:
    """(status, milliseconds of each of ``repeat`` GETs after one warm-up, bytes of the last body, CPU
    milliseconds per request of each server process)."""
    first = client.get(path)
    if first.status_code != 200:
        return first.status_code, [], len(first.content), {}
    times = []
    size = 0
    before = cpu_s()
    for _ in range(repeat):
        began = time.perf_counter()
        answer = client.get(path)
        size = len(answer.content)
        times.append((time.perf_counter() - began) * 1000)
    after = cpu_s()
    return 200, times, size, {name: (after[name] - before[name]) * 1000 / repeat for name in after}


def report(label: str, client: httpx.Client, path: str, repeat: int) -> float | None:
    status, times, size, cpu = timed(client, path, repeat)
    if status == 404:
        print(f"{label:<28} {path}: not there (404)")
        return None
    if status != 200:
        print(f"{label:<28} {path}: answered {status}")
        return None
    p95 = percentile(times, 0.95)
    spent = "  ".join(f"{name} {ms:5.1f}" for name, ms in cpu.items())
    print(f"{label:<28} p50={statistics.median(times):6.1f} ms  p95={p95:6.1f} ms  max={max(times):6.1f} ms  "
          f"CPU ms/request: {spent}  ({size / 1000:.1f} kB, {len(times)} requests)")
    return p95


def sign_in(client: httpx.Client, token: str) -> bool:
    """Sign ``client`` in through the form, as a browser does: the CSRF cookie and field, then the session."""
    form = client.get("/signin")
    marker = 'name="csrf" value="'
    if form.status_code != 200 or marker not in form.text:
        return False
    csrf = form.text.split(marker, 1)[1].split('"', 1)[0]
    answer = client.post("/signin", data={"token": token, "csrf": csrf, "next": "/fleet"},
                         headers={"Origin": str(client.base_url).rstrip("/")}, follow_redirects=False)
    return answer.status_code == 303 and "lauks_session" in client.cookies


class _Links(html.parser.HTMLParser):
    """The scripts, stylesheets and icons a page links, and its charts' data-series URLs."""

    def __init__(self) -> None:
        super().__init__()
        self.assets: list[str] = []
        self.series: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script" and found.get("src"):
            self.assets.append(str(found["src"]))
        elif tag == "link" and found.get("href") and {"stylesheet", "icon"} & set((found.get("rel") or "").split()):
            self.assets.append(str(found["href"]))
        if found.get("data-series"):
            self.series.append(str(found["data-series"]))


def wire_bytes(client: httpx.Client, url: str) -> tuple[int, str]:
    """Bytes on the wire of a GET with Accept-Encoding: gzip, and its content-encoding."""
    with client.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as answer:
        for _ in answer.iter_raw():
            pass
        return answer.num_bytes_downloaded, answer.headers.get("content-encoding", "identity")


def first_load(client: httpx.Client, path: str) -> None:
    page = client.get(path, headers={"Accept-Encoding": "gzip"})
    if page.status_code != 200:
        print(f"first load of {path}: {'not there' if page.status_code == 404 else page.status_code}")
        return
    links = _Links()
    links.feed(page.text)
    total, encoding = wire_bytes(client, path)
    print(f"first load of {path} (compressed, bytes on the wire):")
    print(f"  {'page HTML':<44} {total / 1000:7.1f} kB {encoding}")
    for asset in dict.fromkeys(links.assets):
        size, encoding = wire_bytes(client, urljoin(str(client.base_url), asset))
        total += size
        print(f"  {urlsplit(asset).path:<44} {size / 1000:7.1f} kB {encoding}")
    print(f"first load: {total / 1000:.1f} KB compressed ({len(links.assets)} files and the HTML; target <= 300 KB)")
    data = 0
    for series in links.series:
        url = series + ("&" if "?" in series else "?") + "width=800"
        size, _encoding = wire_bytes(client, urljoin(str(client.base_url), url))
        data += size
    if links.series:
        print(f"first load with its {len(links.series)} charts' data (width=800): {(total + data) / 1000:.1f} KB")


@dataclass
class LiveWatch:
    """A kit's live stream read on a thread of its own, until an event with ``marker`` (its id line) comes."""

    url: str
    marker: str
    ready: threading.Event = field(default_factory=threading.Event)
    arrived: threading.Event = field(default_factory=threading.Event)
    problem: str | None = None

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._listen, daemon=True)
        thread.start()
        return thread

    def _listen(self) -> None:
        try:
            with httpx.stream("GET", self.url, timeout=30) as stream:
                if stream.status_code != 200:
                    self.problem = f"answered {stream.status_code}"
                    return
                for line in stream.iter_lines():
                    self.ready.set()  # the stream's first line (its retry) has come: it is open
                    if line.startswith(self.marker):
                        self.arrived.set()
                        return
        except httpx.HTTPError as error:
            self.problem = repr(error)
        finally:
            self.ready.set()


def publish_to_visible(api_url: str, broker_port: int, kit: str, times: int) -> None:
    """Publish a reading through the broker; time until the kit's live stream delivers an event with its time."""
    topics = Topics(TOPIC_ROOT)
    found: list[float] = []
    with Publisher(broker_port) as publisher:
        for n in range(times):
            watch = LiveWatch(f"{api_url}/w/live/kit/{SITE}/{kit}", "\0")  # matches nothing until set below
            listener = watch.start()
            watch.ready.wait(10)
            time.sleep(0.01)
            t_s = round(time.time(), 3)  # after the stream opened: it sends what is newer than its start
            watch.marker = f"id: {int(t_s * 1000)}"
            if watch.problem:
                print(f"publish-to-visible: /w/live/kit/{SITE}/{kit} {watch.problem}"
                      f"{': not there' if '404' in watch.problem else ''}")
                return
            payload = json.dumps({"v": 1, "kit": kit, "boot": 1, "seq": 1_000_000 + n, "fw": "1.4.0",
                                  "samples": [{"t": t_s, "temperature": 21.0 + n}]})
            began = time.perf_counter()
            publisher.publish_and_wait(topics.readings(SITE, kit), payload.encode())
            if watch.arrived.wait(15):
                found.append(time.perf_counter() - began)
            listener.join(1)
            time.sleep(0.5)
    if found:
        print(f"publish-to-visible (broker, gateway, store, live stream): {len(found)} of {times} seen, "
              f"p50={statistics.median(found):.2f} s  max={max(found):.2f} s (target <= 5 s)")
    else:
        print(f"publish-to-visible: none of {times} readings arrived within 15 s")


def wait_for_quiet(pid: int, limit_s: float = 180.0) -> float:
    """Wait until a process uses less than a tenth of a core over a second (InfluxDB compacting what was just
    seeded would otherwise be timed with the pages); the seconds waited."""
    process = psutil.Process(pid)
    began = time.perf_counter()
    process.cpu_percent(None)
    while time.perf_counter() - began < limit_s:
        time.sleep(1.0)
        if process.cpu_percent(None) < 10.0:
            break
    return time.perf_counter() - began


def lauks(env: dict[str, str], *argv: str) -> str:
    return subprocess.run(lauks_command(*argv), env=env, cwd=ROOT, check=True, capture_output=True,
                          text=True).stdout.strip()


def make_dataset(client: httpx.Client, token: str) -> str | None:
    answer = client.post("/v1/datasets", headers={"Authorization": f"Bearer {token}"}, json={
        "title": "Schoolyard weather, the last week", "site": SITE, "quantities": ["temperature", "humidity"],
        "rolling_days": 7, "every": "1h"})
    if answer.status_code != 201:
        print(f"dataset: the API answered {answer.status_code} {answer.text[:200]}")
        return None
    return str(answer.json()["code"])


def main() -> int:
    parser = arguments(__doc__)
    parser.add_argument("--days", type=int, default=365, help="days of one-minute data (default a year)")
    parser.add_argument("--kits", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=40, help="requests per page after a warm-up")
    parser.add_argument("--publishes", type=int, default=5)
    parser.add_argument("--fleet-kits", type=int, default=280,
                        help="kits of the whole fleet for /fleet: other schools get two days of data")
    args = parser.parse_args()
    kits = kit_names(args.kits)
    now = datetime.now(UTC)
    with stack() as running:
        began = time.perf_counter()
        lines = seed(running.store.url, kits, args.days, now)
        extras(running.store.url, kits, now)
        seconds = time.perf_counter() - began
        print(f"seeded {args.days} days of one-minute data, {args.kits} kits x {len(QUANTITIES)} quantities: "
              f"{lines:,} lines in {seconds:.1f} s ({lines / seconds:,.0f} lines/s)")
        others = other_sites(args.fleet_kits, args.kits)
        if others:
            began = time.perf_counter()
            fleet_lines = seed_fleet(running.store.url, others, now)
            print(f"seeded the rest of the fleet: {sum(map(len, others.values()))} kits in {len(others)} schools, "
                  f"two days each, {fleet_lines:,} lines in {time.perf_counter() - began:.1f} s")
        state = running.directory / "state"
        for site, names in {SITE: kits, **others}.items():
            for kit in names:
                register_kit(site, kit, "weather", state_dir=state)
        env = {**os.environ, "LAUKS_STATE_DIR": str(state), "LAUKS_INFLUX_URL": running.store.url,
               "LAUKS_INFLUX_DATABASE": DATABASE, "LAUKS_API_PORT": str(free_port()),
               "LAUKS_API_RATE_LIMIT_PER_MINUTE": "1000000", "LAUKS_API_RATE_BURST": "100000",
               "LAUKS_API_PUBLIC_READ": "true", "LAUKS_API_MAP_TILES_URL": "", "LAUKS_API_TIMEZONE": "Europe/Riga",
               "LAUKS_TOPIC_ROOT": TOPIC_ROOT}
        lauks(env, "site", "edit", SITE, "--title", "Bench School", "--timezone", "Europe/Riga")
        token = lauks(env, "token", "create", "--name", "bench").splitlines()[-1].strip()
        running.start_gateway(DATABASE, topic_root=TOPIC_ROOT)
        if running.store.child is not None and running.store.child.process is not None:
            waited = wait_for_quiet(running.store.child.process.pid)
            print(f"waited {waited:.0f} s for InfluxDB's compactions to settle")
        print(f"load average before the measurements: {' '.join(f'{v:.1f}' for v in os.getloadavg())} "
              f"on {os.cpu_count()} cores (other work on the machine slows the wall-clock figures)")
        with start_api(env) as api, PeakRss(api.pid) as rss:
            SERVERS["api"] = psutil.Process(api.pid)
            if running.store.child is not None and running.store.child.process is not None:
                SERVERS["influxd"] = psutil.Process(running.store.child.process.pid)
            with httpx.Client(base_url=api.url, timeout=120) as client:
                code = make_dataset(client, token)
                kit = kits[0]
                print(f"page HTML ({args.repeat} requests each, after a warm-up; target p95 <= 100 ms):")
                for label, path in (("home", "/"), ("site", f"/s/{SITE}"), ("kit", f"/s/{SITE}/{kit}"),
                                    ("class code form", "/d"), ("class dataset", f"/d/{code}" if code else None)):
                    if path is not None:
                        report(label, client, path, args.repeat)
                with httpx.Client(base_url=api.url, timeout=120) as staff:
                    if sign_in(staff, token):
                        report(f"fleet, one site ({args.kits} kits)", staff, f"/fleet?site={SITE}", args.repeat)
                        report(f"fleet, all ({args.kits + sum(map(len, others.values()))} kits)", staff, "/fleet",
                               args.repeat)
                    else:
                        print("fleet: could not sign in through /signin")
                print("chart data (one kit, temperature, width=800; target 24 h <= 100 ms):")
                for range_ in ("24h", "7d", "30d", "1y"):
                    report(f"series {range_}", client, f"/w/series/kit/{SITE}/{kit}?q=temperature&range={range_}"
                           f"&width=800", args.repeat if range_ != "1y" else max(5, args.repeat // 4))
                if code:
                    report("series of the dataset", client, f"/w/series/d/{code}?q=temperature&width=800",
                           args.repeat)
                first_load(client, f"/s/{SITE}/{kit}")
            publish_to_visible(api.url, running.broker.port, kits[-1], args.publishes)
            time.sleep(0.1)
        print(f"API peak RSS: {rss.peak / 1e6:.0f} MB")
        print(f"load average after: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
