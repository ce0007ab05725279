"""The early-warning measures on hand-made students: the at_risk rule over the replay's forecasts, and the
rule a school could run without a model (warn at N+ days inactive), on the same looks."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from features import DAY
from online_models.evaluation.early_warning import early_warning_quality, report, silence_quality
from online_models.evaluation.online_replay import OnlineRun
from online_models.evaluation.students import QuietTimes, Student
from online_models.labels import Label
from streams.contract.outputs import ScoreBasis


def _student(student_id: int, inactive: list[float], quiet: QuietTimes, dropout: bool = False) -> Student:
    """A student whose course started at 0, with `inactive[w - 1]` days inactive at the end of week w."""
    schedule: Any = SimpleNamespace(start=0.0)
    weekly = {w: {"days_inactive": days, "course_week": float(w)} for w, days in enumerate(inactive, start=1)}
    return Student(student_id, student_id, 1, 1, schedule, Label(None, dropout, False), 100 * 7 * DAY, weekly, quiet)


def _run(p_dropout: dict[tuple[int, int], float], learned: frozenset[tuple[int, int]] = frozenset()) -> OnlineRun:
    models: Any = None
    return OnlineRun({key: (50.0, p, 0.5) for key, p in p_dropout.items()}, {}, models,
                     {key: ScoreBasis(p_dropout="learned" if key in learned else "guess") for key in p_dropout})


#: DRIFTER: away 4 and 5 days at weeks 2-3, dozing at week 4 (8 days), back at week 5, away 6 days at week 6,
#: asleep in week 8. STEADY: away 4 days once, never quiet. UNSCORED: never looked at (the replay scored none
#: of its weeks), so no rule counts it.
DRIFTER = _student(0, [0, 4, 5, 8, 1, 6], QuietTimes(dozing=17 * DAY, asleep=50 * DAY))
STEADY = _student(1, [0, 4, 0, 0, 0, 0], QuietTimes(None, None))
UNSCORED = _student(2, [9, 9, 9, 9, 9, 9], QuietTimes(dozing=3 * DAY, asleep=20 * DAY))
LOOKED = {(s.id, w): 0.1 for s in (DRIFTER, STEADY) for w in range(1, 7)}


def test_the_silence_rule_warns_once_per_silence_and_only_while_the_student_is_active() -> None:
    run = _run(LOOKED)
    at_4 = silence_quality([DRIFTER, STEADY, UNSCORED], run, days=4)
    # DRIFTER: weeks 2 and 6 (week 3 continues the silence, week 4 is dozing); STEADY: week 2
    assert (at_4["students"], at_4["warned"], at_4["warned_then_quiet"]) == (2, 2, 1)
    assert (at_4["precision"], at_4["recall"], at_4["base_rate"]) == (0.5, 1.0, 0.5)
    assert at_4["median_lead_days_to_asleep"] == round((50 * DAY - (2 * 7 * DAY - 1)) / DAY, 1)
    assert at_4["median_lead_days_to_dozing"] == round((17 * DAY - (2 * 7 * DAY - 1)) / DAY, 1)
    at_5 = silence_quality([DRIFTER, STEADY, UNSCORED], run, days=5)
    assert (at_5["warned"], at_5["precision"]) == (1, 1.0)  # DRIFTER at week 3; STEADY was never away 5 days
    assert at_5["median_lead_days_to_asleep"] == round((50 * DAY - (3 * 7 * DAY - 1)) / DAY, 1)
    assert silence_quality([DRIFTER, STEADY], run, days=7)["warned"] == 0  # 7 days is dozing, no longer a warning


def test_the_model_rule_counts_each_warned_student_under_what_answered_their_first_warning() -> None:
    forecasts = {**LOOKED, (0, 3): 0.7, (0, 5): 0.65, (1, 6): 0.9}
    rule = early_warning_quality([DRIFTER, STEADY], _run(forecasts, learned=frozenset({(1, 6)})), on=0.6, off=0.45)
    assert (rule["warned"], rule["warned_then_quiet"], rule["precision"], rule["recall"]) == (2, 1, 0.5, 1.0)
    assert rule["by_basis"]["guess"] == {"warned": 1, "warned_then_quiet": 1, "precision": 1.0}
    assert rule["by_basis"]["learned"] == {"warned": 1, "warned_then_quiet": 0, "precision": 0.0}
    assert rule["median_lead_days_to_dozing"] is None  # DRIFTER's first warning (week 3) came after dozing began
    assert rule["median_lead_days_to_asleep"] == round((50 * DAY - (3 * 7 * DAY - 1)) / DAY, 1)


def test_the_report_holds_the_rule_its_sweep_and_the_silence_baseline() -> None:
    result = report([DRIFTER, STEADY], _run(LOOKED), on=0.6, off=0.45)
    assert [row["days_inactive"] for row in result["silence"]] == [3, 4, 5, 6]
    warned = [row["warned"] for row in result["silence"]]
    assert warned == [2, 2, 1, 1] and warned == sorted(warned, reverse=True)
    assert result["rule"]["warned"] == 0 and len(result["sweep"]) == 5
