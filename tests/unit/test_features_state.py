"""State layout, last-writer-wins profile and outcome, last activity, JSON round trip."""
from __future__ import annotations

import itertools
import json

import pytest

from features import apply, attempt_facts, canonical, compute, last_activity, new_state, outcome, parse_ts, profile


def student(ts: str, **fields) -> dict:
    return {"user_id": 1, "ts": ts, "course_id": 3, **fields}


def label(ts: str, module: int = 2, **fields) -> dict:
    return {"user_id": 1, "ts": ts, "module": module, "progress": 40, "attestation": None, **fields}


def test_facts_are_compact_sorted_ints() -> None:
    state = new_state()
    apply(state, "authorization", {"user_id": 1, "ts": "2023-12-05T11:00:00.750"})
    apply(state, "authorization", {"user_id": 1, "ts": "2023-12-04T11:00"})
    apply(state, "page_view", {"user_id": 1, "ts": "2023-12-05T12:00:00", "page_type": "занятие", "page_id": 81})
    apply(state, "page_view", {"user_id": 1, "ts": "2023-12-05T12:00:00", "page_type": "активность", "page_id": 81})
    apply(state, "exercise_result", {"user_id": 1, "ts": "2023-12-05 13:00:00", "activity_id": 9, "result": None,
                                     "success": 0})
    apply(state, "webinar_event", {"user_id": 1, "ts": "2023-12-06T18:00:00", "webinar_id": 4,
                                   "event": "Подключение", "conn_format": "онлайн"})
    t = lambda text: int(parse_ts(text))  # noqa: E731
    assert state["logins"] == [t("2023-12-04T11:00:00"), t("2023-12-05T11:00:00")]
    assert state["views"] == {"t81": [t("2023-12-05T12:00:00")], "a81": [t("2023-12-05T12:00:00")]}
    assert state["attempts"] == {"9": [[t("2023-12-05T13:00:00"), -1, 0]]}
    assert state["webinars"] == {"4": [[t("2023-12-06T18:00:00"), 1, 1]]}
    assert json.loads(canonical(state)) == state


def test_profile_versions_are_as_of_and_ties_are_order_free() -> None:
    early, late = student("2023-12-01T00:00:00", age=16), student("2023-12-20T00:00:00", age=17, online=True)
    tie = student("2023-12-20T00:00:00", age=18)
    a, b = new_state(), new_state()
    for record in (early, late, tie):
        apply(a, "student", record)
    for record in (tie, late, early):
        apply(b, "student", record)
    assert canonical(a) == canonical(b)
    assert profile(a, parse_ts("2023-11-30T00:00:00")) is None
    assert profile(a, parse_ts("2023-12-10T00:00:00"))["age"] == 16
    assert profile(a, parse_ts("2023-12-20T00:00:00"))["age"] == 18  # [3,18,...] > [3,17,...] as JSON


def test_outcome_newest_per_module() -> None:
    state = new_state()
    apply(state, "outcome", label("2024-02-01T00:00:00", progress=70, attestation=80,
                                  attestation_date="2024-01-30T12:00:00"))
    apply(state, "outcome", label("2024-01-01T00:00:00", progress=10))
    apply(state, "outcome", label("2024-01-01T00:00:00", module=1, progress=100))
    assert outcome(state)["progress"] == 70 and outcome(state)["attestation"] == 80
    assert outcome(state)["attestation_ts"] == parse_ts("2024-01-30T12:00:00")
    assert outcome(state, 1)["progress"] == 100
    assert outcome(state, 3) is None and outcome(new_state()) is None


def test_last_activity_ignores_profile_and_outcome() -> None:
    state = new_state()
    assert last_activity(state) is None
    apply(state, "student", student("2024-03-01T00:00:00"))
    apply(state, "outcome", label("2024-03-01T00:00:00"))
    assert last_activity(state) is None
    apply(state, "webinar_event", {"user_id": 1, "ts": "2023-12-06T19:00:00", "webinar_id": 4,
                                   "event": "Отключение", "conn_format": None})
    apply(state, "authorization", {"user_id": 1, "ts": "2023-12-06T18:00:00"})
    assert last_activity(state) == parse_ts("2023-12-06T19:00:00")


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError):
        apply(new_state(), "schedule_activity", {"course_id": 3})


def graded(ts: str, result: int, graded_at: str | None = None, attempt: str = "urn:attempt:1") -> dict:
    record = {"user_id": 1, "ts": ts, "activity_id": 9, "attempt_id": attempt, "result": result,
              "success": int(result >= 60)}
    return record if graded_at is None else {**record, "graded_at": graded_at}


def test_a_named_attempt_graded_and_regraded_is_one_attempt_with_its_latest_grade() -> None:
    handed_in, graded_at, regraded_at = "2023-12-05T13:00:00", "2023-12-07T09:00:00", "2023-12-20T10:00:00"
    records = [graded(handed_in, 40, graded_at), graded(handed_in, 40, graded_at),  # the same grade read twice
               graded(regraded_at, 80),  # a regrade that names no hand-in time: dated when it was given
               graded("2023-12-06T08:00:00", 100, attempt="urn:attempt:2")]
    states = []
    for order in itertools.permutations(records):
        state = new_state()
        for record in order:
            apply(state, "exercise_result", record)
        states.append(canonical(state))
    assert len(set(states)) == 1
    state = json.loads(states[0])
    t = lambda text: int(parse_ts(text))  # noqa: E731
    second = [t("2023-12-06T08:00:00"), 100, 1, t("2023-12-06T08:00:00")]  # [handed in, result, success, passed]
    assert attempt_facts(state) == {"9": [[t(handed_in), 80, 1, t(regraded_at)], second]}  # passed when regraded
    assert attempt_facts(state, t("2023-12-10T00:00:00"))["9"] == [[t(handed_in), 40, 0, None], second]
    assert attempt_facts(state, t("2023-12-06T12:00:00"))["9"] == [second]
    assert last_activity(state) == t("2023-12-06T08:00:00")  # the regrade is the teacher's doing
    features = compute(state, None, t("2023-12-21T00:00:00"))
    assert features["sum_exercise_attempts_mean"] == 2.0
    assert features["success_index"] == 1.0 and features["mean_attempt_score"] == 90.0


def test_a_named_attempt_has_passed_since_the_first_of_its_last_passing_grades() -> None:
    state = new_state()
    for day, result in ((5, 70), (6, 40), (8, 65), (9, 90)):  # passed, failed (an override), passed, raised
        apply(state, "exercise_result", graded(f"2023-12-{day:02d}T10:00:00", result))
    (fact,) = attempt_facts(state)["9"]
    assert fact == [int(parse_ts("2023-12-05T10:00:00")), 90, 1, int(parse_ts("2023-12-08T10:00:00"))]


def hand_in(ts: str, attempt: str = "urn:attempt:1") -> dict:
    return {"user_id": 1, "ts": ts, "activity_id": 9, "attempt_id": attempt, "result": None, "success": 0,
            "pending": True}


def test_a_hand_in_is_activity_not_an_attempt_until_its_grade_which_it_dates() -> None:
    """Handed in on the 5th, graded a fail on the 9th (a grade that names no hand-in time, as Moodle's),
    handed in again on the 12th, graded a pass on the 15th: the work passed on the 12th."""
    t = lambda text: int(parse_ts(text))  # noqa: E731
    records = [hand_in("2023-12-05T10:00:00"), graded("2023-12-09T10:00:00", 40),
               hand_in("2023-12-12T10:00:00"), graded("2023-12-15T10:00:00", 80), hand_in("2023-12-05T10:00:00")]
    states = set()
    for order in itertools.permutations(records):
        state = new_state()
        for record in order:
            apply(state, "exercise_result", record)
        states.add(canonical(state))
    (one,) = states
    state = json.loads(one)
    assert attempt_facts(state) == {"9": [[t("2023-12-05T10:00:00"), 80, 1, t("2023-12-12T10:00:00")],
                                          [t("2023-12-12T10:00:00"), -2, 0, None]]}  # handed in again: activity
    assert attempt_facts(state, t("2023-12-06T00:00:00")) == {"9": [[t("2023-12-05T10:00:00"), -2, 0, None]]}
    early = compute(state, None, t("2023-12-06T00:00:00"))  # handed in, not graded: no attempt yet
    assert early["sum_exercise_attempts_mean"] == 0.0 and early["success_index"] == 0.0
    assert early["days_inactive"] == pytest.approx(14 / 24)  # but the student was active that day
    late = compute(state, None, t("2023-12-16T00:00:00"))
    assert late["sum_exercise_attempts_mean"] == 1.0 and late["success_index"] == 1.0
    assert last_activity(state) == t("2023-12-12T10:00:00")  # the grades are the teacher's doing


def test_anonymous_and_named_attempts_of_one_activity_add_up() -> None:
    state = new_state()
    apply(state, "exercise_result", {"user_id": 1, "ts": "2023-12-05T12:00:00", "activity_id": 9, "result": None,
                                     "success": 0})
    apply(state, "exercise_result", graded("2023-12-05T13:00:00", 70))
    features = compute(state, None, parse_ts("2023-12-06T00:00:00"))
    assert features["sum_exercise_attempts_mean"] == 2.0 and features["success_index"] == 0.5
    assert state["attempts"] == {"9": [[int(parse_ts("2023-12-05T12:00:00")), -1, 0]]}  # the named one kept apart
