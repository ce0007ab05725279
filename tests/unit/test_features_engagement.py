"""Each feature on a small hand-computed example, plus the empty and no-schedule cases."""
from __future__ import annotations

import math

import pytest

from features import FEATURE_NAMES, CourseSchedule, compute, fold, new_state, parse_ts
from features.engagement import DESCRIPTIONS

USER = 1


def row(activity_id: int, task_id: int, shown: str, kind: str = "активность", activity_type: str | None = "slide",
        required: int = 0, attestation: int = 0) -> dict:
    return {"course_id": 5, "ts": "2023-11-30T00:00:00", "type": kind, "task_id": task_id,
            "activity_id": activity_id, "activity_type": activity_type, "is_attestation": attestation,
            "required": required, "date_shown": shown, "module": 2}


SCHEDULE = CourseSchedule.from_records([
    row(100, 10, "2023-12-04T10:00:00", kind="занятие", activity_type=None),
    row(101, 10, "2023-12-04T10:00:00", required=1),
    row(102, 10, "2023-12-04T10:00:00", activity_type="exercise", required=1),
    row(200, 20, "2023-12-11T10:00:00", kind="занятие", activity_type=None),
    row(201, 20, "2023-12-11T10:00:00", activity_type="CodeExercise"),
    row(202, 20, "2023-12-12T10:00:00", activity_type="exercise", required=1),
    row(300, 30, "2023-12-18T10:00:00", kind="занятие", activity_type=None),
    row(301, 30, "2023-12-18T10:00:00", activity_type="exercise", required=1, attestation=1),
])
AS_OF = parse_ts("2023-12-19T10:00:00")


def login(ts: str) -> tuple[str, dict]:
    return "authorization", {"user_id": USER, "ts": ts}


def view(ts: str, page_type: str, page_id: int) -> tuple[str, dict]:
    return "page_view", {"user_id": USER, "ts": ts, "page_type": page_type, "page_id": page_id}


def attempt(ts: str, activity_id: int, result: int | None, success: int) -> tuple[str, dict]:
    return "exercise_result", {"user_id": USER, "ts": ts, "activity_id": activity_id, "result": result,
                               "success": success}


def webinar(ts: str, webinar_id: int, event: str, fmt: str | None) -> tuple[str, dict]:
    return "webinar_event", {"user_id": USER, "ts": ts, "webinar_id": webinar_id, "event": event, "conn_format": fmt}


EVENTS = [
    ("student", {"user_id": USER, "ts": "2023-12-01T00:00:00", "course_id": 5, "age": 17, "tg_bot": 1,
                 "payment": 1, "online": True, "flow_num": 2.0, "time_zone": "+05:00"}),
    ("student", {"user_id": USER, "ts": "2023-12-25T00:00:00", "course_id": 5, "age": 18, "tg_bot": 2,
                 "payment": 0, "online": False, "flow_num": 3.0, "time_zone": "+03:00"}),
    login("2023-12-04T09:00:00"), login("2023-12-04T18:00:00"), login("2023-12-06T12:00:00"),
    login("2023-12-11T08:00:00"), login("2023-12-18T20:00:00"), login("2023-12-20T08:00:00"),
    view("2023-12-04T11:00:00", "занятие", 10), view("2023-12-05T09:00:00", "занятие", 10),
    view("2023-12-04T12:00:00", "активность", 101), view("2023-12-05T10:00:00", "активность", 102),
    view("2023-12-10T10:00:00", "активность", 201), view("2023-12-06T10:00:00", "активность", 999),
    view("2023-12-20T10:00:00", "активность", 301),
    attempt("2023-12-05T11:00:00", 102, 40, 0), attempt("2023-12-05T12:00:00", 102, 90, 1),
    attempt("2023-12-12T10:00:00", 201, None, 0), attempt("2023-12-12T11:00:00", 201, 30, 0),
    attempt("2023-12-19T09:00:00", 202, 100, 1), attempt("2023-12-06T10:00:00", 555, 70, 1),
    attempt("2023-12-20T10:00:00", 301, 100, 1),
    webinar("2023-12-07T18:00:00", 7, "Подключение", "онлайн"),
    webinar("2023-12-07T18:05:00", 7, "Подключение", "онлайн"),
    webinar("2023-12-07T19:30:00", 7, "Отключение", "онлайн"),
    webinar("2023-12-14T18:00:00", 8, "Подключение", "офлайн"),
    webinar("2023-12-14T18:45:00", 8, "Отключение", "офлайн"),
    webinar("2023-12-14T19:00:00", 8, "Подключение", None),
    webinar("2023-12-20T19:00:00", 8, "Отключение", None),
]

# Worked out by hand in the comments; see features.engagement.DESCRIPTIONS for the rules.
# Due dates: task 10 is due when task 20 opens (12-11 10:00), task 20 when task 30 opens
# (12-18 10:00); task 30 is the last, due a median task gap (7 days) after it opens: 12-25 10:00.
# The delay, view-count and time-zone values changed with the seed definitions (delays from
# the due date with accrual, lesson-only view_delay_sum, views counted as views).
EXPECTED = {
    "age": 17, "tg_bot": 1, "payment": 1, "online": 1, "flow_num": 2,  # the 12-25 version is after as_of
    "time_zone": 5,  # '+05:00' of the version in force
    "m2_delay": 0,  # attestation 301 is due 12-25 10:00: not passed by as_of, not due yet
    "sum_auth": 5,  # the 12-20 login is after as_of
    "sum_schedule_activities": 8, "sum_required_activity": 4, "sum_attestation_activity": 1,
    # viewed rows 100 (+1h), 101 (+2h), 102 (+1d), 201 (-1d: viewed before shown); page 999 is unscheduled
    "view_delay_first": (1 / 24 + 2 / 24 + 1 - 1) / 4,
    "view_delay_sum": 1 / 24 + 8 + 1,  # lessons: 100 viewed after 1h; 200 and 300 unviewed, open 8 and 1 days
    "sum_activity_viewed": 5,  # lesson 10 twice, 101, 102, 201 once each
    "sum_required_activity_viewed": 2, "sum_attestation_activity_viewed": 0,  # 101, 102
    "rows_viewed": 4,  # 100, 101, 102, 201
    "w_view_hours": 1.5 + 0.75,  # 18:00-19:30 (the 18:05 connect is inside), 18:00-18:45; 19:00 still open
    "sum_exercise": 3,  # 102, 202, 555 (unscheduled); 301 passes after as_of
    "sum_required_exercises": 2, "sum_attestation_exercises": 0,
    # first attempts vs due: 102 12-05 11:00 vs 12-11 10:00 (-143h), 201 12-12 10:00 vs 12-18 10:00 (-144h),
    # 202 12-19 09:00 vs 12-18 10:00 (+23h); every due exercise was attempted, so nothing accrues
    "exercise_delay_first": (-143 - 144 + 23) / 24 / 3,
    "exercise_delay_sum": (-143 - 144 + 23) / 24,
    # first passes vs due: 102 -142h, 202 +23h; 201 is due and not passed: as_of - due = +24h
    "result_delay_mean": (-142 + 24 + 23) / 24 / 3, "result_delay_sum": (-142 + 24 + 23) / 24,
    "sum_exercise_attempts_mean": (2 + 2 + 1 + 1) / 4,
    "mean_required_result": (90 + 100) / 2, "mean_non_req_result": 30, "mean_attestation_result": 0,
    "sum_result": 90 + 30 + 100 + 70, "mean_result": 290 / 4,
    "conn": 4, "online_rate": 2 / 4,
    "progress": 50,  # exercises 102, 201, 202, 301: 102 and 202 passed
    "days_inactive": 1 / 24,  # last: the 12-19 09:00 attempt
    # login days 12-04, 12-06, 12-11, 12-18: gaps 2, 5, 7, and the gap still open on as_of's day (12-19): 1
    # (the open gap counts since the seed definitions: a student who stops coming must not look regular)
    "login_gap_mean_days": 15 / 4,
    "login_gap_std_days": math.sqrt(((2 - 3.75) ** 2 + (5 - 3.75) ** 2 + (7 - 3.75) ** 2 + (1 - 3.75) ** 2) / 4),
    "active_days_last_7": 3,  # 12-14, 12-18, 12-19
    "active_days_last_14": 8,  # + 12-06, 12-07, 12-10, 12-11, 12-12
    "activities_done_share": 4 / 8,  # 100, 101 viewed; 102, 202 passed (201 viewed but is an exercise)
    "required_done_share": 3 / 4,  # 101 viewed, 102 and 202 passed; 301 not
    "optional_done_share": 1 / 4,  # optional rows 100, 200, 201, 300: 100 done
    "success_index": 3 / 6,  # attempts 102 x2, 201 x2, 202, 555: successes 102, 202, 555
    "mean_success_score": (90 + 100 + 70) / 3,
    "mean_attempt_score": (40 + 90 + 0 + 30 + 100 + 70) / 6,  # the skip counts 0
    "activities_done_per_week": 4 / (15 / 7),  # 4 rows done in 15 days
    "early_result": (40 + 70 + 0) / 3,  # first attempts of 102, 555, 201 (a skip is 0)
    # the course's first exercises 102, 201, 202: passed after 26h, not passed (open 8 days), passed after 167h
    "early_pass_days": (26 / 24 + 8 + 167 / 24) / 3,
    "missed_deadlines": 2,  # due by as_of: 102 (on time), 201 (never passed), 202 (passed after 12-18 10:00)
    "deadline_delay_mean": (-142 / 24 + 23 / 24) / 2,  # 102 vs 12-11 10:00, 202 vs 12-18 10:00
    "days_since_course_start": 15, "course_week": 3,
    "exercise_pace": 2 / 3,  # due by as_of: 102 and 202 passed by then, 201 not
}
SCHEDULE_FREE = {"age", "tg_bot", "payment", "online", "flow_num", "time_zone", "sum_auth", "w_view_hours",
                 "sum_exercise",
                 "sum_exercise_attempts_mean", "sum_result", "conn", "online_rate", "mean_result", "days_inactive",
                 "login_gap_mean_days", "login_gap_std_days", "active_days_last_7", "active_days_last_14",
                 "early_result", "success_index", "mean_success_score", "mean_attempt_score"}


def test_every_feature_is_described_and_expected() -> None:
    assert set(EXPECTED) == set(FEATURE_NAMES) == set(DESCRIPTIONS)


@pytest.mark.parametrize("name", FEATURE_NAMES)
def test_feature_on_hand_computed_example(name: str) -> None:
    features = compute(fold(EVENTS)[USER], SCHEDULE, AS_OF)
    assert features[name] == pytest.approx(EXPECTED[name], abs=1e-9)


def test_without_schedule_only_schedule_free_features_remain() -> None:
    features = compute(fold(EVENTS)[USER], None, AS_OF)
    for name in FEATURE_NAMES:
        want = EXPECTED[name] if name in SCHEDULE_FREE else 0.0
        assert features[name] == pytest.approx(want, abs=1e-9), name


def test_empty_state_is_all_zero_but_the_course_clock() -> None:
    features = compute(new_state(), SCHEDULE, AS_OF)
    assert all(isinstance(v, float) and not math.isnan(v) for v in features.values())
    nonzero = {k: v for k, v in features.items() if v}
    # an idle student is never punctual: the due exercises 102 (8 days late), 201 and 202 (1 day) accrue
    # delay, and so do the unviewed lessons 100, 200, 300 (open 15, 8 and 1 days); view_delay_sum
    # counts lessons only now, not every opened row
    assert nonzero == {"sum_schedule_activities": 8, "sum_required_activity": 4, "sum_attestation_activity": 1,
                       "view_delay_sum": 15 + 8 + 1, "missed_deadlines": 3,  # 102, 201, 202 are due
                       "exercise_delay_first": 10 / 3, "exercise_delay_sum": 10,
                       "result_delay_mean": 10 / 3, "result_delay_sum": 10,
                       "early_pass_days": (15 + 8 + 7) / 3,  # 102, 201, 202 open and not passed
                       "days_inactive": 15, "days_since_course_start": 15, "course_week": 3}
    assert compute(new_state(), None, AS_OF) == dict.fromkeys(FEATURE_NAMES, 0.0)


def test_before_the_course_nothing_is_opened() -> None:
    features = compute(fold(EVENTS)[USER], SCHEDULE, parse_ts("2023-12-01T00:00:00"))
    assert features["sum_schedule_activities"] == 0 and features["course_week"] == 1
    assert features["days_since_course_start"] == 0 and features["age"] == 17


def test_exercise_pace_counts_work_passed_early_and_waits_for_a_due_date() -> None:
    state = fold(EVENTS)[USER]
    # 301 (due 12-25) was passed 12-20 10:00: early work counts; 201 is due and not passed
    assert compute(state, SCHEDULE, parse_ts("2023-12-20T11:00:00"))["exercise_pace"] == pytest.approx(3 / 4)
    # before 102's due date (12-11 10:00) nothing is due: no pace yet, though 102 is passed
    early = compute(state, SCHEDULE, parse_ts("2023-12-06T00:00:00"))
    assert early["progress"] > 0 and early["exercise_pace"] == 0.0 and early["missed_deadlines"] == 0.0


def test_unknown_activity_types_fall_back_to_all_activity_rows_for_progress() -> None:
    schedule = CourseSchedule.from_records([row(1, 1, "2023-12-04T10:00:00", activity_type="mystery"),
                                            row(2, 1, "2023-12-04T10:00:00", activity_type=None)])
    state = fold([attempt("2023-12-05T10:00:00", 1, 80, 1)])[USER]
    assert compute(state, schedule, AS_OF)["progress"] == 50


def test_an_attempt_graded_again_counts_as_passed_when_its_passing_grade_came() -> None:
    """A Moodle grade item graded again: failed on 12-05, passed on 12-13, after
    102's due date (12-11 10:00). One attempt, handed in on 12-05, passed two days late."""
    named = {"attempt_id": "moodle:gradeitem:7", "module": 2}
    state = fold([("exercise_result", {**attempt("2023-12-05T10:00:00", 102, 40, 0)[1], **named}),
                  ("exercise_result", {**attempt("2023-12-13T10:00:00", 102, 80, 1)[1], **named})])[USER]
    features = compute(state, SCHEDULE, parse_ts("2023-12-14T10:00:00"))
    assert features["deadline_delay_mean"] == pytest.approx(2.0)
    assert features["exercise_delay_first"] == pytest.approx(-6.0) and features["sum_exercise_attempts_mean"] == 1.0
