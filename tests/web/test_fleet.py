"""The staff fleet page in a real browser, on the real stack: kits published through the broker and the gateway."""

from __future__ import annotations

import time
from typing import Any

import pytest
from web_screens import Screen
from web_stack import WebStack, axe_results

from lauks import schema
from web.i18n import Translator

NORTH, SOUTH, WEST = "fleet-north", "fleet-south", "fleet-west"
LV = Translator("lv")


@pytest.fixture(scope="module")
def fleet(web_stack: WebStack) -> WebStack:
    """Two sites: in the north a silent kit, a low battery, a kit that sends an out-of-range value on an older
    firmware, and a kit that backfills; in the south one healthy kit."""
    web_stack.add_site(NORTH)
    web_stack.add_site(SOUTH)
    for kit in ("quiet", "low", "noisy", "fresh"):
        web_stack.add_kit(NORTH, kit)
    web_stack.add_kit(SOUTH, "far")
    # in the west, an update that rolled back and one that took (their status messages, as the kits send them)
    web_stack.add_site(WEST)
    for kit in ("tried", "took"):
        web_stack.add_kit(WEST, kit)
    now = time.time()
    three_hours_ago = int((now - 3 * 3600) * 1000)
    web_stack.write_points([
        web_stack.reading_line(NORTH, "quiet", now - 3 * 3600, temperature=4.5),
        schema.seen_line(NORTH, "quiet", three_hours_ago, samples=1, late=0, boot=1, fw="1.4.0"),
    ])
    web_stack.publish_status(NORTH, "low", battery=3.2, fw="1.4.0", interval_s=60, buffered=0, dropped=0)
    web_stack.publish(NORTH, "low", [{"t": now, "temperature": 5.0}], fw="1.4.0")
    web_stack.publish(NORTH, "noisy", [{"t": now - 60, "temperature": 5.5}, {"t": now, "temperature": 999.0}],
                      fw="1.3.0")
    web_stack.publish(NORTH, "fresh", [{"t": now - 900, "temperature": 6.0}, {"t": now, "temperature": 6.5}],
                      fw="1.4.0")
    web_stack.publish(SOUTH, "far", [{"t": now, "temperature": 7.0}], fw="1.4.0")
    web_stack.publish_status(WEST, "tried", fw="1.4.0", interval_s=60, update={
        "version": "1.5.0", "state": "rolled_back", "reason": "crashed at import: ImportError: no module named 'bme'"})
    web_stack.publish_status(WEST, "took", fw="1.5.0", interval_s=60, update={"version": "1.5.0", "state": "confirmed"})
    for kit, fw in (("tried", "1.4.0"), ("took", "1.5.0")):
        web_stack.publish(WEST, kit, [{"t": now, "temperature": 8.0}], fw=fw)
    rejected = web_stack.wait_for(f"SELECT * FROM rejections WHERE site = '{NORTH}'")
    assert rejected and rejected[0]["reason"] == "out_of_range"
    seen = web_stack.wait_for(f"SELECT seen FROM kit_status WHERE site = '{NORTH}' AND time > now() - 1h", count=3)
    assert len(seen) >= 3
    assert len(web_stack.wait_for(f"SELECT update_state FROM kit_status WHERE site = '{WEST}'", count=2)) >= 2
    assert len(web_stack.wait_for(f"SELECT seen FROM kit_status WHERE site = '{WEST}'", count=2)) >= 2
    return web_stack


def sign_in(stack: WebStack, screen: Screen) -> None:
    stack.sign_in(screen.page)
    assert screen.page.locator("form[action='/signout']").count() == 1


def kits_listed(screen: Screen) -> list[str]:
    return [str(v) for v in screen.page.eval_on_selector_all("table.fleet-kits tbody tr",
                                                             "rows => rows.map(r => r.dataset.kit)")]


def issues_of(screen: Screen, kit: str) -> list[str]:
    found: Any = screen.page.eval_on_selector_all(f'table.fleet-kits tr[data-kit="{kit}"] [data-issue]',
                                                  "spans => spans.map(s => s.dataset.issue)")
    return [str(v) for v in found]


def test_the_fleet_page_asks_a_visitor_to_sign_in(fleet: WebStack, screen: Screen) -> None:
    answer = screen.page.goto(fleet.path("/fleet?lang=lv"))
    assert answer is not None and answer.status == 401
    assert screen.page.inner_text("h1") == LV.gettext("Please sign in") != "Please sign in"
    assert screen.page.get_attribute("[data-error]", "data-error") == "staff_only"
    assert screen.page.locator('a[href^="/signin"]').count() >= 1
    assert "table" not in screen.page.content().split("<main", 1)[1].split("</main>", 1)[0]
    assert axe_results(screen.page) == []
    screen.screenshot("sign-in-needed")
    assert screen.left_machine == []


def test_staff_see_silent_and_low_battery_kits_first_with_rejections_and_firmware(fleet: WebStack,
                                                                                  screen: Screen) -> None:
    sign_in(fleet, screen)
    answer = screen.page.goto(fleet.path(f"/fleet?site={NORTH}&lang=lv"))
    assert answer is not None and answer.status == 200
    assert screen.page.inner_text("h1") == LV.gettext("Fleet: every kit")
    listed = kits_listed(screen)
    assert listed[:2] == [f"{NORTH}/quiet", f"{NORTH}/low"]
    assert sorted(listed) == sorted(f"{NORTH}/{k}" for k in ("quiet", "low", "noisy", "fresh"))
    assert issues_of(screen, f"{NORTH}/quiet")[0] == "silent"
    assert issues_of(screen, f"{NORTH}/low") == ["low_battery"]
    assert "old_firmware" in issues_of(screen, f"{NORTH}/noisy")
    assert "backfill" in issues_of(screen, f"{NORTH}/fresh")
    low_row = screen.page.locator(f'table.fleet-kits tr[data-kit="{NORTH}/low"]')
    assert "3,20" in low_row.inner_text()  # the decimal comma of lv
    assert low_row.locator("a").get_attribute("href") == f"/s/{NORTH}/low"

    rejection = screen.page.locator(f'table.fleet-rejections tr[data-kit="{NORTH}/noisy"]')
    assert rejection.get_attribute("data-reason") == "out_of_range"
    assert LV.gettext("Value out of range") in rejection.inner_text()
    assert rejection.locator("td.num").all_inner_texts() == ["1", "1"]

    assert screen.page.locator('table.fleet-firmware tr[data-fw="1.4.0"] td.num').inner_text() == "3"
    assert screen.page.locator('table.fleet-firmware tr[data-fw="1.3.0"] td.num').inner_text() == "1"
    assert screen.page.locator('table.fleet-firmware tr[data-fw="1.4.0"] .badge').count() == 1
    assert screen.page.locator("ul.fleet-old a").all_inner_texts() == ["noisy"]
    assert screen.page.locator(f'table.fleet-backfill tr[data-kit="{NORTH}/fresh"] td.num').first.inner_text() == "1"

    assert axe_results(screen.page) == []
    screen.screenshot("north")
    assert screen.left_machine == []


def test_the_site_filter_shows_one_school(fleet: WebStack, screen: Screen) -> None:
    sign_in(fleet, screen)
    screen.page.goto(fleet.path("/fleet"))
    listed = kits_listed(screen)
    assert f"{NORTH}/quiet" in listed and f"{SOUTH}/far" in listed
    assert listed.index(f"{NORTH}/quiet") < listed.index(f"{SOUTH}/far")  # silent before healthy, across sites
    screen.page.select_option("#fleet-site", SOUTH)
    screen.page.click("form.fleet-filter button[type=submit]")
    screen.page.wait_for_url(f"**/fleet?site={SOUTH}")
    assert kits_listed(screen) == [f"{SOUTH}/far"]
    assert issues_of(screen, f"{SOUTH}/far") == []
    screen.screenshot("south")
    assert screen.page.goto(fleet.path("/fleet?site=no-such-site")).status == 404  # type: ignore[union-attr]
    assert screen.left_machine == []


def test_an_update_that_rolled_back_is_something_to_do_with_the_kits_reason(fleet: WebStack, screen: Screen) -> None:
    sign_in(fleet, screen)
    answer = screen.page.goto(fleet.path(f"/fleet?site={WEST}&lang=lv"))
    assert answer is not None and answer.status == 200
    assert kits_listed(screen)[0] == f"{WEST}/tried"
    assert "update_failed" in issues_of(screen, f"{WEST}/tried")
    assert "update_failed" not in issues_of(screen, f"{WEST}/took")
    updates = screen.page.locator("table.fleet-updates tr[data-update]")
    assert [updates.nth(i).get_attribute("data-update") for i in range(updates.count())] == ["rolled_back",
                                                                                             "confirmed"]
    assert "crashed at import: ImportError: no module named 'bme'" in updates.first.inner_text()
    assert axe_results(screen.page) == []
    screen.screenshot("updates")
    assert screen.left_machine == []
