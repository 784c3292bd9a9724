"""The site page's data: sparklines break at gaps, the staleness and online rules, and the three fetchers against a
real InfluxDB (one request each for all kits, bounded in time)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from api.app import create_app
from api.settings import ApiSettings
from lauks import lineprotocol, schema
from lauks.influx import InfluxClient
from lauks.services import Influxd
from metastore import registry
from web import sitedata
from web.i18n import Translator
from web.pages.public import value_text
from web.sparkline import HEIGHT, PAD, WIDTH, spark

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)

# --- sparklines --------------------------------------------------------------------------------------------


def test_a_sparkline_without_values_has_no_path() -> None:
    line = spark([None, None, None])
    assert line.path == "" and line.points == 0 and line.low is None


def test_a_sparkline_spans_the_width_from_the_lowest_value_at_the_bottom_to_the_highest_at_the_top() -> None:
    line = spark([1.0, 3.0, 2.0])
    assert line.path == f"M0 {HEIGHT - PAD:g}L50 {PAD:g}L{WIDTH:g} 12"
    assert (line.low, line.high, line.points, line.gaps) == (1.0, 3.0, 3, 0)


def test_a_missing_bucket_lifts_the_pen_instead_of_drawing_a_line_through_it() -> None:
    line = spark([1.0, 2.0, None, None, 2.0, 1.0])
    assert line.path.count("M") == 2
    assert line.gaps == 1
    # the second stretch starts at the fifth bucket, not joined to the second
    assert "M80 " in line.path and "L80" not in line.path


def test_a_lone_value_between_gaps_is_drawn_as_a_dot() -> None:
    line = spark([None, 5.0, None, 4.0, 6.0])
    assert line.path.startswith("M25 ") and line.path.split("M")[1].endswith("h0")
    assert line.gaps == 1


def test_a_flat_series_is_drawn_in_the_middle() -> None:
    assert spark([2.0, 2.0]).path == f"M0 {HEIGHT / 2:g}L{WIDTH:g} {HEIGHT / 2:g}"


# --- staleness and online -----------------------------------------------------------------------------------


def test_values_are_stale_after_three_reporting_intervals_when_the_kit_said_its_interval() -> None:
    assert sitedata.stale_after_s(60, 900) == 180
    assert sitedata.stale_after_s(1200, 900) == 3600
    assert sitedata.stale_after_s(5, 900) == sitedata.MIN_STALE_S


def test_values_are_stale_after_the_online_window_when_the_interval_is_unknown() -> None:
    assert sitedata.stale_after_s(None, 900) == 900
    assert sitedata.stale_after_s(0, 900) == 900


def test_a_value_older_than_the_threshold_is_stale_and_a_newer_one_is_not() -> None:
    assert sitedata.is_stale(NOW - timedelta(hours=5), NOW, 900)
    assert not sitedata.is_stale(NOW - timedelta(minutes=14), NOW, 900)


def test_a_kit_heard_recently_is_online() -> None:
    status = sitedata.Status(seen=NOW - timedelta(minutes=2))
    assert sitedata.is_online(status, 900, NOW)


def test_a_kit_not_heard_within_three_intervals_is_silent_even_inside_the_online_window() -> None:
    status = sitedata.Status(seen=NOW - timedelta(minutes=5), interval_s=60)
    assert not sitedata.is_online(status, 900, NOW)


def test_a_kit_whose_newest_word_is_offline_is_not_online() -> None:
    status = sitedata.Status(seen=NOW - timedelta(minutes=3), state="offline", state_time=NOW - timedelta(minutes=1))
    assert not sitedata.is_online(status, 900, NOW)
    status.seen = NOW  # readings after the offline status: it is back
    assert sitedata.is_online(status, 900, NOW)


def test_a_kit_never_heard_is_not_online() -> None:
    assert not sitedata.is_online(None, 900, NOW)
    assert not sitedata.is_online(sitedata.Status(), 900, NOW)


def test_a_card_takes_battery_and_signal_apart_from_its_values() -> None:
    latest = {q: sitedata.Value(q, v, NOW) for q, v in (("temperature", 21.4), ("battery", 3.71), ("rssi", -67.0))}
    live = sitedata.kit_live("k", sitedata.Status(seen=NOW, battery=3.5), latest, {}, 900, NOW)
    assert [v.quantity for v in live.values] == ["temperature"]
    assert live.battery == 3.71 and live.rssi == -67.0


def test_a_value_is_written_in_the_locale_rounded_to_its_resolution_with_its_unit() -> None:
    assert value_text(Translator("lv"), "temperature", 21.4049) == "21,4\u00a0°C"
    assert value_text(Translator("en"), "temperature", 21.4049) == "21.4\u00a0°C"
    assert value_text(Translator("lt"), "uv_index", 3.14) == "3,1"


def test_quantity_labels_cover_the_catalog() -> None:
    from lauks.catalog import QUANTITY_NAMES
    assert set(sitedata.QUANTITY_LABELS) == set(QUANTITY_NAMES)
    assert sitedata.quantity_label(Translator("en"), "pm2_5") == "Fine dust PM2.5"


# --- InfluxQL -----------------------------------------------------------------------------------------------


def test_the_statements_quote_the_site_and_are_bounded_in_time() -> None:
    since = NOW - timedelta(days=30)
    for statement in (sitedata.latest_statement("a'b", since), sitedata.status_statement("a'b", since),
                      sitedata.spark_statement("a'b", since, NOW)):
        assert "'a\\'b'" in statement
        assert "time >= " in statement
    assert "GROUP BY \"site\", \"kit\"" in sitedata.status_statement(None, since)
    assert "SUM(\"rain\")" in sitedata.spark_statement("s", since, NOW)


def test_the_spark_window_ends_at_the_end_of_the_current_bucket() -> None:
    start, end = sitedata.spark_window(datetime(2026, 3, 2, 12, 7, 30, tzinfo=UTC))
    assert end == datetime(2026, 3, 2, 12, 15, tzinfo=UTC)
    assert end - start == timedelta(hours=24)


# --- the fetchers, against InfluxDB ---------------------------------------------------------------------------


def _reading(site: str, kit: str, at: datetime, **values: float) -> str:
    return lineprotocol.line(schema.READINGS, {schema.SITE: site, schema.KIT: kit}, values,
                             int(at.timestamp() * 1000))


def _status(site: str, kit: str, at: datetime, **fields: lineprotocol.FieldValue) -> str:
    return lineprotocol.line(schema.KIT_STATUS, {schema.SITE: site, schema.KIT: kit}, fields,
                             int(at.timestamp() * 1000))


async def test_the_fetchers_give_each_kits_newest_values_status_and_a_sparkline_with_its_gap(
        influx: InfluxClient, database: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    lines = [_reading("s1", "a", now - timedelta(minutes=m), temperature=20.0 + m / 100) for m in range(0, 120, 5)]
    lines += [_reading("s1", "a", now - timedelta(hours=h), temperature=15.0) for h in (10, 11)]  # a gap between
    lines.append(_reading("s1", "a", now - timedelta(hours=5), humidity=61.5))  # its humidity sensor stopped
    lines.append(_reading("s1", "b", now - timedelta(days=40), temperature=9.0))  # beyond the latest window
    lines.append(_reading("other", "a", now, temperature=99.0))  # another site's kit of the same name
    lines.append(_status("s1", "a", now - timedelta(minutes=1), seen=1, fw="1.2.0"))
    lines.append(_status("s1", "a", now - timedelta(minutes=3), state="online", battery=3.9, rssi=-70.0,
                         interval_s=60))
    lines.append(_status("other", "z", now - timedelta(hours=2), seen=1))
    await influx.write(database, lines)

    live = await sitedata.fetch_site(influx, database, "s1", now)
    assert set(live.latest) == {"a"}
    assert live.latest["a"]["temperature"].value == 20.0
    assert live.latest["a"]["humidity"].time == now - timedelta(hours=5)
    status = live.status[("s1", "a")]
    assert (status.seen, status.state, status.interval_s, status.fw) == (now - timedelta(minutes=1), "online", 60,
                                                                         "1.2.0")
    line = live.sparks["a"]["temperature"]
    assert len(line) == 24 * 3600 // sitedata.SPARK_BUCKET_S
    assert line[-1] is not None and line.count(None) > 0
    assert spark(line).gaps >= 1

    card = live.kit("s1", "a", 900, now)
    assert card.online and card.threshold_s == 180
    humidity = next(v for v in card.values if v.quantity == "humidity")
    assert sitedata.is_stale(humidity.time, now, card.threshold_s)

    every = await sitedata.fetch_status(influx, database, None, now)
    assert set(every) == {("s1", "a"), ("other", "z")}
    assert sitedata.counts("s1", ["a", "b"], every, 900, now) == (1, 1)
    assert sitedata.counts("other", ["z"], every, 900, now) == (0, 1)


async def test_a_kit_silent_for_days_is_found_beyond_the_recent_hours_and_its_values_are_stale(
        influx: InfluxClient, database: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    silent_since = now - timedelta(days=3)
    lines = [_reading("s2", "old", silent_since, temperature=4.5, humidity=80.0),
             _status("s2", "old", silent_since, seen=1, fw="1.0.0"),
             _reading("s2", "new", now - timedelta(minutes=2), temperature=7.25),
             _status("s2", "new", now - timedelta(minutes=2), seen=1, fw="1.1.0")]
    await influx.write(database, lines)
    live = await sitedata.fetch_site(influx, database, "s2", now, ["old", "new", "never"])
    assert live.latest["old"]["temperature"].value == 4.5  # read again over the 30 days: it sent nothing lately
    assert live.latest["new"]["temperature"].value == 7.25 and "never" not in live.latest
    assert live.status[("s2", "old")].seen == silent_since and live.status[("s2", "old")].fw == "1.0.0"
    card = live.kit("s2", "old", 900, now)
    assert not card.online and all(sitedata.is_stale(v.time, now, card.threshold_s) for v in card.values)
    every = await sitedata.fetch_status(influx, database, None, now, kits=[("s2", "old"), ("s2", "new")])
    assert every[("s2", "old")].seen == silent_since
    assert sitedata.counts("s2", ["old", "new"], every, 900, now) == (1, 1)
    assert sitedata.RECENT_HOURS * 3600 < (now - silent_since).total_seconds()  # the case the follow-up is for


async def test_sparklines_keep_finished_buckets_read_the_newest_again_and_everything_after_a_while(
        influx: InfluxClient, database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = timedelta(seconds=sitedata.SPARK_BUCKET_S)
    size = sitedata.SPARK_BUCKET_S
    now = datetime.fromtimestamp(int(datetime.now(UTC).timestamp()) // size * size - size + 60, UTC)  # 1 min in
    old = now - 4 * bucket
    await influx.write(database, [_reading("s3", "a", old, temperature=1.0), _reading("s3", "a", now, temperature=2.0)])
    first = (await sitedata.fetch_sparks(influx, database, "s3", now))["a"]["temperature"]
    assert first.count(None) == len(first) - 2
    # a new reading in the newest bucket is seen at once; a late one in a finished bucket not yet
    later = now + timedelta(seconds=1)
    await influx.write(database, [_reading("s3", "a", later, temperature=4.0),
                                  _reading("s3", "a", old - bucket, temperature=3.0)])
    second = (await sitedata.fetch_sparks(influx, database, "s3", later))["a"]["temperature"]
    assert second[-1] == 3.0  # the mean of 2 and 4, read again
    assert 3.0 not in second[:-3] and second.count(None) == len(second) - 2
    monkeypatch.setattr(sitedata, "SPARK_KEEP_S", 0.0)  # after a while everything is read again
    third = (await sitedata.fetch_sparks(influx, database, "s3", later))["a"]["temperature"]
    assert third.count(None) == len(third) - 3 and 3.0 in third[:-3]


def test_times_are_shown_in_the_schools_zone() -> None:
    t = Translator("lv").in_zone(ZoneInfo("Europe/Riga"))
    assert "14:00" in t.datetime(NOW, "short")


async def test_the_home_and_site_pages_answer_with_the_kits_counts_from_a_real_store(
        influxd: Influxd, database: str, tmp_path: Path) -> None:
    settings = ApiSettings(state_dir=tmp_path, influx_url=influxd.url, influx_database=database,
                           api_public_read=True, api_database_url=None, api_timezone="Europe/Riga")
    app = create_app(settings)
    now = datetime.now(UTC)
    async with app.router.lifespan_context(app):
        with app.state.sessions() as db:
            registry.add_site(db, "s1", title="School One")
            registry.add_kit(db, "s1", "a")
            registry.add_kit(db, "s1", "b")
        async with InfluxClient(influxd.url) as influx:
            await influx.write(database, [_reading("s1", "a", now, temperature=21.43),
                                          _status("s1", "a", now, seen=1, fw="1.0")])
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://lauks.test") as client:
            home = await client.get("/?lang=lv")
            assert home.status_code == 200, home.text[-3000:]
            assert "Tiešsaistē: 1" in home.text and "Klusē: 1" in home.text
            site = await client.get("/s/s1?lang=lv")
            assert site.status_code == 200
            assert "21,43\u00a0°C" in site.text
