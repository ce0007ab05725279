"""Why a model says what it says: each hypothesis's part in one dropout forecast (occlusion).

For one student the model is asked again with one hypothesis's features set to the norm, the
median of the students it has learned from at the same course week (or the on-track target
of features.hypotheses until it has seen MIN_COHORT of them); the drop in P(dropout) is that
hypothesis's effect. The norms travel inside the model version, so a score and its reasons
are a function of (features, model version): the same under replay.
"""
from __future__ import annotations

from collections.abc import Callable

from river import stats

from features.hypotheses import HYPOTHESES, TARGETS, Factor, NormKind, risk_of_gap

#: Students of a course week the model must have learned from before their median is the norm.
MIN_COHORT = 30
#: Factors raising P(dropout) by less than this (half a percentage point) are not reasons.
MIN_EFFECT = 0.005
#: At most this many reasons per score, the strongest first.
TOP_FACTORS = 3
EXPLAINING = tuple(sorted({m.name for h in HYPOTHESES for m in h.explained_by}))


class CohortNorms:
    """The running median of each explaining feature per course week, over the learned examples."""

    def __init__(self) -> None:
        self._medians: dict[int, dict[str, stats.Quantile]] = {}
        self._seen: dict[int, int] = {}

    def learn_one(self, x: dict[str, float]) -> None:
        week = int(x.get("course_week", 0))
        medians = self._medians.setdefault(week, {})
        for name in EXPLAINING:
            if name in x:
                medians.setdefault(name, stats.Quantile(0.5)).update(x[name])
        self._seen[week] = self._seen.get(week, 0) + 1

    def norm(self, week: int, feature: str) -> tuple[float, NormKind]:
        median = self._medians.get(week, {}).get(feature)
        if median is not None and self._seen.get(week, 0) >= MIN_COHORT:
            value = median.get()
            if value is not None:
                return float(value), "cohort"
        return TARGETS[feature], "target"


def explain(p_dropout: Callable[[dict[str, float]], float], x: dict[str, float],
            norms: CohortNorms, base: float) -> tuple[Factor, ...]:
    """The hypotheses that raise this student's P(dropout) (`base`) above a student at the norm, strongest first."""
    week = int(x.get("course_week", 0))
    factors = []
    for hypothesis in HYPOTHESES:
        present = [m for m in hypothesis.explained_by if m.name in x]
        if not present:
            continue
        reference = {m.name: norms.norm(week, m.name) for m in present}
        effect = base - p_dropout({**x, **{name: value for name, (value, _) in reference.items()}})
        if effect < MIN_EFFECT:
            continue
        worst = max(present, key=lambda m: risk_of_gap(m, x[m.name], reference[m.name][0]))
        norm, kind = reference[worst.name]
        factors.append(Factor(hypothesis.key, worst.name, x[worst.name], norm, kind, effect))
    factors.sort(key=lambda f: (-f.effect, f.hypothesis))
    return tuple(factors[:TOP_FACTORS])
