"""HTTPS for the worker and the LMS's door (streams/tls.py): the settings go in pairs, a bad file stops the start,
a certificate's expiry is read, and a renewed pair is served without a restart (a bad one never)."""
from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from prometheus_client import CollectorRegistry, Gauge

from helpers.tls import issue_for_loopback, write_leaf
from streams.settings import Settings, SettingsError
from streams.tls import ClientCertificate, ServerCertificate, not_after, server_context, serving


def test_no_certificate_is_plain_http() -> None:
    assert server_context("", "", "SCORER_WEB_TLS") is None


def test_a_certificate_and_its_key_make_a_tls_1_2_server_context(tmp_path: Path) -> None:
    issued = issue_for_loopback(tmp_path)
    context = server_context(issued.cert_file, issued.key_file, "SCORER_WEB_TLS")
    assert context is not None and context.minimum_version >= ssl.TLSVersion.TLSv1_2


def test_a_missing_file_or_a_key_of_another_certificate_names_the_setting(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    issued, other = issue_for_loopback(tmp_path / "a"), issue_for_loopback(tmp_path / "b")
    for cert, key in ((str(tmp_path / "missing.crt"), issued.key_file), (issued.cert_file, other.key_file),
                      (issued.key_file, issued.key_file)):
        with pytest.raises(SettingsError, match="SCORER_INGEST_TLS_CERT_FILE / SCORER_INGEST_TLS_KEY_FILE"):
            server_context(cert, key, "SCORER_INGEST_TLS")


@pytest.mark.parametrize("half", [{"web_tls_cert_file": "server.crt"}, {"web_tls_key_file": "server.key"},
                                  {"ingest_tls_cert_file": "server.crt"}, {"ingest_tls_key_file": "server.key"}])
def test_the_certificate_and_its_key_go_together(half: dict[str, str]) -> None:
    with pytest.raises(SettingsError, match="set both or neither"):
        Settings(**half)


def _their_not_after(cert_file: str) -> datetime:
    """The oracle: cryptography's reading of the file's first certificate."""
    return x509.load_pem_x509_certificates(Path(cert_file).read_bytes())[0].not_valid_after_utc


@pytest.mark.parametrize("expires", [datetime(2031, 5, 17, 8, 30, 5, tzinfo=UTC),  # UTCTime
                                     datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC),  # UTCTime's last year
                                     datetime(2050, 1, 1, tzinfo=UTC),  # GeneralizedTime from 2050
                                     datetime(2101, 2, 3, 4, 5, 6, tzinfo=UTC)])
def test_the_expiry_of_the_servers_own_certificate_is_read(tmp_path: Path, expires: datetime) -> None:
    issued = issue_for_loopback(tmp_path, not_after=expires)
    assert not_after(issued.cert_file) == expires == _their_not_after(issued.cert_file)
    chain = tmp_path / "chain.pem"  # its own, then the CA's (valid for longer): its own counts
    chain.write_bytes(Path(issued.cert_file).read_bytes() + issued.ca.cert_pem.bytes())
    assert not_after(str(chain)) == expires


def test_a_file_without_a_certificate_has_no_expiry(tmp_path: Path) -> None:
    issued = issue_for_loopback(tmp_path)
    bad = tmp_path / "bad.pem"
    pem = "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n"
    for text in ("", Path(issued.key_file).read_text(), pem.format("MAMCAQE="), pem.format("MIIB")):
        bad.write_text(text)
        with pytest.raises(ValueError):
            not_after(str(bad))


def _served(server: ssl.SSLContext, client: ssl.SSLContext) -> bytes:
    """The certificate a client is shown in a handshake with `server` (in memory, no socket), as DER."""
    pipes = [ssl.MemoryBIO() for _ in range(4)]
    serving_end = server.wrap_bio(pipes[0], pipes[1], server_side=True)
    asking_end = client.wrap_bio(pipes[2], pipes[3], server_hostname="127.0.0.1")
    done: set[int] = set()
    for _ in range(10):
        for side, (end, outgoing, incoming) in enumerate(((asking_end, pipes[3], pipes[0]),
                                                          (serving_end, pipes[1], pipes[2]))):
            try:
                end.do_handshake()
                done.add(side)
            except ssl.SSLWantReadError:
                pass
            incoming.write(outgoing.read())
        if done == {0, 1}:
            certificate = asking_end.getpeercert(binary_form=True)
            assert certificate is not None
            return certificate
    raise AssertionError("no handshake")


def _der(cert_file: str) -> bytes:
    return ssl.PEM_cert_to_DER_cert(Path(cert_file).read_text().split("-----END CERTIFICATE-----")[0]
                                    + "-----END CERTIFICATE-----")


def test_a_renewed_pair_is_served_without_a_restart_and_a_bad_one_never(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    issued = issue_for_loopback(tmp_path, not_after=datetime(2030, 1, 1, tzinfo=UTC))
    expiry = Gauge("expiry_seconds", "", ["server"], registry=CollectorRegistry())
    certificate = ServerCertificate(issued.cert_file, issued.key_file, "SCORER_WEB_TLS", "web", expiry)
    first = _der(issued.cert_file)
    assert _served(certificate.context, issued.client) == first
    assert expiry.labels("web")._value.get() == datetime(2030, 1, 1, tzinfo=UTC).timestamp()
    assert not certificate.files.refresh()  # the same files: nothing to load

    issued.renew(datetime(2031, 1, 1, tzinfo=UTC))
    renewed = _der(issued.cert_file)
    assert certificate.files.refresh() and not certificate.files.refresh()
    assert renewed != first and _served(certificate.context, issued.client) == renewed  # the same context
    assert expiry.labels("web")._value.get() == datetime(2031, 1, 1, tzinfo=UTC).timestamp()

    with caplog.at_level(logging.WARNING, logger="streams.followed"):
        issued.renew(only="certificate")  # half-done: the new certificate beside the old key
        assert not certificate.files.refresh() and not certificate.files.refresh()
        issued.renew(only="key")  # a key of no certificate in the files
        assert not certificate.files.refresh()
        Path(issued.key_file).unlink()
        assert not certificate.files.refresh() and not certificate.files.refresh()
    assert _served(certificate.context, issued.client) == renewed  # still served, still valid
    assert expiry.labels("web")._value.get() == datetime(2031, 1, 1, tzinfo=UTC).timestamp()
    kept = [r.getMessage() for r in caplog.records if "kept the one read before" in r.getMessage()]
    assert len(kept) == 3 and "FileNotFoundError" in kept[2]  # once per state of the files
    assert "PRIVATE KEY" not in caplog.text

    issued.renew(datetime(2032, 1, 1, tzinfo=UTC))  # repaired
    assert certificate.files.refresh() and _served(certificate.context, issued.client) == _der(issued.cert_file)


def test_a_handshake_while_a_renewal_loads_is_served_a_whole_pair(tmp_path: Path) -> None:
    """The renewal loads in a thread (streams.followed.follow) while the event loop shakes hands. Loaded into the
    serving context in place, a handshake could meet the new certificate before its key had loaded (OpenSSL drops
    a key that does not match a new certificate, and the load lets go of the interpreter): the client saw an EOF."""
    issued = issue_for_loopback(tmp_path)
    expiry = Gauge("expiry_seconds", "", ["server"], registry=CollectorRegistry())
    certificate = ServerCertificate(issued.cert_file, issued.key_file, "SCORER_WEB_TLS", "web", expiry)

    def renew() -> bool:
        issued.renew()
        return certificate.files.refresh()
    _handshakes_beside_renewals(lambda: _served(certificate.context, issued.client), renew)


#: Handshakes beside back-to-back renewals: loaded in place, 187 of 300 failed.
HANDSHAKES = 300


def _handshakes_beside_renewals(handshake: Callable[[], bytes], renew: Callable[[], bool]) -> None:
    """HANDSHAKES handshakes on this thread while another renews again and again: none fails, and they met
    renewals (they were shown many certificates)."""
    stop, renewals = threading.Event(), [0]

    def renew_again_and_again() -> None:
        while not stop.is_set():
            renewals[0] += renew()

    renewer = threading.Thread(target=renew_again_and_again)
    renewer.start()
    failed, shown = 0, set()
    try:
        for _ in range(HANDSHAKES):
            try:
                shown.add(handshake())
            except ssl.SSLError:
                failed += 1
    finally:
        stop.set()
        renewer.join()
    assert renewals[0] > 10 and len(shown) > 10
    assert failed == 0


def test_plain_http_serves_no_certificate() -> None:
    unused = Gauge("unused_seconds", "", ["server"], registry=CollectorRegistry())
    assert serving("", "", "SCORER_WEB_TLS", "web", unused, unused) is None


def _client_shown(server: ssl.SSLContext, client: ssl.SSLContext) -> bytes:
    """The certificate `server` (which asks for one) is shown by `client` in a handshake, as DER."""
    pipes = [ssl.MemoryBIO() for _ in range(4)]
    serving_end = server.wrap_bio(pipes[0], pipes[1], server_side=True)
    asking_end = client.wrap_bio(pipes[2], pipes[3], server_hostname="127.0.0.1")
    for _ in range(10):
        for end, outgoing, incoming in ((asking_end, pipes[3], pipes[0]), (serving_end, pipes[1], pipes[2])):
            try:
                end.do_handshake()
            except ssl.SSLWantReadError:
                pass
            incoming.write(outgoing.read())
        shown = serving_end.getpeercert(binary_form=True) if serving_end.version() else None
        if shown:
            return shown
    raise AssertionError("no handshake")


def _broker(signed_by: trustme.CA, trusting: trustme.CA) -> ssl.SSLContext:
    """A broker's listener that asks every client for a certificate (mTLS)."""
    broker = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    signed_by.issue_cert("127.0.0.1").configure_cert(broker)
    broker.verify_mode = ssl.CERT_REQUIRED
    trusting.configure_trust(broker)
    return broker


def _client_files(directory: Path, ca: trustme.CA, not_after: datetime | None = None) -> tuple[Path, Path, Path]:
    """The CA file and a client certificate with its key, as SCORER_KAFKA_SSL_* name them."""
    ca_file, cert_file, key_file = directory / "ca.crt", directory / "tls.crt", directory / "tls.key"
    ca_file.write_bytes(ca.cert_pem.bytes())
    write_leaf(ca.issue_cert("scorer", not_after=not_after), str(cert_file), str(key_file))
    return ca_file, cert_file, key_file


def test_a_renewed_kafka_client_certificate_is_shown_from_the_next_connection_and_a_bad_one_never(
        tmp_path: Path) -> None:
    """A broker that asks for client certificates (mTLS) sees the renewed one in the next handshake of the same
    shared context; a certificate beside a key not its own is never loaded; a renewed CA file is trusted too."""
    ca = trustme.CA()
    broker = _broker(ca, ca)
    ca_file, cert_file, key_file = _client_files(tmp_path, ca, datetime(2030, 1, 1, tzinfo=UTC))
    registry = CollectorRegistry()
    expiry = Gauge("expiry_seconds", "", ["server"], registry=registry)
    stale = Gauge("stale", "", ["file"], registry=registry)
    certificate = ClientCertificate(str(ca_file), str(cert_file), str(key_file))
    files = certificate.follow("kafka_client", expiry, stale)
    assert files is not None
    shared = certificate.context  # what every Kafka client of the process was given: it must follow the files
    first = _client_shown(broker, shared)
    assert first == _der(str(cert_file)) and not files.refresh()
    assert expiry.labels("kafka_client")._value.get() == datetime(2030, 1, 1, tzinfo=UTC).timestamp()

    write_leaf(ca.issue_cert("scorer", not_after=datetime(2031, 1, 1, tzinfo=UTC)), str(cert_file), str(key_file))
    assert files.refresh()
    renewed = _client_shown(broker, shared)
    assert renewed == _der(str(cert_file)) != first
    assert expiry.labels("kafka_client")._value.get() == datetime(2031, 1, 1, tzinfo=UTC).timestamp()

    # half-done: the new certificate beside the old key
    write_leaf(ca.issue_cert("scorer"), str(cert_file), str(key_file), only="certificate")
    assert not files.refresh() and stale.labels("SCORER_KAFKA_SSL files")._value.get() == 1
    assert _client_shown(broker, shared) == renewed

    new_ca = trustme.CA()  # the brokers move to another CA: the renewed CA file is trusted from now on
    new_broker = _broker(new_ca, ca)
    with pytest.raises(ssl.SSLError):
        _client_shown(new_broker, shared)
    ca_file.write_bytes(ca.cert_pem.bytes() + new_ca.cert_pem.bytes())
    write_leaf(ca.issue_cert("scorer"), str(cert_file), str(key_file))
    assert files.refresh() and stale.labels("SCORER_KAFKA_SSL files")._value.get() == 0
    assert _client_shown(new_broker, shared) == _der(str(cert_file))
    assert _client_shown(broker, shared) == _der(str(cert_file))

    ca_file.write_bytes(new_ca.cert_pem.bytes())  # the old CA taken out of trust: its brokers are refused at once
    assert files.refresh()
    with pytest.raises(ssl.SSLCertVerificationError):
        _client_shown(broker, shared)
    assert _client_shown(new_broker, shared) == _der(str(cert_file))


def test_a_kafka_client_handshake_while_its_renewal_loads_shows_a_whole_pair(tmp_path: Path) -> None:
    ca = trustme.CA()
    broker = _broker(ca, ca)
    ca_file, cert_file, key_file = _client_files(tmp_path, ca)
    certificate = ClientCertificate(str(ca_file), str(cert_file), str(key_file))
    files = certificate.follow("kafka_client", Gauge("expiry_seconds", "", ["server"], registry=CollectorRegistry()))
    assert files is not None

    def renew() -> bool:
        write_leaf(ca.issue_cert("scorer"), str(cert_file), str(key_file))
        return files.refresh()
    _handshakes_beside_renewals(lambda: _client_shown(broker, certificate.context), renew)


def test_kafka_tls_without_files_follows_nothing() -> None:
    unused = Gauge("unused_seconds", "", ["server"], registry=CollectorRegistry())
    assert ClientCertificate("", "", "").follow("kafka_client", unused, unused) is None
