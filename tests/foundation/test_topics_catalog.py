"""Topics of contract v1 and the catalog table."""

from __future__ import annotations

import pytest

from lauks.catalog import CATALOG, quantity
from lauks.topics import Kind, KitTopic, Topics


def test_topics_are_built_and_parsed_back() -> None:
    topics = Topics()
    topic = topics.readings("riga-school-3", "k07")
    assert topic == "lauks/v1/riga-school-3/k07/readings"
    assert topics.parse(topic) == KitTopic("riga-school-3", "k07", Kind.READINGS)


@pytest.mark.parametrize("topic", [
    "lauks/v1/site/kit", "lauks/v2/site/kit/readings", "other/v1/site/kit/readings",
    "lauks/v1/Site/kit/readings", "lauks/v1/site/kit/readings/extra", "lauks/v1/site/kit/unknown",
    "lauks/v1/-site/kit/readings", "lauks/v1/" + "a" * 33 + "/kit/readings",
])
def test_topics_outside_the_contract_parse_to_none(topic: str) -> None:
    assert Topics().parse(topic) is None


def test_bad_names_cannot_build_a_topic() -> None:
    with pytest.raises(ValueError, match="lowercase"):
        Topics().readings("Riga School", "k07")


def test_shared_filter_uses_the_share_prefix() -> None:
    assert Topics("t1").shared_filter("gw", Kind.READINGS) == "$share/gw/t1/v1/+/+/readings"


def test_catalog_rows_are_consistent() -> None:
    for name, q in CATALOG.items():
        assert q.name == name and q.minimum < q.maximum and q.ucum and q.description
    assert quantity("rain").default_agg == "sum"
    assert quantity("water_temperature").maximum == 50
    assert quantity("humidity").display(140) == "140 %"
