"""Settings come from the environment only, so secrets (URLs with passwords) never sit in files.

An empty URL means "start the embedded server for it" (see streams.embedded).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace


def _env(name: str, default: str = "") -> str:
    return os.environ.get(f"SCORER_{name}", default)


@dataclass(frozen=True)
class Settings:
    kafka_url: str = ""  # e.g. kafka://broker-1:9092,broker-2:9092
    redis_url: str = ""  # e.g. redis://:password@redis:6379/0
    database_url: str = ""  # e.g. postgresql+psycopg2://scorer:secret@pg/scorer
    topic_prefix: str = ""  # lets several schools or test runs share one cluster
    partitions: int = 4  # of every keyed topic; all must agree so a student's events co-partition
    dozing_days: float = 7.0  # inactive this many days -> dozing (seed: 7-19 days)
    asleep_days: float = 20.0  # inactive this many days -> asleep (seed: 20+ days)
    clock: str = "event"  # "event": time only moves with events; "live": also wall clock when idle
    allowed_lateness_hours: float = 1.0  # how far the watermark trails the newest record (and wall clock, live)
    score_every_minutes: float = 60.0  # event time between re-scorings of a student (transitions always re-score)
    app_id: str = "edu-scorer"
    web_port: int = 6066  # HTTP read API and /metrics of a worker
    state_dir: str = field(default_factory=lambda: os.path.join(os.getcwd(), "var"))

    @classmethod
    def from_env(cls) -> "Settings":
        return cls(
            kafka_url=_env("KAFKA_URL"),
            redis_url=_env("REDIS_URL"),
            database_url=_env("DATABASE_URL"),
            topic_prefix=_env("TOPIC_PREFIX"),
            partitions=int(_env("PARTITIONS", "4")),
            dozing_days=float(_env("DOZING_DAYS", "7")),
            asleep_days=float(_env("ASLEEP_DAYS", "20")),
            clock=_env("CLOCK", "event"),
            allowed_lateness_hours=float(_env("ALLOWED_LATENESS_HOURS", "1")),
            score_every_minutes=float(_env("SCORE_EVERY_MINUTES", "60")),
            app_id=_env("APP_ID", "edu-scorer"),
            web_port=int(_env("WEB_PORT", "6066")),
            state_dir=_env("STATE_DIR", os.path.join(os.getcwd(), "var")),
        )

    def __post_init__(self) -> None:
        if not 0 < self.dozing_days < self.asleep_days:
            raise ValueError("need 0 < dozing_days < asleep_days")
        if self.clock not in {"event", "live"}:
            raise ValueError("clock must be 'event' or 'live'")
        if self.partitions < 1:
            raise ValueError("partitions must be >= 1")

    def with_urls(self, kafka_url: str, redis_url: str, database_url: str) -> "Settings":
        return replace(self, kafka_url=kafka_url, redis_url=redis_url, database_url=database_url)

    @property
    def bootstrap_servers(self) -> str:
        """aiokafka wants host:port,host:port; Faust wants kafka://host:port."""
        return ",".join(part.split("://", 1)[-1] for part in self.kafka_url.split(","))
