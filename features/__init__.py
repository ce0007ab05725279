"""The school's student logic, pure: no streaming, storage or model imports, nothing of ours.

Records fold into a small order-independent state (`state.apply`); `engagement.compute` turns a
state plus the course schedule into the seed's features as of any moment; `activity_status`
is the event-time status machine (active / dozing / asleep); `eventtime` is the one clock.
"""
from features.activity_status import (
    ACTIVE,
    ASLEEP,
    DEFAULT_THRESHOLDS,
    DOZING,
    FINISHED,
    NEW,
    STATUSES,
    StatusMachine,
    Thresholds,
    Transition,
    reference_transitions,
)
from features.engagement import DESCRIPTIONS, FEATURE_NAMES, compute, task_due_times, time_zone_hours
from features.eventtime import DAY, WEEK, format_ts, parse_ts, to_db_time
from features.fold import fold
from features.schedule import Activity, CourseSchedule, FlowSchedules, ScheduleKey, schedule_key
from features.state import FeatureState, apply, attempt_facts, canonical, last_activity, new_state, outcome, profile

__all__ = [
    "ACTIVE",
    "ASLEEP",
    "DAY",
    "DEFAULT_THRESHOLDS",
    "DESCRIPTIONS",
    "DOZING",
    "FEATURE_NAMES",
    "FINISHED",
    "NEW",
    "STATUSES",
    "WEEK",
    "Activity",
    "CourseSchedule",
    "FeatureState",
    "FlowSchedules",
    "ScheduleKey",
    "StatusMachine",
    "Thresholds",
    "Transition",
    "apply",
    "attempt_facts",
    "canonical",
    "compute",
    "fold",
    "format_ts",
    "last_activity",
    "new_state",
    "outcome",
    "parse_ts",
    "profile",
    "reference_transitions",
    "schedule_key",
    "task_due_times",
    "time_zone_hours",
    "to_db_time",
]
