"""SCORER_REDIS_URL's Sentinel form, read (no server: tests/integration/test_redis_sentinel.py has the real one)."""
from __future__ import annotations

import pytest

from streams.settings import SentinelUrl, Settings, SettingsError, sentinel_url


def test_a_plain_url_is_not_a_sentinels() -> None:
    assert sentinel_url("redis://:pw@redis:6379/0") is None
    assert sentinel_url("unix:///run/redis.sock") is None


def test_a_sentinel_url_names_the_sentinels_the_service_and_both_passwords() -> None:
    found = sentinel_url("redis+sentinel://:p%40ss@s1:26379,s2.example:26380/scorer/3?sentinel_password=w0rd")
    assert found == SentinelUrl([("s1", 26379), ("s2.example", 26380)], "scorer", 3, None, "p@ss", "w0rd")
    assert sentinel_url("redis+sentinel://app:pw@10.0.0.1:26379/mymaster") == SentinelUrl(
        [("10.0.0.1", 26379)], "mymaster", 0, "app", "pw", None)


@pytest.mark.parametrize("url", ["redis+sentinel://s1:26379", "redis+sentinel://s1/scorer",
                                 "redis+sentinel://s1:port/scorer", "redis+sentinel://s1:26379/scorer/zero",
                                 "redis+sentinel://s1:26379,:26380/scorer", "redis+sentinel://s1:26379/a/0/extra"])
def test_a_malformed_sentinel_url_names_the_setting(url: str) -> None:
    with pytest.raises(SettingsError, match="SCORER_REDIS_URL"):
        sentinel_url(url)


def test_a_malformed_sentinel_url_stops_settings_at_once() -> None:
    with pytest.raises(SettingsError, match="SCORER_REDIS_URL"):
        Settings.from_env({"SCORER_REDIS_URL": "redis+sentinel://s1:26379"})
