"""View-models: the console's rows and series built from query results. Pure (no I/O), so what a
page shows is decided here and unit-tested without a server or a browser."""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from features.activity_status import ACTIVE, ASLEEP, DOZING, FINISHED, NEW, STATUSES
from online_models.prequential import WEEK_CAP
from storage.postgres.queries import Sort
from streams.console.words import reasons, say, term

STATUS_COLORS = {ACTIVE: "#2e7d32", DOZING: "#f9a825", ASLEEP: "#c62828", FINISHED: "#607d8b"}
#: The at-risk list shows at most this many enrolments (the page says so when there are more).
AT_RISK_LIMIT = 200
#: The quadrant plots at most this many enrolments.
QUADRANT_LIMIT = 5000
#: P(dropout) must move at least this much in a week for the trend arrow to point up or down.
TREND_STEP = 0.05
TREND_DAYS = 7

# -- the risk quadrant ---------------------------------------------------------------------------
#: Engagement: days with any activity among the last 14 (0..14). Cut: 4, two days a week (fewer is
#: the seed's "dozing" rhythm setting in).
ENGAGEMENT, ENGAGEMENT_MAX, ENGAGEMENT_CUT = "active_days_last_14", 14.0, 4.0
#: Performance: successful attempts / all attempts (skips count as attempts; no attempt: 0). Cut:
#: 0.5, as many failures as passes.
PERFORMANCE, PERFORMANCE_MAX, PERFORMANCE_CUT = "success_index", 1.0, 0.5
ON_TRACK, UNDER_ENGAGED, ACADEMIC_RISK, DROPOUT_RISK = "on track", "under-engaged", "academic risk", "dropout risk"
QUADRANT_COLORS = {ON_TRACK: "#2e7d32", UNDER_ENGAGED: "#f9a825", ACADEMIC_RISK: "#6a1b9a", DROPOUT_RISK: "#c62828"}
#: Features set against the course median on a student's page.
COMPARED_FEATURES = ("days_inactive", "active_days_last_7", "active_days_last_14", "login_gap_mean_days",
                     "activities_done_share", "required_done_share", "exercise_pace", "activities_done_per_week",
                     "success_index", "mean_attempt_score", "early_result", "missed_deadlines",
                     "w_view_hours", "progress")


#: The at-risk list's order when the page names none: the students a curator can still reach.
DEFAULT_SORT: Sort = "reachable"


def quadrant(engagement: float | None, performance: float | None) -> str:
    """Which quadrant an enrolment's two features put it in (a missing value counts as 0)."""
    engaged = (engagement or 0.0) >= ENGAGEMENT_CUT
    performing = (performance or 0.0) >= PERFORMANCE_CUT
    if engaged:
        return ON_TRACK if performing else ACADEMIC_RISK
    return UNDER_ENGAGED if performing else DROPOUT_RISK


@dataclass(frozen=True)
class Trend:
    """P(dropout) now against a week earlier, as an arrow with its meaning."""

    arrow: str
    css: str
    note: str


def trend(now: float | None, before: float | None) -> Trend:
    """Up (risk rising) or down by TREND_STEP or more, flat otherwise; unknown without both scores."""
    if now is None or before is None or not (math.isfinite(now) and math.isfinite(before)):
        return Trend("·", "trend-none", say("trend.none"))
    delta = now - before
    moved = {"before": f"{before:.2f}", "now": f"{now:.2f}", "days": TREND_DAYS}
    if delta >= TREND_STEP:
        return Trend("↑", "trend-up", say("trend.up", **moved))
    if delta <= -TREND_STEP:
        return Trend("↓", "trend-down", say("trend.down", **moved))
    return Trend("→", "trend-flat", say("trend.flat", **moved))


#: What a label-free guess gave (streams.contract.outputs.Basis), marked on its score (`guess.<basis>`; the page's
#: `guess.note` says what each mark means); a learned score has no mark.
GUESSES = ("guess", "calibrated_guess")


def guess_mark(basis: Any, score: str) -> str:
    """The mark of what answered `score` in a row's `basis`: "" for a learned model (or a row written before
    rows said)."""
    answered = str(basis.get(score)) if isinstance(basis, dict) else ""
    return say(f"guess.{answered}") if answered in GUESSES else ""


# -- course page ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class StatusSeries:
    """Students by status on every event-day from the first score to the last."""

    days: list[date]
    counts: dict[str, list[int]]


def status_series(changes: Iterable[dict[str, Any]]) -> StatusSeries:
    """Day-by-day counts from (day, status, previous, n) changes: each enters `status` and leaves
    `previous`; days without a change carry the previous day's counts."""
    by_day: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in changes:
        delta = by_day[row["day"]]
        delta[row["status"]] += int(row["n"])
        if row["previous"] is not None:
            delta[row["previous"]] -= int(row["n"])
    if not by_day:
        return StatusSeries([], {s: [] for s in STATUSES})
    first, last = min(by_day), max(by_day)
    running = dict.fromkeys(STATUSES, 0)
    days, counts = [], {s: [] for s in STATUSES}  # type: ignore[var-annotated]
    day = first
    while day <= last:
        for status, n in by_day.get(day, {}).items():
            if status in running:
                running[status] += n
        days.append(day)
        for status in STATUSES:
            counts[status].append(max(0, running[status]))
        day += timedelta(days=1)
    return StatusSeries(days, counts)


@dataclass(frozen=True)
class StopCounts:
    """Transitions into dozing and asleep per label (a course week, or a place in the course)."""

    labels: list[str]
    dozing: list[int]
    asleep: list[int]


def stops_by_week(points: Iterable[dict[str, Any]]) -> StopCounts:
    """Where students stop, by the course week of their last activity (unknown weeks left out)."""
    weeks: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for row in points:
        if row.get("course_week") is None:
            continue
        weeks[int(row["course_week"])][0] += int(row["to_dozing"])
        weeks[int(row["course_week"])][1] += int(row["to_asleep"])
    order = sorted(weeks)
    return StopCounts([say("week.short", week=w) for w in order], [weeks[w][0] for w in order],
                      [weeks[w][1] for w in order])


def place_label(row: dict[str, Any]) -> str:
    """'module 2 · theme name · task 31', each part only when known."""
    parts = []
    if row.get("module") is not None:
        parts.append(say("place.module", module=row["module"]))
    if row.get("theme"):
        parts.append(str(row["theme"]))
    elif row.get("theme_id") is not None:
        parts.append(say("place.theme", theme=row["theme_id"]))
    if row.get("task_name"):
        parts.append(str(row["task_name"]))
    elif row.get("task_id") is not None:
        parts.append(say("place.task", task=row["task_id"]))
    return " · ".join(parts) or say("place.unknown")


def stops_by_place(points: Sequence[dict[str, Any]], top: int = 12) -> StopCounts:
    """The `top` places with the most transitions (the critical points come worst first)."""
    rows = list(points)[:top]
    return StopCounts([place_label(r) for r in rows], [int(r["to_dozing"]) for r in rows],
                      [int(r["to_asleep"]) for r in rows])


@dataclass(frozen=True)
class AtRiskRow:
    user_id: int
    status: str
    p_dropout: float | None
    p_success: float | None
    days_inactive: float | None
    reasons: list[str]
    trend: Trend
    dropout_mark: str = ""  # guess_mark of P(dropout)


def at_risk_rows(rows: Iterable[dict[str, Any]], earlier: dict[tuple[int, str], float | None]) -> list[AtRiskRow]:
    """The list's rows, each with its reasons and week-over-week trend."""
    return [AtRiskRow(r["user_id"], r["status"], r["p_dropout"], r["p_success"], r["days_inactive"],
                      reasons(r["factors"]), trend(r["p_dropout"], earlier.get((r["user_id"], r["enrolment"]))),
                      guess_mark(r.get("basis"), "p_dropout"))
            for r in rows]


@dataclass(frozen=True)
class Quadrants:
    points: list[tuple[int, float, float, str]]  # (user_id, engagement, performance, quadrant)
    counts: dict[str, int]
    finished: bool = False  # the course is over: its finished enrolments, as they ended


def quadrants(pairs: Iterable[dict[str, Any]], finished: bool = False) -> Quadrants:
    points = [(r["user_id"], float(r["x"] or 0.0), float(r["y"] or 0.0), quadrant(r["x"], r["y"])) for r in pairs]
    counts = dict.fromkeys(QUADRANT_COLORS, 0)
    for *_, name in points:
        counts[name] += 1
    return Quadrants(points, counts, finished)


@dataclass(frozen=True)
class CourseSummary:
    course_id: int | None
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def course_summaries(rows: Iterable[dict[str, Any]]) -> list[CourseSummary]:
    """One summary per course (enrolments per status, zeros included), by course id."""
    courses: dict[int | None, dict[str, int]] = {}
    for row in rows:
        courses.setdefault(row["course_id"], dict.fromkeys(STATUSES, 0))[row["status"]] = int(row["n"])
    return [CourseSummary(c, courses[c]) for c in sorted(courses, key=lambda c: (c is None, c or 0))]


# -- student page --------------------------------------------------------------------------------
@dataclass(frozen=True)
class FeatureNorm:
    name: str
    value: float | None
    median: float | None

    @property
    def gap(self) -> float | None:
        return None if self.value is None or self.median is None else self.value - self.median


def feature_norms(features: dict[str, Any] | None, medians: dict[str, float]) -> list[FeatureNorm]:
    """The compared features of one enrolment, with the course median of each."""
    features = features or {}
    out = []
    for name in COMPARED_FEATURES:
        value = features.get(name)
        out.append(FeatureNorm(name, float(value) if isinstance(value, int | float) else None, medians.get(name)))
    return out


def day_label(moment: datetime | date) -> str:
    return moment.strftime("%Y-%m-%d")


@dataclass(frozen=True)
class EnrolmentHistory:
    """One enrolment's score history: one point per event-day (its last score that day)."""

    enrolment: str
    days: list[str]
    statuses: list[str]
    progress: list[float | None]
    p_dropout: list[float | None]
    p_success: list[float | None]


def enrolment_histories(rows: Iterable[dict[str, Any]]) -> list[EnrolmentHistory]:
    """Score history rows (oldest first) as one series per enrolment, a point per event-day."""
    by_enrolment: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        by_enrolment.setdefault(row["enrolment"], {})[day_label(row["as_of"])] = row  # the day's last wins
    out = []
    for enrolment, days in by_enrolment.items():
        ordered = [days[d] for d in sorted(days)]
        out.append(EnrolmentHistory(enrolment, sorted(days), [r["status"] for r in ordered],
                                    [r["progress_pred"] for r in ordered], [r["p_dropout"] for r in ordered],
                                    [r["p_success"] for r in ordered]))
    return out


#: The timeline shows at most this many days (the newest).
MAX_TIMELINE_DAYS = 400


@dataclass(frozen=True)
class Day:
    day: str
    status: str
    note: str
    active: bool = False  # the student did something that day (their stored facts say so)


def timeline(current: dict[str, Any], history: Iterable[dict[str, Any]],
             transitions: Iterable[dict[str, Any]], active: Collection[date] = frozenset()) -> list[Day]:
    """One enrolment's status on each day from its flow's start to its newest score: the status at
    the day's end, from every moment it is known (score rows, both sides of each status change;
    active from the start, as the status machine counts), with the day's alerts, scores and last
    activity noted, and whether the student was active that day (`active`: the days with any
activity in their stored facts). Under a fast replay score rows are few, but the status changes
are all there."""
    observed: list[tuple[datetime, int, str, str]] = []  # (at, order, status, note)
    for t in transitions:
        if t["kind"] != "at_risk":
            change = f"{term(t['from_status'])} → {term(t['to_status'])}"
            observed += [(t["at"], 1, t["from_status"], ""), (t["at"], 2, t["to_status"],
                                                             say("timeline.alert", change=change))]
        else:
            observed.append((t["at"], 2, ACTIVE, say("timeline.early_warning", p_dropout=f"{t['p_dropout'] or 0:.2f}")))
    observed += [(h["as_of"], 2, h["status"], say("timeline.scored")) for h in history]
    end = current["updated_at"]
    observed.append((end, 3, current["status"], ""))
    since_start = (current.get("features") or {}).get("days_since_course_start")
    start = end - timedelta(days=float(since_start)) if isinstance(since_start, int | float) else min(observed)[0]
    start = max(start, end - timedelta(days=MAX_TIMELINE_DAYS - 1))
    observed.sort(key=lambda o: (o[0], o[1]))
    last_activity = current.get("last_activity_at")
    days, status, i, day = [], ACTIVE, 0, start.date()
    while day <= end.date():
        notes = []
        while i < len(observed) and observed[i][0].date() <= day:
            if observed[i][2] != NEW:  # not yet enrolled counts as active from the flow's start
                status = observed[i][2]
            if observed[i][0].date() == day and observed[i][3] and observed[i][3] not in notes:
                notes.append(observed[i][3])
            i += 1
        if isinstance(last_activity, datetime) and last_activity.date() == day:
            notes.append(say("timeline.last_activity"))
        days.append(Day(day.isoformat(), status, "; ".join(notes), day in active))
        day += timedelta(days=1)
    return days


# -- model page ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelWeek:
    model: str
    week: str
    version: int
    n_labels: int | None
    learned: int | None  # labels learned during the week
    metrics: dict[str, float | None]


def model_weeks(rows: Iterable[dict[str, Any]]) -> list[ModelWeek]:
    """Per model, each week's last version and the labels it learned that week (rows oldest first)."""
    out, previous = [], {}  # type: ignore[var-annotated]
    for row in rows:
        n = row["n_labels"]
        before = previous.get(row["model"])
        learned = n - before if n is not None and before is not None else n
        previous[row["model"]] = n if n is not None else before
        out.append(ModelWeek(row["model"], day_label(row["week"]), row["version"], n, learned,
                             metric_values(row["metrics"])))
    return out


def metric_values(stored: dict[str, Any] | None) -> dict[str, float | None]:
    """Stored metrics as numbers: JSON null, or anything not a number, is undefined (None)."""
    return {k: (float(v) if isinstance(v, int | float) else None) for k, v in (stored or {}).items()}


@dataclass(frozen=True)
class CourseWeekQuality:
    """One version's prequential metrics per course week, every week from the first to the last one
    it learned from (a week in between that taught nothing: no example, every metric None)."""

    weeks: list[int]
    examples: list[int]  # examples of each week ever learned (the window holds the last WINDOW_PER_WEEK)
    metrics: dict[str, list[float | None]]  # metric name -> its value in each week

    @property
    def labels(self) -> list[str]:
        return [course_week_label(w) for w in self.weeks]


def course_week_label(week: int) -> str:
    """'3', or '20+' for WEEK_CAP, which pools the weeks from it on."""
    return f"{week}+" if week == WEEK_CAP else str(week)


def course_week_quality(metrics_by_week: dict[str, Any] | None) -> CourseWeekQuality | None:
    """A version's stored `metrics_by_week` (JSON: the weeks are string keys) ready to draw; None when it
    has none (published before they were recorded, or before it learned anything)."""
    stored = {int(week): values for week, values in (metrics_by_week or {}).items()}
    if not stored:
        return None
    weeks = list(range(min(stored), max(stored) + 1))
    by_week = {week: metric_values(stored.get(week)) for week in weeks}
    names = sorted({name for values in by_week.values() for name in values} - {"examples"})
    return CourseWeekQuality(weeks, [int(by_week[w].get("examples") or 0) for w in weeks],
                             {name: [by_week[w].get(name) for w in weeks] for name in names})
