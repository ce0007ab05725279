"""Reasons from the model: a planted cause is the top factor, norms come from the learned cohort,
and the same model explains the same student the same way (replay)."""
from __future__ import annotations

import random

import pytest

from features.hypotheses import HYPOTHESES, TARGETS, Factor, describe
from online_models.explain import EXPLAINING, MIN_COHORT
from online_models.families import FAMILIES
from online_models.labels import Label
from online_models.learners import ScoringModels


def _typical(rng: random.Random, week: int) -> dict[str, float]:
    """A student near the cohort's middle on every explaining feature."""
    x = {name: TARGETS[name] * rng.uniform(0.6, 0.9) for name in EXPLAINING}
    x.update(progress=30.0 * rng.uniform(0.8, 1.2), activities_done_per_week=rng.uniform(3, 5),
             days_inactive=rng.uniform(0, 4), login_gap_mean_days=rng.uniform(1, 3),
             missed_deadlines=float(rng.randint(0, 1)), exercise_delay_first=rng.uniform(-1, 1),
             course_week=float(week))
    return x


def _school(seed: int, planted: str, n: int = 600) -> list[tuple[dict[str, float], Label]]:
    """Students whose dropout depends on one feature only: `planted` high means dropout."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        x = _typical(rng, rng.randint(2, 4))
        bad = rng.random() < 0.3
        if bad:
            x[planted] = x[planted] + 6.0
        out.append((x, Label(progress=20.0 if bad else 80.0, dropout=bad, success=not bad)))
    return out


@pytest.mark.heavy
@pytest.mark.parametrize(("planted", "hypothesis"), [("missed_deadlines", "timeliness"),
                                                     ("login_gap_mean_days", "regularity")])
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_a_planted_cause_is_the_top_reason(family: str, planted: str, hypothesis: str) -> None:
    models = ScoringModels(family=family)
    for x, label in _school(1, planted):
        models.learn_weeks([x], label)
    rng = random.Random(7)
    student = _typical(rng, 3)
    student[planted] += 6.0
    factors = models.explain(student)
    assert factors, "a student the model calls risky has a reason"
    top = factors[0]
    assert top.hypothesis == hypothesis and top.feature == planted and top.norm_kind == "cohort"
    assert top.value > top.norm and top.effect > 0.1
    calm = models.explain(_typical(rng, 3))
    assert all(f.hypothesis != hypothesis or f.effect < top.effect / 2 for f in calm)


@pytest.mark.heavy
def test_the_same_model_explains_the_same_student_the_same_way() -> None:
    models = ScoringModels()
    for x, label in _school(2, "missed_deadlines"):
        models.learn_weeks([x], label)
    copy = ScoringModels.from_bytes(models.to_bytes())  # as another worker loads the published version
    student = _typical(random.Random(3), 2) | {"missed_deadlines": 7.0}
    assert copy.explain(student) == models.explain(student) != ()


def test_before_the_cohort_is_known_the_norm_is_the_on_track_target() -> None:
    """Version 0 answers with the priors, which see required work and inactivity: an idle student
    with work left undone is explained by progress and regularity, against the targets."""
    models = ScoringModels()
    idle = {"required_done_share": 0.1, "days_inactive": 15.0, "progress": 5.0, "course_week": 2.0}
    factors = models.explain(idle)
    assert {f.hypothesis for f in factors} == {"progress", "regularity"}
    assert all(f.norm_kind == "target" and f.norm == TARGETS[f.feature] for f in factors)
    few = ScoringModels()
    for x, label in _school(3, "missed_deadlines", n=MIN_COHORT - 1):
        few.learn_weeks([x | {"course_week": 5.0}], label)
    assert few.norms.norm(5, "missed_deadlines") == (TARGETS["missed_deadlines"], "target")


def test_factors_are_worded_in_both_languages_and_round_trip() -> None:
    factor = Factor("timeliness", "missed_deadlines", 4.0, 1.0, "cohort", 0.12)
    assert describe(factor, "en") == "Timeliness: deadlines missed 4 (course norm 1); dropout risk +12 pp"
    assert describe(factor, "ru") == "Своевременность: пропущено дедлайнов 4 (норма курса 1); риск отчисления +12 п.п."
    assert Factor.from_json(factor.to_json("ru")) == factor
    assert factor.to_json()["code"] == "timeliness.missed_deadlines"
    assert {m.name for h in HYPOTHESES for m in h.explained_by} == set(EXPLAINING) <= set(TARGETS)
