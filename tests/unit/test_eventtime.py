"""Event time <-> real UTC: the fixed-offset fast path must agree with the zone-table path."""
from datetime import UTC

import pytest

from features.eventtime import DAY, local_to_utc, parse_ts, to_db_time, utc_to_local, zone_named


@pytest.mark.parametrize("name", ["UTC", "+03:00", "-05:30", "+0545"])
def test_a_fixed_offset_converts_as_datetime_does(name: str) -> None:
    zone = zone_named(name)
    for ts in (0.0, parse_ts("2023-03-26T02:30:00"), parse_ts("2024-12-31T23:59:59.250000"), 40 * 365 * DAY):
        assert local_to_utc(ts, zone) == to_db_time(ts).replace(tzinfo=zone).timestamp()
        assert utc_to_local(local_to_utc(ts, zone), zone) == ts


def test_a_named_zone_follows_its_summer_time() -> None:
    berlin = zone_named("Europe/Berlin")
    winter, summer = parse_ts("2023-01-15T12:00:00"), parse_ts("2023-07-15T12:00:00")
    assert winter - local_to_utc(winter, berlin) == 3600
    assert summer - local_to_utc(summer, berlin) == 7200
    assert local_to_utc(winter, UTC) == winter
