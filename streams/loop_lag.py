"""How long the event loop keeps a sleeping task waiting: the worker reports it as metrics
(`scorer_event_loop_lag_seconds`), `scorer bench` measures it beside a surrogate refit."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def watch_event_loop(period: float, record: Callable[[float], None]) -> None:
    """Until cancelled: sleep `period`, then `record` how much later than that the task woke."""
    while True:
        began = time.monotonic()
        await asyncio.sleep(period)
        record(max(0.0, time.monotonic() - began - period))
