"""The watermark on a busy event loop: a replay read while the worker's loop is slow must give no
late record and exactly the reference alerts.

aiokafka stamps a partition's log end when it gets round to the fetch response; on a busy loop
that is long after the broker read it, and trusting the stamp let the watermark pass records the
broker had not yet shown (they then counted as late, and alerts differed from run to run). The
consumer reports the previous response's stamp instead (see BatchConsumer.offsets).
"""
from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest

from features import fold
from helpers.pipeline_cases import Sent
from helpers.results import expected_alert_ids
from online_models.scoring import NoScoring
from storage.row_sink import MemoryRowSink
from storage.students import InMemoryStudentStore
from streams import failures
from streams.contract import TOPIC_SCHEMA, Topic
from streams.kafka.admin import ensure_topics
from streams.kafka.consumer import BatchConsumer
from streams.lms.synthetic import generate
from streams.metrics import REGISTRY
from streams.pipeline import Pipeline
from streams.runtime import pipeline_config
from streams.settings import Settings
from streams.tools.replay import load_records


class _Healthy:
    dependency_of = staticmethod(failures.dependency_of)

    async def healthy(self) -> bool:
        return True


async def _hog(stop: asyncio.Event) -> None:
    """Keep the event loop busy: 30 ms of blocking work between every chance to run anything else."""
    while not stop.is_set():
        time.sleep(0.03)
        await asyncio.sleep(0)


def _late() -> float:
    return sum(s.value for m in REGISTRY.collect() if m.name == "scorer_late_events"
               for s in m.samples if s.name == "scorer_late_events_total")


async def test_a_busy_loop_loses_no_record_to_the_watermark(settings: Settings, tmp_path: Path) -> None:
    export = tmp_path / "lms"
    generate(export, students=60, seed=4)
    events, _ = load_records(export)
    await ensure_topics(settings)
    store, sent = InMemoryStudentStore(), Sent()
    pipeline = Pipeline(pipeline_config(settings), store, sent.send, NoScoring(), MemoryRowSink())
    consumer = BatchConsumer(settings, pipeline, _Healthy())
    late_before = _late()
    stop = asyncio.Event()
    consuming = asyncio.create_task(consumer.run())
    hogging = asyncio.create_task(_hog(stop))
    # the LMS: a replay in its own process, publishing while the worker's loop is busy
    replaying = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streams.cli", "replay", str(export),
        env={**settings.to_env(), "PATH": "/usr/bin:/bin"}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _, errors = await asyncio.wait_for(replaying.communicate(), 300)
        assert replaying.returncode == 0, errors.decode()[-2000:]
        newest = max(ts for t, r in events if t is not Topic.SCHEDULE for ts in [_ts(r)])
        final = newest - settings.allowed_lateness_seconds
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            marks = [pipeline.watermarks.watermark(p) for p in range(settings.partitions)]
            if all(m is not None and m >= final for m in marks):
                break
            await asyncio.sleep(0.5)
        else:
            pytest.fail(f"the watermark did not reach the end: {marks}")
        await asyncio.sleep(3)  # two more passes: students due at the final watermark are stepped
    finally:
        stop.set()
        consumer.stop()
        await asyncio.gather(consuming, hogging, return_exceptions=True)
    assert _late() - late_before == 0
    states = fold((TOPIC_SCHEMA[t], r) for t, r in events if t is not Topic.SCHEDULE)
    loaded = await store.load(states)
    assert all(loaded[u][1] is not None for u in states)
    alerts = {a["alert_id"] for a in sent.on("scorer.alerts")}
    assert alerts == expected_alert_ids(events, settings)


def _ts(record: dict) -> float:
    from features import parse_ts

    return parse_ts(record["ts"])
