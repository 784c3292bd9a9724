"""A status message's ``update`` object: decoded, checked, and stored in kit_status."""

from __future__ import annotations

import json
import typing

import pytest

from lauks import contract, schema
from lauks.contract import MessageRejected, decode_status


def status(update: object) -> bytes:
    return json.dumps({"v": 1, "state": "online", "fw": "1.3.0", "update": update}).encode()


def test_the_contracts_update_states_are_the_schemas() -> None:
    assert typing.get_args(contract.UpdateState) == schema.UPDATE_STATES


def test_a_rolled_back_update_is_stored_with_its_version_state_and_reason() -> None:
    message = decode_status(status({"version": "1.4.0", "state": "rolled_back",
                                    "reason": "crashed at import: SyntaxError"}))
    line = schema.status_line("school-1", "kit-01", message, 1_000)
    assert 'update_version="1.4.0"' in line and 'update_state="rolled_back"' in line
    assert 'update_reason="crashed at import: SyntaxError"' in line


def test_a_status_without_an_update_stores_no_update_fields() -> None:
    line = schema.status_line("school-1", "kit-01", decode_status(b'{"v":1,"state":"online"}'), 1_000)
    assert "update_" not in line


def test_an_update_without_a_reason_stores_none() -> None:
    line = schema.status_line("s", "k", decode_status(status({"version": "1.4.0", "state": "confirmed"})), 1)
    assert 'update_state="confirmed"' in line and "update_reason" not in line


@pytest.mark.parametrize("update", [{"version": "1.4.0", "state": "exploded"},
                                    {"version": "1.4.0/..", "state": "failed"},
                                    {"state": "failed"},
                                    {"version": "1.4.0", "state": "failed", "reason": "x" * 121}])
def test_a_malformed_update_object_is_refused(update: object) -> None:
    with pytest.raises(MessageRejected):
        decode_status(status(update))
