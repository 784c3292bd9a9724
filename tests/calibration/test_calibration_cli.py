"""`lauks kit calibrate|calibrations` and `lauks calibrate end|delete|colocate`, on a real store and a real
InfluxDB: a co-location fit on seeded data recovers the gain and offset it was made with, and every refusal
is a sentence, exit status 1, and nothing stored."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from lauks import lineprotocol, schema
from lauks.calibration import Calibration
from metastore import registry
from metastore.db import one_session
from stack.cli import main

START = datetime(2025, 3, 1, 8, tzinfo=UTC)  # 10:00 in Riga
HOURS = 8
WINDOW = ["--start", "2025-03-01T10:00", "--end", "2025-03-01T18:00"]  # the site's local time: 8 hours


class Lauks:
    def __init__(self, capsys: pytest.CaptureFixture[str], store_url: str) -> None:
        self.capsys = capsys
        self.store_url = store_url

    def __call__(self, *args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = self.capsys.readouterr()
        return code, out, err

    def stored(self) -> list[Calibration]:
        with one_session(self.store_url) as session:
            return registry.list_calibrations(session, "school")


@pytest.fixture
def lauks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], influx_url: str,
          database: str) -> Iterator[Lauks]:
    for name, value in {"LAUKS_STATE_DIR": str(tmp_path), "LAUKS_INFLUX_URL": influx_url,
                        "LAUKS_INFLUX_DATABASE": database, "LAUKS_API_TIMEZONE": "UTC"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("LAUKS_API_DATABASE_URL", raising=False)
    store_url = f"sqlite:///{tmp_path / 'lauks.db'}"
    with one_session(store_url) as session:
        registry.add_site(session, "school", timezone="Europe/Riga")
        for kit in ("ref", "k1", "k2", "k3", "k4"):
            registry.add_kit(session, "school", kit)
    yield Lauks(capsys, store_url)


def truth(minute: int) -> float:
    return 10 + 6 * math.sin(2 * math.pi * minute / 360)  # a 6-hour swing: the quantity varies


def seed(influx_url: str, database: str, kit: str, raw: dict[int, float]) -> None:
    lines = [lineprotocol.line(schema.READINGS, {schema.SITE: "school", schema.KIT: kit}, {"temperature": value},
                               int((START + timedelta(minutes=m)).timestamp() * 1000)) for m, value in raw.items()]
    httpx.post(f"{influx_url}/write", params={"db": database, "precision": "ms"}, content="\n".join(lines),
               timeout=30).raise_for_status()


def test_a_calibration_is_added_listed_ended_and_deleted_from_the_command_line(lauks: Lauks) -> None:
    code, out, err = lauks("kit", "calibrate", "school", "k1", "temperature", "--offset", "-0.4", "--gain", "1.02",
                           "--from", "2025-03-03", "--reason", "co-location, 3 March", "--by", "Ms Ozola")
    assert code == 0, err
    assert "added calibration 1" in out and "2025-03-03 00:00" in out
    code, out, _ = lauks("kit", "calibrate", "school", "k1", "temperature", "--offset", "0.1",
                         "--from", "2025-04-01T08:00", "--reason", "recalibrated")
    assert code == 0 and "ended calibration 1" in out
    code, out, _ = lauks("kit", "calibrations", "school", "k1")
    assert code == 0 and len(out.splitlines()) == 2 and "co-location, 3 March\t(Ms Ozola)" in out
    assert lauks("calibrate", "end", "2", "--to", "2025-04-30")[0] == 0
    assert lauks("calibrate", "delete", "1")[0] == 0
    [left] = lauks.stored()
    assert (left.id, left.offset, left.gain, left.valid_to) == (2, 0.1, 1.0, datetime(2025, 4, 30, 21, tzinfo=UTC))
    for args in (["calibrate", "delete", "1"], ["calibrate", "end", "9", "--to", "2025-05-01"]):
        code, _, err = lauks(*args)
        assert code == 1 and "there is no calibration" in err and "lauks kit calibrations" in err
    code, _, err = lauks("calibrate", "end", "2", "--to", "2025-03-01")
    assert code == 1 and "before it starts" in err
    assert lauks.stored() == [left]


BAD_CALIBRATIONS = [
    (["--gain", "0"], "gain must be above 0"),
    (["--gain", "-1"], "gain must be above 0"),
    ([], "give --offset, --gain or both"),
    (["--offset", "1", "--to", "2025-02-01"], "before it starts"),
    (["--offset", "1", "--to", "2025-05-01"], "overlaps calibration 1 "),
    (["--offset", "1", "--from", "March"], "--from 'March' is not a date"),
]


def test_a_bad_calibration_on_the_command_line_is_a_sentence_and_changes_nothing(lauks: Lauks) -> None:
    assert lauks("kit", "calibrate", "school", "k1", "temperature", "--offset", "1", "--from", "2025-04-01",
                 "--reason", "first")[0] == 0
    before = lauks.stored()
    for args, said in BAD_CALIBRATIONS:
        rest = [*args]
        for key, value in {"--from": "2025-03-01", "--reason": "second"}.items():
            if key not in rest:
                rest += [key, value]
        code, out, err = lauks("kit", "calibrate", "school", "k1", "temperature", *rest)
        assert (code, out) == (1, "") and said in err and err.startswith("lauks: "), (args, err)
        assert lauks.stored() == before


def test_an_unknown_quantity_or_kit_is_refused_on_the_command_line(lauks: Lauks) -> None:
    code, _, err = lauks("kit", "calibrate", "school", "k1", "temprature", "--offset", "1", "--from", "2025-03-01",
                         "--reason", "x")
    assert code == 1 and "not in the catalog" in err and "temperature" in err
    code, _, err = lauks("kit", "calibrate", "school", "k9", "temperature", "--offset", "1", "--from", "2025-03-01",
                         "--reason", "x")
    assert code == 1 and "has no kit 'k9'" in err
    assert lauks.stored() == []


def test_colocation_recovers_gain_and_offset_from_raw_values_and_applies_them_from_the_start(
        lauks: Lauks, influx_url: str, database: str) -> None:
    minutes = range(HOURS * 60)
    seed(influx_url, database, "ref", {m: truth(m) for m in minutes})
    seed(influx_url, database, "k1", {m: (truth(m) + 0.8) / 1.05 for m in minutes})  # truth = 1.05 k1 - 0.8
    seed(influx_url, database, "k2", {m: (truth(m) - 1.2) / 0.95 for m in minutes if m % 2})  # every other minute
    # k1's own calibration in force since before must not touch the fit; the reference's own applies to it
    assert lauks("kit", "calibrate", "school", "k1", "temperature", "--gain", "2", "--offset", "5",
                 "--from", "2025-02-01", "--reason", "old")[0] == 0
    assert lauks("kit", "calibrate", "school", "ref", "temperature", "--offset", "0.5",
                 "--from", "2025-01-01", "--reason", "reference certificate")[0] == 0
    code, out, err = lauks("calibrate", "colocate", "--reference", "school/ref", "--kits", "k1,school/k2",
                           "--quantity", "temperature", *WINDOW, "--apply", "--by", "Ms Ozola")
    assert code == 0, err
    assert "school/k1: reference = 1.05 × k1 - 0.3 °C; R² 1.0000" in out, out  # -0.8 + the reference's 0.5
    assert "48 pairs of 10m means" in out
    stored = {c.kit: c for c in lauks.stored() if c.quantity == "temperature"}
    k1, k2 = stored["k1"], stored["k2"]
    assert k1.gain == pytest.approx(1.05) and k1.offset == pytest.approx(-0.3)
    # k2's means are of other minutes than the reference's: close, not exact
    assert k2.gain == pytest.approx(0.95, abs=0.005) and k2.offset == pytest.approx(1.7, abs=0.05)
    assert k1.valid_from == START and k1.valid_to is None and k1.created_by == "Ms Ozola"
    assert k1.reason == ("co-location with school/ref 2025-03-01 10:00..2025-03-01 18:00 Europe/Riga, R² 1.0000, "
                         "48 pairs of 10m means")
    old = next(c for c in lauks.stored() if c.kit == "k1" and c.reason == "old")
    assert old.valid_to == START  # replaced from the co-location's start


def test_colocation_with_no_overlapping_data_or_too_few_pairs_is_refused_and_stores_nothing(
        lauks: Lauks, influx_url: str, database: str) -> None:
    seed(influx_url, database, "ref", {m: truth(m) for m in range(HOURS * 60)})
    seed(influx_url, database, "k1", {m: truth(m) for m in range(HOURS * 60)})
    seed(influx_url, database, "k3", {m + HOURS * 60: truth(m) for m in range(120)})  # after the window
    seed(influx_url, database, "k4", {m: truth(m) + 1 for m in range(120)})  # 2 hours: 12 buckets
    code, out, err = lauks("calibrate", "colocate", "--reference", "school/ref", "--kits", "k1,k3,k4",
                           "--quantity", "temperature", *WINDOW, "--apply")
    assert code == 1
    assert "school/k1: reference = 1 × k1" in out  # its fit is shown, but not stored: the others have none
    assert "school/k3: the kit and the reference have no data in the same buckets" in err
    assert "k3 has temperature in 0 of the buckets, the reference in 48" in err
    assert "school/k4: only 12 pairs of buckets where both have data; a fit needs at least 30" in err
    assert "nothing was stored" in err
    assert lauks.stored() == []


BAD_COLOCATIONS = [
    (["--reference", "school/ref", "--kits", "k1", "--quantity", "temprature"], "not in the catalog"),
    (["--reference", "school/ref", "--kits", "ref", "--quantity", "temperature"], "cannot be fitted against itself"),
    (["--reference", "ref", "--kits", "k1", "--quantity", "temperature"], "write <site>/<kit>"),
    (["--reference", "school/ref", "--kits", "k9", "--quantity", "temperature"], "has no kit 'k9'"),
    (["--reference", "school/ref", "--kits", "k1", "--quantity", "temperature", "--every", "7m"], "every='7m'"),
    (["--reference", "school/ref", "--kits", "k1", "--quantity", "humidity"], "the reference school/ref has no "
                                                                              "humidity"),
]


def test_a_colocation_that_cannot_be_fitted_says_why(lauks: Lauks) -> None:
    for args, said in BAD_COLOCATIONS:
        code, _, err = lauks("calibrate", "colocate", *args, *WINDOW, "--apply")
        assert code == 1 and said in err, (args, err)
    assert lauks.stored() == []
