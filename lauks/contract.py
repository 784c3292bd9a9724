"""Contract v1 between kits and the gateway: the messages, their validation and every rejection reason.

Pure functions only. ``decode_readings`` turns the bytes of one MQTT message into validated samples
plus the rejections, field by field, each with a reason code and a sentence a pupil can act on.
The gateway, the firmware's tests and the golden messages under tests/golden all go through here.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, ValidationError

from lauks.catalog import CATALOG
from lauks.topics import ID_PATTERN

MAX_PAYLOAD_BYTES = 16 * 1024
EARLIEST_TIME_S = 1_577_836_800  # 2020-01-01T00:00:00Z: an older time means the kit's clock is wrong
MAX_FUTURE_S = 300  # a sample may be at most 5 minutes ahead of the gateway's clock
MAX_COUNTER = 2**53 - 1  # boot and seq stay exact in every JSON parser


class Reason(StrEnum):
    """Why something was rejected. The value is the code stored in ``rejections.reason``."""

    TOO_LARGE = "too_large"
    NOT_JSON = "not_json"
    NOT_AN_OBJECT = "not_an_object"
    UNSUPPORTED_VERSION = "unsupported_version"
    KIT_MISMATCH = "kit_mismatch"
    BAD_FIELD = "bad_field"
    BAD_SAMPLE = "bad_sample"
    NO_TIME = "no_time"
    BAD_TIME = "bad_time"
    TIME_IN_FUTURE = "time_in_future"
    TIME_TOO_OLD = "time_too_old"
    UNKNOWN_QUANTITY = "unknown_quantity"
    NOT_A_NUMBER = "not_a_number"
    OUT_OF_RANGE = "out_of_range"
    RATE_LIMITED = "rate_limited"  # not about a message's contents: the kit sent more than its fair share


Scope = Literal["message", "sample", "field"]

# What each reason throws away, and what to do about it: the table docs/contract.md explains.
REASONS: dict[Reason, tuple[Scope, str]] = {
    Reason.TOO_LARGE: ("message", "The payload is over 16 KiB; send fewer samples per message."),
    Reason.NOT_JSON: ("message", "The payload is not UTF-8 JSON."),
    Reason.NOT_AN_OBJECT: ("message", "The payload is JSON but not an object {...}."),
    Reason.UNSUPPORTED_VERSION: ("message", "'v' is missing or is not 1."),
    Reason.KIT_MISMATCH: ("message", "'kit' in the payload differs from the kit in the topic."),
    Reason.BAD_FIELD: ("message", "'boot', 'seq', 'fw' or 'samples' is missing or has the wrong type."),
    Reason.BAD_SAMPLE: ("sample", "A sample is not a JSON object."),
    Reason.NO_TIME: ("sample", "A sample has neither 't' nor 'age'."),
    Reason.BAD_TIME: ("sample", "'t' or 'age' is not a finite number, 'age' is negative, or both are given."),
    Reason.TIME_IN_FUTURE: ("sample", "The sample's time is more than 5 minutes ahead of the gateway's clock."),
    Reason.TIME_TOO_OLD: ("sample", "The sample's time is before 2020-01-01: the kit's clock is not set."),
    Reason.UNKNOWN_QUANTITY: ("field", "The name is not a quantity of the catalog."),
    Reason.NOT_A_NUMBER: ("field", "The value is not a finite number."),
    Reason.OUT_OF_RANGE: ("field", "The value is outside the quantity's physical range."),
    Reason.RATE_LIMITED: ("message", "The kit sends faster than its fair share (by default 20 messages or "
                                     "64 KiB a second once a burst of 5,000 messages or 5 MiB is used up); "
                                     "look for a loop that publishes without pause."),
}


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: Reason
    message: str  # one sentence a pupil or a teacher can act on
    sample: int | None = None  # index in ``samples``, for sample and field rejections
    field: str | None = None  # the quantity or key, for field rejections
    value: Any = None  # the offending value where it is short enough to repeat
    # The bound that was crossed, where there is one (a range's end, the byte or rate limit, the time window):
    # with ``field`` and ``value`` it is what a sentence in another language is built from (docs/schema.md).
    limit: float | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"reason": self.reason.value, "message": self.message}
        if self.sample is not None:
            out["sample"] = self.sample
        if self.field is not None:
            out["field"] = self.field
        if self.value is not None:
            out["value"] = self.value
        if self.limit is not None:
            out["limit"] = self.limit
        return out


class MessageRejected(Exception):
    """The whole message is rejected; nothing of it is stored."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(rejection.message)
        self.rejection = rejection


KitName = Annotated[str, Field(pattern=ID_PATTERN)]
Counter = Annotated[StrictInt, Field(ge=0, le=MAX_COUNTER)]


class ReadingsMessage(BaseModel):
    """The envelope of a readings message. Samples stay raw here: they are checked field by field."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    v: Literal[1]
    kit: KitName
    boot: Counter
    seq: Counter
    fw: Annotated[str, Field(max_length=32)] | None = None
    samples: Annotated[list[Any], Field(min_length=1)]


# A kit's over-the-air update states (issue 14): lauks.schema.UPDATE_STATES holds the same names for kit_status.
UpdateState = Literal["offered", "downloading", "staged", "trial", "confirmed", "rolled_back", "failed"]
UPDATE_VERSION_PATTERN = r"^[0-9A-Za-z.+-]{1,32}$"
MAX_UPDATE_REASON = 120


class UpdateStatus(BaseModel):
    """The last over-the-air update a kit tried, in its status message: the version it was offered, how far it
    got, and why it failed or rolled back (for a person to read)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    version: Annotated[str, Field(pattern=UPDATE_VERSION_PATTERN)]
    state: UpdateState
    reason: Annotated[str, Field(max_length=MAX_UPDATE_REASON)] | None = None


class StatusMessage(BaseModel):
    """A kit's status, retained on ``.../status``; its last will is ``{"v": 1, "state": "offline"}``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    v: Literal[1]
    state: Literal["online", "offline", "sleeping"]
    fw: Annotated[str, Field(max_length=32)] | None = None
    boot: Counter | None = None
    interval_s: Annotated[StrictInt, Field(ge=1, le=86_400)] | None = None
    sensors: list[Annotated[str, Field(max_length=32)]] | None = None
    failed_sensors: list[Annotated[str, Field(max_length=32)]] | None = None
    battery: StrictFloat | StrictInt | None = None
    rssi: StrictFloat | StrictInt | None = None
    buffered: Counter | None = None  # samples waiting in the kit's offline ring
    dropped: Counter | None = None  # samples the full ring had to drop since it was made
    awake_ms: Counter | None = None  # time awake in the last cycle of a sleeping kit
    update: UpdateStatus | None = None  # the last over-the-air update (issue 14)


class KitConfig(BaseModel):
    """Desired settings, retained on ``.../config`` by staff tools."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    interval_s: Annotated[StrictInt, Field(ge=10, le=86_400)]


@dataclass(frozen=True, slots=True)
class Sample:
    time_ms: int  # Unix time in milliseconds, UTC
    values: dict[str, float]
    from_age: bool = False  # True if the time came from ``age`` and the time of receipt


@dataclass(slots=True)
class Readings:
    """A readings message that passed the envelope checks: its good samples and what was rejected."""

    site: str
    kit: str
    boot: int
    seq: int
    fw: str | None
    samples: list[Sample]
    rejections: list[Rejection] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------------
# decoding


def parse_json(payload: bytes) -> Any:
    """The JSON value of ``payload``; ``MessageRejected`` if it is too large or not UTF-8 JSON."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise MessageRejected(
            Rejection(
                Reason.TOO_LARGE,
                f"the message is {len(payload)} bytes, more than the {MAX_PAYLOAD_BYTES} allowed: "
                "send fewer samples in each message",
                value=len(payload),
                limit=float(MAX_PAYLOAD_BYTES),
            )
        )
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        pass
    # orjson refuses numbers beyond a float's range (1e400), which JSON allows: the standard parser
    # reads them as infinity, so only that field is rejected, as not a finite number.
    try:
        return json.loads(payload.decode("utf-8"), parse_constant=_refuse_constant)
    except (ValueError, TypeError, RecursionError):
        raise MessageRejected(
            Rejection(Reason.NOT_JSON, "the message is not valid UTF-8 JSON: check how the kit builds it")
        ) from None


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _short(value: Any) -> Any:
    """The value itself if it is small enough to repeat back, else a trimmed repr."""
    if value is None or isinstance(value, (bool, int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            return repr(value)
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_COUNTER:
            return repr(value)[:24]
        return value
    if isinstance(value, str) and len(value) <= 40:
        return value
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


_ENVELOPE_WORDS: dict[str, str] = {
    "boot": "'boot' must be a whole number of 0 or more (the kit's start counter)",
    "seq": "'seq' must be a whole number of 0 or more (the message counter since start)",
    "fw": "'fw' must be a text of at most 32 characters (the firmware version)",
    "samples": "'samples' must be a list with at least one sample",
    "kit": "'kit' must be the kit's name: 1 to 32 of a-z, 0-9 and '-'",
}


def _envelope_rejection(data: dict[str, Any], error: ValidationError) -> Rejection:
    first = error.errors(include_url=False)[0]
    key = str(first["loc"][0]) if first["loc"] else "?"
    if key == "v":
        version = data.get("v")
        text = (
            "the message has no contract version 'v': add \"v\": 1"
            if "v" not in data
            else f"the message says contract version {_short(version)!r}, but Lauks speaks version 1"
        )
        return Rejection(Reason.UNSUPPORTED_VERSION, text, field="v", value=_short(version))
    if first["type"] == "missing":
        return Rejection(Reason.BAD_FIELD, f"the message has no '{key}'", field=key)
    words = _ENVELOPE_WORDS.get(key, f"'{key}' has the wrong type")
    return Rejection(Reason.BAD_FIELD, f"{words}, not {_short(data.get(key))!r}", field=key,
                     value=_short(data.get(key)))


def decode_readings(payload: bytes, site: str, kit: str, received_at: float) -> Readings:
    """Validate one readings message from topic ``.../<site>/<kit>/readings``.

    ``received_at`` (Unix seconds) is when the gateway first received the message: it dates the
    ``age`` samples and bounds how far in the future a ``t`` may be. Raises ``MessageRejected`` when
    the whole message must go; single samples and fields are dropped and listed in ``rejections``.
    """
    data = parse_json(payload)
    if not isinstance(data, dict):
        raise MessageRejected(
            Rejection(Reason.NOT_AN_OBJECT, "the message must be a JSON object {...}, not a list or a value")
        )
    # The gateway is CPU-bound, so the envelope nearly every kit sends is checked here with plain type
    # tests: each one accepts only what ReadingsMessage accepts too (a subset of it), and anything else
    # goes through pydantic below, which words every rejection. tests/foundation/test_contract_fast_path.py
    # checks both ways give the same result.
    v, boot, seq, fw, samples = data.get("v"), data.get("boot"), data.get("seq"), data.get("fw"), data.get("samples")
    if (
        type(v) is int and v == 1
        and data.get("kit") == kit and (kit in _GOOD_KITS or _good_kit(kit))
        and type(boot) is int and 0 <= boot <= MAX_COUNTER
        and type(seq) is int and 0 <= seq <= MAX_COUNTER
        and (fw is None or (type(fw) is str and len(fw) <= 32 and fw.isascii()))
        and type(samples) is list and samples
    ):
        readings = Readings(site, kit, boot, seq, fw, [], [])
    else:
        readings, samples = _checked_envelope(data, site, kit)
    good, rejections = readings.samples, readings.rejections
    latest = received_at + MAX_FUTURE_S
    if latest == math.inf:  # no fast path: float() of a huge int 't' would overflow where _sample_time rejects it
        latest = -math.inf
    ranges = _RANGES.get
    for index, raw in enumerate(samples):
        # the common sample, inline: a dict with a plain number 't' in the window and, besides, only
        # catalog quantities with plain numbers in their ranges. Anything else ('age' too) goes to
        # _decode_sample, which words what is wrong.
        if type(raw) is dict:
            t = raw.get("t")
            if (type(t) is float or type(t) is int) and EARLIEST_TIME_S <= t <= latest:
                for name, value in raw.items():
                    bounds = ranges(name)
                    if bounds is not None:
                        low, high = bounds
                        if type(value) is float:
                            if low <= value <= high:  # NaN and infinity fail this
                                continue
                        elif type(value) is int and low <= value <= high:
                            # In place, to save a dict per sample: an in-range int stays in range as a
                            # float, so if a later field sends the sample to _decode_sample, its result
                            # is the same.
                            raw[name] = float(value)
                            continue
                    elif name == "t":
                        continue
                    break
                else:
                    del raw["t"]  # what is left are the sample's values, all floats
                    if raw:
                        # t is within finite bounds, so float(t) neither overflows nor leaves them
                        good.append(_sample_at(round(float(t) * 1000), raw))
                    continue
        sample = _decode_sample(index, raw, received_at, rejections)
        if sample is not None:
            good.append(sample)
    return readings


def _decode_readings_reference(payload: bytes, site: str, kit: str, received_at: float) -> Readings:
    """``decode_readings`` without its fast paths: what the tests compare it with."""
    data = parse_json(payload)
    if not isinstance(data, dict):
        raise MessageRejected(
            Rejection(Reason.NOT_AN_OBJECT, "the message must be a JSON object {...}, not a list or a value")
        )
    readings, samples = _checked_envelope(data, site, kit)
    for index, raw in enumerate(samples):
        sample = _decode_sample(index, raw, received_at, readings.rejections)
        if sample is not None:
            readings.samples.append(sample)
    return readings


def _checked_envelope(data: dict[str, Any], site: str, kit: str) -> tuple[Readings, list[Any]]:
    """The envelope checked by ``ReadingsMessage``: ``Readings`` with no samples yet, and the raw samples."""
    try:
        envelope = ReadingsMessage.model_validate(data)
    except ValidationError as error:
        raise MessageRejected(_envelope_rejection(data, error)) from None
    if envelope.kit != kit:
        raise MessageRejected(
            Rejection(
                Reason.KIT_MISMATCH,
                f"the message says kit {envelope.kit!r} but was sent on the topic of kit {kit!r}: "
                "check the kit's config.json",
                field="kit",
                value=envelope.kit,
            )
        )
    return Readings(site, kit, envelope.boot, envelope.seq, envelope.fw, []), envelope.samples


# Kit names already matched against ID_PATTERN. ``fullmatch`` because pydantic's pattern engine reads
# '$' as the very end of the text, where Python's ``re`` would also let a trailing newline through.
_KIT_NAME = re.compile(ID_PATTERN.removeprefix("^").removesuffix("$"))
_GOOD_KITS: set[str] = set()


def _good_kit(kit: str) -> bool:
    if not isinstance(kit, str) or not _KIT_NAME.fullmatch(kit):
        return False
    if len(_GOOD_KITS) >= 100_000:
        _GOOD_KITS.clear()
    _GOOD_KITS.add(kit)
    return True


# Sample is frozen, so its dataclass __init__ sets each field through object.__setattr__, which makes
# it the dearest step of the fast path; the slot descriptors set the same fields directly.
_new_sample = object.__new__
_set_time_ms = Sample.__dict__["time_ms"].__set__
_set_values = Sample.__dict__["values"].__set__
_set_from_age = Sample.__dict__["from_age"].__set__


def _sample_at(time_ms: int, values: dict[str, float]) -> Sample:
    """``Sample(time_ms, values, False)``, made faster."""
    sample = _new_sample(Sample)
    _set_time_ms(sample, time_ms)
    _set_values(sample, values)
    _set_from_age(sample, False)
    return sample


# Each quantity's physical range, looked up once per field on the fast path.
_RANGES: dict[str, tuple[float, float]] = {q.name: (q.minimum, q.maximum) for q in CATALOG.values()}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_finite_number(value: Any) -> bool:
    """A number a float can hold: an integer beyond a float's range (10**400) is not finite either."""
    if not _is_number(value):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _decode_sample(index: int, raw: Any, received_at: float, rejections: list[Rejection]) -> Sample | None:
    where = f"sample {index}"
    if not isinstance(raw, dict):
        rejections.append(
            Rejection(Reason.BAD_SAMPLE, f"{where} must be a JSON object {{...}}, not {_short(raw)!r}",
                      sample=index, value=_short(raw))
        )
        return None
    time_s = _sample_time(index, raw, received_at, rejections)
    if time_s is None:
        return None
    values: dict[str, float] = {}
    for name, value in raw.items():
        if name == "t" or name == "age":
            continue
        spec = CATALOG.get(name)
        kind = type(value)
        # the common case first: a plain number inside the range (NaN and infinity fail the comparison)
        if spec is not None and (kind is float or kind is int) and spec.minimum <= value <= spec.maximum:
            values[name] = float(value)
        elif spec is None:
            rejections.append(_unknown_quantity(index, name))
        elif not _is_finite_number(value):
            rejections.append(
                Rejection(Reason.NOT_A_NUMBER, f"{name} {_short(value)!r} is not a number", sample=index,
                          field=name, value=_short(value))
            )
        elif value < spec.minimum:
            rejections.append(
                Rejection(Reason.OUT_OF_RANGE,
                          f"{name} {spec.display(value)} is below {spec.display(spec.minimum)}",
                          sample=index, field=name, value=_short(value), limit=float(spec.minimum))
            )
        elif value > spec.maximum:
            rejections.append(
                Rejection(Reason.OUT_OF_RANGE,
                          f"{name} {spec.display(value)} is above {spec.display(spec.maximum)}",
                          sample=index, field=name, value=_short(value), limit=float(spec.maximum))
            )
        else:
            values[name] = float(value)
    if not values:
        return None  # nothing left to store; any rejections are already listed
    return Sample(round(time_s * 1000), values, "t" not in raw)


def _unknown_quantity(index: int, name: str) -> Rejection:
    shown = name if len(name) <= 40 else name[:37] + "..."
    close = difflib.get_close_matches(name, CATALOG, n=1, cutoff=0.75) if len(name) <= 64 else []
    hint = f": did you mean {close[0]}?" if close else ": see the quantity catalog for the names Lauks knows"
    return Rejection(Reason.UNKNOWN_QUANTITY, f"{shown!r} is not a quantity Lauks knows{hint}",
                     sample=index, field=shown)


def _sample_time(index: int, raw: dict[str, Any], received_at: float,
                 rejections: list[Rejection]) -> float | None:
    where = f"sample {index}"
    has_t, has_age = "t" in raw, "age" in raw
    if has_t and has_age:
        rejections.append(Rejection(Reason.BAD_TIME, f"{where} has both 't' and 'age': send only one",
                                    sample=index))
        return None
    if not has_t and not has_age:
        rejections.append(Rejection(
            Reason.NO_TIME, f"{where} has no time: add 't' (Unix seconds) or 'age' (seconds ago)", sample=index))
        return None
    key = "t" if has_t else "age"
    value = raw[key]
    if not _is_finite_number(value):
        rejections.append(Rejection(Reason.BAD_TIME, f"{where}: '{key}' must be a number, not {_short(value)!r}",
                                    sample=index, field=key, value=_short(value)))
        return None
    if has_age and value < 0:
        rejections.append(Rejection(Reason.BAD_TIME, f"{where}: 'age' {value:g} s is negative",
                                    sample=index, field="age", value=_short(value)))
        return None
    time_s = float(value) if has_t else received_at - float(value)
    if time_s > received_at + MAX_FUTURE_S:
        rejections.append(Rejection(
            Reason.TIME_IN_FUTURE,
            f"{where} is {time_s - received_at:.0f} s in the future: the kit's clock is wrong",
            sample=index, field=key, value=_short(value), limit=float(MAX_FUTURE_S)))
        return None
    if time_s < EARLIEST_TIME_S:
        rejections.append(Rejection(
            Reason.TIME_TOO_OLD,
            f"{where} is dated before 2020-01-01: the kit's clock is not set, send 'age' instead of 't'",
            sample=index, field=key, value=_short(value), limit=float(EARLIEST_TIME_S)))
        return None
    return time_s


def decode_status(payload: bytes) -> StatusMessage:
    """Validate a status message; ``MessageRejected`` says what is wrong with it."""
    data = parse_json(payload)
    if not isinstance(data, dict):
        raise MessageRejected(Rejection(Reason.NOT_AN_OBJECT, "the status must be a JSON object {...}"))
    try:
        return StatusMessage.model_validate(data)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        key = str(first["loc"][0]) if first["loc"] else "?"
        if key == "v":
            return_reason = Reason.UNSUPPORTED_VERSION
            text = f"the status says contract version {_short(data.get('v'))!r}, but Lauks speaks version 1"
        else:
            return_reason = Reason.BAD_FIELD
            text = f"status field '{key}' is wrong: {first['msg']}"
        raise MessageRejected(Rejection(return_reason, text, field=key, value=_short(data.get(key)))) from None


def rate_limited(count: int, per_s: float, bytes_per_s: float, over_s: float | None = None) -> Rejection:
    """The rejection of ``count`` messages a kit sent beyond its fair share in the last ``over_s`` seconds
    (``value`` is the count, ``limit`` the messages a second)."""
    limit = f"{per_s:g} messages" if bytes_per_s == math.inf else f"{per_s:g} messages or {bytes_per_s / 1024:g} KiB"
    lost = "1 message was" if count == 1 else f"{count} messages were"
    within = "" if over_s is None else f" in the last {over_s:.0f} s"
    text = (f"this kit sends more than its share, {limit} a second: {lost} not stored{within}; "
            "look for a loop that publishes without pause")
    return Rejection(Reason.RATE_LIMITED, text, value=count, limit=float(per_s))


# A notice stays well under the broker's maximum packet size (32 KiB as shipped): a 16 KiB message of bad
# fields has hundreds of rejections, and a notice the broker will not take would tell the kit nothing.
NOTICE_MAX_BYTES = 16 * 1024


def rejected_notice(boot: int | None, seq: int | None, rejections: list[Rejection],
                    max_bytes: int = NOTICE_MAX_BYTES) -> bytes:
    """The payload published on a kit's ``.../rejected`` topic: the rejections in order, as many as fit in
    ``max_bytes``, and ``more`` counting those left out (the first ones say what to fix)."""
    notice: dict[str, Any] = {"v": 1, "rejections": []}
    if boot is not None:
        notice["boot"] = boot
    if seq is not None:
        notice["seq"] = seq
    room = max_bytes - len(orjson.dumps(notice)) - len(',"more":') - 10
    for index, rejection in enumerate(rejections):
        entry = rejection.as_dict()
        room -= len(orjson.dumps(entry)) + 1
        if room < 0 and index > 0:
            notice["more"] = len(rejections) - index
            break
        notice["rejections"].append(entry)
    return orjson.dumps(notice)
