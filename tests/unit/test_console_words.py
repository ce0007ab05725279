"""The console speaks Russian (the school's) and English: every page in Russian carries no English sentence, the
browser's Accept-Language picks the language, and the reasons are worded again in the page's language."""
from __future__ import annotations

import dataclasses
import re
import string
from collections.abc import Iterator
from datetime import date, datetime

import pytest

from features.hypotheses import LANGUAGES, Language
from online_models.uplift import TransitionRecord, report
from streams.console import html, pages, views, words
from streams.console.words import _TEXTS, negotiate, say, speaking
from streams.tokens import Reader

#: Words an English sentence would hold; a Russian page shows none of them outside names and codes.
ENGLISH = re.compile(r"\b(?:the|and|of|by|to|in|with|from|for|no|not|this|each|every|a)\s+[a-z]{3,}", re.IGNORECASE)
#: What stays as it is in both languages: codes, metric names, settings.
NAMES = re.compile(r"[A-Za-z_]+(?:_[A-Za-z0-9]+)+|P\(|AUC|MAE|log loss|sigmoid|logit|SCORER_\w+|scorer \w+|CSV|ASCII")


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_text_has_both_languages_and_fills_from_the_same_values() -> None:
    for key, texts in _TEXTS.items():
        assert set(texts) == set(LANGUAGES), key
        names = set().union(*(_placeholders(text) for text in texts.values()))
        for language in LANGUAGES:
            with speaking(language):
                assert "{" not in say(key, **dict.fromkeys(names, "x")), key


@pytest.mark.parametrize(("header", "expected"), [
    (None, "ru"), ("", "ru"), ("ru-RU,ru;q=0.9,en-US;q=0.8", "ru"), ("en-US,en;q=0.9,ru;q=0.8", "en"),
    ("de-DE,de;q=0.9,en;q=0.5", "en"), ("fr", "ru"), ("en;q=0.2, ru;q=0.7", "ru"), ("ru;q=0, en", "en"),
    ("*", "ru"), ("en;q=abc, ru", "ru"), ("RU", "ru")])
def test_the_browsers_first_language_the_console_speaks_else_the_schools(header: str | None, expected: str) -> None:
    assert negotiate(header, "ru") == expected


def test_the_reasons_are_worded_in_the_pages_language_whatever_was_stored() -> None:
    stored = [{"code": "timeliness.missed_deadlines", "hypothesis": "timeliness", "feature": "missed_deadlines",
               "value": 4.0, "norm": 1.0, "norm_kind": "cohort", "effect": 0.12,
               "text": "Своевременность: пропущено дедлайнов 4 (норма курса 1); риск отчисления +12 п.п."},
              {"code": "legacy.only_text", "text": "a sentence stored before factors had parts"}]
    with speaking("en"):
        assert words.reasons(stored) == ["Timeliness: deadlines missed 4 (course norm 1); dropout risk +12 pp",
                                         "a sentence stored before factors had parts"]
    with speaking("ru"):
        assert words.reasons(stored)[0] == stored[0]["text"]


def _visible(page: str) -> str:
    """The page's text and its attributes people read (titles, labels), tags and codes taken out."""
    shown = " ".join(re.findall(r'(?:title|aria-label)="([^"]*)"', page))
    text = re.sub(r"<[^>]+>", " ", re.sub(r"<style>.*?</style>", " ", page, flags=re.S))
    return NAMES.sub(" ", text + " " + shown)


def _pages() -> Iterator[str]:
    """Every page, with data in every part of it."""
    series = views.status_series([{"day": date(2024, 3, 1), "status": "active", "previous": None, "n": 3}])
    places = [{"module": 1, "theme": None, "theme_id": 5, "task_id": 9, "task_name": None, "course_week": 2,
               "to_dozing": 2, "to_asleep": 1}]
    factor = {"code": "progress.exercise_pace", "hypothesis": "progress", "feature": "exercise_pace", "value": 0.2,
              "norm": 0.8, "norm_kind": "cohort", "effect": 0.2}
    rows = views.at_risk_rows([{"user_id": u, "enrolment": "7:1", "status": s, "p_dropout": 0.7, "p_success": 0.2,
                                "days_inactive": 8.0, "factors": [factor], "basis": {"p_dropout": b}}
                               for u, s, b in ((1, "dozing", "guess"), (2, "active", "calibrated_guess"),
                                               (3, "asleep", "learned"))], {(1, "7:1"): 0.5, (2, "7:1"): 0.7})
    alerts = [TransitionRecord(u, "7:1", "status_change", "active", "dozing", 86_400.0 * u, u >= 5)
              for u in range(10)]
    course = pages.CourseView(course_id=7, now=datetime(2024, 3, 10), counts={"active": 300, "dozing": 2},
                              series=series, by_week=views.stops_by_week(places),
                              by_place=views.stops_by_place(places), at_risk=rows, sort="reachable",
                              quadrants=views.quadrants([{"user_id": 1, "x": 2.0, "y": 0.9}]),
                              uplift=report(alerts, source="course 7"))
    yield pages.course_page(course)
    yield pages.course_page(dataclasses.replace(course, counts={}, at_risk=[]))
    current = {"user_id": 5, "enrolment": "7:1", "course_id": 7, "status": "dozing", "status_since": None,
               "p_dropout": 0.4, "p_success": 0.5, "progress_pred": 40.0, "last_activity_at": datetime(2024, 3, 11),
               "factors": [factor], "features": {"days_inactive": 9.0}, "updated_at": datetime(2024, 3, 12, 11),
               "basis": {"p_success": "guess"}}
    transitions = [{"enrolment": "7:1", "at": datetime(2024, 3, 12), "kind": kind, "from_status": "active",
                    "to_status": "dozing", "days_inactive": 7.0, "course_week": 2, "theme": None, "task_name": None,
                    "task_id": 3, "p_dropout": 0.4} for kind in ("status_change", "at_risk")]
    history = views.enrolment_histories([{"enrolment": "7:1", "as_of": datetime(2024, 3, 11), "status": "active",
                                          "progress_pred": 10.0, "p_dropout": 0.1, "p_success": 0.5}])
    days = views.timeline(current, [], transitions, {date(2024, 3, 11)})
    yield pages.student_page(5, [pages.EnrolmentView(current, history[0], views.feature_norms(
        current["features"], {}), days)], transitions)
    yield pages.student_page(6, [], [])
    metrics = {str(w): {"dropout_auc": 0.7, "success_auc": None, "dropout_logloss": 0.5, "dropout_bias": 0.01,
                        "progress_mae": 12.0, "examples": 10} for w in (1, 2)}
    stacks = {"dropout": {"1": {"intercept": 0.1, "forest": 0.8, "guess": 0.2}}}
    model = [{"model": "forest", "version": 9, "created_at": None, "n_labels": 60, "metrics": {"dropout_auc": 0.7},
              "metrics_by_week": metrics, "params": {"surrogate": {"enrolments": 30, "rows": 90}, "stacks": stacks}},
             {"model": "older", "version": 4, "created_at": None, "n_labels": 5, "metrics": {},
              "metrics_by_week": None, "params": None}]
    weeks = views.model_weeks([{"model": "forest", "version": 9, "week": datetime(2024, 3, 4), "n_labels": 60,
                                "metrics": {"dropout_auc": 0.7}}])
    yield pages.model_page(model, weeks)
    yield pages.model_page([], [])
    yield pages.index_page(views.course_summaries([{"course_id": 7, "status": "active", "n": 3},
                                                    {"course_id": None, "status": "asleep", "n": 1}]))
    yield pages.index_page([])
    yield pages.login_page("wrong")
    yield pages.login_page(configured=False)


@pytest.mark.parametrize("language", ["ru", "en"])
def test_every_page_speaks_one_language(language: Language) -> None:
    other: Language = "en" if language == "ru" else "ru"
    foreign = {texts[other] for texts in _TEXTS.values()  # the other language's phrases
               if texts[other] != texts[language] and " " in texts[other] and "{" not in texts[other]}
    with speaking(language):
        for page in _pages():
            assert f'<html lang="{language}">' in page
            assert not [text for text in foreign if text in _visible(page)]
            if language == "ru":
                assert not ENGLISH.findall(_visible(page)), ENGLISH.findall(_visible(page))
            else:
                assert not re.findall(r"[а-яё]{3,}", _visible(page), re.IGNORECASE)


def test_the_header_names_who_is_signed_in_and_the_courses_they_are_limited_to() -> None:
    with html.signed_in_as(Reader("Анна <b>", frozenset({49, 3}))), speaking("ru"):
        page = pages.index_page([])
    assert '<span class="who">Анна &lt;b&gt; · только курсы 3, 49</span>' in page
    with html.signed_in_as(Reader("shared token")):
        assert '<span class="who">shared token</span>' in pages.index_page([])
    assert 'class="who"' not in pages.index_page([]) and 'class="who"' not in pages.login_page()
