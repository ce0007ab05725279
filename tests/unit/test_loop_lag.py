"""The event-loop probe the worker and the bench share records how long a blocking call held the loop."""
from __future__ import annotations

import asyncio
import contextlib
import time

from streams.loop_lag import watch_event_loop


def test_a_blocking_call_shows_as_lag_and_an_idle_loop_as_little() -> None:
    async def run() -> list[float]:
        waits: list[float] = []
        probe = asyncio.create_task(watch_event_loop(0.005, waits.append))
        await asyncio.sleep(0.05)
        idle = len(waits)
        time.sleep(0.08)  # holds the loop, as a GIL-holding thread would
        await asyncio.sleep(0.02)
        probe.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await probe
        assert idle >= 3 and min(waits) >= 0
        return waits

    waits = asyncio.run(run())
    assert max(waits) >= 0.07
