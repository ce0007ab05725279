"""A Faust agent that only counts records: what Faust's own per-record path costs, for `scorer bench`.

`scorer bench` runs it as a child process (`scorer faust-probe EXPECTED RESULT_FILE`, a hidden
command). It reads the input topics from the start in its own consumer group and writes the
seconds from its first record to its `EXPECTED`th to RESULT_FILE, then exits.
"""
from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import faust

from streams.contract import INPUT_TOPICS
from streams.kafka.consumer import BATCH_MAX, POLL_SECONDS
from streams.settings import Settings


def main(expected: int, result: Path) -> None:
    settings = Settings.from_env()
    Path(settings.state_dir).mkdir(parents=True, exist_ok=True)
    app = faust.App(f"faust-probe-{uuid.uuid4().hex[:8]}", broker=settings.kafka_url, store="memory://",
                    topic_partitions=settings.partitions, topic_allow_declare=False, topic_disable_leader=True,
                    consumer_auto_offset_reset="earliest", web_enabled=False,
                    datadir=f"{settings.state_dir}/faust-probe")
    source = app.topic(*(t.physical(settings.topic_prefix) for t in INPUT_TOPICS),
                       key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    seen, started = 0, None

    @app.agent(source)
    async def count(stream: faust.StreamT[bytes]) -> None:
        nonlocal seen, started
        assert isinstance(stream, faust.Stream)  # take_events is Stream's, not the StreamT interface's
        async for events in stream.take_events(BATCH_MAX, within=POLL_SECONDS):
            started = started or time.perf_counter()
            seen += len(events)
            if seen >= expected:
                result.write_text(str(time.perf_counter() - started))
                os._exit(0)  # measured; nothing to shut down cleanly

    faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()

