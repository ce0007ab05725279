"""Event time: the one clock every component reads LMS times with.

LMS times are naive school-local wall times. They are read as if they were UTC, so every
component (features, the status machine, the watermark, Postgres rows) agrees on one
clock without guessing the school's time zone; `format_ts` and `to_db_time` turn epoch
seconds back into the same naive wall time.

>>> parse_ts("2023-12-01T10:00:00")
1701424800.0
>>> format_ts(1701424800.0)
'2023-12-01T10:00:00'
>>> to_db_time(1701424800.0)
datetime.datetime(2023, 12, 1, 10, 0)
"""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY = 86_400.0
WEEK = 7 * DAY

_EPOCH = datetime(1970, 1, 1)
_EPOCH_UTC = _EPOCH.replace(tzinfo=UTC)


def parse_ts(text: str) -> float:
    """ISO time -> epoch seconds (naive times read as UTC; an explicit offset is honoured).
    Subtracting the epoch, not `.replace(tzinfo=...).timestamp()`: this runs per record."""
    moment = datetime.fromisoformat(text)
    return (moment - (_EPOCH if moment.tzinfo is None else _EPOCH_UTC)).total_seconds()


def to_db_time(epoch: float) -> datetime:
    """Epoch seconds -> the naive wall time Postgres stores (the inverse of `parse_ts`)."""
    return datetime.fromtimestamp(epoch, tz=UTC).replace(tzinfo=None)


def format_ts(epoch: float) -> str:
    """Epoch seconds -> the contract's ISO text, to the second."""
    return to_db_time(epoch).isoformat(timespec="seconds")


def zone_named(name: str) -> tzinfo:
    """The school's time zone: an IANA name (Europe/Moscow), UTC, or a fixed offset like +03:00."""
    if name.upper() in {"UTC", "Z"}:
        return UTC
    fixed = re.fullmatch(r"([+-])(\d{2}):?(\d{2})", name)
    if fixed:
        sign, hours, minutes = fixed.groups()
        offset = timedelta(hours=int(hours), minutes=int(minutes)) * (1 if sign == "+" else -1)
        return timezone(offset)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"unknown time zone {name!r}") from error


def local_to_utc(ts: float, zone: tzinfo) -> float:
    """An event time (the school's wall clock read as UTC) -> the real UTC epoch, for comparing
    with Kafka timestamps and the machine's clock.

    >>> local_to_utc(parse_ts("2023-12-01T13:00:00"), zone_named("+03:00")) == parse_ts("2023-12-01T10:00:00")
    True
    """
    if isinstance(zone, timezone):  # UTC or a fixed offset: no table to look up (this runs per record)
        return ts - zone.utcoffset(None).total_seconds()
    return to_db_time(ts).replace(tzinfo=zone).timestamp()


def utc_to_local(epoch: float, zone: tzinfo) -> float:
    """A real UTC epoch (the machine's clock) -> event time: the school's wall clock read as UTC."""
    wall = datetime.fromtimestamp(epoch, tz=zone).replace(tzinfo=None)
    return (wall - _EPOCH).total_seconds()
