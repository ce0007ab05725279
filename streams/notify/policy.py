"""What to send for an alert: a small table from the alert's situation to an action.

The situation is the new status of a status change (`dozing`, `asleep`, `active`), or the kind of
any other alert (`at_risk`, `finished`). An early warning can also be told apart by what answered its
P(dropout) (`at_risk.guess`, `at_risk.calibrated_guess`, `at_risk.learned`; else `at_risk` applies):
a guess no outcome has leveled ranks students, but its level is not a frequency, so a school may
want it to reach nobody, or someone else, until outcomes have been learned. The school configures
the table (SCORER_NOTIFY_POLICY), so changing who hears what is a setting, not a release. Pure: no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

from streams.contract.outputs import Basis

Action = Literal["nudge", "urge", "curator", "cancel", "none"]
ACTIONS: tuple[Action, ...] = ("nudge", "urge", "curator", "cancel", "none")
#: Who each action addresses; a student-facing action waits out the student's quiet hours.
AUDIENCE: dict[Action, tuple[str, ...]] = {
    "nudge": ("student",), "urge": ("student", "curator"), "curator": ("curator",),
    "cancel": ("follow_ups",), "none": (),
}


@dataclass(frozen=True)
class Policy:
    """Situation -> action; a situation the table does not name gets `none`."""

    actions: dict[str, Action]

    @classmethod
    def parse(cls, text: str) -> Policy:
        """`dozing=nudge,asleep=urge,...`; raises ValueError on an unknown action or a malformed pair.

        >>> Policy.parse("asleep=urge, at_risk=curator").action_for({"kind": "at_risk", "to_status": "active"})
        'curator'
        """
        actions: dict[str, Action] = {}
        for pair in filter(None, (p.strip() for p in text.split(","))):
            situation, sep, action = (part.strip() for part in pair.partition("="))
            if not sep or not situation:
                raise ValueError(f"policy entries look like situation=action, not {pair!r}")
            if action not in ACTIONS:
                raise ValueError(f"unknown action {action!r} (one of {', '.join(ACTIONS)})")
            plain, dot, basis = situation.partition(".")
            if dot and (plain != "at_risk" or basis not in get_args(Basis)):
                raise ValueError(f"{situation!r}: only at_risk is told apart by basis, as at_risk.<basis> with a "
                                 f"basis of {', '.join(get_args(Basis))}")
            actions[situation] = action  # narrowed to Action by the check above
        return cls(actions)

    def action_for(self, alert: dict[str, Any]) -> Action:
        """The action for the alert's situation qualified by its basis where the table names that, else for
        the situation.

        >>> policy = Policy.parse("at_risk=curator, at_risk.guess=none")
        >>> [policy.action_for({"kind": "at_risk", "basis": {"p_dropout": b}}) for b in ("guess", "learned")]
        ['none', 'curator']
        """
        plain = situation(alert)
        basis = part(alert, "basis").get("p_dropout") if plain == "at_risk" else None
        qualified = self.actions.get(f"{plain}.{basis}") if isinstance(basis, str) else None
        return qualified or self.actions.get(plain, "none")


def part(alert: dict[str, Any], name: str) -> dict[str, Any]:
    """A nested object of the alert, or {} when it is missing or not an object."""
    value = alert.get(name)
    return value if isinstance(value, dict) else {}


def situation(alert: dict[str, Any]) -> str:
    """`to_status` for a status change (the default kind of a version-1 alert), else the kind."""
    kind = alert.get("kind") or "status_change"
    return str(alert.get("to_status") if kind == "status_change" else kind)


def reaches_student(action: Action) -> bool:
    return "student" in AUDIENCE[action]


def channel(alert: dict[str, Any]) -> str:
    """Telegram when the student's bot is connected (tg_bot 1), else e-mail."""
    recipient = alert.get("recipient") or {}
    return "telegram" if isinstance(recipient, dict) and recipient.get("tg_bot") == 1 else "email"
