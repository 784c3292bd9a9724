"""The gateway end to end against a real Mosquitto and InfluxDB: store, de-duplicate, reject, report."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from gateway_helpers import Publisher, count, readings, running, settings, wait_for_count
from lauks.influx import InfluxClient
from lauks.services import Mosquitto
from lauks.topics import Topics


async def test_readings_are_stored_with_their_sample_times(tmp_path: Path, mosquitto: Mosquitto, influxd: object,
                                                         influx: InfluxClient, database: str, topics: Topics) -> None:
    config = settings(tmp_path, mosquitto.port, influx.url, database, topics)
    async with running(config):
        publisher = Publisher(mosquitto.port)
        for seq in range(20):
            publisher.publish(topics.readings("s1", "k1"), readings("k1", 1, seq))
        publisher.wait_acked(20)
        found = await wait_for_count(influx, database, "SELECT count(temperature) FROM readings", 20)
        publisher.close()
    assert found == 20
    assert await count(influx, database, "SELECT count(humidity) FROM readings") == 20
    rows = await influx.query_rows("SELECT temperature, site, kit FROM readings ORDER BY time LIMIT 1", database=database)
    assert rows[0]["site"] == "s1" and rows[0]["kit"] == "k1"
    assert rows[0]["time"] == (1_780_000_000 + 1_000_000) * 1000
