"""What a step tells the world about an enrolment: its alerts (critical points and early warnings, with
the sentences a curator reads and where in the course the student stopped) and its score row."""
from __future__ import annotations

import hashlib
from typing import Any

from features.activity_status import ACTIVE, ASLEEP, DOZING, FINISHED, StatusMachine, Transition
from features.eventtime import DAY
from features.hypotheses import Language, describe
from features.schedule import CourseSchedule
from features.state import FeatureState, profile
from streams.contract.outputs import Alert, CoursePosition, ScoreRow, Scores
from streams.core.documents import EnrolmentDoc


def _transition_reasons(t: Transition, scores: Scores, language: Language) -> tuple[str, ...]:
    """What happened, then the model's factors, then the risk: sentences for a curator."""
    if t.to_status == FINISHED:
        return (_STATUS_WORDS["finished"][language],)
    if t.to_status == ACTIVE:
        head = _STATUS_WORDS["resumed"][language]
    else:
        head = _STATUS_WORDS["silent"][language].format(days=t.days_inactive)
    return (head, *_risk_reasons(scores, language))


def _risk_reasons(scores: Scores, language: Language) -> list[str]:
    """The factors' sentences, then the risk, saying so where it is a label-free guess: a curator should not
    read a guess no outcome has leveled as "55 in 100 such students leave"."""
    reasons = [describe(f, language) for f in scores.factors]
    if scores.p_dropout is not None:
        risk = _STATUS_WORDS["risk"][language].format(p=scores.p_dropout)
        basis = None if scores.basis is None else scores.basis.p_dropout
        if basis in _GUESS_WORDS:
            risk += _GUESS_WORDS[basis][language]
        reasons.append(risk)
    return reasons


_STATUS_WORDS: dict[str, dict[Language, str]] = {
    "finished": {"en": "the enrolment is over", "ru": "обучение на потоке завершено"},
    "resumed": {"en": "activity resumed", "ru": "активность возобновилась"},
    "silent": {"en": "no activity for {days:.0f} days", "ru": "нет активности {days:.0f} дн."},
    "risk": {"en": "dropout risk {p:.0%}", "ru": "риск отчисления {p:.0%}"},
}
#: What the risk sentence adds where a label-free guess answered (streams.contract.outputs.Basis).
_GUESS_WORDS: dict[str, dict[Language, str]] = {
    "guess": {"en": " (estimated from activity before any outcome: it ranks students, it is not a frequency)",
              "ru": " (оценка по активности до первых итогов: ранжирует учеников, но не частота)"},
    "calibrated_guess": {"en": " (estimated from activity, at the level of the outcomes so far)",
                         "ru": " (оценка по активности, уровень по уже известным итогам)"},
}


def is_online(facts: FeatureState, at: float) -> bool:
    """Does the seed's online filter keep the student at `at`? (The profile's tag-state reading:
    #онлайн in the current tag set; see streams.lms.tags.) Only a student known to be offline is
    left out: an LMS without the school's tags (xAPI, Moodle, Open edX) does not say either way."""
    known = profile(facts, at)
    return known is None or known["online"] is not False


def _recipient(facts: FeatureState, at: float) -> dict[str, Any]:
    """What a sender needs from the profile: the time zone and the Telegram bot's state."""
    known = profile(facts, at) or {}
    return {"time_zone": known.get("time_zone"), "tg_bot": known.get("tg_bot")}


def status_alert(t: Transition, enrolment: EnrolmentDoc, schedule: CourseSchedule | None, scores: Scores,
           facts: FeatureState, language: Language) -> Alert:
    # a critical point is filed where the student stopped (their last activity), not where the
    # calendar stood when the silence was noticed, 7 or 20 days later
    stopped = t.to_status in (DOZING, ASLEEP)
    return Alert(
        alert_id=t.alert_id, user_id=t.user_id, course_id=enrolment["course_id"], from_status=t.from_status,
        to_status=t.to_status, at=t.at, days_inactive=t.days_inactive, last_activity=t.last_activity,
        scores=scores, reasons=_transition_reasons(t, scores, language), language=language,
        position=_position(schedule, t.last_activity if stopped else t.at), flow_num=enrolment["flow"],
        kind="finished" if t.to_status == FINISHED else "status_change", scored_at=enrolment["scored_at"],
        **_recipient(facts, t.at),
    )


def early_warning(user_id: int, key: str, enrolment: EnrolmentDoc, machine: StatusMachine,
                  schedule: CourseSchedule | None, scores: Scores, facts: FeatureState, as_of: float,
                  on: float, off: float, language: Language) -> Alert | None:
    """An early warning: the enrolment is still active, but its dropout forecast crossed
    `at_risk_on`. One per episode: the next only after the forecast fell below `at_risk_off` or
    the student went quiet (then the critical points take over)."""
    risk = scores.p_dropout
    if enrolment["at_risk_since"] is not None:
        if machine.status != ACTIVE or risk is None or risk < off:
            enrolment["at_risk_since"] = None
        return None
    if machine.status != ACTIVE or risk is None or risk < on:
        return None
    enrolment["at_risk_since"] = as_of
    last = machine.last if machine.last is not None else as_of
    alert_id = hashlib.sha1(f"{user_id}|{key}|at_risk|{as_of:.0f}".encode()).hexdigest()[:24]
    reasons = tuple(_risk_reasons(scores, language))
    return Alert(
        alert_id=alert_id, user_id=user_id, course_id=enrolment["course_id"], from_status=ACTIVE, to_status=ACTIVE,
        at=as_of, days_inactive=max(0.0, (as_of - last) / DAY), last_activity=machine.last, scores=scores,
        reasons=reasons, position=_position(schedule, as_of), flow_num=enrolment["flow"], kind="at_risk",
        language=language,
        scored_at=enrolment["scored_at"], **_recipient(facts, as_of),
    )


def _position(schedule: CourseSchedule | None, at: float) -> CoursePosition:
    """Where the course stood at `at`, and what fell due next after it."""
    if schedule is None:
        return CoursePosition()
    next_task, next_due = schedule.next_due_after(at) or (None, None)
    row = schedule.position_at(at)
    if row is None:
        return CoursePosition(course_week=schedule.week_of(at), next_task_id=next_task, next_due_at=next_due)
    return CoursePosition(schedule.week_of(at), row.module, row.theme_id, row.theme, row.task_id, row.task_name,
                          row.activity_id, next_task, next_due)


def score_row(user_id: int, key: str, enrolment: EnrolmentDoc, machine: StatusMachine, scores: Scores,
               features: dict[str, float], as_of: float, language: Language) -> ScoreRow:
    return ScoreRow(
        user_id=user_id, enrolment=key, course_id=enrolment["course_id"], flow_num=enrolment["flow"],
        status=machine.status, status_since=machine.since, last_activity_at=machine.last,
        days_inactive=(as_of - machine.last) / DAY if machine.last is not None else None,
        scores=scores, features=features, updated_at=as_of, new_history_day=_new_history_day(enrolment, as_of),
        language=language,
    )


def _new_history_day(enrolment: EnrolmentDoc, as_of: float) -> bool:
    """Score history keeps one row per enrolment per event-time day, not one per batch."""
    day = int(as_of // DAY)
    if enrolment["history_day"] == day:
        return False
    enrolment["history_day"] = day
    return True
