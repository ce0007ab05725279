"""The console's pure parts: escaping, sort parsing, quadrants, trend arrows, series, sessions, and
pages for empty and hostile data (no server, no browser)."""
from __future__ import annotations

import dataclasses
import re
from datetime import date, datetime
from html.parser import HTMLParser

import pytest

from online_models.prequential import WEEK_CAP
from streams.console import auth, html, pages, svg, views
from streams.console.html import CSP, CSS
from streams.console.words import say
from streams.tokens import PREVIOUS_READER, SHARED_READER, DoorTokens, Person, Reader
from streams.web import Admitted, InvalidParameter, Refusal, parse_sort

XSS = '<script>alert("x")</script>&"\''


class _Checker(HTMLParser):
    """Collects tags, and every text node, to prove nothing hostile became markup."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(page: str) -> _Checker:
    checker = _Checker()
    checker.feed(page)
    return checker


def _factor(text: str) -> dict[str, object]:
    return {"code": "progress.activities_done_share", "hypothesis": "progress", "feature": "activities_done_share",
            "value": 0.1, "norm": 0.6, "norm_kind": "cohort", "effect": 0.2, "text": text}


def _course_view(rows: list[views.AtRiskRow], total: int = 3, sort: str = "p_dropout") -> pages.CourseView:
    series = views.status_series([{"day": date(2024, 3, 1), "status": "active", "previous": None, "n": total}])
    points = [{"module": 1, "theme": XSS, "theme_id": 5, "task_id": 9, "task_name": None, "course_week": 2,
               "to_dozing": 2, "to_asleep": 1}]
    return pages.CourseView(course_id=7, now=datetime(2024, 3, 10), counts={"active": total},
                            series=series, by_week=views.stops_by_week(points), by_place=views.stops_by_place(points),
                            at_risk=rows, sort=sort,  # type: ignore[arg-type]
                            quadrants=views.quadrants([{"user_id": 1, "x": 2.0, "y": 0.9, "status": "active"}]))


def test_parse_sort_takes_the_four_orders_and_refuses_anything_else() -> None:
    assert parse_sort(None, views.DEFAULT_SORT) == "reachable" and parse_sort(None, "status") == "status"
    for sort in ("reachable", "p_dropout", "status", "days_inactive"):
        assert parse_sort(sort, "status") == sort
    for bad in ("", "P_DROPOUT", "user_id; drop table", "status ", "p_dropout\x00", XSS):
        with pytest.raises(InvalidParameter) as error:
            parse_sort(bad, views.DEFAULT_SORT)
        assert error.value.parameter == "sort" and XSS not in str(error.value)


@pytest.mark.parametrize(("engagement", "performance", "expected"), [
    (14, 1.0, views.ON_TRACK), (4, 0.5, views.ON_TRACK), (3.99, 0.5, views.UNDER_ENGAGED),
    (10, 0.49, views.ACADEMIC_RISK), (0, 0, views.DROPOUT_RISK), (None, None, views.DROPOUT_RISK),
    (None, 0.9, views.UNDER_ENGAGED)])
def test_quadrant_cut_points(engagement: float | None, performance: float | None, expected: str) -> None:
    assert views.quadrant(engagement, performance) == expected


def test_quadrants_count_every_quadrant_zeros_included() -> None:
    q = views.quadrants([{"user_id": 1, "x": 10, "y": 0.9}, {"user_id": 2, "x": None, "y": None}])
    assert q.counts == {views.ON_TRACK: 1, views.UNDER_ENGAGED: 0, views.ACADEMIC_RISK: 0, views.DROPOUT_RISK: 1}


@pytest.mark.parametrize(("now", "before", "arrow"), [
    (0.70, 0.50, "↑"), (0.55, 0.50, "↑"), (0.54, 0.50, "→"), (0.30, 0.50, "↓"), (0.5, None, "·"),
    (None, 0.5, "·"), (float("nan"), 0.5, "·")])
def test_trend_arrow(now: float | None, before: float | None, arrow: str) -> None:
    assert views.trend(now, before).arrow == arrow


def test_status_series_carries_counts_over_days_without_changes() -> None:
    series = views.status_series([
        {"day": date(2024, 3, 1), "status": "active", "previous": None, "n": 3},
        {"day": date(2024, 3, 4), "status": "dozing", "previous": "active", "n": 2},
        {"day": date(2024, 3, 5), "status": "active", "previous": "dozing", "n": 1}])
    assert series.days == [date(2024, 3, d) for d in range(1, 6)]
    assert series.counts["active"] == [3, 3, 3, 1, 2]
    assert series.counts["dozing"] == [0, 0, 0, 2, 1]
    assert views.status_series([]).days == []


def test_stops_by_week_and_place() -> None:
    points = [{"module": 1, "theme": "Loops", "theme_id": 3, "task_id": 8, "task_name": None, "course_week": 2,
               "to_dozing": 2, "to_asleep": 1},
              {"module": None, "theme": None, "theme_id": None, "task_id": None, "task_name": None,
               "course_week": None, "to_dozing": 5, "to_asleep": 0},
              {"module": 2, "theme": None, "theme_id": 4, "task_id": None, "task_name": "Quiz", "course_week": 1,
               "to_dozing": 0, "to_asleep": 4}]
    weeks = views.stops_by_week(points)
    assert (weeks.labels, weeks.dozing, weeks.asleep) == (["w1", "w2"], [0, 2], [4, 1])
    places = views.stops_by_place(points)
    assert places.labels == ["module 1 · Loops · task 8", "unknown place", "module 2 · theme 4 · Quiz"]


def test_model_weeks_count_the_labels_learned_each_week() -> None:
    rows = [{"model": "m", "week": datetime(2024, 1, 1), "version": 3, "n_labels": 10,
             "metrics": {"dropout_auc": 0.7}},
            {"model": "m", "week": datetime(2024, 1, 8), "version": 9, "n_labels": 25,
             "metrics": {"dropout_auc": None}}]
    weeks = views.model_weeks(rows)
    assert [(w.week, w.learned) for w in weeks] == [("2024-01-01", 10), ("2024-01-08", 15)]
    assert weeks[1].metrics == {"dropout_auc": None}


def _week_metrics(week: int) -> dict[str, float | int | None]:
    """A course week's stored metrics as the registry publishes them (values differ week to week)."""
    return {"dropout_auc": 0.5 + week / 100, "success_auc": None if week % 2 else 0.6,
            "dropout_logloss": 0.7 - week / 100, "success_logloss": 0.4, "progress_mae": 20.0 - week / 2,
            "dropout_bias": 0.05 - week / 50, "success_bias": -0.03, "examples": 10 * week}


def _table_rows(page: str, table_id: str) -> list[list[str]]:
    """The cells of the table `table_id`, row by row."""
    found = re.search(f'<table id="{re.escape(table_id)}">.*?<tbody>(.*?)</tbody>', page)
    assert found is not None, table_id
    return [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", found.group(1))]


def test_course_week_quality_orders_weeks_as_numbers_and_fills_the_gaps() -> None:
    stored = {str(w): _week_metrics(w) for w in (10, 2, 4, WEEK_CAP)}  # "10" sorts before "2" as text
    quality = views.course_week_quality(stored)
    assert quality is not None
    assert quality.weeks == list(range(2, WEEK_CAP + 1))
    assert quality.labels[0] == "2" and quality.labels[-1] == f"{WEEK_CAP}+"
    for i, week in enumerate(quality.weeks):
        expected = stored.get(str(week), {})
        assert quality.examples[i] == (expected.get("examples") or 0)
        assert {n: v[i] for n, v in quality.metrics.items()} == {n: expected.get(n) for n in quality.metrics}
    assert set(quality.metrics) == set(_week_metrics(1)) - {"examples"}
    for empty in (None, {}):
        assert views.course_week_quality(empty) is None


def test_model_page_shows_each_current_version_by_course_week() -> None:
    stored = {str(w): _week_metrics(w) for w in (1, 2, 3)}
    current = [{"model": XSS, "version": 9, "created_at": None, "n_labels": 60, "metrics": {"dropout_auc": 0.7},
                "metrics_by_week": stored, "params": {"surrogate": {"enrolments": 3000, "rows": XSS}}},
               {"model": "older", "version": 4, "created_at": None, "n_labels": 5, "metrics": {},
                "metrics_by_week": None, "params": None}]
    page = pages.model_page(current, [])
    parsed = _parse(page)
    assert "script" not in parsed.tags and XSS in "".join(parsed.text)
    guesses = [row[-1] for row in _table_rows(page, "current")]
    assert guesses == [f"learned from 3000 running enrolments ({svg.esc(XSS)} earlier weeks)", "the priors"]
    assert page.count("<svg") == 4  # AUC, log loss, bias and MAE of the one version that has them
    for title in ("AUC by course week", "log loss by course week", "probability bias by course week",
                  "progress error by course week"):
        assert f'aria-label="{title}"' in page
    rows = _table_rows(page, svg.esc(f"course-weeks-{XSS}"))
    names = sorted(set(_week_metrics(1)) - {"examples"})
    assert rows == [[str(w), str(stored[str(w)]["examples"]),
                     *(html.number(stored[str(w)][n], 3) for n in names)] for w in (1, 2, 3)]
    assert "–" in rows[0]  # week 1's undefined success AUC
    assert "older: quality by course week (version 4)" in page and "Version 4 has no metrics by course week" in page
    assert 'id="course-weeks-older"' not in page
    assert "forest and guess by course week" not in page  # no week has stacked its forest yet


def test_model_page_shows_how_each_course_week_weighs_its_forest_against_the_guess() -> None:
    stacks = {"dropout": {"2": {"intercept": -0.2, "forest": 0.81, "guess": 0.12, "rows": 900},
                          "10": {"intercept": 0.1, "forest": 0.3, "guess": 0.7, "rows": 60}},
              "success": {"2": {"intercept": 0.0, "forest": 1.02, "guess": -0.05, "rows": 900}, XSS: {"forest": XSS}}}
    current = [{"model": "forest", "version": 9, "created_at": None, "n_labels": 60, "metrics": {},
                "metrics_by_week": {str(w): _week_metrics(w) for w in (2, 10)}, "params": {"stacks": stacks}}]
    page = pages.model_page(current, [])
    assert "script" not in _parse(page).tags
    assert _table_rows(page, "stacks-forest") == [
        ["2", "0.81", "0.12", "1.02", "-0.05"],
        ["10", "0.30", "0.70", "–", "–"],  # success has learned nothing stackable in week 10
        [svg.esc(XSS), "–", "–", svg.esc(XSS), "–"],  # whatever a row holds is shown as text
    ]


def test_course_page_escapes_student_data_and_links_each_student() -> None:
    rows = views.at_risk_rows(
        [{"user_id": 42, "enrolment": "7:1", "status": "asleep", "p_dropout": 0.9, "p_success": 0.1,
          "days_inactive": 21.0, "factors": [_factor(XSS)]}], {(42, "7:1"): 0.5})
    page = pages.course_page(_course_view(rows))
    parsed = _parse(page)
    assert "script" not in parsed.tags
    assert XSS in "".join(parsed.text)  # shown as text, in the reasons and the place chart
    assert '<a href="/console/students/42">42</a>' in page and "↑" in page
    assert page.count("<svg") == 4 and 'id="at-risk"' in page


def test_a_score_the_guess_gave_is_marked_and_explained() -> None:
    """A curator can tell a ranking guess from a learned probability: the list marks each guessed P(dropout)
    and says what the marks mean; a list of learned ones (or of rows from before rows said) has no mark."""
    def row(user_id: int, basis: object) -> dict[str, object]:
        return {"user_id": user_id, "enrolment": "7:1", "status": "active", "p_dropout": 0.7, "p_success": 0.2,
                "days_inactive": 1.0, "factors": None, "basis": basis}

    learned = {"progress": "learned", "p_dropout": "learned", "p_success": "learned"}
    rows = views.at_risk_rows([row(1, {**learned, "p_dropout": "guess"}),
                               row(2, {**learned, "p_dropout": "calibrated_guess"}), row(3, learned)], {})
    assert [r.dropout_mark for r in rows] == ["guess", "leveled guess", ""]
    page = pages.course_page(_course_view(rows))
    cells = [r[2] for r in _table_rows(page, "at-risk")]
    assert cells == ['0.70 <span class="guess">guess</span>', '0.70 <span class="guess">leveled guess</span>', "0.70"]
    assert html.note(say("guess.note")) in page
    plain = pages.course_page(_course_view(views.at_risk_rows([row(3, learned), row(4, None)], {})))
    assert [r[2] for r in _table_rows(plain, "at-risk")] == ["0.70", "0.70"]
    assert html.note(say("guess.note")) not in plain
    current = {**row(5, {**learned, "p_success": "guess", "progress": "guess"}), "course_id": 7, "status_since": None,
               "progress_pred": 40.0, "last_activity_at": None, "features": {}}
    page = pages.student_page(5, [pages.EnrolmentView(current, None, [], [])], [])
    text = " ".join("".join(_parse(page).text).split())
    assert "P(dropout) 0.70, P(success) 0.20 guess, progress forecast 40.0 guess;" in text
    assert say("guess.note") in text


def test_sort_links_mark_the_current_order() -> None:
    page = pages.course_page(_course_view([], sort="status"))
    assert "status ▼" in page and "<strong>status</strong>" in page
    assert 'href="/console/courses/7?sort=p_dropout"' in page and 'href="/console/courses/7?sort=days_inactive"' in page
    assert 'href="/console/courses/7?sort=reachable"' in page and say("reachable_note") not in page


def test_the_default_order_is_named_and_explained_though_no_column_is_its_own() -> None:
    page = pages.course_page(_course_view([], sort=views.DEFAULT_SORT))
    assert "<strong>still reachable</strong>" in page and "?sort=reachable" not in page
    assert say("reachable_note") in " ".join(_parse(page).text)
    assert all(f'href="/console/courses/7?sort={s}"' in page for s in ("p_dropout", "status", "days_inactive"))


def test_more_students_than_listed_says_so() -> None:
    rows = views.at_risk_rows([{"user_id": 1, "enrolment": "", "status": "active", "p_dropout": None,
                                "p_success": None, "days_inactive": None, "factors": None}], {})
    page = pages.course_page(_course_view(rows))
    assert "The first 1 of 3 enrolments" in page and "All 3 enrolments in this order as CSV" in page
    assert 'href="/console/courses/7/at-risk.csv?sort=p_dropout"' in page  # the list's order, whole
    assert 'href="/console/courses/7/at-risk.csv"' in pages.course_page(_course_view(rows, sort=views.DEFAULT_SORT))


def test_empty_course_and_empty_index_and_unknown_student() -> None:
    empty = pages.CourseView(course_id=9, now=None, counts={s: 0 for s in views.STATUS_COLORS},
                             series=views.status_series([]), by_week=views.stops_by_week([]),
                             by_place=views.stops_by_place([]), at_risk=[], sort="p_dropout",
                             quadrants=views.quadrants([]))
    assert "No enrolment of this course has been scored yet" in pages.course_page(empty)
    assert "No scores yet" in pages.index_page([])
    assert "has not seen this student" in pages.student_page(5, [], [])
    assert "No model version published yet" in pages.model_page([], [])


def test_student_page_escapes_and_charts() -> None:
    current = {"user_id": 5, "enrolment": "7:1", "course_id": 7, "status": "dozing", "status_since": None,
               "p_dropout": 0.4, "p_success": 0.5, "progress_pred": 40.0, "last_activity_at": None,
               "factors": [_factor(XSS)], "features": {"days_inactive": 9.0, "success_index": 0.5}}
    history = views.enrolment_histories([
        {"enrolment": "7:1", "as_of": datetime(2024, 3, d, 10 + k), "status": "active", "progress_pred": 10.0 + d,
         "p_dropout": 0.1 * d, "p_success": 0.5} for d in (1, 2, 5) for k in (0, 1)])
    assert history[0].days == ["2024-03-01", "2024-03-02", "2024-03-05"]  # one point per event-day
    transition = {"enrolment": "7:1", "at": datetime(2024, 3, 12), "kind": "status_change", "from_status": "active",
                  "to_status": "dozing", "days_inactive": 7.0, "course_week": 2, "theme": XSS, "task_name": None,
                  "task_id": 3, "p_dropout": 0.4}
    norms = views.feature_norms(current["features"], {"days_inactive": 2.0})
    current["updated_at"] = datetime(2024, 3, 12, 11)
    days = views.timeline(current, [], [transition])
    page = pages.student_page(5, [pages.EnrolmentView(current, history[0], norms, days)], [transition])
    parsed = _parse(page)
    assert "script" not in parsed.tags and XSS in "".join(parsed.text)
    assert page.count("<svg") == 3 and 'id="transitions"' in page and 'id="norms"' in page
    assert norms[0].gap == 7.0 and norms[1].value is None


def test_svg_labels_are_escaped_and_empty_inputs_say_so() -> None:
    chart = svg.bars(XSS, [XSS], [svg.Series(XSS, [3], "#000")], XSS)
    assert "<script" not in chart and "&lt;script&gt;" in chart
    assert "no data yet" in svg.lines("t", [], [], "y") and "no data yet" in svg.scatter("t", [], "x", "y", 1, 1,
                                                                                          0.5, 0.5, [])
    assert svg.nice_max(0) == 1 and svg.nice_max(7) == 10 and svg.nice_max(0.3) == pytest.approx(0.5)


def test_csp_allows_only_the_pages_own_style() -> None:
    assert "script-src" not in CSP and "default-src 'none'" in CSP
    digest = re.search(r"sha256-([A-Za-z0-9+/=]+)", CSP)
    assert digest is not None and CSS  # the style hash is taken from CSS itself


def test_session_cookie_holds_no_token_and_expires() -> None:
    token = "s3cret-token"
    tokens = DoorTokens(token)
    value = auth.session_value(token, now=1000.0)
    assert token not in value
    assert auth.session_reader(value, tokens, now=1000.0 + auth.SESSION_SECONDS - 1) == Reader(SHARED_READER)
    assert auth.session_reader(value, tokens, now=1000.0 + auth.SESSION_SECONDS) is None
    assert auth.session_reader(value, DoorTokens("another-token"), now=1001.0) is None
    expires, mac = value.split(".")
    forged = f"{int(expires) + 10**6}.{mac}"  # a longer expiry does not match the MAC
    for bad in (forged, "", ".", "x.y", "１２.ab", f"{expires}.", None, "9" * 40 + "." + mac):
        assert auth.session_reader(bad, tokens, now=1001.0) is None, bad
    assert auth.session_reader(value, DoorTokens(""), now=1001.0) is None
    assert auth.session_reader(value, DoorTokens("", token), now=1001.0) is None  # the previous one alone opens nothing
    header = auth.set_cookie(value, secure=False)
    assert "HttpOnly" in header and "SameSite=Strict" in header and "Path=/console" in header
    assert "Secure" not in header and "; Secure" in auth.set_cookie(value, secure=True)
    assert "; Secure" in auth.clear_cookie(secure=True) and "Max-Age=0" in auth.clear_cookie(secure=True)


@pytest.mark.parametrize(("tls", "forwarded", "secure"), [
    (False, None, False), (True, None, True), (False, "https", True), (False, "HTTPS, http", True),
    (False, "http", False), (False, "http, https", False), (True, "http", True)])
def test_the_cookie_is_secure_when_the_browser_came_over_https(tls: bool, forwarded: str | None,
                                                                secure: bool) -> None:
    """The worker's own TLS, or a proxy that ended it and says so in X-Forwarded-Proto (its first hop)."""
    assert auth.over_https(tls, forwarded) is secure


def test_a_persons_session_ends_when_they_are_removed_from_the_people_file() -> None:
    anna = Person("Anna", "anna-s-own-token-0123456789", frozenset({7}))
    boris = Person("Boris", "boris-s-own-token-0123456789")
    session = auth.session_value(anna.token, now=1000.0)  # keyed by her own token, as the login makes it
    assert auth.session_reader(session, DoorTokens("", people=(anna, boris)), now=1001.0) == Reader("Anna",
                                                                                                  frozenset({7}))
    assert auth.session_reader(session, DoorTokens("", people=(boris,)), now=1001.0) is None
    assert auth.authorize(None, None, DoorTokens("", people=(boris,)), 1.0) == auth.authorize(
        None, None, DoorTokens("shared"), 1.0)  # people alone: a browser without a session is asked to log in


def test_a_rotation_logs_nobody_out_until_the_previous_token_is_dropped() -> None:
    before_rotation = auth.session_value("old-token", now=1000.0)
    assert auth.session_reader(before_rotation, DoorTokens("new-token", "old-token"), now=1001.0) == Reader(
        PREVIOUS_READER)
    assert auth.session_reader(before_rotation, DoorTokens("new-token"), now=1001.0) is None


def test_authorize_needs_a_session_or_the_bearer_and_refuses_all_without_a_token() -> None:
    token = "tok"
    tokens = DoorTokens(token)
    session = auth.session_value(token, 0.0)
    assert auth.authorize(None, session, tokens, 1.0) == Admitted(Reader(SHARED_READER))
    assert auth.authorize(f"Bearer {token}", None, tokens, 1.0) == Admitted(Reader(SHARED_READER))
    refusal = auth.authorize(None, None, tokens, 1.0)
    assert isinstance(refusal, Refusal) and refusal.status == 401
    refusal = auth.authorize("Bearer nope", session + "x", tokens, 1.0)
    assert isinstance(refusal, Refusal) and refusal.status == 401
    refusal = auth.authorize(f"Bearer {token}", session, DoorTokens(""), 1.0)
    assert isinstance(refusal, Refusal) and refusal.status == 503


def test_timeline_holds_every_day_from_the_flow_start_with_its_status_at_the_day_end() -> None:
    current = {"updated_at": datetime(2024, 3, 10, 12), "status": "asleep",
               "features": {"days_since_course_start": 9.0}, "last_activity_at": datetime(2024, 3, 2, 9)}
    transitions = [
        {"at": datetime(2024, 3, 5, 8), "kind": "at_risk", "from_status": "active", "to_status": "active",
         "p_dropout": 0.7},
        {"at": datetime(2024, 3, 9, 9), "kind": "status_change", "from_status": "active", "to_status": "dozing",
         "p_dropout": 0.7},
        {"at": datetime(2024, 3, 10, 9), "kind": "status_change", "from_status": "dozing", "to_status": "asleep",
         "p_dropout": 0.8}]
    history = [{"as_of": datetime(2024, 3, 2, 10), "status": "active"}]
    days = views.timeline(current, history, transitions)
    assert [d.day for d in days] == [f"2024-03-{d:02d}" for d in range(1, 11)]
    assert [d.status for d in days] == ["active"] * 8 + ["dozing", "asleep"]
    assert days[1].note == "scored; last activity" and days[4].note.startswith("early warning")
    assert days[8].note == "alert active → dozing" and days[0].note == ""
    without_features = views.timeline({**current, "features": None}, history, transitions)
    assert without_features[0].day == "2024-03-02"  # the first moment known
    assert not any(d.active for d in days)  # no stored facts given: no day claims activity
    active = views.timeline(current, history, transitions, {date(2024, 3, 1), date(2024, 3, 2)})
    assert [d.active for d in active] == [True, True] + [False] * 8
    strip = pages._timeline(active)
    assert strip.count("<circle") == 2 and "2024-03-02: active; active; scored; last activity" in strip


def _uplift_report(held_back: int) -> dict[str, object]:
    """Ten notified enrolments all back within a day of their dozing alert, ten held out of whom
    `held_back` came back."""
    from dataclasses import replace as changed

    from online_models.uplift import TransitionRecord, report

    alerts = []
    for user in range(20):
        held = user >= 10
        quiet = TransitionRecord(user, "7:1", "status_change", "active", "dozing", 86_400.0 * user, held)
        back = not held or user - 10 < held_back
        alerts += [quiet, changed(quiet, from_status="dozing", to_status="active", at=quiet.at + 3_600)] if back \
            else [quiet]
    alerts.append(TransitionRecord(99, "7:1", "finished", "active", "finished", 86_400.0 * 40, False))
    return report(alerts, source="course 7")


def test_course_page_shows_whether_the_notifications_worked() -> None:
    found = pages.course_page(dataclasses.replace(_course_view([]), uplift=_uplift_report(held_back=1)))
    assert "notifications help" in found and "10/10 (100%)" in found and "1/10 (10%)" in found
    assert "+90.0 pp" in found and 'id="uplift"' in found
    unclear = pages.course_page(dataclasses.replace(_course_view([]), uplift=_uplift_report(held_back=9)))
    assert "no effect shown" in unclear
    off = pages.course_page(dataclasses.replace(_course_view([]), uplift={"held_out_share": 0.0, "kinds": {}}))
    assert "SCORER_HOLDOUT_SHARE is 0" in off and 'id="uplift"' not in off
