"""HTTPS for the servers that answer with students' data (the worker's read API and console, the LMS's door):
without a proxy in front, a token and the data it reads would cross the network in the clear.

The Kafka clients' own certificate (`ClientCertificate`, where the brokers ask for one) and CA are followed the
same way. Certificates are short-lived where they are managed well (cert-manager renews Let's Encrypt's 90-day ones a
month ahead, by replacing the mounted files): `ServerCertificate` hands the running server's new connections
a context of the renewed files, so they get the new certificate without a restart, and exports when the one
served expires, so an alert fires while a renewal that did not happen can still be made."""
from __future__ import annotations

import logging
import re
import socket
import ssl
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import Gauge

from streams.followed import FollowedFiles
from streams.settings import SettingsError

log = logging.getLogger(__name__)

_PEM_CERTIFICATE = re.compile(r"-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----")
_SEQUENCE, _EXPLICIT_VERSION, _UTC_TIME, _GENERALIZED_TIME = 0x30, 0xA0, 0x17, 0x18


def server_context(cert_file: str, key_file: str, variable: str) -> ssl.SSLContext | None:
    """The TLS context of a server whose settings name `cert_file` and `key_file` (`variable` is their
    settings' prefix, for the error), or None for plain HTTP. TLS 1.2 at least; a file that is missing,
    unreadable or not the certificate's key stops the process at start, naming the variable."""
    return _loaded(cert_file, key_file, variable) if cert_file else None


def _loaded(cert_file: str, key_file: str, variable: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError) as error:
        raise SettingsError(f"{variable}_CERT_FILE / {variable}_KEY_FILE: {_why(error)}") from None
    return context


def _why(error: OSError) -> str:
    """Why files did not load, for the error: the files' names may be shown; their contents never are."""
    return f"{type(error).__name__}: {getattr(error, 'strerror', None) or getattr(error, 'reason', None) or error}"


def _exported_expiry(cert_file: str, variable: str, expiry: Gauge) -> datetime | None:
    """When the certificate in `cert_file` expires, set on `expiry`; None where its date does not read (OpenSSL
    took the file, so it is used all the same, and the log says why its date is not exported)."""
    try:
        expires = not_after(cert_file)
    except ValueError as error:
        log.warning("%s_CERT_FILE: its expiry was not read (%s)", variable, error)
        return None
    expiry.set(expires.timestamp())
    return expires


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
    """A server's TLS context that follows its certificate and key files (`files.refresh`: streams.followed),
    and the gauge of when the certificate it serves expires (`expiry`, labelled `server`).

    `context`, the one the server is started with, is never changed after: each pair that loads whole gets a context
    of its own, and `context` hands every handshake the newest (its SNI callback, called with or without a server
    name). Loaded into the serving context in place, from the thread that follows the files, a handshake could meet
    the new certificate before its key (OpenSSL drops a key that does not match a new certificate, and the load lets
    go of the interpreter): 187 of 300 handshakes beside back-to-back renewals failed (tests/unit/test_tls.py)."""

    def __init__(self, cert_file: str, key_file: str, variable: str, server: str, expiry: Gauge,
                 stale: Gauge | None = None) -> None:
        self.variable = variable
        self._expiry = expiry.labels(server)
        self._newest: ssl.SSLContext  # set by the files' first reading
        self.files = FollowedFiles([cert_file, key_file], lambda: self._load(cert_file, key_file), "TLS certificate",
                                   stale)
        self.context = self._newest
        self.context.sni_callback = self._hand_over

    def _load(self, cert_file: str, key_file: str) -> datetime | None:
        """The pair as the newest context, once it has loaded whole (a pair that does not belong together raises and
        leaves the one before); when its certificate expires, if readable."""
        self._newest = _loaded(cert_file, key_file, self.variable)
        return _exported_expiry(cert_file, self.variable, self._expiry)

    def _hand_over(self, connection: ssl.SSLObject | ssl.SSLSocket, server_name: str | None,
                   context: ssl.SSLContext) -> None:
        """Each handshake gets the newest pair's context (one Python reference, swapped whole)."""
        if self._newest is not context:
            connection.context = self._newest


class _NewestContext(ssl.SSLContext):
    """The context the Kafka clients hold: each connection it opens (asyncio's `wrap_bio`, a blocking client's
    `wrap_socket`) is the newest loaded context's, so the files' settings arrive whole, and a CA taken out of the
    CA file is no longer trusted. Loaded into the clients' context in place, a CA could only be added (OpenSSL
    cannot remove one), and a handshake during the load could meet the new certificate before its key."""

    newest: ssl.SSLContext

    def wrap_bio(self, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO, server_side: bool = False,
                 server_hostname: str | bytes | None = None, session: ssl.SSLSession | None = None) -> ssl.SSLObject:
        return self.newest.wrap_bio(incoming, outgoing, server_side=server_side, server_hostname=server_hostname,
                                    session=session)

    def wrap_socket(self, sock: socket.socket, server_side: bool = False, do_handshake_on_connect: bool = True,
                    suppress_ragged_eofs: bool = True, server_hostname: str | bytes | None = None,
                    session: ssl.SSLSession | None = None) -> ssl.SSLSocket:
        return self.newest.wrap_socket(sock, server_side=server_side, do_handshake_on_connect=do_handshake_on_connect,
                                       suppress_ragged_eofs=suppress_ragged_eofs, server_hostname=server_hostname,
                                       session=session)


class ClientCertificate:
    """The TLS context a process's Kafka clients share (`context`), made from a private CA's file and a client
    certificate with its key (each optional: without a CA file the system's CAs are trusted), and `follow`, which
    reads renewed files into a context of their own that `context` opens every new connection with
    (`_NewestContext`): a connection opened after it (aiokafka reconnects, a new client) shows the new certificate
    and trusts the CAs of the new CA file only, with no restart. An established connection keeps its session; TLS
    checks a certificate at the handshake only."""

    def __init__(self, ca_file: str, cert_file: str, key_file: str, variable: str = "SCORER_KAFKA_SSL") -> None:
        self.ca_file, self.cert_file, self.key_file, self.variable = ca_file, cert_file, key_file, variable
        self.context = _NewestContext(ssl.PROTOCOL_TLS_CLIENT)
        self.context.newest = self._scratch()
        self._expiry: Gauge | None = None

    def follow(self, server: str, expiry: Gauge, stale: Gauge | None = None) -> FollowedFiles[datetime | None] | None:
        """The files to read again once renewed (`refresh`), the client certificate's expiry exported on `expiry`
        labelled `server`; None when no file is set."""
        paths = [path for path in (self.ca_file, self.cert_file, self.key_file) if path]
        if not paths:
            return None
        self._expiry = expiry.labels(server)
        return FollowedFiles(paths, self._reload, f"{self.variable} files", stale)

    def _scratch(self) -> ssl.SSLContext:
        """A context from the files as they are now; a file that is missing or does not load raises, naming the
        settings (never the files' contents)."""
        try:
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ca_file or None)
            if self.cert_file:
                context.load_cert_chain(self.cert_file, self.key_file or None)
        except (OSError, ssl.SSLError) as error:
            raise SettingsError(f"{self.variable}_CA_FILE / _CERT_FILE / _KEY_FILE: {_why(error)}") from None
        return context

    def _reload(self) -> datetime | None:
        """The files as the newest context, once they load whole (a certificate beside a key not its own raises and
        leaves the one before); when the client certificate expires, if there is one and it reads."""
        self.context.newest = self._scratch()
        if not self.cert_file or self._expiry is None:
            return None
        return _exported_expiry(self.cert_file, self.variable, self._expiry)


def serving(cert_file: str, key_file: str, variable: str, server: str, expiry: Gauge,
            stale: Gauge) -> ServerCertificate | None:
    """The server's certificate, or None for plain HTTP (no certificate file set)."""
    return ServerCertificate(cert_file, key_file, variable, server, expiry, stale) if cert_file else None
