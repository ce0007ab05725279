"""The topics: logical names (the physical name adds the settings' prefix) and what each carries."""
from __future__ import annotations

from enum import Enum


class Topic(str, Enum):
    AUTHORIZATIONS = "lms.authorizations"
    PAGE_VIEWS = "lms.page_views"
    EXERCISE_RESULTS = "lms.exercise_results"
    WEBINAR_EVENTS = "lms.webinar_events"
    STUDENTS = "lms.students"
    SCHEDULE = "lms.schedule"
    OUTCOMES = "lms.outcomes"
    ALERTS = "scorer.alerts"
    DEAD_LETTERS = "scorer.dead_letters"
    NOTIFY_DEAD_LETTERS = "notify.dead_letters"  # alerts `scorer notify` could not deliver

    def physical(self, prefix: str = "") -> str:
        return f"{prefix}{self.value}"


#: The module an outcome is published on when its source names none (exports, withdrawals from
#: the LMS adapters): the seed's users.csv reports module 2's results (M2_*), the scorer's label.
OUTCOME_MODULE = 2

_SAME_TIME_RANK = {Topic.SCHEDULE: 0, Topic.STUDENTS: 1, Topic.OUTCOMES: 3}  # activity: 2


def same_time_rank(topic: Topic) -> int:
    """Order of records at equal event time: the plan, then who the student is, then what they did,
    then the label, so a replay never shows activity before its student or an outcome before the
    activity it ends."""
    return _SAME_TIME_RANK.get(topic, 2)


#: Record kind carried by each topic (the name of its JSON Schema).
TOPIC_SCHEMA: dict[Topic, str] = {
    Topic.AUTHORIZATIONS: "authorization",
    Topic.PAGE_VIEWS: "page_view",
    Topic.EXERCISE_RESULTS: "exercise_result",
    Topic.WEBINAR_EVENTS: "webinar_event",
    Topic.STUDENTS: "student",
    Topic.SCHEDULE: "schedule_activity",
    Topic.OUTCOMES: "outcome",
    Topic.ALERTS: "alert",
    Topic.DEAD_LETTERS: "dead_letter",
    Topic.NOTIFY_DEAD_LETTERS: "dead_letter",
}

#: What a student does: these move the inactivity clock.
ACTIVITY_TOPICS = (Topic.AUTHORIZATIONS, Topic.PAGE_VIEWS, Topic.EXERCISE_RESULTS, Topic.WEBINAR_EVENTS)
#: Everything the LMS publishes (keyed by student, except the schedule which is keyed by course).
INPUT_TOPICS = (*ACTIVITY_TOPICS, Topic.STUDENTS, Topic.SCHEDULE, Topic.OUTCOMES)
#: Reference data every worker reads whole, like a global table: the schedule is keyed by course,
#: so the worker that owns a student's partitions would otherwise not own the rows its clock needs.
GLOBAL_TOPICS = (Topic.SCHEDULE,)
#: What the consumer group splits between workers (co-partitioned by student).
GROUP_TOPICS = tuple(t for t in INPUT_TOPICS if t not in GLOBAL_TOPICS)
