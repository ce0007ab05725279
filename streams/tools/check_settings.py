"""`scorer check`'s findings on the settings themselves: the secrets that guard students' data and where the
notifications go. The dependencies' checks cannot see these, and each one would otherwise show only as a
console nobody can log in to, or a token a script can guess."""
from __future__ import annotations

import ipaddress
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from streams.settings import Settings, SettingsError
from streams.tls import ClientCertificate, not_after, server_context
from streams.tokens import MIN_TOKEN_CHARS, read_people
from streams.tools.check_findings import ERROR, OK, WARN, Finding

#: Below this many, a warning: 32 random URL-safe characters carry 192 bits.
TOKEN_SHORT = 32
#: A certificate valid for less than this is a warning (the alert ScorerTlsCertificateExpiresSoon's 14 days).
CERTIFICATE_RENEWAL_DUE = timedelta(days=14)
_MAKE_ONE = "`python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`"


def settings_findings(settings: Settings) -> list[Finding]:
    api, ingest = "the read API and the curators' console", "the LMS's door (`scorer ingest`)"
    people = _people(settings.api_tokens_file)
    shared = (Finding("settings", "api_token", OK, "empty: only the people of SCORER_API_TOKENS_FILE open the "
                                                   "read API and the console")
              if not settings.api_token and people and people[0].level == OK else
              _token(settings.api_token, "SCORER_API_TOKEN", api))
    return [shared, *people,
            *_previous(settings.api_token_previous, settings.api_token, "SCORER_API_TOKEN", api,
                       "scorer_read_api_previous_tokens_total"),
            _token(settings.ingest_token, "SCORER_INGEST_TOKEN", ingest),
            *_previous(settings.ingest_token_previous, settings.ingest_token, "SCORER_INGEST_TOKEN", ingest,
                       "scorer_ingest_previous_tokens_total"),
            *_tls(settings.web_tls_cert_file, settings.web_tls_key_file, "SCORER_WEB_TLS"),
            *_tls(settings.ingest_tls_cert_file, settings.ingest_tls_key_file, "SCORER_INGEST_TLS"),
            *_kafka_client_certificate(settings),
            _webhook(settings.notify_webhook_url),
            *_previous(settings.notify_webhook_secret_previous, settings.notify_webhook_secret,
                       "SCORER_NOTIFY_WEBHOOK_SECRET", "", "")]


def _people(path: str) -> list[Finding]:
    """People's own tokens: a file the worker cannot read stops it at start."""
    if not path:
        return []
    try:
        people = read_people(path)
    except (OSError, ValueError) as error:
        return [Finding("settings", "api_tokens_file", ERROR, f"SCORER_API_TOKENS_FILE: {error}")]
    limited = sum(person.courses is not None for person in people)
    detail = f"{len(people)} listed, each with a token of their own" + (
        f"; {limited} of them reading only the courses their line names" if limited else "")
    return [Finding("settings", "api_tokens_file", OK if people else WARN, detail if people else "no one listed")]


def _previous(previous: str, current: str, name: str, guards: str, counter: str) -> list[Finding]:
    """A rotation under way: the old secret still works, so it should not stay set longer than it must."""
    if not previous:
        return []
    check = f"{name.removeprefix('SCORER_').lower()}_previous"
    if not current:
        return [Finding("settings", check, WARN, f"{name}_PREVIOUS is set and {name} is empty: the old one "
                                                 "is not used alone")]
    if previous == current:
        return [Finding("settings", check, WARN, f"{name}_PREVIOUS is {name} itself: nothing is being replaced")]
    if guards:
        found = _token(previous, f"{name}_PREVIOUS", guards)
        if found.level != OK:
            return [replace(found, check=check)]
        return [Finding("settings", check, WARN, f"{name}_PREVIOUS is still accepted beside {name}: empty it "
                                                 f"once `{counter}` stops rising")]
    return [Finding("settings", check, WARN, f"{name}_PREVIOUS still signs each POST beside {name}: empty it "
                                             "once the receiver checks the new one")]


def _token(token: str, name: str, guards: str) -> Finding:
    check = name.removeprefix("SCORER_").lower()
    if not token:
        return Finding("settings", check, WARN, f"{name} is empty: {guards} refuse every request (set it where "
                                                f"they are used; {_MAKE_ONE} makes one)")
    if len(token) < MIN_TOKEN_CHARS:  # guessable by a script against the console's login
        return Finding("settings", check, ERROR, f"{name} has {len(token)} characters: guessable, and it guards "
                                                 f"{guards}; use {TOKEN_SHORT} or more ({_MAKE_ONE})")
    if len(token) < TOKEN_SHORT:
        return Finding("settings", check, WARN, f"{name} has {len(token)} characters: use {TOKEN_SHORT} or more "
                                                f"({_MAKE_ONE})")
    return Finding("settings", check, OK, f"{name} has {len(token)} characters")


def _tls(cert_file: str, key_file: str, variable: str, now: datetime | None = None) -> list[Finding]:
    """A certificate the server would not load stops it at start, and an expired one is refused by every client:
    say so before it is deployed, and warn while a renewal is due."""
    if not cert_file:
        return []
    check = variable.removeprefix("SCORER_").lower()
    try:
        server_context(cert_file, key_file, variable)
        expires = not_after(cert_file)
    except (SettingsError, ValueError) as error:
        return [Finding("settings", check, ERROR, f"the server would not start: {error}")]
    return [_valid_until(check, expires, f"{variable}_CERT_FILE and its key load: the server speaks HTTPS with",
                         now)]


def _kafka_client_certificate(settings: Settings, now: datetime | None = None) -> list[Finding]:
    """The Kafka clients' certificate, where the brokers ask for one: files that do not load stop every process
    at start, and an expired certificate is refused by the brokers."""
    if not settings.kafka_tls or not settings.kafka_ssl_cert_file:
        return []
    try:
        ClientCertificate(settings.kafka_ssl_ca_file, settings.kafka_ssl_cert_file, settings.kafka_ssl_key_file)
        expires = not_after(settings.kafka_ssl_cert_file)
    except (SettingsError, ValueError) as error:
        return [Finding("settings", "kafka_ssl", ERROR, f"no process would start: {error}")]
    return [_valid_until("kafka_ssl", expires, "SCORER_KAFKA_SSL_CERT_FILE and its key load: the Kafka clients "
                                               "show the brokers", now)]


def _valid_until(check: str, expires: datetime, loaded: str, now: datetime | None) -> Finding:
    """An error once the certificate has expired, a warning while its renewal is due."""
    left = expires - (now or datetime.now(UTC))
    level = ERROR if left.total_seconds() <= 0 else WARN if left < CERTIFICATE_RENEWAL_DUE else OK
    return Finding("settings", check, level, f"{loaded} a certificate valid until {expires.isoformat()} "
                                             f"({left.days} days from now)")


def _webhook(url: str) -> Finding:
    if not url:
        return Finding("settings", "notify_webhook_url", OK, "empty: `scorer notify` prints the notifications")
    parts = urlsplit(url)
    if parts.scheme == "http" and not _loopback(parts.hostname or ""):
        return Finding("settings", "notify_webhook_url", WARN, f"plain http to {parts.hostname}: the notifications "
                                                               "(students' ids and statuses) and any token in the URL "
                                                               "cross the network unencrypted; use https")
    return Finding("settings", "notify_webhook_url", OK, f"{parts.scheme} to {parts.hostname}")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
