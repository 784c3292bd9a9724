"""The golden messages of contract v1 (tests/golden/messages.json), loaded for any test or tool.

A module of its own, not conftest: tests/firmware has a conftest.py too, so `from conftest import`
would find whichever was imported first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GOLDEN_PATH = Path(__file__).parent / "golden" / "messages.json"


@dataclass(frozen=True)
class GoldenMessage:
    name: str
    payload: bytes
    samples: int
    reasons: list[str]
    whole: bool
    messages: list[str]
    data: Any  # the JSON value, None where the payload is not JSON


@dataclass(frozen=True)
class Golden:
    site: str
    kit: str
    received_at: float
    valid: list[GoldenMessage]
    invalid: list[GoldenMessage]
    not_by_contents: list[str]  # reasons no payload can earn (rate_limited): the gateway's, tested there


def _golden_payload(entry: dict[str, Any]) -> tuple[bytes, Any]:
    if "raw_hex" in entry:
        return bytes.fromhex(entry["raw_hex"]), None
    if "raw" in entry:
        return entry["raw"].encode(), None
    data = entry["payload"]
    if "pad_bytes" in entry:
        data = dict(data, pad="x" * entry["pad_bytes"])
    return json.dumps(data).encode(), data


def load_golden() -> Golden:
    spec = json.loads(GOLDEN_PATH.read_text())

    def build(entry: dict[str, Any], valid: bool) -> GoldenMessage:
        payload, data = _golden_payload(entry)
        return GoldenMessage(entry["name"], payload, entry["samples"], entry["reasons"],
                             entry.get("whole", False) and not valid, entry.get("messages", []), data)

    return Golden(spec["site"], spec["kit"], spec["received_at"],
                  [build(e, True) for e in spec["valid"]], [build(e, False) for e in spec["invalid"]],
                  [e["reason"] for e in spec.get("not_by_contents", [])])
