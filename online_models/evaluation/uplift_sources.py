"""Where `scorer uplift` reads the recorded alerts: Postgres, or an LMS export scored on the spot.

    scorer uplift [--course C] [--days 7] [--json]                      # status_transitions (SCORER_DATABASE_URL)
    scorer uplift --from-export DIR --holdout-share 0.2 [--holdout-salt S] [--days 7] [--json]

The export runs through the worker's own pipeline in memory (published in event-time order, read
chunk by chunk as a live consumer keeps up with `scorer replay`), so its alerts and holdout are
exactly the ones a worker with these settings would have recorded. No model is trained there
(the scores are empty), so an export gives no early warnings: `at_risk` needs the worker's rows.
"""
from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from online_models.scoring import NoScoring
from online_models.uplift import DEFAULT_DAYS, TransitionRecord, format_table, from_rows, report
from storage.row_sink import MemoryRowSink
from storage.students import InMemoryStudentStore
from streams.contract import encode, key_of
from streams.contract.outputs import enrolment_key
from streams.kafka.consumer import InputRecord
from streams.kafka.partitioning import partition_of
from streams.lms.events import export_to_events
from streams.lms.readers import load_export
from streams.pipeline import Pipeline
from streams.runtime import pipeline_config
from streams.settings import Settings

#: Records handed to the pipeline per batch: a consumer keeping up with a replay reads about this many.
CHUNK = 2000


def from_database(database_url: str, course_id: int | None = None) -> list[TransitionRecord]:
    from storage.postgres.alert_outcomes import transitions

    return from_rows(transitions(database_url, course_id))


def from_export(directory: Path, settings: Settings) -> list[TransitionRecord]:
    """The alerts (transitions) a worker with `settings` records while it reads the export."""
    sink = MemoryRowSink()
    asyncio.run(_score(directory, settings, sink))
    return [TransitionRecord(a.user_id, enrolment_key(a.course_id, a.flow_num), a.kind, a.from_status, a.to_status,
                             a.at, a.holdout) for a in sink.transitions.values()]


async def _score(directory: Path, settings: Settings, sink: MemoryRowSink) -> None:
    events, _ = export_to_events(load_export(directory))
    pipeline = Pipeline(pipeline_config(settings), InMemoryStudentStore(), _discard, NoScoring(), sink)
    produced = time.time()
    logs: dict[tuple[str, int], int] = {}
    order: list[InputRecord] = []
    for topic, record in events:
        key = key_of(topic, record)
        tp = (topic.physical(settings.topic_prefix), partition_of(key, settings.partitions))
        order.append(InputRecord(*tp, logs.get(tp, 0), key, encode(record), produced))
        logs[tp] = logs.get(tp, 0) + 1
    published = dict.fromkeys(logs, 0)
    counts = {name: settings.partitions for name, _ in logs}
    for start in range(0, len(order), CHUNK):
        batch = order[start:start + CHUNK]
        for r in batch:
            published[(r.topic, r.partition)] = r.offset + 1
        await pipeline.process(batch, {tp: (n, n, None) for tp, n in published.items()}, counts)


async def _discard(topic: str, key: bytes, value: bytes) -> None:
    return None


def run(*, database_url: str = "", course_id: int | None = None, export: Path | None = None,
        settings: Settings | None = None, days: float = DEFAULT_DAYS, as_json: bool = False) -> int:
    """`scorer uplift`: the report from Postgres, or from an export scored with `settings`."""
    if export is not None:
        records = [t for t in from_export(export, settings or Settings())
                   if course_id is None or t.enrolment.split(":")[0] == str(course_id)]
        source = f"export {export}" + ("" if course_id is None else f", course {course_id}")
    else:
        records = from_database(database_url, course_id)
        source = "status_transitions" + ("" if course_id is None else f" of course {course_id}")
    result = report(records, days, source=source)
    print(json.dumps(result, ensure_ascii=False, indent=2) if as_json else format_table(result))
    return 0
