"""Line protocol encoding, pure: what is escaped, what is refused."""

from __future__ import annotations

import pytest

from lauks import lineprotocol as lp
from lauks.contract import Sample


def test_names_escape_commas_spaces_and_equals() -> None:
    assert lp.line("m x,y", {"t k=": "v a,l=ue"}, {"f k": 1.5}, 7) == r"m\ x\,y,t\ k\==v\ a\,l\=ue f\ k=1.5 7"


def test_string_fields_escape_quotes_and_backslashes_and_keep_newlines() -> None:
    assert lp.field_value('a"b\\c\nd') == '"a\\"b\\\\c\nd"'


def test_field_types_are_written_unambiguously() -> None:
    assert [lp.field_value(v) for v in (2.0, 2, True, "2")] == ["2.0", "2i", "true", '"2"']


@pytest.mark.parametrize("bad", ["line\nbreak", "carriage\rreturn", "ends with\\", "back\\,comma", "back\\ space",
                                 "back\\=eq", 'back\\"quote'])
def test_names_that_line_protocol_cannot_carry_are_refused(bad: str) -> None:
    with pytest.raises(lp.LineProtocolError):
        lp.line("m", {"tag": bad}, {"f": 1.0})


def test_empty_tag_values_are_left_out_and_empty_names_refused() -> None:
    assert lp.line("m", {"a": "", "b": "x"}, {"f": 1.0}) == "m,b=x f=1.0"
    with pytest.raises(lp.LineProtocolError):
        lp.line("m", {"": "x"}, {"f": 1.0})


def test_non_finite_fields_are_refused() -> None:
    with pytest.raises(lp.LineProtocolError):
        lp.field_value(float("nan"))


def test_sample_lines_write_floats_under_the_series_head_and_skip_empty_samples() -> None:
    samples = [Sample(1000, {"humidity": 55.0, "temperature": 21.0}), Sample(2000, {})]
    assert lp.sample_lines("m,t=v ", samples) == ["m,t=v humidity=55.0,temperature=21.0 1000"]


def test_with_fields_adds_fields_after_a_points_own_and_before_its_timestamp() -> None:
    point = lp.line("m", {"t": "v"}, {"detail": "a b 1", "n": 2}, 1000)
    assert lp.with_fields(point, {"late_s": 90, "x y": 1.5}) == 'm,t=v detail="a b 1",n=2i,late_s=90i,x\\ y=1.5 1000'
    assert lp.with_fields(point, {}) == point


def test_with_fields_refuses_a_point_without_a_timestamp_and_a_field_it_cannot_carry() -> None:
    with pytest.raises(lp.LineProtocolError, match="does not end in a timestamp"):
        lp.with_fields("m f=1.0", {"late_s": 1})
    with pytest.raises(lp.LineProtocolError):
        lp.with_fields("m f=1.0 5", {"late_s": float("inf")})
