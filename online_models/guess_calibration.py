"""The label-free guess's level, learned from the outcomes of each course week.

The label-free guesses (the surrogate, the priors: online_models.priors) rank students without any outcome,
but no guess can know a school's rates before one: in a generated school's week 6 (seed 12, strict order)
the guess said P(success) .34 on average where .17 succeeded. Once outcomes are learned, a course week's
forest answers where it holds enough of both classes; where it does not, the guess answered at its own
level. In the generated schools' week 10 every student still scored fails (those who pass have their
outcome by then), so the week's forest never fits, and the guess went on saying P(success) .23-.24 on
average (calibration error .230 and .238 on seeds 12 and 11; .016 with the shift below).

Here each (target, course week) keeps the latest KEEP (guess, outcome) pairs it learned, and the guess is
shifted in logit space by the intercept that best fits them: the ranking within a week is the guess's own,
its level the labels'. A week's intercept is shrunk toward the intercept of all weeks of its target
(WEEK_SPREAD), that one toward none (POOLED_SPREAD): a maximum a posteriori fit, so a week with a handful
of labels moves little and a week with none takes the pooled level.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from online_models.logistic import logit, map_logistic, sigmoid

#: (guess, outcome) pairs kept per (target, course week): about one cohort's, as a week's forest window.
KEEP = 1000
#: Prior standard deviations (logit units) of a week's intercept around its target's pooled one, and of
#: the pooled one around 0 (no shift).
WEEK_SPREAD, POOLED_SPREAD = 0.5, 1.0


def _intercept(logits: np.ndarray, outcomes: np.ndarray, centre: float, spread: float) -> float:
    """The b maximising sum(log-likelihood of outcomes under sigmoid(logits + b)) - (b - centre)^2 / 2 spread^2."""
    ones = np.ones((len(outcomes), 1))
    return float(map_logistic(ones, outcomes, np.array([centre]), np.array([spread]), offset=logits)[0])


@dataclass
class GuessCalibration:
    """Per (target, course week): the latest guesses (as logits) and their outcomes, and the shift they call for."""

    logits: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)
    outcomes: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)
    _shifts: dict[tuple[str, int], float] = field(default_factory=dict, repr=False)
    _pooled: dict[str, float] = field(default_factory=dict, repr=False)

    def __getstate__(self) -> dict[str, object]:
        """Pickled with every week's shift fitted: a worker that loads a published version scores at once,
        rather than paying each week's fit on its first students."""
        for target, week in list(self.logits):
            self.shift(target, week)
        return self.__dict__.copy()

    def learn(self, target: str, week: int, guess: float, outcome: bool) -> None:
        key = (target, week)
        self.logits[key] = np.append(self.logits.get(key, np.zeros(0, np.float32)), np.float32(logit(guess)))[-KEEP:]
        self.outcomes[key] = np.append(self.outcomes.get(key, np.zeros(0, bool)), outcome)[-KEEP:]
        # the target's pooled intercept, and so each of its weeks', moves with any of its weeks' outcomes
        self._shifts = {k: b for k, b in self._shifts.items() if k[0] != target}
        self._pooled.pop(target, None)

    def has_outcomes(self, target: str) -> bool:
        """Has any outcome of `target` been learned (so every week's guess is at the outcomes' level)?"""
        return any(key[0] == target for key in self.logits)

    def shift(self, target: str, week: int) -> float:
        """The logit shift of `target`'s guess in course week `week` (0 before any outcome of that target)."""
        key = (target, week)
        if key not in self._shifts:
            self._shifts[key] = self._fit(target, week)
        return self._shifts[key]

    def _fit(self, target: str, week: int) -> float:
        keys = [k for k in self.logits if k[0] == target]
        if not keys:
            return 0.0
        pooled = self._pooled.get(target)
        if pooled is None:
            pooled = _intercept(np.concatenate([self.logits[k] for k in keys]),
                                np.concatenate([self.outcomes[k] for k in keys]), 0.0, POOLED_SPREAD)
            self._pooled[target] = pooled
        if (target, week) not in self.logits:
            return pooled
        return _intercept(self.logits[(target, week)], self.outcomes[(target, week)], pooled, WEEK_SPREAD)

    def calibrated(self, target: str, week: int, guess: float) -> float:
        """`guess` shifted to the level of `target`'s outcomes in `week` (unclipped: the caller knows its floor)."""
        b = self.shift(target, week)
        if b == 0.0:
            return guess
        return sigmoid(logit(guess) + b)
