"""`scorer check` on the settings themselves: the tokens that guard students' data, where notifications go."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from helpers.tls import issue_for_loopback
from streams.settings import Settings
from streams.tools.check_settings import settings_findings


def _levels(**settings: str) -> dict[str, tuple[str, str]]:
    return {f.check: (f.level, f.detail) for f in settings_findings(Settings(**settings))}


@pytest.mark.parametrize(("token", "level"), [("", "warn"), ("change-me", "error"), ("x" * 15, "error"),
                                              ("x" * 16, "warn"), ("x" * 31, "warn"), ("x" * 32, "ok")])
def test_a_token_is_judged_by_its_length(token: str, level: str) -> None:
    found = _levels(api_token=token, ingest_token=token)
    assert found["api_token"][0] == found["ingest_token"][0] == level
    assert token not in found["api_token"][1] or not token  # the secret itself is never printed


@pytest.mark.parametrize(("url", "level"), [("", "ok"), ("https://hooks.school.example/notify?key=s3cret", "ok"),
                                            ("http://127.0.0.1:9000/hook", "ok"), ("http://localhost/hook", "ok"),
                                            ("http://[::1]/hook", "ok"), ("http://notify.internal/hook?key=s3cret",
                                                                         "warn")])
def test_a_webhook_in_plain_http_off_this_host_is_a_warning(url: str, level: str) -> None:
    found_level, detail = _levels(notify_webhook_url=url)["notify_webhook_url"]
    assert found_level == level and "s3cret" not in detail


@pytest.mark.parametrize(("settings", "check", "level", "says"), [
    ({"api_token": "n" * 32, "api_token_previous": "o" * 32}, "api_token_previous", "warn",
     "scorer_read_api_previous_tokens_total"),
    ({"api_token": "n" * 32, "api_token_previous": "old"}, "api_token_previous", "error", "guessable"),
    ({"ingest_token": "", "ingest_token_previous": "o" * 32}, "ingest_token_previous", "warn", "is empty"),
    ({"ingest_token": "n" * 32, "ingest_token_previous": "n" * 32}, "ingest_token_previous", "warn", "itself"),
    ({"notify_webhook_secret": "n", "notify_webhook_secret_previous": "o"}, "notify_webhook_secret_previous",
     "warn", "receiver"),
])
def test_a_previous_secret_is_a_rotation_to_finish(settings: dict[str, str], check: str, level: str,
                                                    says: str) -> None:
    found_level, detail = _levels(**settings)[check]
    assert (found_level, says in detail) == (level, True), detail
    assert all(secret not in detail for secret in settings.values() if len(secret) > 3)


def test_no_previous_secret_no_finding() -> None:
    assert not [check for check in _levels(api_token="n" * 32) if check.endswith("_previous")]


def test_a_certificate_the_server_would_not_load_is_an_error(tmp_path: Path) -> None:
    issued = issue_for_loopback(tmp_path)
    found = _levels(web_tls_cert_file=issued.cert_file, web_tls_key_file=issued.key_file,
                    ingest_tls_cert_file=issued.cert_file, ingest_tls_key_file=str(tmp_path / "gone.key"))
    assert found["web_tls"][0] == "ok"
    assert found["ingest_tls"][0] == "error" and "SCORER_INGEST_TLS_KEY_FILE" in found["ingest_tls"][1]
    assert "web_tls" not in _levels()  # plain HTTP: nothing to load


@pytest.mark.parametrize(("days_left", "level"), [(60, "ok"), (13, "warn"), (-1, "error")])
def test_a_certificate_near_its_expiry_is_a_warning_and_an_expired_one_an_error(
        tmp_path: Path, days_left: int, level: str) -> None:
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(days=days_left, hours=1)
    issued = issue_for_loopback(tmp_path, not_after=expires)
    found = _levels(web_tls_cert_file=issued.cert_file, web_tls_key_file=issued.key_file)["web_tls"]
    assert found[0] == level and f"valid until {expires.isoformat()}" in found[1], found


def test_the_people_file_is_read_as_the_worker_will(tmp_path: Path) -> None:
    people = tmp_path / "people"
    people.write_text("Anna anna-s-own-token-0123456789\n")
    found = _levels(api_tokens_file=str(people))
    assert found["api_tokens_file"] == ("ok", "1 listed, each with a token of their own")
    people.write_text("Anna anna-s-own-token-0123456789\nBoris boris-s-own-token-0123456789 courses=77\n")
    assert _levels(api_tokens_file=str(people))["api_tokens_file"] == (
        "ok", "2 listed, each with a token of their own; 1 of them reading only the courses their line names")
    assert found["api_token"][0] == "ok" and "only the people" in found["api_token"][1]
    people.write_text("Anna short\n")
    found = _levels(api_tokens_file=str(people))
    assert found["api_tokens_file"][0] == "error" and "line 1 (Anna)" in found["api_tokens_file"][1]
    assert found["api_token"][0] == "warn", "no shared token and no one listed: the doors refuse everyone"


@pytest.mark.parametrize(("days_left", "level"), [(60, "ok"), (13, "warn"), (-1, "error")])
def test_the_kafka_client_certificate_is_loaded_and_its_expiry_judged(tmp_path: Path, days_left: int,
                                                                       level: str) -> None:
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(days=days_left, hours=1)
    issued = issue_for_loopback(tmp_path, not_after=expires)
    ca_file = tmp_path / "ca.crt"
    ca_file.write_bytes(issued.ca.cert_pem.bytes())
    files = {"kafka_ssl_ca_file": str(ca_file), "kafka_ssl_cert_file": issued.cert_file,
             "kafka_ssl_key_file": issued.key_file}
    found = _levels(kafka_security_protocol="SSL", **files)["kafka_ssl"]
    assert found[0] == level and f"valid until {expires.isoformat()}" in found[1], found
    assert "kafka_ssl" not in _levels(**files)  # PLAINTEXT: no certificate is shown
    broken = _levels(kafka_security_protocol="SSL", **{**files, "kafka_ssl_key_file": str(tmp_path / "gone")})
    assert broken["kafka_ssl"][0] == "error" and "SCORER_KAFKA_SSL" in broken["kafka_ssl"][1]
