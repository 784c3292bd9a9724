"""The fleet page shows each kit's last update, a failed one as something to do, in the reader's language."""

from __future__ import annotations

import json
import re
import time

import pytest
from fleet_helpers import Api

from lauks import schema
from lauks.contract import decode_status
from lauks.influx import InfluxClient

pytestmark = pytest.mark.services


async def sign_in(api: Api) -> None:
    page = await api.client.get("/signin")
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', page.text)
    assert found
    answer = await api.client.post("/signin", data={"token": api.token, "csrf": found.group(1), "next": "/fleet"},
                                   headers={"Origin": "http://lauks.test"}, follow_redirects=False)
    assert answer.status_code == 303


def status(fw: str, update: dict[str, str]) -> bytes:
    return json.dumps({"v": 1, "state": "online", "fw": fw, "interval_s": 60, "update": update}).encode()


async def test_a_rolled_back_update_is_on_the_fleet_page_with_the_kits_reason(
        api: Api, influx: InfluxClient, database: str) -> None:
    now = int(time.time() * 1000)
    rolled = decode_status(status("1.3.0", {"version": "1.4.0", "state": "rolled_back",
                                            "reason": "crashed at import: SyntaxError <bad>"}))
    confirmed = decode_status(status("1.4.0", {"version": "1.4.0", "state": "confirmed"}))
    await influx.write(database, [
        schema.status_line("school-1", "kit-01", rolled, now - 60_000),
        schema.status_line("school-1", "kit-02", confirmed, now - 120_000),
        *(schema.seen_line("school-1", kit, now, samples=1, late=0, boot=3, fw=fw)
          for kit, fw in (("kit-01", "1.3.0"), ("kit-02", "1.4.0")))])
    await sign_in(api)
    page = (await api.client.get("/fleet?site=school-1&lang=lv")).text
    kit_row = re.search(r'<tr data-kit="school-1/kit-01".*?</tr>', page, re.S)
    assert kit_row and 'data-issue="update_failed"' in kit_row.group(0)
    assert "Atjauninājums uz 1.4.0 neizdevās" in kit_row.group(0)
    updates = re.search(r'<table class="fleet-updates">.*?</table>', page, re.S)
    assert updates
    rows = re.findall(r'<tr data-kit="([^"]+)" data-update="([^"]+)">', updates.group(0))
    assert rows == [("school-1/kit-01", "rolled_back"), ("school-1/kit-02", "confirmed")]  # failed first
    assert "Atgriezts iepriekšējā versijā" in updates.group(0)
    assert "crashed at import: SyntaxError &lt;bad&gt;" in updates.group(0)  # the kit's words, escaped
    other = re.search(r'<tr data-kit="school-1/kit-02".*?</tr>', page, re.S)
    assert other and "update_failed" not in other.group(0)
