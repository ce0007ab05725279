"""The console's pages as HTML strings, from view-models (streams.console.views). Pure: a page is
a function of its data, so escaping, empty courses and sorting are unit-tested without a server."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from features.activity_status import ASLEEP, DOZING, STATUSES
from online_models.prequential import WEEK_CAP, WINDOW_PER_WEEK
from streams.console import svg, views, words
from streams.console.html import bullets, layout, link, note, number, status, table
from streams.console.svg import Point, Series, esc
from streams.console.words import say

_DOZING_COLOR, _ASLEEP_COLOR = views.STATUS_COLORS[DOZING], views.STATUS_COLORS[ASLEEP]
#: The at-risk list's orders, as its order line lists them.
_SORTS = ("reachable", "p_dropout", "status", "days_inactive")


def _sort_title(sort: str) -> str:
    return say(f"sort.{sort}")


def login_page(error: str | None = None, configured: bool = True) -> str:
    if not configured:
        return layout(say("login.title"), note(say("login.off")), signed_in=False)
    message = f'<p class="error" id="login-error">{esc(error)}</p>' if error else ""
    body = (f"{message}<form method=\"post\" action=\"/console/login\">"
            f"<label>{esc(say('login.token'))} "
            "<input type=\"password\" name=\"token\" autocomplete=\"current-password\" required></label> "
            f"<button type=\"submit\">{esc(say('login.submit'))}</button></form>" + note(say("login.note")))
    return layout(say("login.title"), body, signed_in=False)


def index_page(courses: Sequence[views.CourseSummary]) -> str:
    if not courses:
        return layout(say("courses.title"), note(say("courses.empty")))
    rows = [[link(f"/console/courses/{c.course_id}", c.course_id) if c.course_id is not None
             else esc(say("courses.no_course")), *(number(c.counts[s]) for s in STATUSES), number(c.total)]
            for c in courses]
    headers = [esc(say("courses.course")), *(esc(words.group(s)) for s in STATUSES), esc(say("enrolments"))]
    return layout(say("courses.title"), table(headers, rows, frozenset(range(1, 6)), "courses"))


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
    series = [Series(say("course.fell_dozing"), counts.dozing, _DOZING_COLOR),
              Series(say("course.fell_asleep"), counts.asleep, _ASLEEP_COLOR)]
    if horizontal:
        return svg.hbars(title, counts.labels, series)
    return svg.bars(title, counts.labels, series, say("course.transitions"))


def _sort_header(course_id: int, sort: str, current: str) -> str:
    title = _sort_title(sort)
    if sort == current:
        return f"{esc(title)} ▼"
    return link(f"/console/courses/{course_id}?sort={sort}", title)


def _sort_choice(course_id: int, current: str) -> str:
    """Every order of the list, the current one unlinked: the default has no column to click."""
    choices = (f"<strong>{esc(_sort_title(sort))}</strong>" if sort == current
               else _sort_header(course_id, sort, current) for sort in _SORTS)
    return f'<p class="sorts">{esc(say("course.order"))}: {" · ".join(choices)}</p>'


def _quadrant(view: CourseView) -> str:
    q = view.quadrants
    points = [Point(x, y, views.QUADRANT_COLORS[name],
                    say("quadrant.point", student=user_id, quadrant=_quadrant_name(name)))
              for user_id, x, y, name in q.points]
    corners = [(_quadrant_name(name), views.QUADRANT_COLORS[name])
               for name in (views.UNDER_ENGAGED, views.ON_TRACK, views.DROPOUT_RISK, views.ACADEMIC_RISK)]
    chart = svg.scatter(say("quadrant.chart"), points, say("quadrant.x", feature=views.ENGAGEMENT),
                        say("quadrant.y", feature=views.PERFORMANCE), views.ENGAGEMENT_MAX, views.PERFORMANCE_MAX,
                        views.ENGAGEMENT_CUT, views.PERFORMANCE_CUT, corners)
    counts = table([esc(say("quadrant.col")), esc(say("enrolments"))],
                   [[esc(_quadrant_name(k)), number(v)] for k, v in q.counts.items()], frozenset({1}),
                   "quadrant-counts")
    return (chart + note(say("quadrant.note", engagement=views.ENGAGEMENT, engagement_cut=f"{views.ENGAGEMENT_CUT:g}",
                             performance=views.PERFORMANCE, performance_cut=f"{views.PERFORMANCE_CUT:g}")
                         + say("quadrant.finished" if q.finished else "quadrant.unfinished")
                         + say("quadrant.limit", limit=views.QUADRANT_LIMIT)) + counts)


def _quadrant_name(name: str) -> str:
    return say(f"quadrant.{name}")


def course_page(view: CourseView) -> str:
    c = view.course_id
    title = say("course.title", course=c)
    headline = ", ".join(say("course.count", n=view.counts.get(s, 0), group=words.group(s)) for s in STATUSES)
    parts = [note(say("course.headline", total=view.total, counts=headline, now=f"{view.now:%Y-%m-%d %H:%M}")
                  if view.now else say("course.headline_no_time", total=view.total))]
    if view.total == 0:
        parts.append(note(say("course.empty")))
        return layout(title, "".join(parts))
    days = [views.day_label(d) for d in view.series.days]
    parts += [f"<h2>{esc(say('course.by_status'))}</h2>",
              svg.stacked_area(say("course.by_status_chart"), days,
                               [Series(words.group(s), view.series.counts[s], views.STATUS_COLORS[s])
                                for s in STATUSES], say("enrolments")),
              f"<h2>{esc(say('course.stops'))}</h2>", note(say("course.stops_note")),
              _stops(say("course.stops_by_week"), view.by_week, horizontal=False),
              _stops(say("course.stops_by_place"), view.by_place, horizontal=True),
              f"<h2>{esc(say('course.at_risk'))}</h2>"]
    shown = len(view.at_risk)
    parts.append(_sort_choice(c, view.sort))
    if view.total > shown:
        parts.append(note(say("course.first_of", shown=shown, total=view.total, order=_sort_title(view.sort))))
    order = "" if view.sort == views.DEFAULT_SORT else f"?sort={view.sort}"
    parts.append(f'<p><a href="/console/courses/{c}/at-risk.csv{order}" download>'
                 f'{esc(say("course.csv", total=view.total))}</a> {esc(say("course.csv_note"))}</p>')
    headers = [esc(say("col.student")), _sort_header(c, "status", view.sort), _sort_header(c, "p_dropout", view.sort),
               esc(say("col.week")), esc(say("col.p_success")), _sort_header(c, "days_inactive", view.sort),
               esc(say("col.reasons"))]
    rows = [[link(f"/console/students/{r.user_id}", r.user_id), status(r.status), _marked(r.p_dropout, r.dropout_mark),
             f'<span class="{r.trend.css}" title="{esc(r.trend.note)}">{r.trend.arrow}</span>',
             number(r.p_success), number(r.days_inactive, 1), bullets(r.reasons)] for r in view.at_risk]
    parts.append(table(headers, rows, frozenset({2, 4, 5}), "at-risk"))
    if view.sort == "reachable":
        parts.append(note(say("reachable_note")))
    parts.append(note(say("trend_note", days=views.TREND_DAYS, step=f"{views.TREND_STEP:g}")))
    if any(r.dropout_mark for r in view.at_risk):
        parts.append(note(say("guess.note")))
    parts += [f"<h2>{esc(say('quadrant.title'))}</h2>", _quadrant(view), f"<h2>{esc(say('uplift.title'))}</h2>",
              _uplift(view.uplift)]
    return layout(title, "".join(parts))


def _marked(value: float | None, mark: str, digits: int = 2) -> str:
    """A score, with its guess mark (views.guess_mark) where a label-free guess gave it."""
    return number(value, digits) + (f' <span class="guess">{esc(mark)}</span>' if mark else "")


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:+.1f} {say('uplift.pp')}"


def _uplift(result: dict[str, Any] | None) -> str:
    """Notified against held-out students per alert kind (`scorer uplift`'s report)."""
    if not result or not result["held_out_share"]:
        return note(say("uplift.none"))
    rows = []
    for kind, row in result["kinds"].items():
        arms = [f"{a['met']}/{a['n']} ({100 * a['rate']:.0f}%)" if a["n"] else "–"
                for a in (row["notified"], row["held_out"])]
        ci = row["ci95"]
        rows.append([esc(words.group(kind)), esc(say("uplift.outcome", outcome=words.reworded(row["outcome"]),
                                                        days=f"{result['days']:g}")), *arms,
                     _percent(row["difference"]), "–" if ci is None else f"{_percent(ci[0])} … {_percent(ci[1])}",
                     esc(words.reworded(row["verdict"]))])
    headers = [esc(say(f"uplift.{column}")) for column in ("alert", "outcome_col", "notified", "held_out",
                                                           "difference", "interval", "verdict")]
    return table(headers, rows, frozenset({2, 3, 4}), "uplift") + note(
        say("uplift.note", interval=words.reworded(result["interval"]), share=f"{100 * result['held_out_share']:.0f}"))


@dataclass(frozen=True)
class EnrolmentView:
    current: dict[str, Any]
    history: views.EnrolmentHistory | None
    norms: list[views.FeatureNorm]
    days: list[views.Day]


def _timeline(days: Sequence[views.Day]) -> str:
    cells = [(d.day, views.STATUS_COLORS.get(d.status, "#999"),
              "; ".join([words.term(d.status), *([say("student.active_day")] if d.active else []),
                         *([d.note] if d.note else [])]), d.active)
             for d in days]
    legend = [Series(words.term(s), [], views.STATUS_COLORS[s]) for s in STATUSES]
    return svg.strip(say("student.timeline"), cells, legend)


def _enrolment(e: EnrolmentView, transitions: Sequence[dict[str, Any]]) -> str:
    cur = e.current
    marks = {score: views.guess_mark(cur.get("basis"), score) for score in ("p_dropout", "p_success", "progress")}
    course = (esc(say("none")) if cur["course_id"] is None
              else link(f"/console/courses/{cur['course_id']}", cur["course_id"]))
    enrolment = esc(cur["enrolment"] or "-")
    summary = say("student.summary", status=esc(words.term(cur["status"])), since=esc(cur["status_since"] or "–"),
                  p_dropout=_marked(cur["p_dropout"], marks["p_dropout"]),
                  p_success=_marked(cur["p_success"], marks["p_success"]),
                  progress=_marked(cur["progress_pred"], marks["progress"], 1),
                  last=esc(cur["last_activity_at"] or "–"))
    parts = [f"<h2>{say('student.enrolment', course=course, enrolment=enrolment)}</h2>",
             f'<p class="note">{summary}</p>',
             *([note(say("guess.note"))] if any(marks.values()) else []),
             f"<h3>{esc(say('student.reasons'))}</h3>", bullets(words.reasons(cur["factors"]))]
    parts += [f"<h3>{esc(say('student.days'))}</h3>", note(say("student.days_note")), _timeline(e.days)]
    h = e.history
    if h is not None:
        parts += [f"<h3>{esc(say('student.scores'))}</h3>",
                  svg.lines(say("student.probabilities"), h.days,
                            [Series(say("sort.p_dropout"), h.p_dropout, "#c62828"),
                             Series(say("col.p_success"), h.p_success, "#2e7d32")], say("student.probability"),
                            y_max=1.0),
                  svg.lines(say("student.progress_chart"), h.days,
                            [Series(say("student.progress"), h.progress, "#1565c0")], say("student.progress"),
                            y_max=100.0)]
    mine = [t for t in transitions if t["enrolment"] == cur["enrolment"]]
    parts.append(f"<h3>{esc(say('student.history'))}</h3>")
    if mine:
        rows = [[esc(t["at"]), esc(words.term(t["kind"])), f"{status(t['from_status'])} → {status(t['to_status'])}",
                 number(t["days_inactive"], 1), number(t["course_week"]), esc(t["theme"] or "–"),
                 esc(t["task_name"] or t["task_id"] or "–"), number(t["p_dropout"])] for t in mine]
        headers = [esc(say(key)) for key in ("col.at", "col.kind", "col.change", "sort.days_inactive", "col.week",
                                             "col.theme", "col.task", "sort.p_dropout")]
        parts.append(table(headers, rows, frozenset({3, 4, 7}), "transitions"))
    else:
        parts.append(note(say("student.no_alert")))
    parts.append(f"<h3>{esc(say('student.against'))}</h3>")
    rows = [[esc(words.feature(n.name)), number(n.value), number(n.median), number(n.gap)] for n in e.norms]
    headers = [esc(say(key)) for key in ("col.feature", "col.this_student", "col.course_median", "col.difference")]
    parts.append(table(headers, rows, frozenset({1, 2, 3}), "norms"))
    return "".join(parts)


def student_page(user_id: int, enrolments: Sequence[EnrolmentView], transitions: Sequence[dict[str, Any]]) -> str:
    title = say("student.title", student=user_id)
    if not enrolments:
        return layout(title, note(say("student.unseen")))
    return layout(title, "".join(_enrolment(e, transitions) for e in enrolments))


_METRIC_COLORS = ("#c62828", "#2e7d32", "#1565c0", "#6a1b9a", "#ef6c00", "#00838f")
#: The metrics charted together, by name suffix: (title's key, y axis's key, suffix, y top: an AUC is at most 1).
_METRIC_GROUPS = (("metric.auc", "metric.auc", "_auc", 1.0), ("metric.logloss", "metric.logloss", "_logloss", None),
                  ("metric.bias", "metric.bias_axis", "_bias", None), ("metric.mae", "metric.mae_axis", "_mae", None))


def _metric_charts(title: str, labels: Sequence[str], values: Mapping[str, Sequence[float | None]]) -> list[str]:
    """One line chart per metric group that `values` (metric name -> a value per label) holds; `title`
    is the key of the chart's title, whose {group} is the group's name."""
    charts = []
    for group, axis, suffix, top in _METRIC_GROUPS:
        names = [n for n in values if n.endswith(suffix)]
        if names:
            charts.append(svg.lines(say(title, group=say(group)), labels,
                                    [Series(n, values[n], _METRIC_COLORS[i % len(_METRIC_COLORS)])
                                     for i, n in enumerate(names)], say(axis), y_max=top))
    return charts


def _course_weeks(row: dict[str, Any]) -> str:
    """The current version's quality by course week: charts and a table, or a note when it has none."""
    title = f"<h2>{esc(say('model.by_course_week', model=row['model'], version=row['version']))}</h2>"
    quality = views.course_week_quality(row["metrics_by_week"])
    if quality is None:
        return title + note(say("model.no_weeks", version=row["version"]))
    names = list(quality.metrics)
    rows = [[esc(label), number(examples), *(number(quality.metrics[n][i], 3) for n in names)]
            for i, (label, examples) in enumerate(zip(quality.labels, quality.examples))]
    return "".join([
        title,
        note(say("model.prequential", window=WINDOW_PER_WEEK, cap=WEEK_CAP)),
        *_metric_charts("model.by_course_week_chart", quality.labels, quality.metrics),
        table([esc(say("col.course_week")), esc(say("col.examples")), *map(esc, names)], rows,
              frozenset(range(1, 2 + len(names))),
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
    headers = [esc(say("col.course_week")), *(esc(say("model.stack_col", target=say(f"target.{target}"),
                                                       part=say(f"part.{part}")))
                                              for target in targets for part in ("forest", "guess"))]
    return "".join([
        f"<h3>{esc(say('model.stacks', model=row['model']))}</h3>", note(say("model.stacks_note")),
        table(headers, rows, frozenset(range(1, 5)), f"stacks-{row['model']}")])


def _label_free(params: dict[str, Any] | None) -> str:
    """What a version answers with where a course week has learned nothing: its surrogate, or the priors."""
    surrogate = (params or {}).get("surrogate")
    if not surrogate:
        return esc(say("model.priors"))
    return esc(say("model.surrogate", enrolments=number(surrogate.get("enrolments")),
                   rows=number(surrogate.get("rows"))))


def model_page(current: Sequence[dict[str, Any]], weeks: Sequence[views.ModelWeek]) -> str:
    if not current:
        return layout(say("model.title"), note(say("model.none")))
    rows = [[esc(r["model"]), number(r["version"]), esc(r["created_at"] or "–"), number(r["n_labels"]),
             bullets(f"{k}: {number(v, 3) if isinstance(v, int | float) else '–'}"
                     for k, v in sorted((r["metrics"] or {}).items())),
             _label_free(r.get("params"))] for r in current]
    headers = [esc(say(key)) for key in ("col.model", "col.version", "col.published", "col.labels_learned",
                                         "col.rolling", "col.before_labels")]
    parts = [f"<h2>{esc(say('model.current'))}</h2>", table(headers, rows, frozenset({1, 3}), "current"),
             note(say("model.before_note")), *map(_course_weeks, current)]
    for model in sorted({w.model for w in weeks}):
        mine = [w for w in weeks if w.model == model]
        labels = [w.week for w in mine]
        names = sorted({k for w in mine for k in w.metrics})
        parts += [f"<h2>{esc(say('model.week_by_week', model=model))}</h2>", note(say("model.week_by_week_note"))]
        parts += _metric_charts("model.rolling_chart", labels, {n: [w.metrics.get(n) for w in mine] for n in names})
        parts += [svg.bars(say("model.labels_chart"), labels,
                           [Series(say("model.labels"), [w.learned for w in mine], "#1565c0")], say("model.labels")),
                  table([esc(say(key)) for key in ("col.week", "col.version", "col.labels_total",
                                                   "col.learned_that_week")] + [esc(n) for n in names],
                        [[esc(w.week), number(w.version), number(w.n_labels), number(w.learned),
                          *(number(w.metrics.get(n), 3) for n in names)] for w in mine],
                        frozenset(range(1, 4 + len(names))), f"weeks-{model}")]
    return layout(say("model.title"), "".join(parts))
