"""Redis loses its data under a consumer group that had read history: a real worker, restarted on the emptied
store, reports it at its first batch (an error in its log, `scorer_student_state_lost` on /metrics) instead of
going on from the committed offsets as if every student had just arrived; `scorer accept-state-loss` clears it."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import redis

from streams.cli import main
from streams.settings import Settings
from streams.tools.embedded import free_port
from streams.tools.processes import scrape_if_up, stop, wait_until_scored, worker_process
from streams.tools.replay import replay

pytestmark = pytest.mark.slow


async def _gauge(port: int, expected: float, seconds: float) -> float | None:
    """scorer_student_state_lost once it reads `expected` (the /metrics refresh sets it), else the last value."""
    deadline, value = time.monotonic() + seconds, None
    while time.monotonic() < deadline:
        value = (await asyncio.to_thread(scrape_if_up, port)).get("scorer_student_state_lost")
        if value == expected:
            break
        await asyncio.sleep(1)
    return value


async def test_a_redis_restarted_empty_is_reported_until_the_loss_is_accepted(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from streams.lms.synthetic import generate

    generate(tmp_path / "lms", students=12, seed=5)
    report = await replay(settings, tmp_path / "lms", progress=False)
    published = sum(report.published.values())
    port, log = free_port(), tmp_path / "worker.log"
    worker = worker_process(settings, port, log)
    try:
        await asyncio.to_thread(wait_until_scored, port, published, worker, report.final_watermark(settings),
                                settings.partitions, 300)
        assert await _gauge(port, 0, 30) == 0  # its own state
    finally:
        stop([worker])

    client = redis.Redis.from_url(settings.redis_url)
    keys = list(client.scan_iter(f"{settings.topic_prefix}scorer:*"))
    assert any(b":st:" in key for key in keys)
    client.delete(*keys)  # Redis restarted without its data; the group's offsets are still committed

    port, log = free_port(), tmp_path / "worker-after.log"
    worker = worker_process(settings, port, log)
    try:
        assert await _gauge(port, 1, 120) == 1, log.read_text()[-2000:]
        assert "holds none of the history" in log.read_text()
        monkeypatch.setenv("SCORER_REDIS_URL", settings.redis_url)
        monkeypatch.setenv("SCORER_TOPIC_PREFIX", settings.topic_prefix)
        assert await asyncio.to_thread(main, ["accept-state-loss"]) == 0
        assert await _gauge(port, 0, 30) == 0
        assert worker.poll() is None
    finally:
        stop([worker])
    client.close()
