"""Engagement features of one student as of a moment, from a folded state and the course schedule.

Only facts with ts <= as_of are read, so a snapshot is exact however late it is taken.
A "row" is a schedule row (activity or lesson page); it is *opened* when date_shown <= as_of,
*viewed* when its page (lesson: task_id, activity: activity_id) has a view by as_of.
An activity's *result* is its best result over attempts by as_of, a skip ('Пропуск')
counting 0; it is *passed* at its first attempt with success=1. *Course exercises* are
CourseSchedule.exercises (graded activity rows). A row is *done* when it is an exercise that
was passed, or any other row that was viewed.

*Due dates* (the seed: "a task is due when the next task opens"): a row's due time is
CourseSchedule.due[task_id], the opening of the next task. The last task has no next task;
it is due one *typical task length* after it opens: the median gap between consecutive
task openings of the schedule (7 days for the seed's weekly lessons; 7 days when the
schedule has a single opening time). A row never falls due before it opens: due =
max(task due, date_shown). A row is *due by as_of* when its due time <= as_of.

*Deadline delays* (the seed's exercise_delay_* / result_delay_* / m2_delay) are measured
from the due date, in days, negative when early, and work not handed in keeps accruing:
a due exercise without the submission in question counts (as_of - due). An exercise not
yet due and not submitted counts nothing (it is not late yet). So a student who does
nothing is never punctual: each due exercise adds 7 days of delay per week, the growth of
the seed's sample rows (student 23052 passes nothing and exercise_delay_first rises
15.83 -> 22.83 from week 9 to 10 while exercise_delay_sum / exercise_delay_first stays 7.0
exercises: +7 days per exercise per week).

Readings of the seed where its one-line definitions are ambiguous, and the evidence:
- view_delay_sum ("суммарная задержка непросмотренных занятий"): the delay of LESSON viewing,
  summed over the lessons opened or viewed by as_of, an unviewed one accruing up to as_of and a
  viewed one counting (first view - date_shown). The sample rows show negative values that
  then stay put (student 23052: -15.48 in week 7, -24.89 from week 8 on, while its views stop
  at 111): only viewed lessons, some viewed before they opened, can give that; a sum over
  unviewed lessons alone could never be negative.
- sum_activity_viewed ("кол-во просмотров активностей"): views, not distinct rows; the seed's
  SQL joins every view to the schedule rows of its page (lessons by task_id, activities by
  activity_id), so a row viewed three times counts three. rows_viewed keeps the distinct count.
- m2_delay ("задержка в сдаче аттестации в днях на дату cur_date"): the seed's value is one
  constant per student (-58.458332 for many students, across all ten weeks, including one who
  passed nothing), i.e. a date difference read from the final outcome
  (M2_attestation_date), a label the model must not see. Here it is measured from the
  schedule's attestation exercises and the student's own attempts (see DESCRIPTIONS): fixed
  once the attestation is passed, like the seed's, and growing while it is overdue.
- time_zone ("временная зона юзера в цифровом формате"): '+03:00' -> 3.0 hours.

Delays are in days; means over nothing are 0 (the seed: "absent means 0"). Float sums use
math.fsum, so a value does not depend on the order facts are iterated in.
"""
from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from math import fsum, sqrt
from operator import itemgetter
from statistics import median
from typing import Any, NamedTuple
from weakref import WeakKeyDictionary

from features.compacted import Compacted
from features.eventtime import DAY, WEEK
from features.schedule import LESSON, Activity, CourseSchedule, Opened
from features.state import PENDING, SKIPPED, FeatureState, attempt_facts, names_attempts, profile

EARLY_N = 3
#: The last task's length when the schedule shows no gap between task openings.
DEFAULT_TASK_DAYS = 7.0
_TS = itemgetter(0)

DESCRIPTIONS: dict[str, str] = {
    # profile: newest student version with ts <= as_of; None -> 0
    "age": "Age in years from the profile.",
    "tg_bot": "Telegram bot: 0 not connected, 1 connected, 2 stopped.",
    "payment": "1 if the student paid.",
    "online": "1 if the student carries the #онлайн tag.",
    "flow_num": "Stream (flow) number.",
    "time_zone": "The profile's time zone as hours east of UTC ('+03:00' -> 3.0, '-02:30' -> -2.5; also "
    "'+3', '+0300', 'UTC+3'); unknown or unreadable -> 0, the seed's rule that no value is missing.",
    # the seed's dataset columns (20241024_dataset_timeseries_with_metrics)
    "m2_delay": "Attestation delay in days as of as_of, without the outcome: the attestation is the "
    "schedule's attestation exercises (is_attestation), due at the latest of their due dates, done when "
    "every one of them is passed (at the latest of their first passes). Done: done - due (negative = "
    "early, fixed from then on, like the seed's constant per-student value). Not done: max(0, as_of - "
    "due): 0 while not yet due, then growing a day per day. 0 without attestation exercises.",
    "sum_auth": "Logins by as_of.",
    "sum_schedule_activities": "Rows opened by as_of.",
    "sum_required_activity": "Required rows opened by as_of.",
    "sum_attestation_activity": "Attestation rows opened by as_of.",
    "view_delay_first": "Mean over viewed rows of (first view - date_shown) days.",
    "view_delay_sum": "Total viewing delay of the lessons ('занятие' rows), days: over the lessons opened or "
    "viewed by as_of, (first view - date_shown) for a viewed one (negative when viewed before it opened) "
    "and (as_of - date_shown) for an opened one not yet viewed, which keeps growing until it is viewed. "
    "Activity rows do not count.",
    "sum_activity_viewed": "Page views by as_of of the schedule's rows: every view counts (a row viewed "
    "3 times counts 3), each view once per row on its page, as the seed's view-to-schedule join counts.",
    "sum_required_activity_viewed": "The same views, of required rows only.",
    "sum_attestation_activity_viewed": "The same views, of attestation rows only.",
    "rows_viewed": "Distinct rows viewed by as_of (a lesson view covers its lesson rows): the "
    "distinct-rows count sum_activity_viewed was before it counted views.",
    "w_view_hours": "Webinar hours: per webinar, each connect to the next disconnect, both by as_of; "
    "extra connects while connected are ignored, a session still open at as_of is not counted.",
    "sum_exercise": "Distinct activities passed by as_of (scheduled or not).",
    "sum_required_exercises": "Distinct required scheduled activities passed by as_of.",
    "sum_attestation_exercises": "Distinct attestation scheduled activities passed by as_of.",
    "exercise_delay_first": "Mean deadline delay of the FIRST submission, days: over the scheduled "
    "activities attempted by as_of, (first attempt - due); over the course exercises due by as_of and "
    "never attempted, (as_of - due). Exercises neither attempted nor due count nothing.",
    "exercise_delay_sum": "The sum of the same terms.",
    "result_delay_mean": "Mean deadline delay of the SUCCESSFUL submission, days: over the scheduled "
    "activities passed by as_of, (first pass - due); over the course exercises due by as_of and not "
    "passed (attempted or not), (as_of - due).",
    "result_delay_sum": "The sum of the same terms.",
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
    "login_gap_mean_days": "Mean gap in days between consecutive distinct login days by as_of, the open gap "
    "from the last login day to as_of's day included when as_of is on a later day (so a student who "
    "stopped coming does not keep a regular-looking mean); 0 without a login.",
    "login_gap_std_days": "Population std of those gaps.",
    "active_days_last_7": "Calendar days among the 7 ending on as_of's day with any activity by as_of.",
    "active_days_last_14": "Same over the 14 days ending on as_of's day.",
    "activities_done_share": "Share of the rows opened by as_of that are done by as_of (an exercise "
    "passed, any other row viewed): hypothesis 1, % of activities done.",
    "required_done_share": "The same share over the opened required rows.",
    "optional_done_share": "The same share over the opened non-required rows (optional work).",
    "success_index": "Successful attempts / all attempts by as_of (skips are attempts), every activity.",
    "mean_success_score": "Mean result of the successful attempts by as_of (0 without one). The seed's SQL "
    "divides the sum of ALL results by the successes; this is the mean the seed's comment names.",
    "mean_attempt_score": "Mean result of all attempts by as_of, a skip counting 0.",
    "activities_done_per_week": "Distinct rows done by as_of / course weeks elapsed (days since the course "
    "start / 7, at least 1): hypothesis 2, activities completed per week.",
    "early_result": f"Mean first-attempt result of the first {EARLY_N} activities attempted "
    "(by first attempt time).",
    "early_pass_days": f"Speed on the course's first {EARLY_N} exercises (by date_shown, then activity id): "
    "mean over those opened by as_of of (first pass - date_shown) days, or (as_of - date_shown) while "
    "not passed: hypothesis 4, how fast the first activities were completed.",
    "missed_deadlines": "Course exercises due by as_of and not passed by their due time.",
    "deadline_delay_mean": "Mean over passed course exercises of (first pass - due) days: the delay of "
    "work actually handed in, without result_delay_mean's accrual for work not passed.",
    "days_since_course_start": "Days from the first date_shown to as_of, at least 0.",
    "course_week": "1-based course week of as_of.",
    # appended, so a stored model's feature rows keep every earlier column where it was
    "exercise_pace": "Once an exercise of the course is due by as_of, the share of those due or passed by "
    "as_of that are passed (an exercise passed early counts; one neither due nor passed does not); 0 before "
    "(missed_deadlines is 0 too): the pace on graded work, which progress (over the whole course) cannot show "
    "before its end.",
}
FEATURE_NAMES: tuple[str, ...] = tuple(DESCRIPTIONS)

_ZONE = re.compile(r"^\s*(?:UTC|GMT)?\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?\s*$", re.IGNORECASE)


def time_zone_hours(text: str | None) -> float | None:
    """'+03:00' -> 3.0, '-02:30' -> -2.5, '+3', '+0300', 'UTC+3'; None when unknown or unreadable."""
    if not text:
        return None
    found = _ZONE.match(str(text))
    if found is None:
        return 0.0 if str(text).strip().upper() in ("UTC", "GMT", "Z") else None
    sign, hours, minutes = found.groups()
    value = int(hours) + int(minutes or 0) / 60
    if value > 14:
        return None
    return -value if sign == "-" else value


class Attempts(NamedTuple):
    """One activity's attempts by as_of."""

    n_attempts: int
    best: int
    first_ts: int
    first_result: int
    pass_ts: int | None
    n_success: int
    result_sum: int  # skips count 0
    success_result_sum: int


@dataclass(frozen=True)
class _Plan:
    """What a schedule implies for deadlines, lessons and early work: computed once per schedule."""

    due: dict[int, float]  # every row's due time, by activity_id
    exercises_by_due: tuple[tuple[float, int], ...]  # (due, activity_id) of the course exercises, ascending
    exercise_due_times: tuple[float, ...]
    lessons: tuple[Activity, ...]  # the lesson rows
    early: tuple[Activity, ...]  # the first EARLY_N course exercises
    attestation: tuple[int, ...]  # attestation exercises
    attestation_due: float | None
    page_rows: dict[str, tuple[int, int, int]]  # page -> (rows, required rows, attestation rows) on it


_PLANS: WeakKeyDictionary[CourseSchedule, _Plan] = WeakKeyDictionary()


def _plan(schedule: CourseSchedule) -> _Plan:
    plan = _PLANS.get(schedule)
    if plan is None:
        plan = _PLANS[schedule] = _make_plan(schedule)
    return plan


def task_due_times(schedule: CourseSchedule) -> dict[int, float]:
    """Every task's due time: the next task's opening, and for the last task(s) its opening plus
    the median gap between consecutive task openings (DEFAULT_TASK_DAYS without any gap)."""
    opens: dict[int, float] = {}
    for row in schedule.activities.values():
        opens[row.task_id] = min(row.date_shown, opens.get(row.task_id, row.date_shown))
    times = sorted(set(opens.values()))
    gaps = [b - a for a, b in pairwise(times)]
    typical = median(gaps) if gaps else DEFAULT_TASK_DAYS * DAY
    return {task: schedule.due.get(task, opened + typical) for task, opened in opens.items()}


def _make_plan(schedule: CourseSchedule) -> _Plan:
    task_due = task_due_times(schedule)
    due = {a: max(task_due[row.task_id], row.date_shown) for a, row in schedule.activities.items()}
    by_due = tuple(sorted((due[a], a) for a in schedule.exercises))
    rows = sorted(schedule.activities.values(), key=lambda r: (r.date_shown, r.activity_id))
    exercises = [r for r in rows if r.activity_id in schedule.exercises]
    attestation = tuple(r.activity_id for r in exercises if r.is_attestation)
    return _Plan(
        due=due, exercises_by_due=by_due, exercise_due_times=tuple(t for t, _ in by_due),
        lessons=tuple(r for r in rows if r.type == LESSON), early=tuple(exercises[:EARLY_N]),
        attestation=attestation, attestation_due=max((due[a] for a in attestation), default=None),
        page_rows={page: (len(on), sum(r.required for r in on), sum(r.is_attestation for r in on))
                   for page, on in schedule.pages.items()},
    )


def _mean(values: Sequence[float]) -> float:
    return fsum(values) / len(values) if values else 0.0


def compute(state: FeatureState, schedule: CourseSchedule | None, as_of: float) -> dict[str, float]:
    """Every FEATURE_NAMES value as a float (never NaN); schedule-relative ones are 0 without a schedule.
    A compacted state (features.compacted) is exact as of its horizon or later: before it, its
    aggregates count whole."""
    old = state.get("compacted")
    tried = attempt_facts(state, as_of)  # built once: named attempts make it a merge
    attempts = _attempts(tried, old, as_of, named=names_attempts(state))
    first_views = {key: views[0] for key, views in state["views"].items() if views[0] <= as_of}
    for key, (first, _) in (old["views"] if old else {}).items():
        first_views[key] = min(first, first_views.get(key, first))
    out = dict.fromkeys(FEATURE_NAMES, 0.0)
    out.update(_profile(state, as_of))
    out.update(_logins(state["logins"][: bisect_right(state["logins"], as_of)], old, as_of))
    out.update(_webinars(state, as_of))
    out.update(_exercises(attempts))
    out.update(_rhythm(state, tried, schedule, as_of))
    if schedule is not None:
        plan = _plan(schedule)
        opened = schedule.opened_counts(as_of)
        out.update(
            sum_schedule_activities=opened.total,
            sum_required_activity=opened.required,
            sum_attestation_activity=opened.attestation,
            days_since_course_start=max(0.0, (as_of - schedule.start) / DAY),
            course_week=schedule.week_of(as_of),
        )
        viewed = [(first, row) for key, first in first_views.items() for row in schedule.pages.get(key, ())]
        out.update(_views(state, old, plan, viewed, first_views, as_of))
        out.update(_scheduled_exercises(attempts, schedule, plan, as_of))
        out.update(_done(viewed, attempts, schedule, as_of, opened))
        out["early_pass_days"] = _early_pass_days(attempts, plan, as_of)
        out["m2_delay"] = _attestation_delay(attempts, plan, as_of)
    return {name: float(out[name]) for name in FEATURE_NAMES}


def _profile(state: FeatureState, as_of: float) -> dict[str, float]:
    known = profile(state, as_of) or {}
    out = {name: float(known.get(name) or 0) for name in ("age", "tg_bot", "payment", "online", "flow_num")}
    out["time_zone"] = time_zone_hours(known.get("time_zone")) or 0.0
    return out


def _attempts(tried: dict[str, list[list[Any]]], old: Compacted | None, as_of: float, *,
              named: bool) -> dict[int, Attempts]:
    """Each tried activity's attempts by `as_of`; `named`: some attempt is named, so some facts may be
    hand-ins not graded yet (PENDING), which are activity and no attempt."""
    compacted = old["attempts"] if old else {}
    out = {int(key): _more_attempts(agg, []) for key, agg in compacted.items()}
    for key, facts in tried.items():
        if facts[0][0] > as_of:
            continue
        done = facts if facts[-1][0] <= as_of else facts[: bisect_right(facts, as_of, key=_TS)]
        if named and not (done := [fact for fact in done if fact[1] != PENDING]) and key not in compacted:
            continue
        out[int(key)] = _more_attempts(compacted.get(key) or _NONE_BEFORE, done)
    return out


#: The compacted summary of an activity with no attempt before the horizon (features.compacted's layout).
_NONE_BEFORE = [0, SKIPPED, 0, SKIPPED, 0, None, 0, 0, 0]


def _more_attempts(agg: list[Any], done: list[list[Any]]) -> Attempts:
    """An activity's attempts: `agg` summarises some (features.compacted's layout), `done` the
    rest, in time order. A named attempt is never folded into `agg`, so `done` may start before `agg`'s."""
    n, best, first_ts, first_result, first_success, passed, n_success, result_sum, success_sum = agg
    if done and (n == 0 or (done[0][0] <= first_ts and done[0][:3] < [first_ts, first_result, first_success])):
        first_ts, first_result = done[0][0], done[0][1]
    for fact in done:  # [ts, result, success], a named attempt's with its time passed (features.state)
        result = fact[1]
        if result > best:
            best = result
        if result > 0:
            result_sum += result
        if fact[2]:
            n_success += 1
            if result > 0:
                success_sum += result
            at = fact[3] if len(fact) > 3 else fact[0]
            passed = at if passed is None or at < passed else passed
    return Attempts(n + len(done), max(best, 0), first_ts, max(first_result, 0), passed, n_success, result_sum,
                    success_sum)


def _logins(logins: list[int], old: Compacted | None, as_of: float) -> dict[str, float]:
    days = sorted({ts // int(DAY) for ts in logins}.union(old["login_days"] if old else ()))
    today = int(as_of // DAY)
    if days and today > days[-1]:
        days.append(today)  # the gap still open at as_of
    gaps = [b - a for a, b in pairwise(days)]
    mean = sum(gaps) / len(gaps) if gaps else 0.0
    std = sqrt(sum((g - mean) ** 2 for g in gaps) / len(gaps)) if gaps else 0.0
    return {"sum_auth": len(logins) + (old["logins"] if old else 0), "login_gap_mean_days": mean,
            "login_gap_std_days": std}


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
    n_attempts = sum(a.n_attempts for a in tried)
    n_success = sum(a.n_success for a in tried)
    early = sorted(attempts.items(), key=lambda item: (item[1].first_ts, item[0]))[:EARLY_N]
    return {
        "sum_exercise": sum(a.pass_ts is not None for a in tried),
        "sum_exercise_attempts_mean": n_attempts / len(tried) if tried else 0.0,
        "sum_result": total,
        "mean_result": total / len(tried) if tried else 0.0,
        "early_result": sum(a.first_result for _, a in early) / len(early) if early else 0.0,
        "success_index": n_success / n_attempts if n_attempts else 0.0,
        "mean_success_score": sum(a.success_result_sum for a in tried) / n_success if n_success else 0.0,
        "mean_attempt_score": sum(a.result_sum for a in tried) / n_attempts if n_attempts else 0.0,
    }


def _activity_days(state: FeatureState, tried: dict[str, list[list[Any]]], as_of: float,
                   since: float) -> tuple[int | None, set[int]]:
    """(latest activity time by as_of, the days with activity in [since, as_of]): each sorted fact
    list is cut with two bisects instead of being read whole."""
    latest: int | None = None
    days: set[int] = set()
    day = int(DAY)

    def take(times: list[int]) -> None:
        nonlocal latest
        end = bisect_right(times, as_of)
        if end:
            latest = times[end - 1] if latest is None else max(latest, times[end - 1])
            days.update(ts // day for ts in times[bisect_left(times, since, 0, end):end])

    def take_facts(facts: list[list[int]]) -> None:
        nonlocal latest
        end = bisect_right(facts, as_of, key=_TS)
        if end:
            latest = facts[end - 1][0] if latest is None else max(latest, facts[end - 1][0])
            days.update(f[0] // day for f in facts[bisect_left(facts, since, 0, end, key=_TS):end])

    take(state["logins"])
    if (old := state.get("compacted")) is not None:
        first_day = int(since // DAY)
        for day_key, (first, last) in old["days"].items():
            if first <= as_of:
                latest = last if latest is None else max(latest, last)
                if int(day_key) >= first_day:
                    days.add(int(day_key))
    for views in state["views"].values():
        take(views)
    for table in (tried, state["webinars"]):
        for facts in table.values():
            take_facts(facts)
    return latest, days


def _rhythm(state: FeatureState, tried: dict[str, list[list[Any]]], schedule: CourseSchedule | None,
           as_of: float) -> dict[str, float]:
    today = int(as_of // DAY)
    latest, days = _activity_days(state, tried, as_of, (today - 13) * DAY)
    if latest is not None:
        inactive = (as_of - latest) / DAY
    else:
        inactive = max(0.0, (as_of - schedule.start) / DAY) if schedule is not None else 0.0
    return {
        "days_inactive": inactive,
        "active_days_last_7": sum(d > today - 7 for d in days),
        "active_days_last_14": len(days),
    }


def _views(state: FeatureState, old: Compacted | None, plan: _Plan, viewed: list[tuple[int, Activity]],
           first_views: dict[str, int], as_of: float) -> dict[str, float]:
    """`viewed`: (first view, row) for every row viewed by as_of; `first_views`: page -> first view."""
    views = required = attestation = 0
    for key in first_views:
        counts = plan.page_rows.get(key)
        if counts is None:
            continue
        times = state["views"].get(key, [])
        n = len(times) if not times or times[-1] <= as_of else bisect_right(times, as_of)
        if old is not None and key in old["views"]:
            n += old["views"][key][1]
        views += n * counts[0]
        required += n * counts[1]
        attestation += n * counts[2]
    lesson_delays = []
    for row in plan.lessons:
        first = first_views.get(row.page)
        if first is not None:
            lesson_delays.append((first - row.date_shown) / DAY)
        elif row.date_shown <= as_of:
            lesson_delays.append((as_of - row.date_shown) / DAY)
    return {
        "sum_activity_viewed": views,
        "sum_required_activity_viewed": required,
        "sum_attestation_activity_viewed": attestation,
        "rows_viewed": len(viewed),
        "view_delay_first": _mean([(first - row.date_shown) / DAY for first, row in viewed]),
        "view_delay_sum": fsum(lesson_delays),
    }


def _scheduled_exercises(attempts: dict[int, Attempts], schedule: CourseSchedule, plan: _Plan,
                         as_of: float) -> dict[str, float]:
    first_delays: list[float] = []
    pass_delays: list[float] = []
    deadline_delays: list[float] = []
    results: dict[str, list[int]] = {"required": [], "non_req": [], "attestation": []}
    passed_required = passed_attestation = passed_exercises = on_time = passed_due = 0
    for activity_id, tried in attempts.items():
        row = schedule.activities.get(activity_id)
        if row is None:
            continue
        due = plan.due[activity_id]
        first_delays.append((tried.first_ts - due) / DAY)
        results["required" if row.required else "non_req"].append(tried.best)
        if row.is_attestation:
            results["attestation"].append(tried.best)
        if tried.pass_ts is None:
            if due <= as_of:
                pass_delays.append((as_of - due) / DAY)
            continue
        pass_delays.append((tried.pass_ts - due) / DAY)
        passed_required += row.required
        passed_attestation += row.is_attestation
        if activity_id in schedule.exercises:
            passed_exercises += 1
            deadline_delays.append((tried.pass_ts - due) / DAY)
            on_time += due <= as_of and tried.pass_ts <= due
            passed_due += due <= as_of
    n_due = bisect_right(plan.exercise_due_times, as_of)
    for due, activity_id in plan.exercises_by_due[:n_due]:  # due, never attempted: the delay accrues
        if activity_id not in attempts:
            first_delays.append((as_of - due) / DAY)
            pass_delays.append((as_of - due) / DAY)
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
        "missed_deadlines": n_due - on_time,
        "deadline_delay_mean": _mean(deadline_delays),
        "exercise_pace": passed_exercises / (n_due + passed_exercises - passed_due) if n_due else 0.0,
    }


def _done(viewed: list[tuple[int, Activity]], attempts: dict[int, Attempts], schedule: CourseSchedule,
          as_of: float, opened: Opened) -> dict[str, float]:
    """Shares of opened rows done, and done rows per course week."""
    done = {row.activity_id: row for _, row in viewed if row.activity_id not in schedule.exercises}
    done.update((a, schedule.activities[a]) for a, tried in attempts.items()
                if tried.pass_ts is not None and a in schedule.exercises)
    opened_done = [row for row in done.values() if row.date_shown <= as_of]
    required = sum(row.required for row in opened_done)
    optional = opened.total - opened.required
    weeks = max(1.0, (as_of - schedule.start) / WEEK)
    return {
        "activities_done_share": len(opened_done) / opened.total if opened.total else 0.0,
        "required_done_share": required / opened.required if opened.required else 0.0,
        "optional_done_share": (len(opened_done) - required) / optional if optional else 0.0,
        "activities_done_per_week": len(done) / weeks,
    }


def _early_pass_days(attempts: dict[int, Attempts], plan: _Plan, as_of: float) -> float:
    days = []
    for row in plan.early:
        if row.date_shown > as_of:
            continue
        tried = attempts.get(row.activity_id)
        end = tried.pass_ts if tried is not None and tried.pass_ts is not None else as_of
        days.append((end - row.date_shown) / DAY)
    return _mean(days)


def _attestation_delay(attempts: dict[int, Attempts], plan: _Plan, as_of: float) -> float:
    if plan.attestation_due is None:
        return 0.0
    passes = [tried.pass_ts if (tried := attempts.get(a)) is not None else None for a in plan.attestation]
    if all(ts is not None for ts in passes):
        return (max(ts for ts in passes if ts is not None) - plan.attestation_due) / DAY
    return max(0.0, as_of - plan.attestation_due) / DAY
