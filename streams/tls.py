"""HTTPS for the servers that answer with students' data (the worker's read API and console, the LMS's door):
without a proxy in front, a token and the data it reads would cross the network in the clear.

Certificates are short-lived where they are managed well (cert-manager renews Let's Encrypt's 90-day ones a
month ahead, by replacing the mounted files): `ServerCertificate` loads the renewed files into the running
server's context, so new connections get the new certificate without a restart, and exports when the one
served expires, so an alert fires while a renewal that did not happen can still be made."""
from __future__ import annotations

import asyncio
import logging
import os
import re
import ssl
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import Gauge

from streams.settings import SettingsError

log = logging.getLogger(__name__)

_PEM_CERTIFICATE = re.compile(r"-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----")
_SEQUENCE, _EXPLICIT_VERSION, _UTC_TIME, _GENERALIZED_TIME = 0x30, 0xA0, 0x17, 0x18


def server_context(cert_file: str, key_file: str, variable: str) -> ssl.SSLContext | None:
    """The TLS context of a server whose settings name `cert_file` and `key_file` (`variable` is their
    settings' prefix, for the error), or None for plain HTTP. TLS 1.2 at least; a file that is missing,
    unreadable or not the certificate's key stops the process at start, naming the variable."""
    if not cert_file:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError) as error:  # the files' names may be shown; their contents never are
        raise SettingsError(f"{variable}_CERT_FILE / {variable}_KEY_FILE: {type(error).__name__}: "
                            f"{getattr(error, 'strerror', None) or getattr(error, 'reason', None) or error}") from None
    return context


def not_after(cert_file: str) -> datetime:
    """When the first certificate of a PEM file (the server's own, before its chain) stops being valid: read
    from its DER (X.509's tbsCertificate.validity), as the standard library offers no public way. ValueError
    when the file holds no certificate it can read."""
    found = _PEM_CERTIFICATE.search(Path(cert_file).read_text(encoding="ascii", errors="replace"))
    if found is None:
        raise ValueError("no PEM certificate in the file")
    der = ssl.PEM_cert_to_DER_cert(found.group(0))
    try:
        certificate = _inside(der, 0, _SEQUENCE)
        at = _inside(der, certificate[0], _SEQUENCE)[0]  # tbsCertificate
        if der[at] == _EXPLICIT_VERSION:
            at = _element(der, at)[2]
        for _ in range(3):  # serialNumber, signature, issuer
            at = _element(der, at)[2]
        validity = _inside(der, at, _SEQUENCE)[0]
        expiry_at = _element(der, validity)[2]  # past notBefore
        tag, start, end = _element(der, expiry_at)
    except IndexError:
        raise ValueError("a truncated certificate") from None
    return _time(tag, der[start:end].decode("ascii"))


def _element(der: bytes, at: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the DER element at `at`."""
    tag, length, at = der[at], der[at + 1], at + 2
    if length & 0x80:
        count = length & 0x7F
        length, at = int.from_bytes(der[at:at + count], "big"), at + count
    return tag, at, at + length


def _inside(der: bytes, at: int, tag: int) -> tuple[int, int]:
    found, start, end = _element(der, at)
    if found != tag:
        raise ValueError(f"not an X.509 certificate (tag {found:#x} where {tag:#x} belongs)")
    return start, end


def _time(tag: int, text: str) -> datetime:
    """X.509's UTCTime (YYMMDDHHMMSSZ: years 1950-2049) or GeneralizedTime (YYYYMMDDHHMMSSZ), in UTC."""
    if tag == _UTC_TIME:
        text = ("19" if int(text[:2]) >= 50 else "20") + text
    elif tag != _GENERALIZED_TIME:
        raise ValueError(f"not an X.509 time (tag {tag:#x})")
    return datetime.strptime(text, "%Y%m%d%H%M%SZ").replace(tzinfo=UTC)


class ServerCertificate:
    """A server's TLS context that follows its certificate and key files (`refresh`), and the gauge of when the
    certificate it serves expires (`expiry`, labelled `server`)."""

    def __init__(self, cert_file: str, key_file: str, variable: str, server: str, expiry: Gauge) -> None:
        context = server_context(cert_file, key_file, variable)
        if context is None:
            raise ValueError("ServerCertificate needs a certificate file")
        self.context, self.cert_file, self.key_file = context, cert_file, key_file
        self._expiry = expiry.labels(server)
        self._loaded = self._stamp()
        self._refused: tuple[float, ...] | None = None
        try:
            self._expiry.set(not_after(cert_file).timestamp())
        except ValueError as error:  # OpenSSL took it: serve it, and say why its date is not exported
            log.warning("%s_CERT_FILE: its expiry was not read (%s)", variable, error)

    def _stamp(self) -> tuple[float, ...]:
        """What tells a replaced file: each file's modification time, size and inode (Kubernetes swaps a
        Secret's files by a symlink, which stat follows)."""
        stats = [os.stat(path) for path in (self.cert_file, self.key_file)]
        return tuple(value for stat in stats for value in (stat.st_mtime, stat.st_size, stat.st_ino))

    def refresh(self) -> bool:
        """Load the files into the serving context if they changed since they were loaded; True if it did. A
        pair that does not load (a half-written renewal, a key of another certificate) is tried into a scratch
        context first, so the served certificate stays as it was; it is logged once, and tried again each call."""
        try:
            stamp = self._stamp()
        except OSError as error:
            return self._refuse((), f"{type(error).__name__}: {error.strerror}")
        if stamp == self._loaded:
            return False
        try:
            server_context(self.cert_file, self.key_file, "the renewed certificate")
            expires = not_after(self.cert_file)
            self.context.load_cert_chain(self.cert_file, self.key_file)  # replaced again meanwhile: tried next time
        except (SettingsError, ValueError, OSError, ssl.SSLError) as error:
            return self._refuse(stamp, str(error))
        self._loaded, self._refused = stamp, None
        self._expiry.set(expires.timestamp())
        log.info("TLS: loaded the renewed certificate %s (valid until %s)", self.cert_file, expires.isoformat())
        return True

    def _refuse(self, stamp: tuple[float, ...], why: str) -> bool:
        """Keep the loaded pair; log once per state of the files (`()`: they could not be read)."""
        if stamp != self._refused:
            log.warning("TLS: kept serving the certificate loaded before: %s did not load (%s)", self.cert_file, why)
        self._refused = stamp
        return False


def serving(cert_file: str, key_file: str, variable: str, server: str, expiry: Gauge) -> ServerCertificate | None:
    """The server's certificate, or None for plain HTTP (no certificate file set)."""
    return ServerCertificate(cert_file, key_file, variable, server, expiry) if cert_file else None


async def follow(certificate: ServerCertificate | None, every_seconds: float) -> None:
    """Refresh the certificate every `every_seconds` (off the event loop: it reads files) until cancelled."""
    if certificate is None:
        return
    while True:
        await asyncio.sleep(every_seconds)
        await asyncio.to_thread(certificate.refresh)
