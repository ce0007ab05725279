"""fold() is the reference the streaming worker must match: any arrival order, any snapshot time.

The event list is a realistic 10-week course for three students: every record kind,
exact duplicates (a student reloading a page, a resubmitted attempt) and many ts ties.
"""
from __future__ import annotations

import json
import random
from datetime import datetime, timedelta

import pytest

from features import FEATURE_NAMES, CourseSchedule, apply, canonical, compute, fold, last_activity, new_state, parse_ts
from features.state import active_days, compact

START = datetime(2023, 12, 4, 10, 0)
TYPES = ("slide", "exercise", "CodeExercise", "interactive")


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def schedule_records() -> list[dict]:
    rows = []
    for week in range(10):
        task_id, opens = 100 + week, START + timedelta(days=7 * week)
        rows.append({"course_id": 49, "ts": "2023-11-01T00:00:00", "type": "занятие", "task_id": task_id,
                     "activity_id": 1000 + 10 * week, "activity_type": None, "is_attestation": 0, "required": 0,
                     "date_shown": iso(opens), "module": 2, "task_position": 1})
        for k in range(1, 5):
            rows.append({"course_id": 49, "ts": "2023-11-01T00:00:00", "type": "активность", "task_id": task_id,
                         "activity_id": 1000 + 10 * week + k, "activity_type": TYPES[k - 1],
                         "is_attestation": int(week in (4, 9) and k == 2), "required": int(k in (1, 2)),
                         "date_shown": iso(opens + timedelta(days=k // 3)), "module": 2, "task_position": k})
    return rows


def student_events(user_id: int, diligence: float, rng: random.Random) -> list[tuple[str, dict]]:
    out: list[tuple[str, dict]] = [
        ("student", {"user_id": user_id, "ts": "2023-12-01T00:00:00", "course_id": 49, "age": 15 + user_id,
                     "tg_bot": user_id % 3, "payment": 1, "online": True, "flow_num": 1.0,
                     "time_zone": "+03:00"}),  # time_zone: a feature since the seed definitions
        ("student", {"user_id": user_id, "ts": "2024-01-10T00:00:00", "course_id": 49, "age": 15 + user_id,
                     "tg_bot": 2, "payment": 1, "online": True, "flow_num": 1.0}),
        ("student", {"user_id": user_id, "ts": "2024-01-10T00:00:00", "course_id": 49, "age": 16 + user_id,
                     "tg_bot": 0, "payment": 0, "online": False, "flow_num": 2.0,
                     "time_zone": "+05:00"}),  # same-ts conflict
        ("outcome", {"user_id": user_id, "ts": "2024-02-15T00:00:00", "course_id": 49, "module": 2,
                     "progress": int(100 * diligence), "attestation": None}),
        ("outcome", {"user_id": user_id, "ts": "2024-02-15T00:00:00", "course_id": 49, "module": 2,
                     "progress": int(90 * diligence), "attestation": 55, "attestation_date": "2024-02-10T12:00:00"}),
    ]
    for week in range(10):
        if rng.random() > diligence:
            continue
        day = START + timedelta(days=7 * week + rng.randint(0, 3), hours=rng.randint(0, 8))
        login = {"user_id": user_id, "ts": iso(day)}
        out += [("authorization", login), ("authorization", dict(login))]  # a double login at one instant
        lesson = {"user_id": user_id, "ts": iso(day + timedelta(minutes=5)), "page_type": "занятие",
                  "page_id": 100 + week}
        out += [("page_view", lesson), ("page_view", dict(lesson))]
        for k in range(1, 5):
            at = day + timedelta(minutes=10 * k)
            out.append(("page_view", {"user_id": user_id, "ts": iso(at), "page_type": "активность",
                                      "page_id": 1000 + 10 * week + k}))
            if k > 1:
                for attempt in range(rng.randint(1, 3)):
                    result = None if rng.random() < 0.1 else rng.randint(30, 100)
                    record = {"user_id": user_id, "ts": iso(at + timedelta(minutes=attempt)), "module": 2,
                              "activity_id": 1000 + 10 * week + k, "result": result,
                              "success": int(result is not None and result >= 60)}
                    out.append(("exercise_result", record))
                out.append(("exercise_result", dict(record)))  # a resubmitted last attempt
            if k == 4:  # handed in, graded by a teacher two days later (read twice), regraded on a day of its own
                named = {"user_id": user_id, "ts": iso(at), "module": 2, "activity_id": 1000 + 10 * week + k,
                         "attempt_id": f"urn:attempt:{user_id}:{week}", "graded_at": iso(at + timedelta(days=2)),
                         "result": rng.randint(30, 70), "success": 0}
                regraded = {**named, "ts": iso(at + timedelta(days=3)), "graded_at": iso(at + timedelta(days=3)),
                            "result": 75, "success": 1}
                out += [("exercise_result", named), ("exercise_result", dict(named)), ("exercise_result", regraded)]
            if k == 2:  # handed in (in odd weeks; else its first grade is its first record), then a grade
                # book entry's grades: pass, fail, pass, fail, pass (those before the last fail are
                # spent once compacted, but the first record)
                entry = {"user_id": user_id, "ts": iso(at), "module": 2, "activity_id": 1000 + 10 * week + k,
                         "attempt_id": "moodle:grade", "result": None, "success": 0, "pending": True}
                if week % 2:
                    out.append(("exercise_result", entry))
                for days, result in ((1, 70), (2, 50), (3, 90), (5, 40), (6, 80)):
                    out.append(("exercise_result", {**entry, "ts": iso(at + timedelta(days=days)), "result": result,
                                                    "success": int(result >= 60), "pending": False}))
            if k == 3:  # handed in (read twice), graded a fail two days later in a record dated then, as
                # Moodle's user_graded; handed in again, and graded a pass a day after that
                hand_in = {"user_id": user_id, "ts": iso(at), "module": 2, "activity_id": 1000 + 10 * week + k,
                           "attempt_id": "moodle:grade", "result": None, "success": 0, "pending": True}
                grade = {**hand_in, "ts": iso(at + timedelta(days=2)), "result": 40, "pending": False}
                again = {**hand_in, "ts": iso(at + timedelta(days=3))}
                passed = {**grade, "ts": iso(at + timedelta(days=4)), "result": 80, "success": 1}
                out += [("exercise_result", r) for r in (hand_in, dict(hand_in), grade, again, passed)]
        webinar = START + timedelta(days=7 * week + 3, hours=8)
        fmt = rng.choice(["онлайн", "офлайн", None])
        for minutes, event in ((0, "Подключение"), (2, "Подключение"), (50, "Отключение"), (50, "Подключение")):
            out.append(("webinar_event", {"user_id": user_id, "ts": iso(webinar + timedelta(minutes=minutes)),
                                          "event": event, "webinar_id": 500 + week, "conn_format": fmt}))
    return out


def all_events() -> list[tuple[str, dict]]:
    rng = random.Random(49)
    return [e for user_id, diligence in ((1, 0.95), (2, 0.6), (3, 0.25))
            for e in student_events(user_id, diligence, rng)]


SCHEDULE = CourseSchedule.from_records(schedule_records())
EVENTS = all_events()
REFERENCE = fold(EVENTS)
SNAPSHOTS = [parse_ts(iso(START + timedelta(days=d, hours=h))) for d in range(-3, 80, 2) for h in (0, 9)]


def known_at(record: dict) -> float:
    """When the scorer can know a record: a grade given after the attempt was handed in, at its grading."""
    return parse_ts(record.get("graded_at") or record["ts"])


def handed_in(kind: str, record: dict) -> bool:
    """Is the record the student's own activity? A hand-in is; a regrade of a named attempt is the grader's."""
    if kind != "exercise_result" or "attempt_id" not in record or record.get("pending"):
        return True
    return record["ts"] == min(r["ts"] for k, r in EVENTS if k == kind and r.get("attempt_id") == record["attempt_id"]
                               and (r["user_id"], r["activity_id"]) == (record["user_id"], record["activity_id"]))


def canon(states: dict[int, dict]) -> dict[int, str]:
    return {user_id: canonical(state) for user_id, state in states.items()}


def test_the_example_is_realistic() -> None:
    kinds = {kind for kind, _ in EVENTS}
    assert kinds == {"student", "outcome", "authorization", "page_view", "exercise_result", "webinar_event"}
    assert len(EVENTS) > 300 and set(REFERENCE) == {1, 2, 3}
    assert len({json.dumps(r, sort_keys=True) for _, r in EVENTS}) < len(EVENTS)  # duplicates present
    lit = {name for as_of in SNAPSHOTS for state in REFERENCE.values()
           for name, value in compute(state, SCHEDULE, as_of).items() if value}
    assert lit == set(FEATURE_NAMES)  # so the snapshot test below checks every feature


@pytest.mark.heavy
def test_any_arrival_order_folds_to_the_same_state() -> None:
    reference = canon(REFERENCE)
    rng = random.Random(2024)
    events = list(EVENTS)
    for _ in range(300):
        rng.shuffle(events)
        assert canon(fold(events)) == reference


@pytest.mark.heavy
def test_interleaved_topics_with_storage_round_trips() -> None:
    """Like the worker: one topic at a time in bursts, the state re-read from JSON between bursts."""
    reference = canon(REFERENCE)
    rng = random.Random(11)
    for _ in range(30):
        queues: dict[str, list[tuple[str, dict]]] = {}
        for event in rng.sample(EVENTS, len(EVENTS)):
            queues.setdefault(event[0], []).append(event)
        stored: dict[int, str] = {}
        while any(queues.values()):
            burst = queues[rng.choice([k for k, q in queues.items() if q])]
            for kind, record in [burst.pop() for _ in range(min(len(burst), rng.randint(1, 20)))]:
                state = json.loads(stored[record["user_id"]]) if record["user_id"] in stored else new_state()
                apply(state, kind, record)
                stored[record["user_id"]] = json.dumps(state, ensure_ascii=False)
        assert {u: canonical(json.loads(s)) for u, s in stored.items()} == reference


def test_features_do_not_depend_on_arrival_order() -> None:
    rng = random.Random(5)
    events = list(EVENTS)
    as_of = parse_ts("2024-01-15T12:00:00")
    want = {u: compute(s, SCHEDULE, as_of) for u, s in REFERENCE.items()}
    for _ in range(20):
        rng.shuffle(events)
        assert {u: compute(s, SCHEDULE, as_of) for u, s in fold(events).items()} == want


@pytest.mark.heavy
def test_snapshots_are_exact_as_of() -> None:
    """A snapshot taken after later events arrived equals one taken from the events up to it."""
    for as_of in SNAPSHOTS:
        past = fold([(kind, r) for kind, r in EVENTS if known_at(r) <= as_of])
        for user_id, state in REFERENCE.items():
            known = past.get(user_id, new_state())
            assert compute(state, SCHEDULE, as_of) == compute(known, SCHEDULE, as_of), (user_id, as_of)
            assert compute(state, None, as_of) == compute(known, None, as_of), (user_id, as_of)


def test_fold_skips_schedule_records() -> None:
    mixed = [("schedule_activity", r) for r in schedule_records()] + EVENTS
    assert canon(fold(mixed)) == canon(REFERENCE)


# --- compaction: old facts as aggregates (features.compacted) ---------------------------------

HORIZONS = [parse_ts(iso(START + timedelta(days=d))) for d in (-2, 5, 12, 26, 40, 61, 75)]


def compacted(state: dict, horizon: float) -> dict:
    copy = json.loads(json.dumps(state))
    compact(copy, horizon)
    return copy


@pytest.mark.heavy
def test_compacted_states_give_the_same_features_as_of_any_moment_after_the_horizon() -> None:
    """Exact equality, every feature, with and without a schedule, on both sides of day boundaries."""
    checked = 0
    for horizon in HORIZONS:
        for user_id, state in REFERENCE.items():
            small = compacted(state, horizon)
            for as_of in (a for a in SNAPSHOTS if a >= horizon):
                assert compute(small, SCHEDULE, as_of) == compute(state, SCHEDULE, as_of), (user_id, horizon, as_of)
                assert compute(small, None, as_of) == compute(state, None, as_of), (user_id, horizon, as_of)
                checked += 1
    assert checked > 300


def busy_student(facts: int) -> dict:
    """`facts` logins, views and attempts over 70 days, 40 pages and 30 activities."""
    rng = random.Random(facts)
    state = new_state()
    for _ in range(facts):
        record = {"user_id": 1, "ts": iso(START + timedelta(seconds=rng.randrange(70 * 86_400)))}
        kind = rng.choice(("authorization", "page_view", "exercise_result"))
        if kind == "page_view":
            record.update(page_type="активность", page_id=1000 + rng.randrange(40))
        elif kind == "exercise_result":
            record.update(module=2, activity_id=1000 + rng.randrange(30), result=rng.randrange(101), success=1)
        apply(state, kind, record)
    return state


def test_compaction_bounds_the_state_whatever_the_history() -> None:
    """Ten times the facts on the same days, pages and activities: ten times the raw state, the
    same compacted one (to a few digits per count), and the same latest activity."""
    horizon = parse_ts(iso(START + timedelta(days=71)))
    short, long = busy_student(1_000), busy_student(10_000)
    assert len(canonical(long)) > 8 * len(canonical(short))
    small_short, small_long = compacted(short, horizon), compacted(long, horizon)
    assert len(canonical(small_long)) < 1.2 * len(canonical(small_short))
    assert last_activity(small_long) == last_activity(long)
    assert small_long["compacted"]["horizon"] % 86_400 == 0  # floored to a day
    assert compute(small_long, None, horizon) == compute(long, None, horizon)


@pytest.mark.heavy
def test_any_order_across_compaction_points_folds_to_the_same_state() -> None:
    """Events in random orders, the state compacted at random moments (the horizon only moving
    forward) and late facts merging below it: always the state of the fold compacted once."""
    final = HORIZONS[-2]
    reference = {u: canonical(compacted(s, final)) for u, s in REFERENCE.items()}
    rng = random.Random(77)
    for _ in range(40):
        events = rng.sample(EVENTS, len(EVENTS))
        points = sorted(rng.sample(range(len(events)), 4))
        horizons = sorted(rng.choice(HORIZONS[:-2]) for _ in points)
        states: dict[int, dict] = {}
        for i, (kind, record) in enumerate(events):
            apply(states.setdefault(record["user_id"], new_state()), kind, record)
            if i in points:
                horizon = horizons[points.index(i)]
                for state in states.values():
                    compact(state, horizon)
                states = {u: json.loads(json.dumps(s)) for u, s in states.items()}  # stored between batches
        for state in states.values():
            compact(state, final)
        assert {u: canonical(s) for u, s in states.items()} == reference


def test_active_days_are_the_same_before_and_after_compaction() -> None:
    for horizon in HORIZONS:
        for state in REFERENCE.values():
            assert active_days(compacted(state, horizon)) == active_days(state)
    days = {parse_ts(r["ts"]) // 86_400 for kind, r in EVENTS if r["user_id"] == 1 and handed_in(kind, r)
            and kind in ("authorization", "page_view", "exercise_result", "webinar_event")}
    assert active_days(REFERENCE[1]) == days and len(days) > 10
