"""The console's pages as HTML strings, from view-models (streams.console.views). Pure: a page is
a function of its data, so escaping, empty courses and sorting are unit-tested without a server."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from features.activity_status import ASLEEP, DOZING, STATUSES
from online_models.prequential import WEEK_CAP, WINDOW_PER_WEEK
from streams.console import svg, views
from streams.console.html import bullets, layout, link, note, number, status, table
from streams.console.svg import Point, Series, esc

_DOZING_COLOR, _ASLEEP_COLOR = views.STATUS_COLORS[DOZING], views.STATUS_COLORS[ASLEEP]
_SORT_TITLES = {"reachable": "still reachable", "p_dropout": "P(dropout)", "status": "status",
                "days_inactive": "days inactive"}
#: What the list's default order means, under the list.
REACHABLE_NOTE = ("still reachable: active and dozing students by P(dropout), then the asleep, the most recently "
                  "gone quiet first; finished last.")


def login_page(error: str | None = None, configured: bool = True) -> str:
    if not configured:
        body = note("The console is off: SCORER_API_TOKEN is empty, so every page refuses every request.")
        return layout("Log in", body, signed_in=False)
    message = f'<p class="error" id="login-error">{esc(error)}</p>' if error else ""
    body = (f"{message}<form method=\"post\" action=\"/console/login\">"
            "<label>Your token, or the read API's (SCORER_API_TOKEN) "
            "<input type=\"password\" name=\"token\" autocomplete=\"current-password\" required></label> "
            "<button type=\"submit\">Log in</button></form>"
            + note("The session lasts 12 hours; a new token ends every session. Each page that shows students is "
                   "recorded with whose token opened it (scorer reads)."))
    return layout("Log in", body, signed_in=False)


def index_page(courses: Sequence[views.CourseSummary]) -> str:
    if not courses:
        return layout("Courses", note("No scores yet: the worker has not written any enrolment."))
    rows = [[link(f"/console/courses/{c.course_id}", c.course_id) if c.course_id is not None else "(no course)",
             *(number(c.counts[s]) for s in STATUSES), number(c.total)] for c in courses]
    return layout("Courses", table(["course", *STATUSES, "enrolments"], rows, frozenset(range(1, 6)), "courses"))


@dataclass(frozen=True)
class CourseView:
    course_id: int
    now: datetime | None
    counts: dict[str, int]
    series: views.StatusSeries
    by_week: views.StopCounts
    by_place: views.StopCounts
    at_risk: list[views.AtRiskRow]
    sort: str
    quadrants: views.Quadrants
    uplift: dict[str, Any] | None = None  # online_models.uplift.report of the course's alerts
    limit: int = views.AT_RISK_LIMIT

    @property
    def students(self) -> set[int]:
        """The students the page shows one by one (its list and its quadrant chart): the record of reads names them."""
        return {row.user_id for row in self.at_risk} | {point[0] for point in self.quadrants.points}

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _stops(title: str, counts: views.StopCounts, horizontal: bool) -> str:
    series = [Series("fell into dozing", counts.dozing, _DOZING_COLOR),
              Series("fell asleep", counts.asleep, _ASLEEP_COLOR)]
    if horizontal:
        return svg.hbars(title, counts.labels, series)
    return svg.bars(title, counts.labels, series, "transitions")


def _sort_header(course_id: int, sort: str, current: str) -> str:
    title = _SORT_TITLES[sort]
    if sort == current:
        return f"{esc(title)} ▼"
    return link(f"/console/courses/{course_id}?sort={sort}", title)


def _sort_choice(course_id: int, current: str) -> str:
    """Every order of the list, the current one unlinked: the default has no column to click."""
    choices = (f"<strong>{esc(title)}</strong>" if sort == current else _sort_header(course_id, sort, current)
               for sort, title in _SORT_TITLES.items())
    return f'<p class="sorts">Order: {" · ".join(choices)}</p>'


def _quadrant(view: CourseView) -> str:
    q = view.quadrants
    points = [Point(x, y, views.QUADRANT_COLORS[name], f"student {user_id}: {name}")
              for user_id, x, y, name in q.points]
    corners = [(views.UNDER_ENGAGED, views.QUADRANT_COLORS[views.UNDER_ENGAGED]),
               (views.ON_TRACK, views.QUADRANT_COLORS[views.ON_TRACK]),
               (views.DROPOUT_RISK, views.QUADRANT_COLORS[views.DROPOUT_RISK]),
               (views.ACADEMIC_RISK, views.QUADRANT_COLORS[views.ACADEMIC_RISK])]
    chart = svg.scatter("risk quadrant", points, f"engagement: {views.ENGAGEMENT} (days active of the last 14)",
                        f"performance: {views.PERFORMANCE}", views.ENGAGEMENT_MAX, views.PERFORMANCE_MAX,
                        views.ENGAGEMENT_CUT, views.PERFORMANCE_CUT, corners)
    counts = table(["quadrant", "enrolments"], [[esc(k), number(v)] for k, v in q.counts.items()], frozenset({1}),
                   "quadrant-counts")
    return (chart + note(f"Engagement: {views.ENGAGEMENT}, days with any activity among the last 14; cut at "
                         f"{views.ENGAGEMENT_CUT:g} (two days a week). Performance: {views.PERFORMANCE}, successful "
                         f"attempts / all attempts (no attempt: 0); cut at {views.PERFORMANCE_CUT:g}. "
                         + ("Every enrolment has finished: each as it ended." if q.finished else
                            "Unfinished enrolments only")
                         + f" (at most {views.QUADRANT_LIMIT}).") + counts)


def course_page(view: CourseView) -> str:
    c = view.course_id
    headline = ", ".join(f"{view.counts.get(s, 0)} {s}" for s in STATUSES)
    parts = [note(f"{view.total} enrolments: {headline}. Event time now: "
                  f"{view.now:%Y-%m-%d %H:%M}" if view.now else f"{view.total} enrolments.")]
    if view.total == 0:
        parts.append(note("No enrolment of this course has been scored yet."))
        return layout(f"Course {c}", "".join(parts))
    days = [views.day_label(d) for d in view.series.days]
    parts += ["<h2>Students by status over event time</h2>",
              svg.stacked_area("students by status", days,
                               [Series(s, view.series.counts[s], views.STATUS_COLORS[s]) for s in STATUSES],
                               "enrolments"),
              "<h2>Where students stop</h2>",
              note("The place of each student's last activity before going dozing or asleep."),
              _stops("by course week", view.by_week, horizontal=False),
              _stops("by module, theme and task (worst first)", view.by_place, horizontal=True),
              "<h2>At risk</h2>"]
    shown = len(view.at_risk)
    parts.append(_sort_choice(c, view.sort))
    if view.total > shown:
        parts.append(note(f"The first {shown} of {view.total} enrolments, by {_SORT_TITLES[view.sort]}."))
    order = "" if view.sort == views.DEFAULT_SORT else f"?sort={view.sort}"
    parts.append(f'<p><a href="/console/courses/{c}/at-risk.csv{order}" download>All {view.total} enrolments in '
                 f'this order as CSV</a> (with the reasons and what answered each P(dropout))</p>')
    headers = ["student", _sort_header(c, "status", view.sort), _sort_header(c, "p_dropout", view.sort),
               "week", "P(success)", _sort_header(c, "days_inactive", view.sort), "reasons"]
    rows = [[link(f"/console/students/{r.user_id}", r.user_id), status(r.status), _marked(r.p_dropout, r.dropout_mark),
             f'<span class="{r.trend.css}" title="{esc(r.trend.note)}">{r.trend.arrow}</span>',
             number(r.p_success), number(r.days_inactive, 1), bullets(r.reasons)] for r in view.at_risk]
    parts.append(table(headers, rows, frozenset({2, 4, 5}), "at-risk"))
    if view.sort == "reachable":
        parts.append(note(REACHABLE_NOTE))
    parts.append(note(f"week: P(dropout) now against {views.TREND_DAYS} event-days earlier (↑ up by "
                      f"{views.TREND_STEP:g} or more, ↓ down, → steady, · no earlier score)."))
    if any(r.dropout_mark for r in view.at_risk):
        parts.append(note(views.GUESS_NOTE))
    parts += ["<h2>Risk quadrant</h2>", _quadrant(view), "<h2>Did the notifications work?</h2>",
              _uplift(view.uplift)]
    return layout(f"Course {c}", "".join(parts))


def _marked(value: float | None, mark: str, digits: int = 2) -> str:
    """A score, with its guess mark (views.guess_mark) where a label-free guess gave it."""
    return number(value, digits) + (f' <span class="guess">{esc(mark)}</span>' if mark else "")


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:+.1f} pp"


def _uplift(result: dict[str, Any] | None) -> str:
    """Notified against held-out students per alert kind (`scorer uplift`'s report)."""
    if not result or not result["held_out_share"]:
        return note("No enrolment of this course is held out of notifications (SCORER_HOLDOUT_SHARE is 0), so "
                    "there is no control group to compare the notified students with.")
    rows = []
    for kind, row in result["kinds"].items():
        arms = [f"{a['met']}/{a['n']} ({100 * a['rate']:.0f}%)" if a["n"] else "–"
                for a in (row["notified"], row["held_out"])]
        ci = row["ci95"]
        rows.append([esc(kind), esc(f"{row['outcome']} in {result['days']:g} days"), *arms,
                     _percent(row["difference"]), "–" if ci is None else f"{_percent(ci[0])} … {_percent(ci[1])}",
                     esc(row["verdict"])])
    return table(["alert", "outcome", "notified", "held out", "difference", "95% interval", "verdict"], rows,
                 frozenset({2, 3, 4}), "uplift") + note(
        f"The first alert of each kind per enrolment; {result['interval']}; a verdict only when the interval "
        f"excludes 0. {100 * result['held_out_share']:.0f}% of enrolments are held out.")


@dataclass(frozen=True)
class EnrolmentView:
    current: dict[str, Any]
    history: views.EnrolmentHistory | None
    norms: list[views.FeatureNorm]
    days: list[views.Day]


def _timeline(days: Sequence[views.Day]) -> str:
    cells = [(d.day, views.STATUS_COLORS.get(d.status, "#999"),
              "; ".join([d.status, *(["active"] if d.active else []), *([d.note] if d.note else [])]), d.active)
             for d in days]
    legend = [Series(s, [], views.STATUS_COLORS[s]) for s in STATUSES]
    return svg.strip("timeline", cells, legend)


def _enrolment(e: EnrolmentView, transitions: Sequence[dict[str, Any]]) -> str:
    cur = e.current
    marks = {score: views.guess_mark(cur.get("basis"), score) for score in ("p_dropout", "p_success", "progress")}
    course = "(none)" if cur["course_id"] is None else link(f"/console/courses/{cur['course_id']}", cur["course_id"])
    parts = [f"<h2>Course {course}, "
             f"enrolment {esc(cur['enrolment'] or '-')}</h2>",
             f'<p class="note">status {esc(cur["status"])} since {esc(cur["status_since"] or "–")}; P(dropout) '
             f'{_marked(cur["p_dropout"], marks["p_dropout"])}, P(success) '
             f'{_marked(cur["p_success"], marks["p_success"])}, progress forecast '
             f'{_marked(cur["progress_pred"], marks["progress"], 1)}; last activity '
             f'{esc(cur["last_activity_at"] or "–")}</p>',
             *([note(views.GUESS_NOTE)] if any(marks.values()) else []),
             "<h3>Reasons</h3>", bullets(views.reasons(cur["factors"]))]
    parts += ["<h3>Day by day</h3>",
              note("One cell per day from the flow's start to the newest score, coloured by the status at "
                   "the day's end (from the status changes and score rows); a dot marks a day the student was "
                   "active (a login, page view, attempt or webinar event); hover for the day's alerts and scores."),
              _timeline(e.days)]
    h = e.history
    if h is not None:
        parts += ["<h3>Scores</h3>",
                  svg.lines("P(dropout) and P(success)", h.days,
                            [Series("P(dropout)", h.p_dropout, "#c62828"),
                             Series("P(success)", h.p_success, "#2e7d32")], "probability", y_max=1.0),
                  svg.lines("progress forecast", h.days, [Series("progress", h.progress, "#1565c0")],
                            "progress", y_max=100.0)]
    mine = [t for t in transitions if t["enrolment"] == cur["enrolment"]]
    parts.append("<h3>Status history and alerts</h3>")
    if mine:
        rows = [[esc(t["at"]), esc(t["kind"]), f"{status(t['from_status'])} → {status(t['to_status'])}",
                 number(t["days_inactive"], 1), number(t["course_week"]), esc(t["theme"] or "–"),
                 esc(t["task_name"] or t["task_id"] or "–"), number(t["p_dropout"])] for t in mine]
        parts.append(table(["at", "kind", "change", "days inactive", "week", "theme", "task", "P(dropout)"],
                           rows, frozenset({3, 4, 7}), "transitions"))
    else:
        parts.append(note("No alert for this enrolment."))
    parts.append("<h3>Against the course</h3>")
    rows = [[esc(n.name), number(n.value), number(n.median), number(n.gap)] for n in e.norms]
    parts.append(table(["feature", "this student", "course median", "difference"], rows, frozenset({1, 2, 3}),
                       "norms"))
    return "".join(parts)


def student_page(user_id: int, enrolments: Sequence[EnrolmentView], transitions: Sequence[dict[str, Any]]) -> str:
    if not enrolments:
        return layout(f"Student {user_id}", note("The scorer has not seen this student."))
    return layout(f"Student {user_id}", "".join(_enrolment(e, transitions) for e in enrolments))


_METRIC_COLORS = ("#c62828", "#2e7d32", "#1565c0", "#6a1b9a", "#ef6c00", "#00838f")
#: The metrics charted together, by name suffix: (title, y axis, suffix, y top: an AUC is at most 1).
_METRIC_GROUPS = (("AUC", "AUC", "_auc", 1.0), ("log loss", "log loss", "_logloss", None),
                  ("probability bias", "mean P − outcome", "_bias", None), ("progress error", "MAE", "_mae", None))


def _metric_charts(title: str, labels: Sequence[str], values: Mapping[str, Sequence[float | None]]) -> list[str]:
    """One line chart per metric group that `values` (metric name -> a value per label) holds; `title`
    has a {} for the group's name."""
    charts = []
    for group, unit, suffix, top in _METRIC_GROUPS:
        names = [n for n in values if n.endswith(suffix)]
        if names:
            charts.append(svg.lines(title.format(group), labels,
                                    [Series(n, values[n], _METRIC_COLORS[i % len(_METRIC_COLORS)])
                                     for i, n in enumerate(names)], unit, y_max=top))
    return charts


def _course_weeks(row: dict[str, Any]) -> str:
    """The current version's quality by course week: charts and a table, or a note when it has none."""
    title = f"<h2>{esc(row['model'])}: quality by course week (version {esc(row['version'])})</h2>"
    quality = views.course_week_quality(row["metrics_by_week"])
    if quality is None:
        return title + note(f"Version {row['version']} has no metrics by course week: it was published before "
                            "they were recorded, or before it learned any label.")
    names = list(quality.metrics)
    rows = [[esc(label), number(examples), *(number(quality.metrics[n][i], 3) for n in names)]
            for i, (label, examples) in enumerate(zip(quality.labels, quality.examples))]
    return "".join([
        title,
        note(f"Prequential: the model scores each label's examples before it learns them. A labelled enrolment "
             f"gives one example per course week it reached (that week's features); each week's metrics are over "
             f"its last {WINDOW_PER_WEEK} examples (progress error: those with a known final progress), and "
             f"'examples' counts all it has learned. Week {WEEK_CAP}+ pools weeks {WEEK_CAP} and later. '–': "
             "undefined (no example, or one class only for an AUC)."),
        *_metric_charts("{} by course week", quality.labels, quality.metrics),
        table(["course week", "examples", *map(esc, names)], rows, frozenset(range(1, 2 + len(names))),
              f"course-weeks-{row['model']}"),
        _stacks(row)])


def _stacks(row: dict[str, Any]) -> str:
    """How each learned course week of a version weighs its forest against the label-free guess
    (online_models.guess_stack): where the outcomes say the guess still ranks well, a curator should know."""
    stacks = (row.get("params") or {}).get("stacks")
    if not stacks:
        return ""
    targets = ("dropout", "success")
    weeks = sorted({week for by_week in stacks.values() for week in by_week},
                   key=lambda week: (not str(week).isdigit(), int(week) if str(week).isdigit() else 0, str(week)))
    rows = [[esc(week), *(esc(number((stacks.get(target, {}).get(week) or {}).get(part), 2))
                          for target in targets for part in ("forest", "guess"))] for week in weeks]
    return "".join([
        f"<h3>{esc(row['model'])}: forest and guess by course week</h3>",
        note("Where a course week's forest has learned both classes, its probability is the forest's and the "
             "label-free guess's together: sigmoid(intercept + forest weight × logit(forest) + guess weight × "
             "logit(guess)), the weights fitted on the outcomes of the forest's last fit. A guess weight near 0: "
             "the week trusts its forest; as large as the forest's: its outcomes say the guess ranks as well."),
        table(["course week", *(f"{target}: {part} weight" for target in targets for part in ("forest", "guess"))],
              rows, frozenset(range(1, 5)), f"stacks-{row['model']}")])


def _label_free(params: dict[str, Any] | None) -> str:
    """What a version answers with where a course week has learned nothing: its surrogate, or the priors."""
    surrogate = (params or {}).get("surrogate")
    if not surrogate:
        return "the priors"
    return (f"learned from {esc(number(surrogate.get('enrolments')))} running enrolments "
            f"({esc(number(surrogate.get('rows')))} earlier weeks)")


def model_page(current: Sequence[dict[str, Any]], weeks: Sequence[views.ModelWeek]) -> str:
    if not current:
        return layout("Model", note("No model version published yet: the scores come from the label-free priors."))
    rows = [[esc(r["model"]), number(r["version"]), esc(r["created_at"] or "–"), number(r["n_labels"]),
             bullets(f"{k}: {number(v, 3) if isinstance(v, int | float) else '–'}"
                     for k, v in sorted((r["metrics"] or {}).items())),
             _label_free(r.get("params"))] for r in current]
    parts = ["<h2>Current version</h2>",
             table(["model", "version", "published", "labels learned", "rolling quality",
                    "before a week has labels"], rows, frozenset({1, 3}), "current"),
             note("Before a course week has learned labels of both classes, a version answers with a guess "
                  "learned from the enrolments still running (where they are in later weeks), or the priors "
                  "built on the school's hypotheses."),
             *map(_course_weeks, current)]
    for model in sorted({w.model for w in weeks}):
        mine = [w for w in weeks if w.model == model]
        labels = [w.week for w in mine]
        names = sorted({k for w in mine for k in w.metrics})
        parts += [f"<h2>{esc(model)}: week by week</h2>",
                  note("Each week's last published version: its rolling quality (over its recent labels) "
                       "and the labels learned that week.")]
        parts += _metric_charts("rolling {} by week", labels, {n: [w.metrics.get(n) for w in mine] for n in names})
        parts += [svg.bars("labels learned by week", labels,
                           [Series("labels", [w.learned for w in mine], "#1565c0")], "labels"),
                  table(["week", "version", "labels (total)", "learned that week", *map(esc, names)],
                        [[esc(w.week), number(w.version), number(w.n_labels), number(w.learned),
                          *(number(w.metrics.get(n), 3) for n in names)] for w in mine],
                        frozenset(range(1, 4 + len(names))), f"weeks-{model}")]
    return layout("Model", "".join(parts))
