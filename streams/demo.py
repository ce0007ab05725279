"""`scorer demo`: the whole job end to end on embedded servers, then a report.

generate a synthetic LMS -> start a worker process -> replay the history -> wait until every
record is scored -> print statuses, alerts, critical points and model versions.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import re
import subprocess
import sys
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

from streams.embedded import embedded_stack, export_env, free_port
from streams.settings import Settings


def _die_with_parent() -> None:
    """Linux: the worker gets SIGTERM when the process that started it dies, even by SIGKILL."""
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def worker_process(settings: Settings, web_port: int, log_path: Path) -> subprocess.Popen:
    env = {**export_env(settings), "SCORER_WEB_PORT": str(web_port)}
    log = log_path.open("ab")
    return subprocess.Popen([sys.executable, "-m", "streams.cli", "worker", "--loglevel", "warn"],
                            env=env, stdout=log, stderr=subprocess.STDOUT,
                            preexec_fn=_die_with_parent if sys.platform == "linux" else None)


def _samples(web_port: int) -> list[tuple[str, str, float]]:
    """(metric name, label text, value) of every sample the worker exposes."""
    with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/metrics", timeout=5) as response:
        text = response.read().decode()
    out = []
    for line in text.splitlines():
        match = re.match(r"^([a-z_]+)(\{[^}]*\})? ([0-9.eE+-]+)$", line)
        if match:
            out.append((match.group(1), match.group(2) or "", float(match.group(3))))
    return out


def scrape_totals(samples: list[tuple[str, str, float]]) -> dict[str, float]:
    """Each metric family summed over its labels (enough for progress checks)."""
    totals: dict[str, float] = {}
    for name, _, value in samples:
        totals[name] = totals.get(name, 0.0) + value
    return totals


def scrape(web_port: int) -> dict[str, float]:
    return scrape_totals(_samples(web_port))


def scrape_if_up(web_port: int) -> dict[str, float]:
    """Like `scrape`, but empty while the worker is not listening yet (starting, or gone)."""
    try:
        return scrape(web_port)
    except OSError:
        return {}


def wait_until_scored(web_port: int, expected: int, process: subprocess.Popen, final_watermark: float,
                      partitions: int, timeout: float = 900) -> dict[str, float]:
    """Until the worker has read every record, every partition's watermark has reached
    `final_watermark`, and two whole processing passes have finished since."""
    deadline = time.monotonic() + timeout
    passes_at_watermark = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"worker exited with {process.returncode}")
        try:
            samples = _samples(web_port)
        except OSError:
            time.sleep(0.5)
            continue
        totals = scrape_totals(samples)
        marks = [v for name, _, v in samples if name == "scorer_event_time_watermark_seconds"]
        passes = totals.get("scorer_batch_size_records_count", 0)
        reached = (totals.get("scorer_events_consumed_total", 0) >= expected and len(marks) >= partitions
                   and min(marks) >= final_watermark)
        if reached and passes_at_watermark is None:
            passes_at_watermark = passes
        if passes_at_watermark is not None and passes >= passes_at_watermark + 2:
            return totals
        time.sleep(0.5)
    raise TimeoutError("worker did not finish scoring in time")


def run_demo(students: int, seed: int, out: Path) -> int:
    from storage.critical_points import critical_points, format_table
    from storage.migrate import upgrade
    from storage.queries import status_summary
    from streams.lms.synthetic import generate
    from streams.replay import replay

    out.mkdir(parents=True, exist_ok=True)
    settings = replace(Settings.from_env(), state_dir=str((out / "var").resolve()))
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
            totals = wait_until_scored(web_port, published, worker, report.final_watermark(settings),
                                       settings.partitions)
        finally:
            worker.terminate()
            worker.wait(30)
        print("4/4 results")
        print(f"    records consumed: {totals.get('scorer_events_consumed_total', 0):.0f}, "
              f"dead letters: {totals.get('scorer_dead_letters_total', 0) + report.dead_letters:.0f}, "
              f"alerts: {totals.get('scorer_alerts_total', 0):.0f}")
        print("    students by status:", json.dumps(status_summary(settings.database_url)))
        print("    where students fall asleep (course_critical_points):")
        print(format_table(critical_points(settings.database_url, limit=10)))
    return 0
