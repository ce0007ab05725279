"""How good the early warning (`at_risk` alerts) is, measured in time order.

The worker warns an *active* enrolment whose P(dropout) reaches `at_risk_on`, once per episode
(the next only after the forecast fell below `at_risk_off`, or the student went quiet). Here
the same rule runs over the strict online replay's forecasts (`online_replay.run_online`: each
snapshot scored by the model as it stood then), one look per course week end, so a warning is
dated at most a week later than the worker, which looks every `score_every`, would raise it.

A student "went quiet" when the reference status machine over their activity took them to
asleep (20+ days inactive) before their lifecycle ended, or their outcome says dropout.
Precision: the warned students who went quiet after the warning; recall: the students who went
quiet that were warned before it; lead time: days from the first warning to the transition
(to dozing, and to asleep), median over the warned students who went quiet. The same precision is
split by what answered the P(dropout) of each student's first warning (`by_basis`): a label-free
guess ranks students but its level is not a frequency, so a school deciding whether to act on
warnings before any outcome has been learned sees how often those came true.

Beside it, the rule any school could run without a model (`silence`): warn a still-active student
at the first look with N or more days of inactivity (once per silence), measured the same way on the
same looks. A model's warning is worth its keep where it beats that at a like recall, or warns earlier.
"""
from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence
from typing import Any, get_args

from features import DAY, DEFAULT_THRESHOLDS
from online_models.evaluation.online_replay import OnlineRun
from online_models.evaluation.students import Student
from streams.contract.outputs import Basis

#: Thresholds reported besides the configured pair, for the precision/recall trade-off.
SWEEP = (0.4, 0.5, 0.6, 0.7, 0.8)
#: Days of inactivity at which the model-free baseline warns (below the dozing threshold's 7).
SILENCE_DAYS = (3, 4, 5, 6)
#: A warning: when, and what answered the risk that raised it (None for the silence rule).
WarningAt = tuple[float, Basis | None]


def _warnings(student: Student, looks: Iterable[tuple[int, float, Basis | None]], on: float, off: float,
              dozing_days: float) -> list[WarningAt]:
    """The warnings a rule raises over a student's looks (course week, risk, what answered it), in week
    order: at a look where the student is active and the risk reaches `on`, then none until it fell below
    `off` or the student went quiet (the worker's episode)."""
    out: list[WarningAt] = []
    in_episode = False
    for week, risk, basis in looks:
        active = student.weekly[week].get("days_inactive", 0.0) < dozing_days
        if in_episode:
            in_episode = active and risk >= off
        elif active and risk >= on:
            out.append((student.week_end(week), basis))
            in_episode = True
    return out


def _scored_weeks(student: Student, run: OnlineRun) -> list[int]:
    """The student's course weeks the replay scored, in order: where every rule looks."""
    return [week for week in sorted(student.weekly) if (student.id, week) in run.predictions]


def _model_looks(student: Student, run: OnlineRun) -> list[tuple[int, float, Basis | None]]:
    return [(week, run.predictions[(student.id, week)][1], run.bases[(student.id, week)].p_dropout)
            for week in _scored_weeks(student, run)]


def _silence_looks(student: Student, run: OnlineRun) -> list[tuple[int, float, Basis | None]]:
    return [(week, student.weekly[week].get("days_inactive", 0.0), None) for week in _scored_weeks(student, run)]


def _quiet_at(student: Student) -> float | None:
    """When the student went quiet: asleep, or for a dropout never asleep, their outcome's time."""
    if student.quiet.asleep is not None:
        return student.quiet.asleep
    if student.label is not None and student.label.dropout:
        return student.label_ts
    return None


def _quality(scored: Sequence[Student], warnings_of: Callable[[Student], list[WarningAt]]
             ) -> tuple[dict[str, Any], list[tuple[Basis | None, bool]]]:
    """Precision, recall and lead times of a rule, given each student's warnings; and each warned
    student's first warning's basis with whether a warning came before they went quiet."""
    quiet = {s.id: _quiet_at(s) for s in scored}
    firsts: list[tuple[Basis | None, bool]] = []
    lead_dozing: list[float] = []
    lead_asleep: list[float] = []
    for s in scored:
        warnings = warnings_of(s)
        if not warnings:
            continue
        went = quiet[s.id]
        warnings_before = [t for t, _ in warnings if went is not None and t < went]
        firsts.append((warnings[0][1], bool(warnings_before)))
        if went is None or not warnings_before:
            continue
        first = warnings_before[0]
        lead_asleep.append((went - first) / DAY)
        if s.quiet.dozing is not None and s.quiet.dozing > first:
            lead_dozing.append((s.quiet.dozing - first) / DAY)
    positives = sum(went is not None for went in quiet.values())
    warned, tp = len(firsts), sum(came_true for _, came_true in firsts)

    def median(values: list[float]) -> float | None:
        return round(statistics.median(values), 1) if values else None

    return {"students": len(scored), "went_quiet": positives, "warned": warned, "warned_then_quiet": tp,
            "precision": round(tp / warned, 3) if warned else None,
            "recall": round(tp / positives, 3) if positives else None,
            "base_rate": round(positives / len(scored), 3) if scored else None,
            "median_lead_days_to_dozing": median(lead_dozing),
            "median_lead_days_to_asleep": median(lead_asleep)}, firsts


def _scored(students: Sequence[Student], run: OnlineRun) -> list[Student]:
    return [s for s in students if _scored_weeks(s, run)]


def early_warning_quality(students: Sequence[Student], run: OnlineRun, *, on: float, off: float,
                          dozing_days: float = DEFAULT_THRESHOLDS.dozing_days) -> dict[str, Any]:
    """Precision, recall and lead times of the rule at (on, off); see the module docstring."""
    quality, firsts = _quality(_scored(students, run),
                               lambda s: _warnings(s, _model_looks(s, run), on, off, dozing_days))
    by_basis = {basis: {"warned": 0, "warned_then_quiet": 0} for basis in get_args(Basis)}
    for basis, came_true in firsts:
        assert basis is not None
        by_basis[basis]["warned"] += 1
        by_basis[basis]["warned_then_quiet"] += came_true
    return {"threshold": on, "clear": off, **quality,
            "by_basis": {basis: {**counts, "precision": round(counts["warned_then_quiet"] / counts["warned"], 3)
                                 if counts["warned"] else None} for basis, counts in by_basis.items()}}


def silence_quality(students: Sequence[Student], run: OnlineRun, *, days: float,
                    dozing_days: float = DEFAULT_THRESHOLDS.dozing_days) -> dict[str, Any]:
    """The model-free baseline: warn a still-active student at the first look with `days` or more of
    inactivity, again only after they came back (fewer days) or went quiet; the same looks and measures."""
    quality, _ = _quality(_scored(students, run),
                          lambda s: _warnings(s, _silence_looks(s, run), days, days, dozing_days))
    return {"days_inactive": days, **quality}


def report(students: Sequence[Student], run: OnlineRun, *, on: float, off: float) -> dict[str, Any]:
    """The configured rule, the same rule over SWEEP (clearing `on - off` lower), and the silence baseline at
    each of SILENCE_DAYS."""
    sweep = [early_warning_quality(students, run, on=t, off=round(max(0.0, t - (on - off)), 3)) for t in SWEEP]
    return {"rule": early_warning_quality(students, run, on=on, off=off), "sweep": sweep,
            "silence": [silence_quality(students, run, days=days) for days in SILENCE_DAYS]}
