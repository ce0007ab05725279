"""The pure in-memory reference: what the streaming worker's stored states must equal."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from features.state import FeatureState, apply, new_state

#: Course-keyed records carry no student fact; they build a CourseSchedule instead.
_NOT_STUDENT = frozenset({"schedule_activity"})


def fold(records: Iterable[tuple[str, dict[str, Any]]]) -> dict[int, FeatureState]:
    """(kind, record) pairs -> {user_id: state}. Schedule records are skipped; an unknown kind raises."""
    states: dict[int, FeatureState] = {}
    for kind, record in records:
        if kind in _NOT_STUDENT:
            continue
        user_id = int(record["user_id"])
        state = states.get(user_id)
        if state is None:
            state = states[user_id] = new_state()
        apply(state, kind, record)
    return states
