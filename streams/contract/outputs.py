"""What the scorer produces: model scores, alerts (critical points) and score rows.

The per-student step builds these; the Kafka producer sends `Alert.to_message()` (the
`alert` schema) and the Postgres sink stores alerts as status transitions and score rows as
student snapshots. Times are epoch seconds of event time (see features.eventtime).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from features.eventtime import format_ts
from features.hypotheses import Factor, Language

#: What answered for one score (`ScoreBasis`):
#: - `learned`: the course week's model, fitted on the outcomes of students in that week;
#: - `calibrated_guess`: the label-free guess (online_models.surrogate, the priors), which ranks students
#:   without any outcome, shifted to the level of the outcomes learned so far;
#: - `guess`: that guess at its own level: no outcome has set it yet, so it ranks students but its value
#:   is not a frequency (an `at_risk` threshold on it may warn too many students or too few).
Basis = Literal["learned", "calibrated_guess", "guess"]


@dataclass(frozen=True, slots=True)
class ScoreBasis:
    """What answered for each of the three scores (`Basis`), named as `Scores` names them."""

    progress: Basis = "guess"
    p_dropout: Basis = "guess"
    p_success: Basis = "guess"

    def to_json(self) -> dict[str, str]:
        return {"progress": self.progress, "p_dropout": self.p_dropout, "p_success": self.p_success}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> ScoreBasis | None:
        """None for a score stored before scores said what answered (or for none)."""
        if not data:
            return None
        return cls(data["progress"], data["p_dropout"], data["p_success"])


@dataclass(frozen=True, slots=True)
class Scores:
    """The three predictions, the model version that made them (None: not scored yet), the
    hypotheses behind the dropout forecast, strongest first, and what answered for each score
    (None: not scored, or scored before scores said)."""

    progress: float | None = None
    p_dropout: float | None = None
    p_success: float | None = None
    model_version: int | None = None
    factors: tuple[Factor, ...] = ()
    basis: ScoreBasis | None = None

    def to_json(self) -> dict[str, Any]:
        return {"progress": self.progress, "p_dropout": self.p_dropout, "p_success": self.p_success,
                "model_version": self.model_version, "factors": [f.to_json() for f in self.factors],
                "basis": self.basis_json()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Scores:
        factors = tuple(Factor.from_json(f) for f in data.get("factors") or ())
        return cls(data.get("progress"), data.get("p_dropout"), data.get("p_success"), data.get("model_version"),
                   factors, ScoreBasis.from_json(data.get("basis")))

    def basis_json(self) -> dict[str, str] | None:
        return None if self.basis is None else self.basis.to_json()

    def factors_json(self, language: Language) -> list[dict[str, Any]]:
        """The factors as alerts and rows carry them, each with its sentence in `language`."""
        return [f.to_json(language) for f in self.factors]


@dataclass(frozen=True, slots=True)
class CoursePosition:
    """Where in the course calendar a moment falls (the latest schedule row shown by then), and
    which task fell due next after it."""

    course_week: int | None = None
    module: int | None = None
    theme_id: int | None = None
    theme: str | None = None
    task_id: int | None = None
    task_name: str | None = None
    activity_id: int | None = None
    next_task_id: int | None = None
    next_due_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"course_week": self.course_week, "module": self.module, "theme_id": self.theme_id,
                "theme": self.theme, "task_id": self.task_id, "task_name": self.task_name,
                "activity_id": self.activity_id, "next_task_id": self.next_task_id,
                "next_due_ts": None if self.next_due_at is None else format_ts(self.next_due_at)}


def enrolment_key(course_id: int | None, flow: int | None) -> str:
    """An enrolment's name in a student's document, rows and alert ids: "course:flow"."""
    return f"{'-' if course_id is None else course_id}:{'-' if flow is None else flow}"


#: Version of the alert record: 1 had no kind, flow, course position, scored_at or recipient; 2 had
#: no factors; the later fields are additive (an older reader ignores them) and came without a bump:
#: `holdout` (the enrolment is in the notification holdout: record, do not deliver) and `basis` (what
#: answered for each score: `Basis`).
ALERT_SCHEMA_VERSION = 3


#: What a sender does with an alert: "status_change" (a critical point, or a return to activity),
#: "at_risk" (an early warning: still active, but the dropout forecast crossed the threshold) or
#: "finished" (the enrolment is over: stop any follow-up).
ALERT_KINDS = ("status_change", "at_risk", "finished")


@dataclass(frozen=True, slots=True)
class Alert:
    """A critical point: an enrolment's activity status changed at event time `at`, its lifecycle
    ended (to_status "finished"), or an early warning (kind "at_risk", status unchanged)."""

    alert_id: str  # deterministic: the same transition found twice has the same id
    user_id: int
    course_id: int | None
    from_status: str
    to_status: str
    at: float
    days_inactive: float
    last_activity: float | None
    scores: Scores
    reasons: tuple[str, ...]
    position: CoursePosition = field(default_factory=CoursePosition)
    flow_num: int | None = None
    kind: str = "status_change"  # one of ALERT_KINDS
    scored_at: float | None = None  # event time of the scores
    time_zone: str | None = None  # the student's, to send at a decent local hour
    tg_bot: int | None = None  # Telegram bot: 0 not connected, 1 connected, 2 stopped (which channel reaches them)
    language: Language = "ru"  # of the reasons' and factors' sentences
    holdout: bool = False  # the enrolment is held out of notifications (streams.contract.holdout): do not deliver

    def to_message(self) -> dict[str, Any]:
        """The `alert` record the notification service reads."""
        return {
            "schema_version": ALERT_SCHEMA_VERSION, "kind": self.kind, "flow_num": self.flow_num,
            "alert_id": self.alert_id, "user_id": self.user_id, "course_id": self.course_id,
            "from_status": self.from_status, "to_status": self.to_status, "ts": format_ts(self.at),
            "days_inactive": round(self.days_inactive, 3),
            "last_activity_ts": None if self.last_activity is None else format_ts(self.last_activity),
            "scores": {"progress": self.scores.progress, "p_dropout": self.scores.p_dropout,
                       "p_success": self.scores.p_success},
            "model_version": self.scores.model_version, "reasons": list(self.reasons),
            "factors": self.scores.factors_json(self.language), "basis": self.scores.basis_json(),
            "position": self.position.to_json(),
            "scored_at": None if self.scored_at is None else format_ts(self.scored_at),
            "recipient": {"time_zone": self.time_zone, "tg_bot": self.tg_bot},
            "holdout": self.holdout,
        }


@dataclass(frozen=True, slots=True)
class ScoreRow:
    """An enrolment's snapshot as of event time `updated_at`: status, scores and the features behind them."""

    user_id: int
    enrolment: str  # "course:flow" (streams.core.step.enrolment_key)
    course_id: int | None
    flow_num: int | None
    status: str
    status_since: float | None
    last_activity_at: float | None
    days_inactive: float | None
    scores: Scores
    features: dict[str, float]
    updated_at: float
    new_history_day: bool  # the first row of this student's event-time day: score history keeps it
    language: Language = "ru"  # of the factors' sentences
