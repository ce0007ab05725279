"""Signed webhooks (streams/notify/signing.py): what a receiver checks."""
from __future__ import annotations

from streams.notify.signing import TOLERANCE_SECONDS, signature, verify
from streams.settings import Settings

BODY, SECRET, NOW = b'{"alert_id": "7:3:1:status_change:dozing"}', "s3cret", 1_764_800_000.0


def test_a_signature_verifies_only_for_its_body_secret_and_time() -> None:
    header = signature(SECRET, BODY, NOW)
    assert header.startswith(f"t={int(NOW)},v1=") and SECRET not in header
    assert verify(SECRET, header, BODY, NOW + 10)
    assert not verify(SECRET, header, BODY + b" ", NOW)  # the body changed
    assert not verify("other", header, BODY, NOW)  # another secret
    assert not verify(SECRET, header, BODY, NOW + TOLERANCE_SECONDS + 1)  # an old POST sent again
    assert not verify(SECRET, signature(SECRET, BODY, NOW + 3600), BODY, NOW)  # from the future
    for broken in (None, "", "v1=abc", f"t=x,v1={header.split('v1=')[1]}", f"t={int(NOW)}", "t=1" + "0" * 20,
                   f"t={int(NOW)},v1=é"):
        assert not verify(SECRET, broken, BODY, NOW), broken


def test_during_a_rotation_a_receiver_with_either_secret_accepts_the_post() -> None:
    header = signature("new-secret", BODY, NOW, previous="old-secret")
    assert header.count("v1=") == 2 and "secret" not in header
    assert verify("new-secret", header, BODY, NOW) and verify("old-secret", header, BODY, NOW)
    assert not verify("third-secret", header, BODY, NOW)
    assert not verify("old-secret", signature("new-secret", BODY, NOW), BODY, NOW)  # the rotation is over
    two_times = f"t={int(NOW)},{header}"  # a second `t` could pick the time a replay needs: refused
    assert not verify("new-secret", two_times, BODY, NOW)


def test_settings_show_no_secret_in_their_repr() -> None:
    shown = repr(Settings(redis_url="redis://u:redis-pw@redis:6379/0", api_token="api-tok",
                          database_url="postgresql+psycopg2://scorer:db-pw@db:5432/scorer", ingest_token="door-tok",
                          kafka_sasl_password="kafka-pw", notify_webhook_secret="hook-secret",
                          api_token_previous="old-api-tok", ingest_token_previous="old-door-tok",
                          notify_webhook_secret_previous="old-hook-secret", notify_webhook_url="https://hooks.example/in/url-tok?key=url-key"))
    secrets = ("redis-pw", "api-tok", "db-pw", "door-tok", "kafka-pw", "hook-secret", "url-tok", "url-key",
               "old-api-tok", "old-door-tok", "old-hook-secret")
    assert not [secret for secret in secrets if secret in shown]
    assert "redis://redis:6379/…" in shown and "api_token='<set>'" in shown and "ingest_token='<set>'" in shown
