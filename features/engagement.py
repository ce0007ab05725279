"""Engagement features of one student as of a moment, from a folded state and the course schedule.

Only facts with ts <= as_of are read, so a snapshot is exact however late it is taken.
A "row" is a schedule row (activity or lesson page); it is *opened* when date_shown <= as_of,
*viewed* when its page (lesson: task_id, activity: activity_id) has a view by as_of.
An activity's *result* is its best result over attempts by as_of, a skip ('Пропуск')
counting 0; it is *passed* at its first attempt with success=1. *Course exercises* are
CourseSchedule.exercises (graded activity rows); a task is *due* when the next task opens
(CourseSchedule.due). Delays are in days, negative when early. Means over nothing are 0.
Float sums use math.fsum, so a value does not depend on the order facts are iterated in.
"""
from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from itertools import pairwise
from math import fsum, sqrt
from operator import itemgetter
from typing import NamedTuple

from features.eventtime import DAY
from features.schedule import Activity, CourseSchedule, Opened
from features.state import SKIPPED, FeatureState, profile

EARLY_N = 3
_TS = itemgetter(0)

DESCRIPTIONS: dict[str, str] = {
    # profile: newest student version with ts <= as_of; None -> 0
    "age": "Age in years from the profile.",
    "tg_bot": "Telegram bot: 0 not connected, 1 connected, 2 stopped.",
    "payment": "1 if the student paid.",
    "online": "1 if the student carries the #онлайн tag.",
    "flow_num": "Stream (flow) number.",
    # the seed's dataset columns (20241024_dataset_timeseries_with_metrics)
    "sum_auth": "Logins by as_of.",
    "sum_schedule_activities": "Rows opened by as_of.",
    "sum_required_activity": "Required rows opened by as_of.",
    "sum_attestation_activity": "Attestation rows opened by as_of.",
    "view_delay_first": "Mean over viewed rows of (first view - date_shown) days.",
    "view_delay_sum": "Sum over opened, not yet viewed rows of (as_of - date_shown) days.",
    "sum_activity_viewed": "Distinct rows viewed by as_of (a lesson view covers its lesson rows).",
    "sum_required_activity_viewed": "Distinct required rows viewed by as_of.",
    "sum_attestation_activity_viewed": "Distinct attestation rows viewed by as_of.",
    "w_view_hours": "Webinar hours: per webinar, each connect to the next disconnect, both by as_of; "
    "extra connects while connected are ignored, a session still open at as_of is not counted.",
    "sum_exercise": "Distinct activities passed by as_of (scheduled or not).",
    "sum_required_exercises": "Distinct required scheduled activities passed by as_of.",
    "sum_attestation_exercises": "Distinct attestation scheduled activities passed by as_of.",
    "exercise_delay_first": "Mean over attempted scheduled activities of (first attempt - date_shown) days.",
    "exercise_delay_sum": "Sum over attempted scheduled activities of (first attempt - date_shown) days.",
    "result_delay_mean": "Mean over passed scheduled activities of (first pass - date_shown) days.",
    "result_delay_sum": "Sum over passed scheduled activities of (first pass - date_shown) days.",
    "sum_exercise_attempts_mean": "Mean attempts (skips included) per attempted activity.",
    "mean_required_result": "Mean result of attempted required scheduled activities.",
    "mean_non_req_result": "Mean result of attempted non-required scheduled activities.",
    "mean_attestation_result": "Mean result of attempted attestation scheduled activities.",
    "sum_result": "Sum of results of attempted activities (scheduled or not).",
    "conn": "Webinar connections by as_of.",
    "online_rate": "Share of those connections made online (unknown format counts as not online).",
    "mean_result": "sum_result / attempted activities.",
    "progress": "100 * passed exercises of the course / all exercises of the course (the whole "
    "schedule, not only opened), on the scale of the m2_progress label.",
    # the seed's hypotheses
    "days_inactive": "Days since the latest login, view, attempt or webinar event by as_of; with none, "
    "days since the course start (0 without a schedule).",
    "login_gap_mean_days": "Mean gap in days between consecutive distinct login days by as_of.",
    "login_gap_std_days": "Population std of those gaps.",
    "active_days_last_7": "Calendar days among the 7 ending on as_of's day with any activity by as_of.",
    "active_days_last_14": "Same over the 14 days ending on as_of's day.",
    "required_done_share": "Share of opened required rows done by as_of: an exercise passed, "
    "any other row viewed.",
    "early_result": f"Mean first-attempt result of the first {EARLY_N} activities attempted "
    "(by first attempt time).",
    "missed_deadlines": "Course exercises whose task's next task opened by as_of and that were not "
    "passed by that opening.",
    "deadline_delay_mean": "Mean over passed exercises whose task has a next task of "
    "(first pass - next task opening) days.",
    "days_since_course_start": "Days from the first date_shown to as_of, at least 0.",
    "course_week": "1-based course week of as_of.",
}
FEATURE_NAMES: tuple[str, ...] = tuple(DESCRIPTIONS)


class Attempts(NamedTuple):
    """One activity's attempts by as_of."""

    n_attempts: int
    best: int
    first_ts: int
    first_result: int
    pass_ts: int | None


def _mean(values: Sequence[float]) -> float:
    return fsum(values) / len(values) if values else 0.0


def compute(state: FeatureState, schedule: CourseSchedule | None, as_of: float) -> dict[str, float]:
    """Every FEATURE_NAMES value as a float (never NaN); schedule-relative ones are 0 without a schedule."""
    attempts = _attempts(state, as_of)
    first_views = {key: views[0] for key, views in state["views"].items() if views[0] <= as_of}
    out = dict.fromkeys(FEATURE_NAMES, 0.0)
    out.update(_profile(state, as_of))
    out.update(_logins(state["logins"][: bisect_right(state["logins"], as_of)]))
    out.update(_webinars(state, as_of))
    out.update(_exercises(attempts))
    out.update(_rhythm(state, schedule, as_of))
    if schedule is not None:
        opened = schedule.opened_counts(as_of)
        out.update(
            sum_schedule_activities=opened.total,
            sum_required_activity=opened.required,
            sum_attestation_activity=opened.attestation,
            days_since_course_start=max(0.0, (as_of - schedule.start) / DAY),
            course_week=schedule.week_of(as_of),
        )
        viewed = [(first, row) for key, first in first_views.items() for row in schedule.pages.get(key, ())]
        out.update(_views(viewed, as_of, opened))
        out.update(_scheduled_exercises(attempts, schedule, as_of))
        out["required_done_share"] = _required_done_share(viewed, attempts, schedule, as_of, opened.required)
    return {name: float(out[name]) for name in FEATURE_NAMES}


def _profile(state: FeatureState, as_of: float) -> dict[str, float]:
    known = profile(state, as_of) or {}
    return {name: float(known.get(name) or 0) for name in ("age", "tg_bot", "payment", "online", "flow_num")}


def _attempts(state: FeatureState, as_of: float) -> dict[int, Attempts]:
    out: dict[int, Attempts] = {}
    for key, facts in state["attempts"].items():
        if facts[0][0] > as_of:
            continue
        done = facts if facts[-1][0] <= as_of else facts[: bisect_right(facts, as_of, key=_TS)]
        best, passed = SKIPPED, None
        for ts, result, success in done:
            best = max(best, result)
            if success and passed is None:
                passed = ts
        out[int(key)] = Attempts(len(done), max(best, 0), done[0][0], max(done[0][1], 0), passed)
    return out


def _logins(logins: list[int]) -> dict[str, float]:
    days = sorted({ts // int(DAY) for ts in logins})
    gaps = [b - a for a, b in pairwise(days)]
    mean = sum(gaps) / len(gaps) if gaps else 0.0
    std = sqrt(sum((g - mean) ** 2 for g in gaps) / len(gaps)) if gaps else 0.0
    return {"sum_auth": len(logins), "login_gap_mean_days": mean, "login_gap_std_days": std}


def _webinars(state: FeatureState, as_of: float) -> dict[str, float]:
    connections = online = seconds = 0
    for facts in state["webinars"].values():
        since: int | None = None
        for ts, connect, fmt in facts[: bisect_right(facts, as_of, key=_TS)]:
            if connect:
                connections += 1
                online += fmt == 1
                since = ts if since is None else since
            elif since is not None:
                seconds += ts - since
                since = None
    return {"conn": connections, "online_rate": online / connections if connections else 0.0,
            "w_view_hours": seconds / 3600}


def _exercises(attempts: dict[int, Attempts]) -> dict[str, float]:
    tried = attempts.values()
    total = sum(a.best for a in tried)
    early = sorted(attempts.items(), key=lambda item: (item[1].first_ts, item[0]))[:EARLY_N]
    return {
        "sum_exercise": sum(a.pass_ts is not None for a in tried),
        "sum_exercise_attempts_mean": sum(a.n_attempts for a in tried) / len(tried) if tried else 0.0,
        "sum_result": total,
        "mean_result": total / len(tried) if tried else 0.0,
        "early_result": sum(a.first_result for _, a in early) / len(early) if early else 0.0,
    }


def _activity_times(state: FeatureState, as_of: float) -> list[int]:
    """Times of every login, view, attempt and webinar event by as_of."""
    times = [ts for ts in state["logins"] if ts <= as_of]
    times += [ts for views in state["views"].values() for ts in views if ts <= as_of]
    times += [f[0] for table in (state["attempts"], state["webinars"]) for facts in table.values()
              for f in facts if f[0] <= as_of]
    return times


def _rhythm(state: FeatureState, schedule: CourseSchedule | None, as_of: float) -> dict[str, float]:
    times = _activity_times(state, as_of)
    today = int(as_of // DAY)
    days = {ts // int(DAY) for ts in times if ts >= (today - 13) * DAY}
    if times:
        inactive = (as_of - max(times)) / DAY
    else:
        inactive = max(0.0, (as_of - schedule.start) / DAY) if schedule is not None else 0.0
    return {
        "days_inactive": inactive,
        "active_days_last_7": sum(d > today - 7 for d in days),
        "active_days_last_14": len(days),
    }


def _views(viewed: list[tuple[int, Activity]], as_of: float, opened: Opened) -> dict[str, float]:
    """`viewed`: (first view, row) for every row viewed by as_of. The unviewed delay is all opened
    rows' days minus the viewed ones' (O(viewed)); exactly 0 when nothing opened is unviewed."""
    delays = [(first - row.date_shown) / DAY for first, row in viewed]
    seen_open_days = [(as_of - row.date_shown) / DAY for _, row in viewed if row.date_shown <= as_of]
    unviewed = opened.total > len(seen_open_days)
    return {
        "sum_activity_viewed": len(delays),
        "sum_required_activity_viewed": sum(row.required for _, row in viewed),
        "sum_attestation_activity_viewed": sum(row.is_attestation for _, row in viewed),
        "view_delay_first": _mean(delays),
        "view_delay_sum": max(0.0, opened.days_open - fsum(seen_open_days)) if unviewed else 0.0,
    }


def _scheduled_exercises(attempts: dict[int, Attempts], schedule: CourseSchedule, as_of: float) -> dict[str, float]:
    first_delays: list[float] = []
    pass_delays: list[float] = []
    deadline_delays: list[float] = []
    results: dict[str, list[int]] = {"required": [], "non_req": [], "attestation": []}
    passed_required = passed_attestation = passed_exercises = on_time = 0
    for activity_id, tried in attempts.items():
        row = schedule.activities.get(activity_id)
        if row is None:
            continue
        first_delays.append((tried.first_ts - row.date_shown) / DAY)
        results["required" if row.required else "non_req"].append(tried.best)
        if row.is_attestation:
            results["attestation"].append(tried.best)
        if tried.pass_ts is None:
            continue
        pass_delays.append((tried.pass_ts - row.date_shown) / DAY)
        passed_required += row.required
        passed_attestation += row.is_attestation
        if activity_id in schedule.exercises:
            passed_exercises += 1
            due = schedule.due.get(row.task_id)
            if due is not None:
                deadline_delays.append((tried.pass_ts - due) / DAY)
                on_time += due <= as_of and tried.pass_ts <= due
    return {
        "sum_required_exercises": passed_required,
        "sum_attestation_exercises": passed_attestation,
        "exercise_delay_first": _mean(first_delays),
        "exercise_delay_sum": fsum(first_delays),
        "result_delay_mean": _mean(pass_delays),
        "result_delay_sum": fsum(pass_delays),
        "mean_required_result": _mean(results["required"]),
        "mean_non_req_result": _mean(results["non_req"]),
        "mean_attestation_result": _mean(results["attestation"]),
        "progress": 100.0 * passed_exercises / len(schedule.exercises) if schedule.exercises else 0.0,
        "missed_deadlines": schedule.exercises_due(as_of) - on_time,
        "deadline_delay_mean": _mean(deadline_delays),
    }


def _required_done_share(
    viewed: list[tuple[int, Activity]], attempts: dict[int, Attempts], schedule: CourseSchedule, as_of: float,
    opened: int,
) -> float:
    if not opened:
        return 0.0
    done = {
        row.activity_id
        for _, row in viewed
        if row.required and row.date_shown <= as_of and row.activity_id not in schedule.exercises
    }
    done.update(
        activity_id
        for activity_id, tried in attempts.items()
        if tried.pass_ts is not None
        and activity_id in schedule.exercises
        and (row := schedule.activities[activity_id]).required
        and row.date_shown <= as_of
    )
    return len(done) / opened
