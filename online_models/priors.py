"""Version-0 priors: the label-free guesses of final progress, P(dropout) and P(success), written from
the seed's hypotheses (work done against work due, inactivity, regularity, early success). They answer
before a course week has outcomes (and the surrogate learns to foresee them), and the progress learners
learn a residual over `prior_progress`."""
from __future__ import annotations

from collections.abc import Callable, Mapping

from features.activity_status import DEFAULT_THRESHOLDS
from online_models.surrogate import TARGETS

#: Prior probabilities stay this far from 0/1: they are heuristics, not measurements.
PRIOR_FLOOR = 0.05
#: Inactivity (days) the priors call "asleep": the seed's threshold.
ASLEEP_DAYS = DEFAULT_THRESHOLDS.asleep_days


def clip(value: float, low: float = 0.0, high: float = 100.0) -> float:
    return min(high, max(low, float(value)))


# Before any outcome arrives the model still has to rank students. The seed's progress, regularity
# and early-success hypotheses give label-free guesses: a student keeps passing the share of due
# work they have passed so far, work left undone matters more the closer they are to "asleep" and
# less the more regularly they come, and poor attempt scores make leaving likelier.


def exercise_pace(x: Mapping[str, float]) -> float | None:
    """The student's pace on graded work (the feature `exercise_pace`); None before an exercise is due."""
    pace = x.get("exercise_pace", 0.0)
    return pace if pace > 0.0 or x.get("missed_deadlines", 0.0) > 0.0 else None  # features.engagement


def work_done_share(x: Mapping[str, float], *, with_scores: bool = False) -> float:
    """Work done, for the probabilities: the mean of what is known of it, the opened required rows done
    (engagement with the material), the pace on graded work once an exercise is due and, `with_scores`, the
    mean attempt score once the student attempted one (the seed's early-success hypothesis). Measured in
    strict order on BBB, where the priors answer every week (mean AUC over weeks 1-10, dropout / success,
    with the success prior of then, without the scores): the rows' share .634 / .712, the pace alone .618 /
    .714, the average .644 / .725."""
    parts = [x.get("required_done_share", 0.0)]
    pace = exercise_pace(x)
    if pace is not None:
        parts.append(pace)
    if with_scores and _attempted(x):
        parts.append(_attempt_quality(x))
    return sum(parts) / len(parts)


def _inactivity(x: Mapping[str, float]) -> float:
    return min(1.0, max(0.0, x.get("days_inactive", 0.0)) / ASLEEP_DAYS)


def _regularity(x: Mapping[str, float]) -> float:
    """The share of the last 14 days (of the days since the course started, if fewer) with activity."""
    span = max(1.0, min(14.0, x.get("days_since_course_start", 14.0)))
    return min(1.0, max(0.0, x.get("active_days_last_14", 0.0)) / span)


def _attempted(x: Mapping[str, float]) -> bool:
    return x.get("sum_exercise_attempts_mean", 0.0) > 0.0


def _attempt_quality(x: Mapping[str, float]) -> float:
    """The mean attempt score as a share (a skip counts 0); 0.5, no evidence either way, before any attempt."""
    if not _attempted(x):
        return 0.5
    return min(1.0, max(0.0, x.get("mean_attempt_score", 0.0) / 100.0))


def _leaving(x: Mapping[str, float], *, with_scores: bool = False) -> float:
    """Work left undone (`work_done_share`), weighted up as inactivity nears the asleep threshold and down by
    half the share of recent days active (the seed's regularity hypothesis). Measured in strict order, one run
    per dataset, before and after the regularity term: BBB's success AUC (its prior is built on this one)
    better in weeks 1-8 by .004-.024, dropout within .008 there, both .005-.012 worse in weeks 9-10; the
    generated schools' dropout AUC .002 better on average, seed 12's success .007-.009 worse in weeks 5-6."""
    undone = 1.0 - work_done_share(x, with_scores=with_scores)
    return undone * (0.5 + 0.5 * _inactivity(x)) * (1.0 - 0.5 * _regularity(x))


def prior_dropout(x: Mapping[str, float]) -> float:
    """Leaving (above), the attempt scores counted among the work done: on OULAD withdrawals follow poor
    scores. Before, they scaled leaving by up to a quarter either way (1.25 minus half the score as a share).
    As a part of the work done, measured in strict order, one run per dataset before and after: BBB's dropout
    AUC .001-.013 better in weeks 2-10 (mean .656 -> .662, the forest's .655), the generated schools' means
    +.002 and +.003, the deals' +.001, warm within .007 (docs/models.md, "The dropout prior reads how well ...")."""
    return clip(_leaving(x, with_scores=True), PRIOR_FLOOR, 1 - PRIOR_FLOOR)


def prior_success(x: Mapping[str, float]) -> float:
    """Staying (leaving's complement) and doing the work well: success takes both a finished course and
    passing scores. Work done alone said little early on, where most students have done next to none and
    sat tied at the floor. Staying is taken without the attempt scores (the dropout prior counts them among
    the work done), so they count once: with them in both (one run per dataset, strict order), success ranked
    better on the generated schools (mean AUC +.004 and +.005) and worse on two deals (-.001 and -.002), and its
    calibration error was worse where the guesses answer most (BBB .106 -> .118, the generated schools .137 ->
    .147, .126 -> .133)."""
    staying = 1.0 - clip(_leaving(x), PRIOR_FLOOR, 1 - PRIOR_FLOOR)
    return clip(staying * (0.5 + 0.5 * _attempt_quality(x)), PRIOR_FLOOR, 1 - PRIOR_FLOOR)


def prior_progress(x: Mapping[str, float]) -> float:
    """Final progress: the progress made, plus the rest of the course passed at the student's pace on
    graded work (progress is scored on exercises), the rest discounted by half the way to asleep, as the
    dropout prior weighs inactivity. Before an exercise is due there is no pace and no graded work: the
    whole course, discounted all the way to asleep (inactivity is all there is to go by).

    Before the pace, the priors took the share of opened required rows done: on OULAD those rows are
    mostly study pages, and on BBB (a fifth of them read) that put final progress at 9-31 against a median
    of 73. The prior's MAE over all students: BBB weeks 1-2 (nothing due) 54 with the rows' share, 36-37
    with the success prior as a percentage, 32 and 28 now (the generated schools' week 1: 30-32 with either
    of the first two, 53 now: no label-free guess knows a course's level, docs/models.md); weeks 3-10 16-23 with the
    pace undiscounted, 15-22 discounted (0.2-2.6 lower), the generated schools' weeks 2-7 0.4-1.3 lower and
    weeks 8-10 within 0.2."""
    progress = x.get("progress", 0.0)
    pace = exercise_pace(x)
    if pace is None:
        return clip(max(progress, 100.0 * (1.0 - _inactivity(x))))
    ahead = max(0.0, 100.0 * pace - progress)
    return clip(progress + ahead * (1.0 - 0.5 * _inactivity(x)))


#: Each target's hand prior, by online_models.surrogate.TARGETS name.
PRIORS: dict[str, Callable[[Mapping[str, float]], float]] = {
    "progress": prior_progress, "dropout": prior_dropout, "success": prior_success,
}


def priors(x: Mapping[str, float]) -> list[float]:
    """The priors in online_models.surrogate.TARGETS order: what the surrogate learns to foresee."""
    return [PRIORS[target](x) for target in TARGETS]


