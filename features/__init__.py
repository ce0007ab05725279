"""Student engagement features, pure and offline-reusable (no streaming imports).

Records fold into a small order-independent state (`state.apply`), and `engagement.compute`
turns a state plus the course schedule into the seed's features as of any moment.
"""
from features.engagement import DESCRIPTIONS, FEATURE_NAMES, compute
from features.fold import fold
from features.schedule import DAY, Activity, CourseSchedule, parse_ts
from features.state import apply, canonical, last_activity, new_state, outcome, profile

__all__ = [
    "DAY",
    "DESCRIPTIONS",
    "FEATURE_NAMES",
    "Activity",
    "CourseSchedule",
    "apply",
    "canonical",
    "compute",
    "fold",
    "last_activity",
    "new_state",
    "outcome",
    "parse_ts",
    "profile",
]
