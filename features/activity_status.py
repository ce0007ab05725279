"""Activity status (active / dozing / asleep, then finished) as a pure event-time state machine.

One machine per enrolment: a student's time in one flow of one course. The worker and the
offline reference run the *same* machine: the worker feeds it activity times in batches as the
event-time watermark advances; the reference feeds all of them at once. Transition times depend
only on activity times (dozing exactly `dozing_days` after the last activity), never on when the
worker noticed, so a replay of history emits exactly the alerts live operation would have.

The lifecycle ends (`end`): when the enrolment's outcome arrives, or when its flow's schedule is
over plus a grace period, whichever is first. Then the status becomes `finished`, with one last
transition, and nothing moves it again: graduates are not nagged, and a later enrolment starts a
machine of its own.
"""
from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TypedDict

from features.eventtime import DAY

NEW, ACTIVE, DOZING, ASLEEP, FINISHED = "new", "active", "dozing", "asleep", "finished"
#: The statuses a scored enrolment can have; "new" is only where a first transition starts from.
STATUSES = (ACTIVE, DOZING, ASLEEP, FINISHED)
#: Inactivity statuses, least to most inactive.
_INACTIVE_ORDER = (ACTIVE, DOZING, ASLEEP)
#: Where a transition can start: nothing leaves "finished".
FROM_STATUSES = (NEW, *_INACTIVE_ORDER)


@dataclass(frozen=True)
class Thresholds:
    """Days of inactivity after which a student is dozing / asleep."""

    dozing_days: float
    asleep_days: float


#: The seed's numbers: dozing after 7 days without activity, asleep after 20.
DEFAULT_THRESHOLDS = Thresholds(dozing_days=7.0, asleep_days=20.0)


class MachineState(TypedDict):
    """A StatusMachine as stored in the student's document."""

    status: str
    since: float | None
    last_activity: float | None
    horizon: float | None
    pending: list[float]
    start: float | None
    end: float | None


@dataclass(frozen=True)
class Transition:
    user_id: int
    from_status: str
    to_status: str
    at: float  # event time of the change
    last_activity: float
    days_inactive: float
    scope: str = ""  # the enrolment ("course:flow"): two enrolments' transitions never share an id

    @property
    def alert_id(self) -> str:
        """Deterministic: the same transition found twice (redelivery, replay) has the same id."""
        text = f"{self.user_id}|{self.scope}|{self.from_status}|{self.to_status}|{self.at:.0f}"
        return hashlib.sha1(text.encode()).hexdigest()[:24]


@dataclass
class StatusMachine:
    """One enrolment's status. `pending` holds activity times not yet reached by the watermark
    (kept sorted); `horizon` is the event time up to which the machine has been advanced.
    `start` is when the flow begins: nobody is dozing before there is anything to study, so the
    inactivity clock runs from max(last activity, start). `end` ends the lifecycle (see above)."""

    user_id: int
    status: str = NEW
    since: float | None = None
    last: float | None = None  # last activity (or registration) time the machine has consumed
    horizon: float | None = None
    pending: list[float] = field(default_factory=list)
    start: float | None = None
    end: float | None = None
    scope: str = ""

    def add(self, ts: float) -> bool:
        """Queue an activity time; returns False if it is older than the horizon (a late event,
        handled by `_late` when the machine next advances)."""
        if self.status == FINISHED:
            return True  # the lifecycle is over: nothing moves it again
        bisect.insort(self.pending, ts)
        return self.horizon is None or ts >= self.horizon

    def next_due(self, thresholds: Thresholds) -> float | None:
        """Earliest event time at which advancing could change something."""
        if self.status == FINISHED:
            return None
        candidates = [self.pending[0]] if self.pending else []
        base = self._clock_base()
        if base is not None and self.status == ACTIVE:
            candidates.append(base + thresholds.dozing_days * DAY)
        elif base is not None and self.status == DOZING:
            candidates.append(base + thresholds.asleep_days * DAY)
        if self.end is not None:
            candidates.append(self.end)
        return min(candidates) if candidates else None

    def _clock_base(self) -> float | None:
        if self.last is None or self.start is None:
            return self.last
        return max(self.last, self.start)

    def advance(self, watermark: float, thresholds: Thresholds) -> list[Transition]:
        """Consume pending activity up to `watermark` and emit every transition that happened by then."""
        out: list[Transition] = []
        if self.status == FINISHED:
            return out
        # an end known only now, behind the horizon, takes effect at the horizon: nothing back-dated
        end = None if self.end is None else max(self.end, self.horizon or self.end)
        until = watermark if end is None else min(watermark, end)
        cut = bisect.bisect_right(self.pending, until)
        if end is not None and cut and self.pending[cut - 1] == end:
            cut = bisect.bisect_left(self.pending, end)  # activity at the end itself is after it
        ready, self.pending = self.pending[:cut], self.pending[cut:]
        horizon = self.horizon
        late = bisect.bisect_left(ready, horizon) if horizon is not None and self.status != NEW else 0
        for ts in ready[:late]:
            assert horizon is not None
            self._late(ts, horizon, thresholds, out)
        for ts in ready[late:]:
            self._fall_asleep_until(ts, thresholds, out, inclusive=False)
            if self.status == NEW:
                self.status, self.since = ACTIVE, ts  # enrolment is not a critical point: no alert
            elif self.status != ACTIVE:
                out.append(self._move(ACTIVE, ts))
            self.last = ts if self.last is None else max(self.last, ts)
        if end is not None and watermark >= end:
            self._fall_asleep_until(end, thresholds, out, inclusive=False)
            self._finish(end, out)
        else:
            self._fall_asleep_until(watermark, thresholds, out, inclusive=True)
        self.horizon = watermark if self.horizon is None else max(self.horizon, watermark)
        return out

    def _finish(self, at: float, out: list[Transition]) -> None:
        """The last transition of the lifecycle; an enrolment that never had a status ends quietly."""
        if self.status == NEW:
            self.status, self.since = FINISHED, at
        else:
            out.append(self._move(FINISHED, at))
        self.pending = []

    def _late(self, ts: float, horizon: float, thresholds: Thresholds, out: list[Transition]) -> None:
        """Activity older than the horizon: transitions up to the horizon are out already, so the
        past is not rewritten (nothing back-dated, nothing out of order). The activity counts as
        the student's latest if it is; it wakes a dozing or asleep student, at the horizon, only
        if it is recent enough that they would be active there (under `dozing_days` before it).
        An older one leaves the status as it is, and the inactivity clock runs from it."""
        self.last = ts if self.last is None else max(self.last, ts)
        base = self._clock_base()
        assert base is not None
        if self.status in (DOZING, ASLEEP) and horizon - base < thresholds.dozing_days * DAY:
            out.append(self._move(ACTIVE, horizon))

    def _fall_asleep_until(self, until: float, thresholds: Thresholds, out: list[Transition], *,
                           inclusive: bool) -> None:
        base = self._clock_base()
        if base is None or self.status not in _INACTIVE_ORDER:
            return
        for target, days in ((DOZING, thresholds.dozing_days), (ASLEEP, thresholds.asleep_days)):
            due = base + days * DAY
            reached = due <= until if inclusive else due < until
            if reached and _INACTIVE_ORDER.index(self.status) < _INACTIVE_ORDER.index(target):
                out.append(self._move(target, due))

    def _move(self, to_status: str, at: float) -> Transition:
        base = self._clock_base()
        assert self.last is not None and base is not None
        days = max(0.0, (at - base) / DAY)
        transition = Transition(self.user_id, self.status, to_status, at, self.last, days, self.scope)
        self.status, self.since = to_status, at
        return transition

    def to_json(self) -> MachineState:
        return {"status": self.status, "since": self.since, "last_activity": self.last, "horizon": self.horizon,
                "pending": self.pending, "start": self.start, "end": self.end}

    @classmethod
    def from_json(cls, user_id: int, state: MachineState | None, scope: str = "") -> StatusMachine:
        if not state:
            return cls(user_id, scope=scope)
        return cls(user_id, state["status"], state["since"], state["last_activity"], state["horizon"],
                   list(state["pending"]), state["start"], state["end"], scope)


def reference_transitions(
    user_id: int, activity_times: Iterable[float], watermark: float, thresholds: Thresholds = DEFAULT_THRESHOLDS,
    start: float | None = None, end: float | None = None, scope: str = "",
) -> list[Transition]:
    """What live operation would emit for one enrolment, given all activity times at once."""
    machine = StatusMachine(user_id, start=start, end=end, scope=scope)
    for ts in activity_times:
        machine.add(ts)
    return machine.advance(watermark, thresholds)
