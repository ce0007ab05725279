"""`scorer train`: the delayed-label trainer in a process of its own.

Learning a label means every stored course week of an enrolment through three learners; on a
backlog (a replay, a module's end) that is seconds of CPU at a time. Inside a worker it shares the
interpreter with scoring, so every record waits too. With `SCORER_TRAINER=external` the workers
only queue labels and pick up published versions, and this process learns and publishes them,
by the same single-trainer protocol (online_models.trainer: a Redis lock, exactly-once learning),
so a second `scorer train` is a standby that takes over when the first one dies.
"""
from __future__ import annotations

import asyncio
import logging
import signal
import threading
from types import FrameType

from online_models.scoring import OnlineScoring
from storage.postgres.sink import PostgresSink
from streams import failures, metrics
from streams.settings import Settings

log = logging.getLogger(__name__)

#: Labels learned per drain: small enough to publish and renew the lock often.
DRAIN_LIMIT = 200


def run_trainer(settings: Settings, stop: threading.Event, *, interval: float = 1.0) -> int:
    """Learn queued labels and publish versions until `stop` is set; the lock is given up on the way
    out so a standby takes over at once. Needs the workers' Redis and Postgres (not embedded ones:
    those would be this process's own)."""
    if not settings.redis_url or not settings.database_url:
        log.error("scorer train needs SCORER_REDIS_URL and SCORER_DATABASE_URL: the workers' own stores")
        return 2
    sink = asyncio.run(PostgresSink.open(settings.database_url))
    scoring = OnlineScoring.connect(settings.redis_url, settings.models_key_prefix, settings.asleep_days,
                                    on_publish=sink.write_model_version,
                                    surrogate_every_s=settings.surrogate_every_minutes * 60)
    log.info("trainer ready")
    try:
        while not stop.is_set():
            try:
                learned = scoring.train_once(DRAIN_LIMIT)
            except Exception as error:  # noqa: BLE001 - logged, retried: a Redis blip must not end training
                failures.training_round(error)
                learned = 0
            else:
                failures.training_round(None)
            if not learned:
                stop.wait(interval)
    finally:
        asyncio.run(scoring.close())
        asyncio.run(sink.close())
    log.info("trainer stopped")
    return 0


def main(settings: Settings) -> int:
    """The `scorer train` command: metrics on `SCORER_TRAINER_METRICS_PORT`, stop on SIGTERM/SIGINT."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    metrics.serve(settings.trainer_metrics_port, settings.web_bind, "SCORER_TRAINER_METRICS_PORT")
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return run_trainer(settings, stop)
