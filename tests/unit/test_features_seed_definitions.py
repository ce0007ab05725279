"""The seed's definitions, one property each: delays from the due date that keep growing for work
not handed in (the seed's sample rows: +7 days per due exercise per week), m2_delay without the
outcome, lesson-only view_delay_sum that can go negative, views counted as views, the numeric
time zone, old state documents, and the new hypothesis measures."""
from __future__ import annotations

from datetime import datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features import DAY, WEEK, CourseSchedule, compute, fold, new_state, parse_ts, profile, task_due_times
from features.engagement import time_zone_hours

USER = 1
START = datetime(2023, 12, 4, 11, 0)


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def weekly_course(weeks: int = 5, attestation_week: int | None = 4) -> CourseSchedule:
    """One lesson a week, each with a slide and one exercise; the last lesson's exercise is the attestation."""
    rows = []
    for week in range(weeks):
        shown, task = iso(START + timedelta(weeks=week)), 10 + week
        rows.append({"course_id": 7, "ts": "2023-11-01T00:00:00", "type": "занятие", "task_id": task,
                     "activity_id": 100 * task, "activity_type": None, "is_attestation": 0, "required": 0,
                     "date_shown": shown})
        rows.append({"course_id": 7, "ts": "2023-11-01T00:00:00", "type": "активность", "task_id": task,
                     "activity_id": 100 * task + 1, "activity_type": "slide", "is_attestation": 0, "required": 0,
                     "date_shown": shown})
        rows.append({"course_id": 7, "ts": "2023-11-01T00:00:00", "type": "активность", "task_id": task,
                     "activity_id": 100 * task + 2, "activity_type": "exercise",
                     "is_attestation": int(week == attestation_week), "required": 1, "date_shown": shown})
    return CourseSchedule.from_records(rows)


COURSE = weekly_course()
EXERCISES = [100 * (10 + w) + 2 for w in range(5)]


def at(days: float) -> float:
    return parse_ts(iso(START)) + days * DAY


def attempt(ts: float, activity_id: int, result: int | None, success: int) -> tuple[str, dict]:
    return "exercise_result", {"user_id": USER, "ts": iso(datetime(1970, 1, 1) + timedelta(seconds=ts)),
                               "activity_id": activity_id, "result": result, "success": success}


def view(ts: float, page_type: str, page_id: int) -> tuple[str, dict]:
    return "page_view", {"user_id": USER, "ts": iso(datetime(1970, 1, 1) + timedelta(seconds=ts)),
                         "page_type": page_type, "page_id": page_id}


def test_due_dates_next_task_and_the_last_task_a_median_gap_later() -> None:
    due = task_due_times(COURSE)
    assert [due[10 + w] - at(7 * w) for w in range(5)] == [WEEK] * 5  # the last task: a week, like the others
    days = [0, 0, 0, 2, 2, 2, 5, 5, 5, 9, 9, 9, 10, 10, 10]  # tasks open on days 0, 2, 5, 9, 10
    irregular = CourseSchedule.from_records([{**r, "date_shown": iso(START + timedelta(days=d))}
                                             for r, d in zip(_records(COURSE), days)])
    assert task_due_times(irregular)[14] - at(10) == 2.5 * DAY  # the median of the gaps 2, 3, 4, 1


def _records(schedule: CourseSchedule) -> list[dict]:
    return [{"course_id": r.course_id, "ts": "2023-11-01T00:00:00", "type": r.type, "task_id": r.task_id,
             "activity_id": r.activity_id, "activity_type": r.activity_type, "is_attestation": int(r.is_attestation),
             "required": int(r.required), "date_shown": iso(datetime(1970, 1, 1) + timedelta(seconds=r.date_shown))}
            for r in sorted(schedule.activities.values(), key=lambda r: (r.date_shown, r.activity_id))]


def test_an_idle_student_accrues_seven_days_per_due_exercise_per_week() -> None:
    """The seed's sample: a student who passed nothing has exercise delays rising ~7 days a week
    (student 23052: exercise_delay_first 15.83 -> 22.83, exercise_delay_sum 110.79 -> 159.79 = 7 x 7)."""
    idle = new_state()
    weekly = [compute(idle, COURSE, at(7 * week + 3)) for week in range(1, 8)]
    for week, features in enumerate(weekly, start=1):
        due = min(week, 5)  # exercise w is due when lesson w+1 opens; the last one a week after it opened
        assert features["missed_deadlines"] == due
        assert features["exercise_delay_sum"] == pytest.approx(sum(7 * (week - w) - 4 for w in range(due)))
        assert features["result_delay_sum"] == features["exercise_delay_sum"]
    late = [f["exercise_delay_first"] for f in weekly[4:]]  # every exercise due: the mean grows 7 a week
    assert [b - a for a, b in pairwise(late)] == pytest.approx([7.0, 7.0])
    assert all(f["exercise_delay_first"] > 0 for f in weekly)  # never punctual


def test_submitted_work_stops_accruing_and_counts_its_own_deviation() -> None:
    state = fold([attempt(at(1), EXERCISES[0], 30, 0), attempt(at(9), EXERCISES[0], 80, 1),
                  attempt(at(8), EXERCISES[1], 100, 1)])[USER]
    f = compute(state, COURSE, at(16))  # exercises 0 and 1 due (days 7 and 14); 2 opens on day 14
    assert f["exercise_delay_sum"] == pytest.approx((1 - 7) + (8 - 14))  # first attempts, early
    assert f["result_delay_sum"] == pytest.approx((9 - 7) + (8 - 14))  # first passes
    assert f["exercise_delay_first"] == pytest.approx(-6) and f["result_delay_mean"] == pytest.approx(-2)
    failed = fold([attempt(at(1), EXERCISES[0], 30, 0)])[USER]
    g = compute(failed, COURSE, at(10))
    assert g["exercise_delay_sum"] == pytest.approx(1 - 7)  # submitted (early) ...
    assert g["result_delay_sum"] == pytest.approx(10 - 7)  # ... but not passed: the result delay accrues


def test_m2_delay_is_the_attestation_delay_without_the_outcome() -> None:
    attestation_due = at(35)  # the attestation (week 4) opens on day 28, due a task length later
    idle = new_state()
    assert compute(idle, COURSE, at(20))["m2_delay"] == 0  # not due yet: not late
    assert compute(idle, COURSE, at(40))["m2_delay"] == pytest.approx((at(40) - attestation_due) / DAY)
    early = fold([attempt(at(30), EXERCISES[4], 90, 1)])[USER]
    assert [compute(early, COURSE, at(d))["m2_delay"] for d in (29, 31, 60, 200)] == pytest.approx([0, -5, -5, -5])
    assert compute(early, weekly_course(attestation_week=None), at(60))["m2_delay"] == 0  # no attestation


def test_view_delay_sum_counts_lessons_only_and_can_go_negative() -> None:
    # lesson 10 viewed 2 days before it opened (an earlier flow's link), lesson 11 never
    state = fold([view(at(-2), "занятие", 10), view(at(1), "активность", 1001)])[USER]
    f = compute(state, COURSE, at(3))
    assert f["view_delay_sum"] == pytest.approx(-2)  # lesson 11 is not open yet; the slide does not count
    assert compute(state, COURSE, at(10))["view_delay_sum"] == pytest.approx(-2 + 3)  # lesson 11 open 3 days


def test_views_are_counted_as_views_and_distinct_rows_separately() -> None:
    state = fold([view(at(1), "занятие", 10), view(at(1.5), "занятие", 10), view(at(2), "активность", 1002),
                  view(at(3), "активность", 1002), view(at(4), "активность", 1002), view(at(2), "активность", 5)])[USER]
    f = compute(state, COURSE, at(3.5))
    assert f["sum_activity_viewed"] == 4 and f["rows_viewed"] == 2  # page 5 is not in the schedule
    assert f["sum_required_activity_viewed"] == 2  # exercise 1002 is required


@pytest.mark.parametrize(("text", "hours"), [
    ("+03:00", 3.0), ("-02:30", -2.5), ("+3", 3.0), ("+0530", 5.5), ("UTC+7", 7.0), ("GMT-05:00", -5.0),
    ("UTC", 0.0), ("", None), (None, None), ("Moscow", None), ("+25:00", None),
])
def test_time_zone_as_hours(text: str | None, hours: float | None) -> None:
    assert time_zone_hours(text) == hours


def test_time_zone_feature_and_old_state_documents() -> None:
    record = {"user_id": USER, "ts": "2023-12-01T00:00:00", "course_id": 7, "age": 20, "time_zone": "+07:00",
              "unti_id": 555}
    state = fold([("student", record)])[USER]
    assert compute(state, COURSE, at(1))["time_zone"] == 7.0
    assert profile(state, at(1))["unti_id"] == 555
    old = new_state()  # a document stored before time_zone and unti_id were kept: 6-item versions
    old["profiles"][str(int(parse_ts("2023-12-01T00:00:00")))] = [7, 20, 1, 0, 1, 1.0]
    known = profile(old, at(1))
    assert known is not None and known["time_zone"] is None and known["unti_id"] is None and known["age"] == 20
    assert compute(old, COURSE, at(1))["time_zone"] == 0.0


def test_hypothesis_measures() -> None:
    state = fold([attempt(at(0.5), EXERCISES[0], 40, 0), attempt(at(1), EXERCISES[0], 80, 1),
                  attempt(at(2), 999, None, 0), view(at(1), "занятие", 10), view(at(1), "активность", 1001),
                  attempt(at(8), EXERCISES[1], 100, 1)])[USER]
    f = compute(state, COURSE, at(14))  # opened: lessons 10, 11 (+ slide, exercise each); 12 opens on day 14
    assert f["success_index"] == pytest.approx(2 / 4)
    assert f["mean_success_score"] == pytest.approx(90) and f["mean_attempt_score"] == pytest.approx(220 / 4)
    assert f["activities_done_share"] == pytest.approx(4 / 9)  # 10, 1001, 1002, 1102 of 9 opened rows
    assert f["required_done_share"] == pytest.approx(2 / 3)  # exercises 1002, 1102 of 1002, 1102, 1202
    assert f["optional_done_share"] == pytest.approx(2 / 6)
    assert f["activities_done_per_week"] == pytest.approx(4 / 2)
    assert f["early_pass_days"] == pytest.approx((1 + 1 + 0) / 3)  # 1002 after 1 day, 1102 after 1, 1202 open now


@pytest.mark.heavy
@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 40), st.sampled_from(EXERCISES), st.booleans()), max_size=12),
       st.floats(0, 60), st.floats(0, 20))
def test_delays_never_reward_waiting(work: list[tuple[float, int, bool]], as_of: float, later: float) -> None:
    """Whatever was done by as_of, waiting longer without doing anything never lowers a delay:
    work not handed in only accrues."""
    events = [attempt(at(day), activity, 100 if ok else 10, int(ok)) for day, activity, ok in work if day <= as_of]
    state = fold(events)[USER] if events else new_state()
    now, then = compute(state, COURSE, at(as_of)), compute(state, COURSE, at(as_of + later))
    for name in ("exercise_delay_sum", "result_delay_sum", "view_delay_sum", "m2_delay", "missed_deadlines"):
        assert then[name] >= now[name] - 1e-9, name
