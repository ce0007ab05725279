"""The school's four hypotheses (SPEC section 5) as the vocabulary of reasons.

`scorer hypotheses` tests each hypothesis's measures against outcomes; the models explain a
score by them: a `Factor` says how much one hypothesis's features move the student's dropout
forecast away from where the same model puts a student at the course norm (online_models
computes the effect; this module only names, orders and words it). `describe` words a factor
for a curator, in Russian or English.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Language = Literal["ru", "en"]
LANGUAGES: tuple[Language, ...] = ("ru", "en")


@dataclass(frozen=True)
class Measure:
    name: str  # a features.engagement feature
    lower_means_dropout: bool  # the hypothesis's predicted direction


@dataclass(frozen=True)
class Hypothesis:
    key: str
    title: str
    claim: str
    measures: tuple[Measure, ...]  # what `scorer hypotheses` tests
    also_explained_by: tuple[Measure, ...] = ()  # further features of the same idea the models see

    @property
    def explained_by(self) -> tuple[Measure, ...]:
        """Every feature a reason under this hypothesis stands for."""
        return self.measures + self.also_explained_by


HYPOTHESES: tuple[Hypothesis, ...] = (
    Hypothesis("progress", "1. Progress", "Students who have not finished a share of tasks and activities (viewing "
               "material included) by a cut-off date drop out more often.",
               (Measure("activities_done_share", True), Measure("required_done_share", True),
                Measure("optional_done_share", True), Measure("success_index", True),
                Measure("mean_success_score", True), Measure("mean_attempt_score", True)),
               (Measure("exercise_pace", True),)),
    Hypothesis("regularity", "2. Regularity", "Long gaps between visits lead to dropout.",
               (Measure("login_gap_mean_days", False), Measure("activities_done_per_week", True)),
               (Measure("days_inactive", False), Measure("login_gap_std_days", False),
                Measure("active_days_last_7", True), Measure("active_days_last_14", True))),
    Hypothesis("timeliness", "3. Timeliness", "Missed deadlines and late submissions (a task is due when the next "
               "task opens) go with dropout.",
               (Measure("missed_deadlines", False), Measure("exercise_delay_first", False)),
               (Measure("result_delay_mean", False), Measure("deadline_delay_mean", False))),
    Hypothesis("early_success", "4. Early success", "A lack of early success raises dropout.",
               (Measure("early_result", True), Measure("early_pass_days", False))),
)
CONTROLS = Hypothesis("controls", "Controls", "Negative controls: no hypothesis is about them; they should not "
                      "separate the outcomes.", (Measure("age", False), Measure("time_zone", False)))

#: Where a feature stands when a student is on track, the reference a factor is measured against
#: until the model has seen enough students of the course week to know their median.
TARGETS: dict[str, float] = {
    "activities_done_share": 1.0, "required_done_share": 1.0, "optional_done_share": 1.0, "success_index": 1.0,
    "exercise_pace": 1.0,
    "mean_success_score": 100.0, "mean_attempt_score": 100.0, "login_gap_mean_days": 1.0,
    "login_gap_std_days": 0.0, "activities_done_per_week": 3.0, "days_inactive": 0.0, "active_days_last_7": 3.0,
    "active_days_last_14": 6.0,
    "missed_deadlines": 0.0, "exercise_delay_first": 0.0, "result_delay_mean": 0.0, "deadline_delay_mean": 0.0,
    "early_result": 100.0, "early_pass_days": 0.0,
}

NormKind = Literal["cohort", "target"]


@dataclass(frozen=True)
class Factor:
    """One hypothesis's part in a dropout forecast. `effect` is P(dropout) minus P(dropout) with
    the hypothesis's features at the norm (positive: this is what raises the risk); `feature` is
    its feature furthest from the norm in the risky direction, with the student's value and the
    norm: the cohort's median at this course week, or the on-track target (`TARGETS`)."""

    hypothesis: str
    feature: str
    value: float
    norm: float
    norm_kind: NormKind
    effect: float

    @property
    def code(self) -> str:
        """Machine-readable: "hypothesis.feature"."""
        return f"{self.hypothesis}.{self.feature}"

    def to_json(self, language: Language | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "hypothesis": self.hypothesis, "feature": self.feature,
                               "value": round(self.value, 3), "norm": round(self.norm, 3),
                               "norm_kind": self.norm_kind, "effect": round(self.effect, 4)}
        if language is not None:
            out["text"] = describe(self, language)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Factor:
        return cls(data["hypothesis"], data["feature"], float(data["value"]), float(data["norm"]),
                   data["norm_kind"], float(data["effect"]))


def risk_of_gap(measure: Measure, value: float, norm: float) -> float:
    """How far `value` sits from `norm` in the direction the hypothesis calls risky (relative
    to the norm's size; 0 or less: no worse than the norm)."""
    gap = norm - value if measure.lower_means_dropout else value - norm
    return gap / max(abs(norm), 1.0)


# -- wording ----------------------------------------------------------------------------------
_TITLES: dict[str, dict[Language, str]] = {
    "progress": {"en": "Progress", "ru": "Прогресс"},
    "regularity": {"en": "Regularity", "ru": "Регулярность"},
    "timeliness": {"en": "Timeliness", "ru": "Своевременность"},
    "early_success": {"en": "Early success", "ru": "Ранний успех"},
}
#: feature -> (unit, English name, Russian name)
_NAMES: dict[str, tuple[str, str, str]] = {
    "activities_done_share": ("share", "activities done", "выполнено активностей"),
    "required_done_share": ("share", "required work done", "выполнено обязательных заданий"),
    "optional_done_share": ("share", "optional work done", "выполнено необязательных заданий"),
    "success_index": ("share", "successful attempts", "доля успешных попыток"),
    "exercise_pace": ("share", "pace on graded work", "темп сдачи заданий"),
    "mean_success_score": ("score", "mean passing score", "средний балл успешных попыток"),
    "mean_attempt_score": ("score", "mean attempt score", "средний балл попыток"),
    "login_gap_mean_days": ("days", "mean gap between visits", "средний перерыв между входами"),
    "login_gap_std_days": ("days", "spread of gaps between visits", "разброс перерывов между входами"),
    "activities_done_per_week": ("rate", "activities per week", "активностей в неделю"),
    "days_inactive": ("days", "days without activity", "дней без активности"),
    "active_days_last_7": ("count", "active days of the last 7", "активных дней из последних 7"),
    "active_days_last_14": ("count", "active days of the last 14", "активных дней из последних 14"),
    "missed_deadlines": ("count", "deadlines missed", "пропущено дедлайнов"),
    "exercise_delay_first": ("days", "delay of first submissions", "задержка первых попыток"),
    "result_delay_mean": ("days", "delay of passing submissions", "задержка сдачи"),
    "deadline_delay_mean": ("days", "delay of handed-in work", "задержка сданных работ"),
    "early_result": ("score", "result of the first activities", "результат первых заданий"),
    "early_pass_days": ("days", "time to pass the first activities", "время на первые задания"),
    "w_view_hours": ("rate", "hours of webinars watched", "часов вебинаров просмотрено"),
    "progress": ("rate", "progress", "прогресс"),
}
_NORM_WORDS: dict[NormKind, dict[Language, str]] = {
    "cohort": {"en": "course norm", "ru": "норма курса"},
    "target": {"en": "target", "ru": "ориентир"},
}
_RISK_WORDS: dict[Language, str] = {"en": "dropout risk", "ru": "риск отчисления"}


def feature_name(feature: str, language: Language) -> str:
    """A feature's name for a curator, in `language` (its code where none is given)."""
    _, en, ru = _NAMES.get(feature, ("", feature, feature))
    return en if language == "en" else ru


def _amount(unit: str, value: float, language: Language) -> str:
    if unit == "share":
        return f"{value:.0%}"
    if unit == "days":
        return f"{value:.1f} {'d' if language == 'en' else 'дн.'}"
    if unit in ("rate", "score"):
        return f"{value:.1f}" if unit == "rate" else f"{value:.0f}"
    return f"{value:.0f}"


def describe(factor: Factor, language: Language) -> str:
    """A curator's sentence: 'Timeliness: deadlines missed 4 (course norm 1); dropout risk +12 pp'."""
    unit = _NAMES.get(factor.feature, ("rate",))[0]
    title = _TITLES.get(factor.hypothesis, {}).get(language, factor.hypothesis)
    points = "pp" if language == "en" else "п.п."
    return (f"{title}: {feature_name(factor.feature, language)} {_amount(unit, factor.value, language)} "
            f"({_NORM_WORDS[factor.norm_kind][language]} {_amount(unit, factor.norm, language)}); "
            f"{_RISK_WORDS[language]} {100 * factor.effect:+.0f} {points}")
