"""`scorer demo`: the whole job end to end on embedded servers, then a report.

generate a synthetic LMS -> start a worker process -> replay the history -> wait until every
record is scored -> print statuses, alerts, critical points and model versions.
"""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

from storage.postgres.critical_points import critical_points, format_table
from storage.postgres.migrate import upgrade
from storage.postgres.queries import status_summary
from streams.lms.synthetic import generate
from streams.settings import Settings
from streams.tools.embedded import embedded_stack, free_port
from streams.tools.processes import stop, wait_until_scored, worker_process
from streams.tools.replay import replay


def run_demo(students: int, seed: int, out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    settings = Settings.from_env().copy(state_dir=str((out / "var").resolve()))
    print(f"1/4 generating {students} students into {out / 'lms'}")
    generate(out / "lms", students=students, seed=seed, bad_rows=5)
    with embedded_stack(settings) as settings:
        upgrade(settings.database_url)
        web_port = free_port()
        worker = worker_process(settings, web_port, out / "worker.log")
        try:
            print("2/4 replaying the LMS history to the topics")
            report = asyncio.run(replay(settings, out / "lms"))
            published = sum(report.published.values())
            print(f"    {json.dumps(report.as_dict(), ensure_ascii=False)}")
            print(f"3/4 scoring {published} records (worker log: {out / 'worker.log'})")
            final_watermark = report.final_watermark(settings)
            if final_watermark is None:
                raise RuntimeError("the replay published no student events")
            totals = wait_until_scored(web_port, published, worker, final_watermark, settings.partitions)
        finally:
            stop([worker])
        print("4/4 results")
        print(f"    records consumed: {totals.get('scorer_events_consumed_total', 0):.0f}, "
              f"dead letters: {totals.get('scorer_dead_letters_total', 0) + report.dead_letters:.0f}, "
              f"alerts: {totals.get('scorer_alerts_total', 0):.0f}")
        print("    students by status:", json.dumps(status_summary(settings.database_url)))
        print("    where students fall asleep (course_critical_points):")
        print(format_table(critical_points(settings.database_url, limit=10)))
    return 0
