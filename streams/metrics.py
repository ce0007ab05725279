"""Prometheus metrics of a scorer process: the one catalogue the dashboards and alert rules use.

Labels are bounded sets (topic, reason, status, operation, model, course_week up to a cap): never a student id.
"""
from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from streams.unusable import port_taken

REGISTRY = CollectorRegistry(auto_describe=True)

EVENTS_CONSUMED = Counter(
    "scorer_events_consumed_total", "Input records read, by topic.", ["topic"], registry=REGISTRY)
EVENTS_APPLIED = Counter(
    "scorer_events_applied_total", "Records that changed student state (duplicates excluded).",
    ["topic"], registry=REGISTRY)
EVENTS_DUPLICATE = Counter(
    "scorer_events_duplicate_total",
    "Records skipped as already applied: a Kafka redelivery (offset fence) or an LMS copy (event id).",
    ["topic", "by"], registry=REGISTRY)
LATE_EVENTS = Counter(
    "scorer_late_events_total", "Activity older than the watermark when it arrived (counted at the watermark).",
    ["topic"], registry=REGISTRY)
DEAD_LETTERS = Counter(
    "scorer_dead_letters_total", "Records sent to the dead-letter topic, by source topic and reason.",
    ["topic", "reason"], registry=REGISTRY)
PROCESSING_LATENCY = Histogram(
    "scorer_processing_latency_seconds", "From a record's Kafka timestamp to its student being scored.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60), registry=REGISTRY)
EVENT_LOOP_LAG = Histogram(
    "scorer_event_loop_lag_seconds", "How late the event loop woke a probe that slept a quarter second: time it "
    "spent on something else (a long batch, training's share of the interpreter), which every record waits too.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=REGISTRY)
EVENT_LOOP_LAG_MAX = Gauge(
    "scorer_event_loop_lag_max_seconds", "The longest the event loop kept the probe waiting since the worker "
    "started.", registry=REGISTRY)
BATCH_SIZE = Histogram(
    "scorer_batch_size_records", "Records handled per processing batch.",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000), registry=REGISTRY)
CONSUMER_LAG = Gauge(
    "scorer_consumer_lag_records", "Records between this worker's last committed offset and the log end.",
    ["topic", "partition"], registry=REGISTRY)
SECONDS_SINCE_COMMIT = Gauge(
    "scorer_seconds_since_commit",
    "Seconds since an assigned partition's offset last moved forward or was last seen fully read "
    "(grows only while records wait: a stuck worker).",
    ["topic", "partition"], registry=REGISTRY)
RECORDS_LOST_TO_RETENTION = Counter(
    "scorer_records_lost_to_retention_total",
    "Records the broker deleted (retention) before the consumer group read them, found when a batch of a "
    "partition starts past the offset expected and the log's first record lies past it too. Those records never "
    "reach the students' state.", ["topic"], registry=REGISTRY)
OFFSET_RESETS = Counter(
    "scorer_offset_resets_total",
    "Records behind a student's offset fence whose LMS event id was never applied: the partition's "
    "log was reset (topic recreated, broker data lost). They are applied, not skipped.",
    ["topic"], registry=REGISTRY)
PROCESSING_FAILURES = Counter(
    "scorer_processing_failures_total",
    "Failed attempts to process a batch: `dependency` (Redis, Postgres or Kafka unavailable; retried "
    "until it is back) or `record` (retried, then the record is quarantined to the dead-letter topic).",
    ["kind"], registry=REGISTRY)
WRONG_TOKENS = Counter(
    "scorer_read_api_wrong_tokens_total", "Requests to the read API (`read_api`) or the curators' console (`console`: "
    "its login form or a bearer header) that presented a token other than SCORER_API_TOKEN: a client with a stale "
    "token, or someone guessing. Each is answered after a second.", ["door"], registry=REGISTRY)
PREVIOUS_TOKENS = Counter(
    "scorer_read_api_previous_tokens_total", "Requests to the read API or the console (`door`) accepted with "
    "SCORER_API_TOKEN_PREVIOUS: clients not yet moved to the new token. When it stops rising, drop the old one.",
    ["door"], registry=REGISTRY)
FOLLOWED_FILE_STALE = Gauge(
    "scorer_followed_file_stale", "1 while a file the worker reads again once replaced (`file`: TLS certificate, "
    "SCORER_API_TOKENS_FILE, SCORER_KAFKA_SSL files) was replaced by one that does not load: the one read before "
    "is still in use, which may keep what the change meant to take away (a person's token). The log names why.",
    ["file"],
    registry=REGISTRY)
TLS_CERTIFICATE_EXPIRY = Gauge(
    "scorer_tls_certificate_expiry_timestamp_seconds", "When the certificate the worker serves HTTPS with "
    "(SCORER_WEB_TLS_CERT_FILE; `server`: web), or shows Kafka's brokers (SCORER_KAFKA_SSL_CERT_FILE; "
    "`kafka_client`), stops being valid, as Unix time; updated when a renewed one is loaded. Absent without one.",
    ["server"], registry=REGISTRY)
STUDENT_DATA_READS = Counter(
    "scorer_student_data_reads_total", "Answers of the read API or the console (`door`) that carried students' data, "
    "by page, each recorded first in Postgres' student_data_reads (who, when, which students). A read whose record "
    "could not be written is answered 503 without the data, and counted in scorer_store_errors_total "
    "{operation=\"record_read\"}.", ["door", "page"], registry=REGISTRY)
for _door in ("read_api", "console"):  # exported from 0, so the first wrong token is an increase
    WRONG_TOKENS.labels(_door)
    PREVIOUS_TOKENS.labels(_door)
DEPENDENCY_UP = Gauge(
    "scorer_dependency_up", "1 while a dependency answered its last call or check, 0 while it fails "
    "(`redis_replicas`: Redis answers, but fewer replicas than SCORER_REDIS_WAIT_REPLICAS hold a batch's writes).",
    ["dependency"], registry=REGISTRY)
ASSIGNED_PARTITIONS = Gauge(
    "scorer_assigned_partitions", "Input topic-partitions this worker owns in the consumer group.",
    registry=REGISTRY)
ASSIGNED_AT = Gauge(
    "scorer_assignment_timestamp_seconds",
    "When this worker's current partition assignment began (a rebalance resets it).",
    registry=REGISTRY)
STUDENT_STATE_LOST = Gauge(
    "scorer_student_state_lost",
    "1 while the student store has been found without the state of what the consumer group had read (Redis "
    "restarted empty, say) and nobody has accepted the loss (`scorer accept-state-loss`).", registry=REGISTRY)
REDIS_MAY_EVICT = Gauge(
    "scorer_redis_may_evict",
    "1 while Redis has a memory limit and a maxmemory-policy other than noeviction: it may drop student "
    "documents, due indexes or queued labels without a word once memory runs short; absent where CONFIG GET "
    "is refused.", registry=REGISTRY)
WATERMARK = Gauge(
    "scorer_event_time_watermark_seconds",
    "Event-time watermark per partition, as a Unix time (the school's wall clock through its time zone).",
    ["partition"], registry=REGISTRY)
STUDENTS_BY_STATUS = Gauge(
    "scorer_students", "Students per activity status, as seen by this worker's partitions.",
    ["status"], registry=REGISTRY)
ALERTS = Counter(
    "scorer_alerts_total", "Critical-point alerts emitted, by transition.",
    ["from_status", "to_status"], registry=REGISTRY)
MODEL_VERSION = Gauge(
    "scorer_model_version", "Model version currently used for scoring.", ["model"], registry=REGISTRY)
STUDENTS_SET_ASIDE = Gauge(
    "scorer_students_set_aside",
    "Students this worker sets aside because their step or commit fails for a reason of their own (a bug on some "
    "state, a document written by a newer release, a row a store refuses): their events go to the dead letters "
    "(reason processing_failed) until the document changes; the others are processed as usual. The log says "
    "why, by exception type.",
    registry=REGISTRY)
MODEL_UNREADABLE = Counter(
    "scorer_model_unreadable_versions_total",
    "Published model versions this process could not load (written by a newer release, or damaged): workers "
    "score with the newest version they can read, the trainer learns nothing and keeps the labels queued until "
    "a readable one is published; the log names the version and the error.",
    registry=REGISTRY)
MODEL_SCORING_FAILURES = Counter(
    "scorer_model_scoring_failures_total",
    "Students the model version in use failed to score (it raised), scored by the label-free priors (version 0) "
    "instead, so their status, alerts and score rows go on; the log names the error once per version.",
    ["model"], registry=REGISTRY)
SCORES_BY_BASIS = Counter(
    "scorer_scores_total",
    "Scores given, by score (progress, p_dropout, p_success) and what answered it: learned (the course week's "
    "model, fitted on outcomes), calibrated_guess (the label-free guess at the level of the outcomes learned so "
    "far) or guess (that guess before any outcome: it ranks students, its value is not a frequency).",
    ["model", "score", "basis"], registry=REGISTRY)
MODEL_ROLLING_ERROR = Gauge(
    "scorer_model_rolling_error",
    "Rolling quality on labels as they arrive (progress MAE; dropout and success log loss and ROC AUC).",
    ["model", "metric"], registry=REGISTRY)
MODEL_WEEK_METRIC = Gauge(
    "scorer_model_week_metric",
    "Prequential metric of the published model per course week: progress_mae, dropout/success logloss and "
    "auc over the week's last WINDOW_PER_WEEK labelled examples (no sample while undefined), and examples, "
    "how many of that week it learned; weeks from WEEK_CAP on count as WEEK_CAP (online_models.prequential).",
    ["model", "metric", "course_week"], registry=REGISTRY)
MODEL_SURROGATE_ROWS = Gauge(
    "scorer_model_surrogate_rows",
    "Earlier weeks of the running enrolments the published model's surrogate was fitted on: what it answers "
    "with before a course week has labels (0: no surrogate yet, the priors answer; online_models.surrogate).",
    ["model"], registry=REGISTRY)
OUTCOMES_HELD = Counter(
    "scorer_outcomes_held_total", "Outcomes that began to wait in their student's document, to be learned with "
    "the rest of their flow's (SCORER_LEARN_OUTCOMES_AFTER_DAYS).",
    ["topic"], registry=REGISTRY)
OUTCOMES_RELEASED = Counter(
    "scorer_outcomes_released_total", "Waiting outcomes handed to the trainer once their flow's time came.",
    ["topic"], registry=REGISTRY)
LABELS = Counter(
    "scorer_labels_total", "Outcome labels learned from.", registry=REGISTRY)
LABELS_SET_ASIDE = Counter(
    "scorer_labels_set_aside_total", "Outcome labels the trainer failed to learn (the model raised), set aside in "
    "Redis (<prefix>trainer:labels_failed) for a replay once fixed, while the others are learned.",
    registry=REGISTRY)
TRAINING_FAILURES = Counter(
    "scorer_training_failures_total", "Training rounds that failed for a reason of the trainer's own (a bug, a "
    "version it could not fit or publish), retried the next round; an outage of Redis or Postgres shows in "
    "`scorer_dependency_up` instead.", registry=REGISTRY)
MODEL_VERSIONS_LOST = Counter(
    "scorer_model_versions_lost_total", "Times the trainer found Redis holding an older model version than the "
    "one it learned on top of (a failover to a replica that lacked a publish, a restore): it started again from "
    "the version Redis holds, the lost version's labels being queued again.", registry=REGISTRY)
LABELS_QUEUED = Gauge(
    "scorer_labels_queued", "Outcome labels waiting for the trainer (set by the process that trains): how far "
    "learning trails the outcomes.", registry=REGISTRY)
STORE_LATENCY = Histogram(
    "scorer_store_latency_seconds", "Latency of Redis and Postgres calls.", ["store", "operation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5), registry=REGISTRY)
STORE_ERRORS = Counter(
    "scorer_store_errors_total", "Failed Redis and Postgres calls.", ["store", "operation"], registry=REGISTRY)
REDIS_REPLICAS_ACKNOWLEDGED = Gauge(
    "scorer_redis_replicas_acknowledged",
    "Redis replicas that held this worker's last batch's writes when it asked (WAIT); only while "
    "SCORER_REDIS_WAIT_REPLICAS is above 0. A batch that finds fewer than that many is retried, its offsets "
    "uncommitted (scorer_store_errors_total{operation=\"replicated\"}).", registry=REGISTRY)


def serve(port: int, bind: str, variable: str, registry: CollectorRegistry = REGISTRY) -> None:
    """Serve `registry` as `/metrics` on `port` (the setting `variable` names) in a thread of its own; a port
    another process holds ends the command with one line naming `variable`."""
    try:
        start_http_server(port, addr=bind, registry=registry)
    except OSError as error:
        if (taken := port_taken(error, variable, port)) is not None:
            raise taken from None
        raise


def set_or_remove(gauge: Gauge, value: float | None, *labels: str) -> None:
    """Set a labelled gauge, or drop its sample where the value is undefined (None): a missing
    sample is honest where any number (River's -0.0 AUC, a stale value) would look measured."""
    if value is None:
        with contextlib.suppress(KeyError):
            gauge.remove(*labels)
    else:
        gauge.labels(*labels).set(value)
