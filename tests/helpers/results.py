"""What a run of the worker must have produced, checked against the pure functions: Redis state
equal to the fold, alerts equal to the reference machine's (each transition once by alert_id),
Postgres rows agreeing with Redis. Shared by the end-to-end and fault-injection tests."""
from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, get_args

import pandas as pd
from sqlalchemy import text

from features import (
    DAY,
    CourseSchedule,
    FlowSchedules,
    Thresholds,
    canonical,
    fold,
    parse_ts,
    reference_transitions,
)
from features.activity_status import Transition
from features.hypotheses import HYPOTHESES
from features.schedule import page_key
from helpers.facts import folded_as_stored
from helpers.topics import read_topic
from storage.postgres.critical_points import critical_points
from storage.postgres.db import shared_engine
from storage.students import RedisStudentStore
from streams.contract import ACTIVITY_TOPICS, TOPIC_SCHEMA, Topic, enrolment_key
from streams.contract.outputs import Basis

T = TypeVar("T")
HYPOTHESIS_KEYS = {h.key for h in HYPOTHESES}


def _claims(schedule: CourseSchedule | None, topic: Topic, record: dict[str, Any]) -> bool:
    if schedule is None:
        return False
    if topic is Topic.PAGE_VIEWS:
        return page_key(record["page_type"], record["page_id"]) in schedule.pages
    if topic is Topic.EXERCISE_RESULTS:
        return int(record["activity_id"]) in schedule.activities
    return False


def expected_alert_ids(events, settings) -> set[str]:
    return {t.alert_id for t in reference_alerts(events, settings)}


def reference_alerts(events, settings) -> list[Transition]:
    """The reference machines over each enrolment's whole history, up to the final watermark, written
    from the rules rather than the worker's code: an enrolment per (course, flow) of a student's
    profiles, from its first one; activity counts for it from then on, unless it is a page or an
    exercise of another of the student's courses; its lifecycle ends at its outcome or a grace
    period after its flow's last opening; only students the online filter keeps at a transition's
    time are alerted (early warnings depend on the model and are not predicted here)."""
    watermark = max(parse_ts(r["ts"]) for t, r in events if t is not Topic.SCHEDULE) - settings.allowed_lateness_seconds
    schedules = FlowSchedules()
    started: dict[tuple[int, str], tuple[float, int, int | None]] = {}
    online: dict[int, list[tuple[float, bool]]] = {}
    activity: dict[int, list[tuple[Topic, dict[str, Any], float]]] = {}
    outcomes: list[dict[str, Any]] = []
    for topic, record in events:
        ts = parse_ts(record["ts"])
        if topic is Topic.SCHEDULE:
            schedules.add([record])
        elif topic is Topic.STUDENTS:
            user, flow = record["user_id"], None if record.get("flow_num") is None else int(record["flow_num"])
            key = (user, enrolment_key(record["course_id"], flow))
            if key not in started or ts < started[key][0]:
                started[key] = (ts, record["course_id"], flow)
            online.setdefault(user, []).append((ts, record.get("online") is not False))
        elif topic in ACTIVITY_TOPICS:
            activity.setdefault(record["user_id"], []).append((topic, record, ts))
        elif topic is Topic.OUTCOMES:
            outcomes.append(record)
    plans = {key: schedules.get((course, flow)) for key, (_, course, flow) in started.items()}
    ends: dict[tuple[int, str], float] = {}
    for record in outcomes:  # to its course and flow's enrolment, else its course's latest started by its time
        ts = parse_ts(record["ts"])
        course, flow = record.get("course_id"), record.get("flow_num")
        mine = sorted((start, key) for key, (start, c, f) in started.items() if key[0] == record["user_id"]
                      and (course is None or (c == course and (flow is None or f == int(flow)))))
        if mine:
            before = [key for start, key in mine if start <= ts]
            key = before[-1] if before else mine[0][1]
            ends[key] = min(ends.get(key, ts), ts)
    grace = settings.course_grace_days * DAY
    thresholds = Thresholds(settings.dozing_days, settings.asleep_days)
    alerted: list[Transition] = []
    for key, (start, _, _) in started.items():
        user, scope = key
        plan = plans[key]
        others = [plans[k] for k in plans if k[0] == user and k != key]
        times = [start] + [ts for topic, record, ts in activity.get(user, []) if ts >= start and (
            _claims(plan, topic, record) or not any(_claims(o, topic, record) for o in others))]
        end_candidates = [t for t in (ends.get(key), None if plan is None else plan.end + grace) if t is not None]
        transitions = reference_transitions(user, times, watermark, thresholds, start=None if plan is None else
                                            plan.start, end=min(end_candidates, default=None), scope=scope)
        flags = sorted(online.get(user, []))
        alerted += [t for t in transitions
                    if settings.alerted_students == "all" or (any(ok for ts, ok in flags if ts <= t.at)
                    and [ok for ts, ok in flags if ts <= t.at][-1])]
    return alerted


@dataclass
class Results:
    """What `check_results` read, for further checks by the caller."""

    alerts: list[dict[str, Any]] = field(default_factory=list)
    status_counts: dict[str, int] = field(default_factory=dict)


async def check_results(settings, events, dataset: Path, *, ground_truth: bool = True,
                        late: frozenset[int] = frozenset()) -> Results:
    """Redis equals the fold of `events`, the alerts topic equals the reference (duplicates of an id
    allowed, nothing extra, nothing missing), Postgres agrees with Redis and has a model version;
    with `ground_truth`, dropped-out students of the generated `dataset` end asleep far more often.
    The `late` students' records all arrived after the watermark had passed them (a redrive): a
    transition alerted from part of them is not withdrawn when the rest arrives, so their alerts are
    not compared one by one; each of their enrolments must end in the reference's last status."""
    # Redis state equals the pure in-memory fold over the same records
    expected_states = fold((TOPIC_SCHEMA[t], r) for t, r in events if t is not Topic.SCHEDULE)
    store = RedisStudentStore.from_url(settings.redis_url, settings.topic_prefix)
    try:
        loaded = await store.load(expected_states)
        counts = await store.status_counts()
    finally:
        await store.close()
    mismatched = [u for u, s in expected_states.items() if loaded[u][1] is None
                  or canonical(loaded[u][1]["facts"]) != folded_as_stored(s, loaded[u][1]["facts"])]
    assert not mismatched, f"{len(mismatched)} students differ from the fold, e.g. {mismatched[:3]}"

    # every reference transition alerted, none extra, none lost (duplicates share an id)
    alerts = await read_topic(settings, Topic.ALERTS)
    warnings = [a for a in alerts if a["kind"] == "at_risk"]  # the model's: not predicted by the reference
    assert all(a["from_status"] == a["to_status"] == "active" for a in warnings)
    reference = reference_alerts(events, settings)
    expected_ids = {t.alert_id for t in reference if t.user_id not in late} | {a["alert_id"] for a in warnings}
    extra = [a for a in alerts if a["alert_id"] not in expected_ids and a["user_id"] not in late]
    missing = expected_ids - {a["alert_id"] for a in alerts}
    last = {(t.user_id, t.scope): t.to_status for t in sorted(reference, key=lambda t: t.at) if t.user_id in late}
    ended = {(u, key): e["machine"]["status"] for u in late if loaded[u][1] is not None
             for key, e in loaded[u][1]["enrolments"].items() if (u, key) in last}
    assert ended == last, (ended, last)
    assert not extra and not missing, (len(extra), len(missing), [
        (a["user_id"], a["from_status"], a["to_status"], a["ts"], a["last_activity_ts"]) for a in extra[:4]])
    assert Counter(a["to_status"] for a in alerts).keys() >= {"dozing", "asleep"}
    # reasons as data: a student gone quiet is explained by the model, in the hypotheses' terms
    quiet = [a for a in alerts if a["to_status"] in ("dozing", "asleep")]
    explained = [a for a in quiet if a["factors"]]
    assert len(explained) >= len(quiet) / 2, f"{len(explained)} of {len(quiet)} critical points have factors"
    assert all(f["hypothesis"] in HYPOTHESIS_KEYS and f["effect"] > 0 for a in explained for f in a["factors"])
    # each score says what answered it: the label-free guess (version 0 answers at first) or a learned model
    scored = [a for a in alerts if a["scores"]["p_dropout"] is not None]
    assert scored and all(a["basis"] is not None and set(a["basis"].values()) <= set(get_args(Basis)) for a in scored)
    assert any(a["basis"]["p_dropout"] == "guess" for a in scored)

    # Postgres has one current row per tracked student and every transition once
    engine = shared_engine(settings.database_url)
    with engine.connect() as connection:
        current = dict(connection.execute(text("select status, count(*) from students_current group by status")).all())
        unsaid = connection.execute(text("select count(*) from students_current where p_dropout is not null "
                                         "and basis is null")).scalar_one()
        stored = {(kind, alert_id) for kind, alert_id in connection.execute(
            text("select kind, alert_id from status_transitions"))}
    assert current == {s: n for s, n in counts.items() if n}, (current, counts)
    assert unsaid == 0, f"{unsaid} scored rows do not say what answered"
    sent = {(a["kind"], a["alert_id"]) for a in alerts}
    assert {row for row in stored if row[0] != "at_risk"} == {s for s in sent if s[0] != "at_risk"}
    # an early warning depends on the model version that scored it: one sent just before a crash may
    # not be raised again when the batch is redone with a newer version, so Postgres may lack it
    assert {row for row in stored if row[0] == "at_risk"} <= {s for s in sent if s[0] == "at_risk"}
    # and each enrolment's row says what its Redis document says (no row left behind by a crash)
    with engine.connect() as connection:
        rows = {(u, e): st for u, e, st in connection.execute(
            text("select user_id, enrolment, status from students_current"))}
    stale = [(u, key) for u, (_, doc) in loaded.items() if doc is not None
             for key, e in doc["enrolments"].items() if e["machine"] is not None
             and e["machine"]["status"] != "new" and rows.get((u, key)) != e["machine"]["status"]]
    assert not stale, f"{len(stale)} enrolments' rows disagree with their state, e.g. {stale[:3]}"
    # labels arrived, the trainer published, the version reached Postgres: the trainer learns and publishes
    # beside the scoring passes (a round can take seconds, and over a minute on a busy machine), so its row
    # may land after the last one
    await eventually(lambda: a_published_version(settings.database_url), seconds=180, pause=1.0)
    worst = critical_points(settings.database_url, limit=5)
    assert worst and worst[0]["to_asleep"] + worst[0]["to_dozing"] > 0

    if ground_truth:
        # students who dropped out fell asleep far more often than those who did not (not all of
        # them: a lifecycle that ends first, at the outcome or the flow's end, stops the clock)
        truth = pd.read_csv(dataset / "ground_truth.csv")
        with engine.connect() as connection:
            slept = {u for (u,) in connection.execute(
                text("select distinct user_id from status_transitions where to_status = 'asleep'"))}
        truth["asleep"] = truth["user_id"].map(lambda u: u in slept)
        dropped, stayed = truth[truth["dropout"] == 1], truth[truth["dropout"] == 0]
        assert len(dropped) >= 5 and len(stayed) >= 5
        rates = (dropped["asleep"].mean(), stayed["asleep"].mean())
        assert rates[0] >= 0.6 and rates[0] > rates[1] + 0.3, f"asleep rate dropped/stayed {rates}"
    return Results(alerts=alerts, status_counts=counts)


async def a_published_version(database_url: str) -> None:
    """Some model version reached Postgres: the trainer learned labels and published."""
    with shared_engine(database_url).connect() as connection:
        versions = connection.execute(text("select count(*) from model_versions")).scalar()
    assert versions is not None and versions >= 1


async def eventually(check: Callable[[], Awaitable[T]], seconds: float, pause: float = 3.0) -> T:
    """`check()` once it stops failing its assertions; its last AssertionError after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return await check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(pause)
