"""Source times -> the contract's time: the school's naive local wall time, to the second.

The contract's `ts` is the school's local time without an offset (features.eventtime
reads it as if it were UTC). Sources carry instants: xAPI, Caliper and Open edX an ISO 8601 time
with an offset (none means UTC, as the specifications say; Caliper writes UTC with a Z), Moodle a
Unix time. Each instant is converted to the school's time zone (the mapping file's `time_zone`,
default UTC) and written without its offset.
"""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo

from streams.ingest.base import Reject

#: RFC 3339 / ISO 8601 extended date-time (xAPI 1.0.3 section 4.5; Open edX writes the same),
#: a space allowed for the "T" (older tracking logs), the fraction any length, the offset Z,
#: +hh, +hhmm or +hh:mm.
_INSTANT = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,12}))?)?"
    r"(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?")
_DURATION = re.compile(
    r"P(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?")
#: No LMS fact is dated after this (Unix seconds in year 2200): a larger "Unix time" is milliseconds or garbage.
_MAX_UNIX = 7_258_118_400


def parse_instant(text: object) -> datetime:
    """An ISO 8601 date-time -> an aware datetime (no offset: UTC), else Reject `bad_timestamp`."""
    if not isinstance(text, str):
        raise Reject("bad_timestamp", f"expected an ISO 8601 string, got {type(text).__name__}")
    match = _INSTANT.fullmatch(text.strip())
    if match is None:
        raise Reject("bad_timestamp", f"not an ISO 8601 date-time: {text[:60]!r}")
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    try:
        offset = timedelta(0)
        if sign:
            offset = timedelta(hours=int(off_h), minutes=int(off_m or 0)) * (1 if sign == "+" else -1)
        zone = UTC if zulu or not sign else timezone(offset)
        return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0),
                        int((fraction or "0")[:6].ljust(6, "0")), tzinfo=zone)
    except ValueError as error:  # month 13, hour 24, offset of a day or more
        raise Reject("bad_timestamp", f"{text[:60]!r}: {error}") from None


def attempt_handed_in(text: object, graded: datetime, field: str) -> datetime:
    """When a graded attempt was handed in, as its LMS dates it, but not after its grade (the grade's
    own time then: a clock that ran ahead must not move the student's work later). An unreadable one
    is Reject `bad_attempt_time`: the grade is kept out (dead-lettered, to redrive) rather than dated
    at the teacher's grading, which would read as the student working then."""
    try:
        moment = parse_instant(text)
    except Reject:
        raise Reject("bad_attempt_time", f"{field} {str(text)[:60]!r} is no ISO 8601 time") from None
    return min(moment, graded)


def local_ts(moment: datetime, zone: tzinfo) -> str:
    """An aware instant -> the contract's naive school-local time, to the second."""
    try:
        local = moment.astimezone(zone)
    except (OverflowError, ValueError) as error:
        raise Reject("bad_timestamp", f"{moment!r} cannot be shown in the school's zone: {error}") from None
    return local.replace(tzinfo=None).isoformat(timespec="seconds")


def unix_local_ts(seconds: object, zone: tzinfo) -> str:
    """A Unix time (seconds; an integer or its ASCII digits) -> the contract's school-local time."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, str)):
        raise Reject("bad_timestamp", f"expected Unix seconds, got {type(seconds).__name__}")
    text = str(seconds).strip()
    if not text.isascii() or not text.isdigit() or len(text) > 12:
        raise Reject("bad_timestamp", f"expected Unix seconds, got {text[:40]!r}")
    value = int(text)
    if value > _MAX_UNIX:
        raise Reject("bad_timestamp", f"Unix time {value} is after 2200 (milliseconds?)")
    return local_ts(datetime.fromtimestamp(value, tz=UTC), zone)


def parse_duration(text: object) -> float:
    """An ISO 8601 duration (xAPI result.duration, e.g. PT1H30M) -> seconds, else Reject `bad_duration`."""
    if not isinstance(text, str):
        raise Reject("bad_duration", f"expected an ISO 8601 duration, got {type(text).__name__}")
    match = _DURATION.fullmatch(text.strip())
    if match is None or not any(match.groups()) or text.strip().endswith("T"):
        raise Reject("bad_duration", f"not an ISO 8601 duration: {text[:40]!r}")
    weeks, days, hours, minutes, secs = (float(g) if g else 0.0 for g in match.groups())
    total = (((weeks * 7 + days) * 24 + hours) * 60 + minutes) * 60 + secs
    if total > 366 * 86_400:
        raise Reject("bad_duration", f"{text[:40]!r} is longer than a year")
    return total
