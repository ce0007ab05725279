"""Did the notifications work? Return rates of notified vs held-out students, per alert kind (`scorer uplift`).

The worker holds a share of enrolments out of notifications (SCORER_HOLDOUT_SHARE, drawn by
streams.contract.holdout): their alerts are recorded with `held_out` but never delivered. The draw
is random with respect to the student, so the held-out enrolments are a control group, and the
difference of the groups' outcome rates is the notifications' effect (their uplift).

- Unit: the *first* alert of each kind per enrolment. Randomisation is per enrolment, and later
  alerts of the same enrolment depend on how the first one went (and would count one student
  several times), so only the first one is an independent trial.
- Kinds and outcomes, within `days` (default 7) after the alert's event time:
  `dozing` and `asleep` (status_change into that status): *came back*, a transition of the
  same enrolment to active; `at_risk` (an early warning, the student still active): *stayed
  active*, no transition into dozing or asleep.
- An alert whose window reaches past the data (`horizon`: by default the newest transition) is
  left out while its outcome is unknown: it has neither met its outcome nor seen its enrolment
  finish. An enrolment that finished inside the window without coming back did not come back.
- Interval: the 95% Newcombe hybrid score interval (from the two Wilson intervals) of the
  difference notified rate - held-out rate; a verdict only when it excludes 0.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from features.activity_status import ACTIVE, ASLEEP, DOZING, FINISHED
from features.eventtime import DAY, format_ts, parse_ts
from online_models.intervals import newcombe, wilson

KINDS = (DOZING, ASLEEP, "at_risk")
OUTCOMES = {DOZING: "came back", ASLEEP: "came back", "at_risk": "stayed active"}
DEFAULT_DAYS = 7.0
INTERVAL = "95% Newcombe hybrid score (Wilson) interval of notified - held-out"


@dataclass(frozen=True, slots=True)
class TransitionRecord:
    """One recorded alert, as status_transitions holds it (`at`: epoch seconds of event time)."""

    user_id: int
    enrolment: str  # "course:flow"
    kind: str  # status_change | at_risk | finished
    from_status: str
    to_status: str
    at: float
    held_out: bool


def from_rows(rows: Iterable[Mapping[str, Any]]) -> list[TransitionRecord]:
    """status_transitions rows (storage.postgres.alert_outcomes: `at` a naive school-time datetime)."""
    return [TransitionRecord(r["user_id"], r["enrolment"], r["kind"], r["from_status"], r["to_status"],
                             parse_ts(r["at"].isoformat()), bool(r["held_out"])) for r in rows]


def alert_kind(t: TransitionRecord) -> str | None:
    """The uplift kind an alert counts under (None: a return to activity or an end, not measured)."""
    if t.kind == "at_risk":
        return "at_risk"
    if t.kind == "status_change" and t.to_status in (DOZING, ASLEEP):
        return t.to_status
    return None


@dataclass(frozen=True)
class Arm:
    """One group: alerts with a known outcome, and how many met it."""

    n: int = 0
    met: int = 0

    @property
    def rate(self) -> float | None:
        return self.met / self.n if self.n else None

    def to_json(self) -> dict[str, Any]:
        low, high = wilson(self.met, self.n) if self.n else (None, None)
        return {"n": self.n, "met": self.met, "rate": _round(self.rate), "ci95": [_round(low), _round(high)]}


@dataclass(frozen=True)
class KindUplift:
    kind: str
    notified: Arm
    held_out: Arm
    unknown: int  # alerts whose window reaches past the data

    @property
    def difference(self) -> float | None:
        if self.notified.rate is None or self.held_out.rate is None:
            return None
        return self.notified.rate - self.held_out.rate

    @property
    def interval(self) -> tuple[float, float] | None:
        if not self.notified.n or not self.held_out.n:
            return None
        return newcombe(self.notified.met, self.notified.n, self.held_out.met, self.held_out.n)

    @property
    def verdict(self) -> str:
        interval = self.interval
        if interval is None:
            return "not measurable (an empty group)"
        if interval[0] > 0:
            return "notifications help"
        if interval[1] < 0:
            return "notifications hurt"
        return "no effect shown"

    def to_json(self) -> dict[str, Any]:
        interval = self.interval
        return {"outcome": OUTCOMES[self.kind], "notified": self.notified.to_json(),
                "held_out": self.held_out.to_json(), "unknown": self.unknown,
                "difference": _round(self.difference),
                "ci95": None if interval is None else [_round(interval[0]), _round(interval[1])],
                "verdict": self.verdict}


def uplift(transitions: Iterable[TransitionRecord], days: float = DEFAULT_DAYS,
           horizon: float | None = None) -> list[KindUplift]:
    """Per kind (KINDS order), the two groups' outcomes (see the module docstring)."""
    by_enrolment: dict[tuple[int, str], list[TransitionRecord]] = {}
    for t in transitions:
        by_enrolment.setdefault((t.user_id, t.enrolment), []).append(t)
    if horizon is None:
        horizon = max((t.at for ts in by_enrolment.values() for t in ts), default=0.0)
    window = days * DAY
    counts = {kind: {True: [0, 0], False: [0, 0]} for kind in KINDS}  # held_out -> [n, met]
    unknown = dict.fromkeys(KINDS, 0)
    for history in by_enrolment.values():
        history.sort(key=lambda t: t.at)
        firsts: dict[str, TransitionRecord] = {}
        for t in history:
            kind = alert_kind(t)
            if kind is not None:
                firsts.setdefault(kind, t)
        for kind, alert in firsts.items():
            met = _outcome(kind, alert, history, window, horizon)
            if met is None:
                unknown[kind] += 1
                continue
            arm = counts[kind][alert.held_out]
            arm[0] += 1
            arm[1] += met
    return [KindUplift(kind, Arm(*counts[kind][False]), Arm(*counts[kind][True]), unknown[kind]) for kind in KINDS]


def _outcome(kind: str, alert: TransitionRecord, history: list[TransitionRecord], window: float,
             horizon: float) -> bool | None:
    """Did the alert's enrolment meet its kind's outcome within the window? None: not known yet."""
    later = [t for t in history if alert.at < t.at <= alert.at + window]
    if kind == "at_risk":
        if any(t.to_status in (DOZING, ASLEEP) for t in later):
            return False
    elif any(t.to_status == ACTIVE and t.kind == "status_change" for t in later):
        return True
    if any(t.to_status == FINISHED for t in later) or alert.at + window <= horizon:
        return kind == "at_risk"
    return None


def report(transitions: Iterable[TransitionRecord], days: float = DEFAULT_DAYS,
           horizon: float | None = None, source: str = "") -> dict[str, Any]:
    """The `scorer uplift --json` document."""
    records = list(transitions)
    if horizon is None and records:
        horizon = max(t.at for t in records)
    return {"source": source, "days": days, "horizon": None if horizon is None else format_ts(horizon),
            "unit": "the first alert of each kind per enrolment", "interval": INTERVAL,
            "transitions": len(records), "held_out_share": _round(_held_out_share(records)),
            "kinds": {k.kind: k.to_json() for k in uplift(records, days, horizon)}}


def _held_out_share(records: list[TransitionRecord]) -> float | None:
    enrolments = {(t.user_id, t.enrolment): t.held_out for t in records}
    return sum(enrolments.values()) / len(enrolments) if enrolments else None


def format_table(result: dict[str, Any]) -> str:
    """The report as a fixed-width table, one line per kind."""
    if not result["transitions"]:
        return f"no alerts recorded yet ({result['source']})"
    head = ("kind", "outcome", "notified", "held out", "difference", "95% CI", "verdict")
    lines = [head]
    for kind, row in result["kinds"].items():
        ci = row["ci95"]
        lines.append((kind, f"{row['outcome']} in {result['days']:g} d", _arm(row["notified"]), _arm(row["held_out"]),
                      "-" if row["difference"] is None else f"{100 * row['difference']:+.1f} pp",
                      "-" if ci is None else f"[{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}] pp", row["verdict"]))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    table = "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines)
    return (f"{table}\n(unit: {result['unit']}; {result['interval']}; "
            f"{result['transitions']} transitions up to {result['horizon']})")


def _arm(arm: dict[str, Any]) -> str:
    return "-" if not arm["n"] else f"{arm['met']}/{arm['n']} {100 * arm['rate']:.1f}%"


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
