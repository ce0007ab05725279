"""`scorer demo`: the whole job end to end on embedded servers, then a report.

generate a synthetic LMS -> start a worker process -> replay the history up to the middle of the
newest flow -> wait until every record is scored -> print statuses, alerts and critical points,
how to query the read API and open the curator console (with a token generated for the run unless
SCORER_API_TOKEN is set), and the students a curator can still reach, with their reasons.

The replay stops mid-course because that is the moment the scorer is for: the newest flow's students
are active, dozing or asleep while the oldest flows end and their outcomes arrive. Replayed whole
(`whole_history`), every enrolment ends `finished` and there is no one left to reach.
"""
from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

from features.eventtime import format_ts
from features.schedule import FlowSchedules
from storage.postgres.critical_points import critical_points, format_table
from storage.postgres.data_reads import readers
from storage.postgres.migrate import upgrade
from storage.postgres.queries import at_risk, status_summary
from streams.console.views import DEFAULT_SORT, guess_mark
from streams.console.words import reasons, speaking
from streams.contract import Topic
from streams.lms.events import Event
from streams.lms.synthetic import generate
from streams.settings import Settings
from streams.tools.embedded import embedded_stack, free_port
from streams.tools.processes import LOOPBACK_HTTP, Sample, samples, stop, wait_until_scored, worker_process
from streams.tools.replay import load_records, publish_records


def with_api_token(settings: Settings) -> tuple[Settings, bool]:
    """Settings whose read API has a token (the worker refuses every read without one), and
    whether it was generated here rather than taken from SCORER_API_TOKEN."""
    if settings.api_token:
        return settings, False
    return settings.copy(api_token=secrets.token_urlsafe(24)), True


def middle_of_newest_flow(events: list[Event]) -> float | None:
    """Half-way through the schedule of the flow that starts last (None without a schedule)."""
    flows = FlowSchedules(record for topic, record in events if topic is Topic.SCHEDULE).flows()
    newest = max(flows, key=lambda schedule: schedule.start, default=None)
    return None if newest is None else (newest.start + newest.end) / 2


def alerts_by_kind(found: list[Sample]) -> dict[str, int]:
    """The worker's alerts by what they say: an early warning stays active (`at_risk`), a status change
    names where the student went. Early warnings follow the model version that scored the student, so
    their count moves a little between runs with the trainer's timing; the status changes do not."""
    counts: dict[str, int] = {}
    for name, labels, value in found:
        if name == "scorer_alerts_total":
            kind = "at_risk" if labels["from_status"] == labels["to_status"] else f"to {labels['to_status']}"
            counts[kind] = counts.get(kind, 0) + int(value)
    return counts


def format_alerts(counts: dict[str, int]) -> str:
    return ", ".join(f"{kind} {count}" for kind, count in sorted(counts.items())) or "none"


def example_course(database_url: str) -> int:
    """The course with the worst critical point (1 when none yet)."""
    worst = critical_points(database_url, limit=1)
    return int(worst[0]["course_id"]) if worst else 1


def example_path(database_url: str) -> str:
    """A read-API path worth showing: the course with the worst critical point, the students a curator
    can still reach first (the console's order)."""
    return f"/courses/{example_course(database_url)}/at-risk?limit=5&sort={DEFAULT_SORT}"


def try_read_api(url: str, token: str) -> str:
    """What the running worker answers to `url` with the token (the demo checks its own advice)."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code}"
    except (OSError, ValueError) as error:
        return f"no answer ({type(error).__name__})"
    return f"HTTP {response.status}, {len(body.get('students', []))} students"


def print_read_api(url: str, token: str, generated: bool, answer: str) -> None:
    """How to query the API; a token from the environment is not echoed (it is the operator's secret)."""
    print("    read API (served by `scorer worker` while it runs; the demo's worker has stopped):")
    if generated:
        print(f"      token generated for this run (set SCORER_API_TOKEN to choose one): {token}")
        header = f"Authorization: Bearer {token}"
    else:
        print("      token: SCORER_API_TOKEN")
        header = "Authorization: Bearer $SCORER_API_TOKEN"
    print(f"      curl -H \"{header}\" '{url}'")
    print(f"      answered during the run: {answer}")


def try_console(url: str, token: str) -> str:
    """What the running worker's console page answers (status and time), with the bearer header."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    began = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    except OSError as error:
        return f"no answer ({type(error).__name__})"
    return f"HTTP {status} in {(time.perf_counter() - began) * 1000:.0f} ms"


def print_console(url: str, token: str, generated: bool, answer: str, database_url: str, course: int,
                  top: int = 5) -> None:
    """The console's address, the token to log in with, and the first students of the list the console's
    course page opens with (DEFAULT_SORT: those a curator can still reach), with their reasons (in the language
    spoken: `words.speaking`)."""
    print("    curator console (served by `scorer worker` while it runs; log in with the read API token):")
    print(f"      {url}")
    print(f"      token: {token if generated else 'SCORER_API_TOKEN'}")
    print(f"      answered during the run: {answer}")
    print(f"    students of course {course} a curator can still reach, most at risk first:")
    for row in at_risk(database_url, course, top, DEFAULT_SORT):
        p_dropout = "-" if row["p_dropout"] is None else f"{row['p_dropout']:.2f}"
        mark = guess_mark(row["basis"], "p_dropout")
        print(f"      student {row['user_id']}: {row['status']}, P(dropout) {p_dropout}{f' ({mark})' if mark else ''}")
        for reason in reasons(row["factors"]):
            print(f"        - {reason}")


def run_demo(students: int, seed: int, out: Path, whole_history: bool = False) -> int:
    """The embedded servers keep their data under `out`/var, which each run starts without (and a new
    worker log): the broker's memory is new every time, and an earlier run's Redis documents and Postgres
    rows would outlive it (a student finished in a whole-history run stayed finished in the next run's report)."""
    state = out / "var"
    shutil.rmtree(state, ignore_errors=True)
    (out / "worker.log").unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    settings, generated = with_api_token(Settings.from_env().copy(state_dir=str(state.resolve()), **LOOPBACK_HTTP))
    print(f"1/4 generating {students} students into {out / 'lms'}")
    generate(out / "lms", students=students, seed=seed, bad_rows=5)
    with embedded_stack(settings) as settings:
        upgrade(settings.database_url)
        web_port = free_port()
        worker = worker_process(settings, web_port, out / "worker.log")
        try:
            events, rejected = load_records(out / "lms")
            until = None if whole_history else middle_of_newest_flow(events)
            print("2/4 replaying the LMS history to the topics"
                  + ("" if until is None else f" up to {format_ts(until)}, half-way through the newest flow"))
            report = asyncio.run(publish_records(settings, events, rejected, until=until))
            published = sum(report.published.values())
            print(f"    {json.dumps(report.as_dict(), ensure_ascii=False)}")
            if report.held_back:
                print(f"    {report.held_back} later records held back (`scorer demo --whole-history` sends them too)")
            print(f"3/4 scoring {published} records (worker log: {out / 'worker.log'})")
            final_watermark = report.final_watermark(settings)
            if final_watermark is None:
                raise RuntimeError("the replay published no student events")
            totals = wait_until_scored(web_port, published, worker, final_watermark, settings.partitions)
            alerts = alerts_by_kind(samples(web_port))
            api_url = f"http://127.0.0.1:{web_port}{example_path(settings.database_url)}"
            api_answer = try_read_api(api_url, settings.api_token)
            course = example_course(settings.database_url)
            console_url = f"http://127.0.0.1:{web_port}/console/courses/{course}"
            console_answer = try_console(console_url, settings.api_token)
        finally:
            stop([worker])
        print("4/4 results")
        print(f"    records consumed: {totals.get('scorer_events_consumed_total', 0):.0f}, "
              f"dead letters: {totals.get('scorer_dead_letters_total', 0) + report.dead_letters:.0f}, "
              f"alerts: {totals.get('scorer_alerts_total', 0):.0f} ({format_alerts(alerts)})")
        print("    students by status:", json.dumps(status_summary(settings.database_url)))
        print("    where students fall asleep (course_critical_points):")
        print(format_table(critical_points(settings.database_url, limit=10)))
        print_read_api(api_url, settings.api_token, generated, api_answer)
        with speaking(settings.reason_language):  # type: ignore[arg-type]  # Settings checks it is one
            print_console(console_url, settings.api_token, generated, console_answer, settings.database_url, course)
        print_reads(settings.database_url)
    return 0


def print_reads(database_url: str) -> None:
    """Who read whose data during the run (the record each answer of the read API and the console wrote)."""
    print("    who read students' data (`scorer reads --by-reader`):")
    for row in readers(database_url):
        print(f"      {row['reader']}: {row['answers']} answers, {row['students']} students")
