"""The co-location fit's I/O: bucket means of one quantity of a reference kit and of kits beside it, from InfluxDB.

The kits' values are the raw ones (a kit's own calibration must not go into the fit of its new one); the
reference's are calibrated with its own calibrations, since they are its best estimate of the truth. The fit
itself is ``lauks.calibration.fit``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from lauks import influxql, schema
from lauks.calibration import Calibration, in_force
from lauks.influx import InfluxClient


@dataclass(frozen=True, slots=True, order=True)
class KitRef:
    site: str
    kit: str

    def __str__(self) -> str:
        return f"{self.site}/{self.kit}"


def means_statement(site: str, kits: list[str], quantity: str, start: datetime, end: datetime, every_s: int,
                    zone: ZoneInfo) -> str:
    """Per kit, the mean of ``quantity`` in each bucket that has any (buckets at the zone's midnights)."""
    field = influxql.identifier(quantity)
    tz = "" if zone.key == "UTC" else f" tz({influxql.string(zone.key)})"
    return (f"SELECT MEAN({field}) AS {field} FROM {influxql.identifier(schema.READINGS)} "
            f"WHERE {influxql.identifier(schema.SITE)} = {influxql.string(site)} "
            f"AND {influxql.identifier(schema.KIT)} =~ {influxql.regex_exact(kits)} "
            f"AND time >= {influxql.time_literal(start)} AND time < {influxql.time_literal(end)} "
            f"GROUP BY time({every_s}s), {influxql.identifier(schema.KIT)} fill(none){tz}")


async def bucket_means(client: InfluxClient, database: str, kits: Iterable[KitRef], quantity: str, start: datetime,
                       end: datetime, every_s: int, zone: ZoneInfo) -> dict[KitRef, dict[int, float]]:
    """Per kit, bucket start (ms) -> the raw mean; one statement per site. A kit with no data has an empty dict."""
    wanted = sorted(set(kits))
    out: dict[KitRef, dict[int, float]] = {k: {} for k in wanted}
    for site in sorted({k.site for k in wanted}):
        names = [k.kit for k in wanted if k.site == site]
        statement = means_statement(site, names, quantity, start, end, every_s, zone)
        async for series in client.query(statement, database=database):
            kit = KitRef(site, series.tags.get(schema.KIT, ""))
            if kit not in out:
                continue
            for time_ms, value in series.values:
                if value is not None:
                    out[kit][int(time_ms)] = float(value)
    return out


def calibrated(means: dict[int, float], calibrations: Iterable[Calibration], kit: str,
               quantity: str) -> dict[int, float]:
    """Bucket means with the calibration in force at each bucket's start applied (a mean maps linearly)."""
    found = list(calibrations)
    out: dict[int, float] = {}
    for time_ms, value in means.items():
        calibration = in_force(found, kit, quantity, time_ms)
        out[time_ms] = calibration.apply(value) if calibration is not None else value
    return out
