"""Topic layout of contract v1: ``<root>/v1/<site>/<kit>/<kind>``, built and parsed with no I/O.

``root`` is ``lauks`` in production; tests give each test its own root so they never share topics.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

CONTRACT_VERSION = 1
DEFAULT_ROOT = "lauks"
ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,31}$"
_ID = re.compile(ID_PATTERN)


class Kind(StrEnum):
    READINGS = "readings"
    STATUS = "status"
    CONFIG = "config"
    REJECTED = "rejected"
    UPDATE = "update"  # an over-the-air update offer, retained, written by staff only (lauks.fleet)


def is_valid_id(value: str) -> bool:
    """Site and kit names: 1-32 of a-z, 0-9 and '-', not starting with '-'."""
    return bool(_ID.fullmatch(value))


def id_problem(what: str, value: str) -> str | None:
    """A sentence saying what is wrong with a site or kit name, or None if it is fine."""
    if is_valid_id(value):
        return None
    return (
        f"{what} name {value!r} is not allowed: use 1 to 32 lowercase letters a-z, digits "
        f"and '-', starting with a letter or digit"
    )


@dataclass(frozen=True, slots=True)
class KitTopic:
    site: str
    kit: str
    kind: Kind


@dataclass(frozen=True, slots=True)
class Topics:
    """Builds and parses the topics of one topic root."""

    root: str = DEFAULT_ROOT

    @property
    def base(self) -> str:
        return f"{self.root}/v{CONTRACT_VERSION}"

    def topic(self, site: str, kit: str, kind: Kind | str) -> str:
        for what, value in (("site", site), ("kit", kit)):
            problem = id_problem(what, value)
            if problem:
                raise ValueError(problem)
        return f"{self.base}/{site}/{kit}/{Kind(kind).value}"

    def readings(self, site: str, kit: str) -> str:
        return self.topic(site, kit, Kind.READINGS)

    def status(self, site: str, kit: str) -> str:
        return self.topic(site, kit, Kind.STATUS)

    def config(self, site: str, kit: str) -> str:
        return self.topic(site, kit, Kind.CONFIG)

    def rejected(self, site: str, kit: str) -> str:
        return self.topic(site, kit, Kind.REJECTED)

    def update(self, site: str, kit: str) -> str:
        return self.topic(site, kit, Kind.UPDATE)

    def filter(self, kind: Kind | str, site: str = "+", kit: str = "+") -> str:
        """A subscription filter, e.g. ``lauks/v1/+/+/readings``."""
        return f"{self.base}/{site}/{kit}/{Kind(kind).value}"

    def shared_filter(self, group: str, kind: Kind | str) -> str:
        """The same filter inside an MQTT shared-subscription group (``$share/<group>/...``)."""
        return f"$share/{group}/{self.filter(kind)}"

    def parse(self, topic: str) -> KitTopic | None:
        """The site, kit and kind of a contract topic, or None for any other topic."""
        prefix = self.base + "/"
        if not topic.startswith(prefix):
            return None
        parts = topic[len(prefix) :].split("/")
        if len(parts) != 3:
            return None
        site, kit, kind = parts
        if not (_ID.fullmatch(site) and _ID.fullmatch(kit)):
            return None
        try:
            return KitTopic(site, kit, Kind(kind))
        except ValueError:
            return None
