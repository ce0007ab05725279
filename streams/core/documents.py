"""A student's stored document and the events a step applies to it: the worker's state, one JSON object
per student in the student store (storage.students)."""
from __future__ import annotations

from typing import Any, NamedTuple, NotRequired, TypedDict

from features.activity_status import MachineState
from features.state import FeatureState, new_state
from streams.contract.topics import Topic


class EnrolmentDoc(TypedDict):
    """One enrolment (a flow of a course) in the student's document."""

    course_id: int
    flow: int | None
    started: float  # event time of its first profile: activity before it belongs to other enrolments
    machine: MachineState | None
    outcome_ts: float | None  # its outcome arrived then: the lifecycle ends
    weeks_kept: int  # course weeks whose features went to the trainer
    history_day: int | None  # event-time day of the last score-history row
    scores: dict[str, Any]  # the last Scores, as JSON
    scored_at: float | None  # event time of those scores
    at_risk_since: float | None  # an early-warning episode is open since then
    #: arrived outcomes not yet handed to the trainer (see `label_release`): (outcome, days inactive
    #: at it, its event time). Absent in documents stored before labels waited.
    held_labels: NotRequired[list[tuple[dict[str, Any], float, float]]]
    #: reported to the flow index as a member of its flow (absent in documents stored before it
    #: existed: reported at their next step)
    in_flow_index: NotRequired[bool]


class StudentDoc(TypedDict):
    """One student's stored document (a JSON object in the student store)."""

    offsets: dict[str, int]  # "topic:partition" -> highest applied offset: the Kafka redelivery fence
    #: the event_key of each applied record that carried an LMS event id, by its event-time day
    #: ("<day>" -> the keys concatenated), for the facts after the compaction horizon (documents
    #: stored before kept every key in a list)
    seen: dict[str, str] | list[str]
    facts: FeatureState
    partition: int | None  # where the student's records are (their watermark)
    enrolments: dict[str, EnrolmentDoc]  # by enrolment_key
    #: outcomes read before any enrolment of their course (topics are read in any order): each is
    #: assigned once one opens. Absent in documents stored before it existed.
    waiting_outcomes: NotRequired[list[tuple[dict[str, Any], float]]]


#: Outcomes a document keeps waiting for their enrolment (bounded: a course never enrolled in
#: must not grow the document).
MAX_WAITING_OUTCOMES = 8


def new_doc() -> StudentDoc:
    return {"offsets": {}, "seen": {}, "facts": new_state(), "partition": None, "enrolments": {},
            "waiting_outcomes": []}


def learner_key(user_id: int, key: str) -> str:
    """What the trainer calls an enrolment: its weekly features and its label meet under it."""
    return f"{user_id}:{key}"


def learner_cohort(learner: str) -> tuple[int | None, int | None]:
    """The course and flow of a `learner_key` ("user:course:flow"); None for each the enrolment has none of (or
    where the key is not one: the trainer still learns the label, in no course's window)."""
    parts = learner.split(":")
    if len(parts) != 3:
        return None, None
    course, flow = (int(part) if part.isdigit() else None for part in parts[1:])
    return course, flow


class StudentEvent(NamedTuple):
    """A decoded, valid record of one student."""

    topic: Topic
    partition: int
    offset: int
    record: dict[str, Any]
    ts: float  # event time
