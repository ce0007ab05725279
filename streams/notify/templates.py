"""Message texts per action, in the alert's language. Pure: no I/O.

The alert record carries its reasons as sentences in the worker's SCORER_REASON_LANGUAGE but no
language field (an `language` field is honoured if a later schema adds one), so the language is
read off those sentences: Cyrillic is Russian, other letters English, none: the fallback given.
"""
from __future__ import annotations

import re
from typing import Any

from streams.notify.policy import Action, part

_TEXTS: dict[str, dict[str, str]] = {
    "ru": {
        "nudge": "Мы скучаем! Вы не заходили на курс {days} дн. Загляните: {next}.",
        "urge": "Вы давно не были на курсе ({days} дн.). Вернитесь, пока не поздно: {next}. "
                "Куратор свяжется с вами.",
        "curator_urge": "Студент {user_id} (курс {course_id}) не заходит {days} дн. Причины: {reasons}",
        "curator": "Студент {user_id} (курс {course_id}) в зоне риска отчисления ({risk}). Причины: {reasons}",
        "next": "следующее задание «{task}»", "no_next": "вас ждёт следующий урок", "no_reasons": "не указаны",
        "guessed": "{risk}, оценка по активности до первых итогов",
    },
    "en": {
        "nudge": "We miss you! You have not visited the course for {days} days. Come back: {next}.",
        "urge": "You have been away from the course for {days} days. Come back while there is time: {next}. "
                "Your curator will get in touch.",
        "curator_urge": "Student {user_id} (course {course_id}) has been away for {days} days. Reasons: {reasons}",
        "curator": "Student {user_id} (course {course_id}) is at risk of dropping out ({risk}). Reasons: {reasons}",
        "next": "the next task is “{task}”", "no_next": "your next lesson is waiting", "no_reasons": "none given",
        "guessed": "{risk}, estimated from activity before any outcome",
    },
}
LANGUAGES = tuple(_TEXTS)


def language_of(alert: dict[str, Any], fallback: str) -> str:
    """The alert's language: its `language` field, else that of its reasons' sentences, else `fallback`."""
    stated = alert.get("language")
    if stated in _TEXTS:
        return str(stated)
    reasons = alert.get("reasons")
    text = " ".join(str(r) for r in reasons) if isinstance(reasons, list) else ""
    if re.search(r"[а-яё]", text, re.IGNORECASE):
        return "ru"
    if re.search(r"[a-z]", text, re.IGNORECASE):
        return "en"
    return fallback if fallback in _TEXTS else "ru"


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _fields(alert: dict[str, Any], texts: dict[str, str]) -> dict[str, Any]:
    task = part(alert, "position").get("task_name")
    risk = _number(part(alert, "scores").get("p_dropout"))
    reasons = [str(r) for r in alert.get("reasons") or ()] if isinstance(alert.get("reasons"), list) else []
    return {
        "user_id": alert.get("user_id"), "course_id": alert.get("course_id"),
        "days": round(_number(alert.get("days_inactive")) or 0),
        "next": texts["next"].format(task=task) if task else texts["no_next"],
        "risk": "?" if risk is None else _risk(risk, part(alert, "basis").get("p_dropout"), texts),
        "reasons": "; ".join(reasons) or texts["no_reasons"],
    }


def _risk(risk: float, basis: Any, texts: dict[str, str]) -> str:
    """The risk as a percentage, said to be a guess where no outcome has set its level (alert `basis`): a
    curator should not read it as a frequency."""
    percent = f"{risk:.0%}"
    return texts["guessed"].format(risk=percent) if basis == "guess" else percent


def render(action: Action, alert: dict[str, Any], language: str) -> dict[str, str]:
    """The texts of an action, by audience (`student`, `curator`); `cancel` and `none` have none."""
    texts = _TEXTS[language]
    values = _fields(alert, texts)
    if action == "nudge":
        return {"student": texts["nudge"].format(**values)}
    if action == "urge":
        return {"student": texts["urge"].format(**values), "curator": texts["curator_urge"].format(**values)}
    if action == "curator":
        return {"curator": texts["curator"].format(**values)}
    return {}
