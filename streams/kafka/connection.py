"""How every Kafka client of the scorer reaches the cluster: its bootstrap servers, and TLS and SASL where
the cluster asks for them (SCORER_KAFKA_SECURITY_PROTOCOL and the settings beside it). One place, so the
workers, the door, the notifier and the tools cannot disagree about it."""
from __future__ import annotations

from typing import Any

from aiokafka.helpers import create_ssl_context

from streams.settings import Settings


def kafka_connection(settings: Settings) -> dict[str, Any]:
    """The keyword arguments aiokafka's consumers, producers and admin clients take to connect."""
    options: dict[str, Any] = {"bootstrap_servers": settings.bootstrap_servers,
                               "security_protocol": settings.kafka_security_protocol}
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = create_ssl_context(cafile=settings.kafka_ssl_ca_file or None,
                                                    certfile=settings.kafka_ssl_cert_file or None,
                                                    keyfile=settings.kafka_ssl_key_file or None)
    if settings.kafka_security_protocol.startswith("SASL_"):
        options.update(sasl_mechanism=settings.kafka_sasl_mechanism,
                       sasl_plain_username=settings.kafka_sasl_username,
                       sasl_plain_password=settings.kafka_sasl_password)
    return options
