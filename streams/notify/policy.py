"""What to send for an alert: a small table from the alert's situation to an action.

The situation is the new status of a status change (`dozing`, `asleep`, `active`), or the kind of
any other alert (`at_risk`, `finished`). The school configures the table (SCORER_NOTIFY_POLICY),
so changing who hears what is a setting, not a release. Pure: no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

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
            actions[situation] = action  # narrowed to Action by the check above
        return cls(actions)

    def action_for(self, alert: dict[str, Any]) -> Action:
        return self.actions.get(situation(alert), "none")


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
