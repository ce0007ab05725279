"""Prometheus metrics of `scorer notify`, on a registry of its own (it runs in its own process).

Labels are bounded sets (kind, outcome, result): never a student id or an alert id.
"""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from streams.contract.outputs import ALERT_KINDS

REGISTRY = CollectorRegistry(auto_describe=True)

FOLLOWED_FILE_STALE = Gauge(
    "scorer_followed_file_stale", "1 while the notifier's Kafka client TLS files (`file`) were replaced by files "
    "that do not load: the ones read before are still in use. The log names why.", ["file"], registry=REGISTRY)
TLS_CERTIFICATE_EXPIRY = Gauge(
    "scorer_tls_certificate_expiry_timestamp_seconds", "When the certificate the notifier shows Kafka's brokers "
    "(SCORER_KAFKA_SSL_CERT_FILE; `server`: kafka_client) stops being valid, as Unix time; updated when a renewed "
    "one is loaded. Absent without one.", ["server"], registry=REGISTRY)

CONSUMED = Counter("notify_alerts_consumed_total", "Alert records read from the alerts topic, by kind.",
                   ["kind"], registry=REGISTRY)
OUTCOMES = Counter(
    "notify_alerts_total",
    "What became of each alert, by kind: `delivered`, `held` (quiet hours, or read from a backlog: delivered "
    "later), `held_out` "
    "(the holdout group: recorded, not sent), `suppressed` (the policy sends nothing), `deduplicated` "
    "(already handled: a redelivery or a duplicate alert id), `parked` (the webhook failed on it: tried again "
    "later; counted at each failure), `dead_lettered`, `superseded` (held, then dropped: its enrolment's status "
    "changed again before it was sent) or `stale` (about a moment longer ago than SCORER_NOTIFY_MAX_AGE_HOURS: "
    "a backfill of history, a rebuild).",
    ["kind", "outcome"], registry=REGISTRY)
ATTEMPTS = Counter("notify_delivery_attempts_total", "Webhook POSTs, by result: `delivered`, `retry` (connection "
                   "error, 5xx, 408, 429, 401, 403, 404, 405, 407) or `permanent` (another 4xx).", ["result"],
                   registry=REGISTRY)
LATENCY = Histogram("notify_delivery_latency_seconds", "Duration of one webhook POST.",
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=REGISTRY)
BACKLOG = Gauge("notify_quiet_hours_backlog", "Messages held for the end of their recipient's quiet hours, or "
                "parked until their next try (on the partitions this process owns).", registry=REGISTRY)
RECEIVER_FAILING = Gauge("notify_receiver_failing", "1 while the webhook is failing (its last delivery ran out of "
                         "retries and none succeeded since): messages are tried once, then parked.",
                         registry=REGISTRY)
BROKER_REFUSING = Gauge("notify_broker_refusing", "1 while the broker refuses the notifier's principal its alerts "
                        "topic or consumer group (an ACL missing or removed): it reads no alert until the grant.",
                        registry=REGISTRY)

LOST_TO_RETENTION = Counter(
    "notify_alerts_lost_to_retention_total", "Alert records the broker deleted (retention) before the notifier's "
    "group read them, found when a partition's records start past the offset expected and the log's first record "
    "lies past it too: those students were never told.", registry=REGISTRY)


def kind_label(kind: object) -> str:
    """An alert's kind as a label value: one of ALERT_KINDS, else `other` (labels stay a bounded set)."""
    return kind if isinstance(kind, str) and kind in ALERT_KINDS else ("status_change" if kind is None else "other")
