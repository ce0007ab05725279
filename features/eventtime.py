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

from datetime import UTC, datetime

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
