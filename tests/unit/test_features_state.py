"""State layout, last-writer-wins profile and outcome, last activity, JSON round trip."""
from __future__ import annotations

import json

import pytest

from features import apply, canonical, last_activity, new_state, outcome, parse_ts, profile


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
