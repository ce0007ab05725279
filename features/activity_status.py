"""Activity status (active / dozing / asleep) as a pure event-time state machine.

The worker and the offline reference run the *same* machine: the worker feeds it a student's
activity times in batches as the event-time watermark advances; the reference feeds all of them
at once. Transition times depend only on activity times (dozing exactly `dozing_days` after the
last activity), never on when the worker noticed, so a replay of history emits exactly the
alerts live operation would have.
"""
from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TypedDict

from features.eventtime import DAY

NEW, ACTIVE, DOZING, ASLEEP = "new", "active", "dozing", "asleep"
#: The statuses a scored student can have; "new" is only where a first transition starts from.
STATUSES = (ACTIVE, DOZING, ASLEEP)
FROM_STATUSES = (NEW, *STATUSES)


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


@dataclass(frozen=True)
class Transition:
    user_id: int
    from_status: str
    to_status: str
    at: float  # event time of the change
    last_activity: float
    days_inactive: float

    @property
    def alert_id(self) -> str:
        """Deterministic: the same transition found twice (redelivery, replay) has the same id."""
        text = f"{self.user_id}|{self.from_status}|{self.to_status}|{self.at:.0f}"
        return hashlib.sha1(text.encode()).hexdigest()[:24]


@dataclass
class StatusMachine:
    """One student's status. `pending` holds activity times not yet reached by the watermark
    (kept sorted); `horizon` is the event time up to which the machine has been advanced.
    `start` is when the student's course (flow) begins: nobody is dozing before there is
    anything to study, so the inactivity clock runs from max(last activity, start)."""

    user_id: int
    status: str = NEW
    since: float | None = None
    last: float | None = None  # last activity (or registration) time the machine has consumed
    horizon: float | None = None
    pending: list[float] = field(default_factory=list)
    start: float | None = None

    def add(self, ts: float) -> bool:
        """Queue an activity time; returns False if it is older than the horizon (a late event,
        handled by `_late` when the machine next advances)."""
        bisect.insort(self.pending, ts)
        return self.horizon is None or ts >= self.horizon

    def next_due(self, thresholds: Thresholds) -> float | None:
        """Earliest event time at which advancing could change something."""
        candidates = [self.pending[0]] if self.pending else []
        base = self._clock_base()
        if base is not None and self.status == ACTIVE:
            candidates.append(base + thresholds.dozing_days * DAY)
        elif base is not None and self.status == DOZING:
            candidates.append(base + thresholds.asleep_days * DAY)
        return min(candidates) if candidates else None

    def _clock_base(self) -> float | None:
        if self.last is None or self.start is None:
            return self.last
        return max(self.last, self.start)

    def advance(self, watermark: float, thresholds: Thresholds) -> list[Transition]:
        """Consume pending activity up to `watermark` and emit every transition that happened by then."""
        out: list[Transition] = []
        cut = bisect.bisect_right(self.pending, watermark)
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
        self._fall_asleep_until(watermark, thresholds, out, inclusive=True)
        self.horizon = watermark if self.horizon is None else max(self.horizon, watermark)
        return out

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
        if base is None:
            return
        for target, days in ((DOZING, thresholds.dozing_days), (ASLEEP, thresholds.asleep_days)):
            due = base + days * DAY
            reached = due <= until if inclusive else due < until
            if reached and STATUSES.index(self.status) < STATUSES.index(target):
                out.append(self._move(target, due))

    def _move(self, to_status: str, at: float) -> Transition:
        base = self._clock_base()
        assert self.last is not None and base is not None
        transition = Transition(self.user_id, self.status, to_status, at, self.last, (at - base) / DAY)
        self.status, self.since = to_status, at
        return transition

    def to_json(self) -> MachineState:
        return {"status": self.status, "since": self.since, "last_activity": self.last, "horizon": self.horizon,
                "pending": self.pending, "start": self.start}

    @classmethod
    def from_json(cls, user_id: int, state: MachineState | None) -> StatusMachine:
        if not state:
            return cls(user_id)
        return cls(user_id, state["status"], state["since"], state["last_activity"], state["horizon"],
                   list(state["pending"]), state["start"])


def reference_transitions(
    user_id: int, activity_times: Iterable[float], watermark: float, thresholds: Thresholds = DEFAULT_THRESHOLDS,
    start: float | None = None,
) -> list[Transition]:
    """What live operation would emit for one student, given all activity times at once."""
    machine = StatusMachine(user_id, start=start)
    for ts in activity_times:
        machine.add(ts)
    return machine.advance(watermark, thresholds)
