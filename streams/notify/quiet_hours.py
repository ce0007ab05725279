"""Quiet hours in the student's own time zone: when a message to them may go out.

Pure: the caller passes the wall clock (UTC epoch seconds), so tests move time at will. The LMS
sends a student's zone as an offset (`+03:00` in the seed's users_age_timezone.csv); other LMSs send
IANA names (`Asia/Yekaterinburg`) or `UTC+3`. All of those are read; anything else falls back to
the school's zone, so a bad profile delays a message at worst, never loses it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_OFFSET = re.compile(r"(?:UTC|GMT)?\s*([+-])(\d{1,2})(?::?(\d{2}))?", re.IGNORECASE)


def parse_zone(name: str | None) -> tzinfo | None:
    """A zone from `+03:00`, `+0300`, `UTC+3`, `GMT-5`, `UTC` or an IANA name; None if unreadable.

    >>> parse_zone("UTC+3").utcoffset(None)
    datetime.timedelta(seconds=10800)
    >>> parse_zone("Mars/Olympus") is None
    True
    """
    text = (name or "").strip()
    if not text:
        return None
    if text.upper() in {"UTC", "GMT", "Z"}:
        return UTC
    fixed = _OFFSET.fullmatch(text)
    if fixed:
        sign, hours, minutes = fixed.groups()
        offset = timedelta(hours=int(hours), minutes=int(minutes or 0))
        if offset >= timedelta(hours=15):
            return None
        return timezone(offset if sign == "+" else -offset)
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        return None


@dataclass(frozen=True)
class QuietHours:
    """A daily local window, e.g. 22:00-09:00 (it may wrap midnight); start == end: never quiet."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        """`HH:MM-HH:MM`; empty: never quiet. Raises ValueError for anything else."""
        if not text.strip():
            return cls(time(0), time(0))
        match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", text)
        if not match:
            raise ValueError(f"quiet hours must look like 22:00-09:00, not {text!r}")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        return cls(time(h1, m1), time(h2, m2))

    def _quiet_at(self, wall: time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= wall < self.end
        return wall >= self.start or wall < self.end  # wraps midnight

    def release_at(self, now: float, zone: tzinfo) -> float | None:
        """None if `now` (UTC epoch) is outside the window in `zone`; else the UTC epoch it ends.

        The end is found on the local calendar (today's or tomorrow's end time), so a DST change
        inside the night moves it with the zone's clocks.
        """
        local = datetime.fromtimestamp(now, tz=zone)
        if not self._quiet_at(local.time().replace(tzinfo=None)):
            return None
        end = datetime.combine(local.date(), self.end)
        if end <= local.replace(tzinfo=None):
            end += timedelta(days=1)
        return end.replace(tzinfo=zone).timestamp()
