"""Prometheus metrics of `scorer ingest`, in a registry of their own (the ingest process runs no
worker, so its `/metrics` shows only these). Labels are bounded sets (route, status, topic,
source, kind, reason from the adapters' fixed vocabulary): never a student id.
"""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter(
    "scorer_ingest_requests_total", "HTTP requests answered, by route and status.", ["route", "status"],
    registry=REGISTRY)
REQUEST_LATENCY = Histogram(
    "scorer_ingest_request_seconds", "From a request's arrival to its answer (produce acknowledged included).",
    ["route"], buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY)
PREVIOUS_TOKENS = Counter(
    "scorer_ingest_previous_tokens_total", "Requests accepted with SCORER_INGEST_TOKEN_PREVIOUS: the LMS has not "
    "moved to the new token yet. When it stops rising, drop the old one.", registry=REGISTRY)
FOLLOWED_FILE_STALE = Gauge(
    "scorer_followed_file_stale", "1 while the door's TLS certificate files or its Kafka client's (`file`) were "
    "replaced by files that do not load: the ones read before are still in use. The log names why.", ["file"],
    registry=REGISTRY)
TLS_CERTIFICATE_EXPIRY = Gauge(
    "scorer_tls_certificate_expiry_timestamp_seconds", "When the certificate the door serves HTTPS with "
    "(SCORER_INGEST_TLS_CERT_FILE; `server`: ingest), or shows Kafka's brokers (SCORER_KAFKA_SSL_CERT_FILE; "
    "`kafka_client`), stops being valid, as Unix time; updated when a renewed one is loaded. Absent without one.",
    ["server"], registry=REGISTRY)
ITEMS = Counter(
    "scorer_ingest_items_total", "Statements, events or native records received in accepted requests, by source.",
    ["source"], registry=REGISTRY)
PRODUCED = Counter(
    "scorer_ingest_records_produced_total", "Contract records the broker acknowledged, by logical topic.",
    ["topic"], registry=REGISTRY)
REJECTED = Counter(
    "scorer_ingest_rejected_total",
    "Items that became no record, by source, kind (invalid, unmapped, unsupported, ignored) and reason.",
    ["source", "kind", "reason"], registry=REGISTRY)
DEAD_LETTERS = Counter(
    "scorer_ingest_dead_letters_total", "Dead letters the broker acknowledged, by source.", ["source"],
    registry=REGISTRY)
DUPLICATES = Counter(
    "scorer_ingest_duplicates_total",
    "Items acknowledged without being produced again: their id was acknowledged recently.", ["source"],
    registry=REGISTRY)
PRODUCE_FAILURES = Counter(
    "scorer_ingest_produce_failures_total", "Requests whose records the broker did not acknowledge in time (503).",
    ["reason"], registry=REGISTRY)
INFLIGHT_RECORDS = Gauge(
    "scorer_ingest_inflight_records", "Records sent to the broker and not yet acknowledged.", registry=REGISTRY)
INFLIGHT_BYTES = Gauge(
    "scorer_ingest_inflight_bytes", "Bytes of the records sent to the broker and not yet acknowledged.",
    registry=REGISTRY)
