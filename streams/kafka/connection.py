"""How every Kafka client of the scorer reaches the cluster: its bootstrap servers, and TLS and SASL where
the cluster asks for them (SCORER_KAFKA_SECURITY_PROTOCOL and the settings beside it). One place, so the
workers, the door, the notifier and the tools cannot disagree about it.

With TLS, the clients of one process share one context (`client_certificate`), which the long-running processes
follow (`followed_client_certificate`): a renewed client certificate or CA file is used from the next
connection on, without a restart."""
from __future__ import annotations

from typing import Any

from prometheus_client import Gauge

from streams.followed import FollowedFiles
from streams.settings import Settings
from streams.tls import ClientCertificate

#: The process's TLS contexts for Kafka, by the files they are made from (one, but for tests' settings).
_CERTIFICATES: dict[tuple[str, str, str], ClientCertificate] = {}


def kafka_connection(settings: Settings) -> dict[str, Any]:
    """The keyword arguments aiokafka's consumers, producers and admin clients take to connect."""
    options: dict[str, Any] = {"bootstrap_servers": settings.bootstrap_servers,
                               "security_protocol": settings.kafka_security_protocol}
    if settings.kafka_tls:
        options["ssl_context"] = client_certificate(settings).context
    if settings.kafka_security_protocol.startswith("SASL_"):
        options.update(sasl_mechanism=settings.kafka_sasl_mechanism,
                       sasl_plain_username=settings.kafka_sasl_username,
                       sasl_plain_password=settings.kafka_sasl_password)
    return options


def client_certificate(settings: Settings) -> ClientCertificate:
    """The process's one TLS context for the settings' files (made at the first call)."""
    files = (settings.kafka_ssl_ca_file, settings.kafka_ssl_cert_file, settings.kafka_ssl_key_file)
    if files not in _CERTIFICATES:
        _CERTIFICATES[files] = ClientCertificate(*files)
    return _CERTIFICATES[files]


def followed_client_certificate(settings: Settings, expiry: Gauge,
                                stale: Gauge) -> list[FollowedFiles[Any]]:
    """What a long-running process adds to what it follows (streams.followed.follow): the Kafka TLS files, with the
    client certificate's expiry on `expiry` (label `kafka_client`); nothing without TLS or without files."""
    if not settings.kafka_tls:
        return []
    followed = client_certificate(settings).follow("kafka_client", expiry, stale)
    return [] if followed is None else [followed]
