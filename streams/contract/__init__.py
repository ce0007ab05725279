"""The event contract between the LMS, the scorer and the notification service.

One JSON Schema per record kind (schemas/*.schema.json, documented per topic in asyncapi.yaml)
is the single source of truth: producers are told what to send, and the worker rejects
what does not match with a reason that lands on the dead-letter topic. `outputs` holds what
the scorer itself produces (scores, alerts, score rows).
"""
from streams.contract.codec import InvalidEvent, check_event_time, decode, encode, key_of, schema, validate
from streams.contract.dead_letters import dead_letter
from streams.contract.outputs import Alert, CoursePosition, ScoreBasis, ScoreRow, Scores, enrolment_key
from streams.contract.topics import (
    ACTIVITY_TOPICS,
    GLOBAL_TOPICS,
    GROUP_TOPICS,
    INPUT_TOPICS,
    OUTCOME_MODULE,
    TOPIC_SCHEMA,
    Topic,
    same_time_rank,
)

__all__ = [
    "ACTIVITY_TOPICS",
    "GLOBAL_TOPICS",
    "GROUP_TOPICS",
    "INPUT_TOPICS",
    "OUTCOME_MODULE",
    "TOPIC_SCHEMA",
    "Alert",
    "CoursePosition",
    "InvalidEvent",
    "ScoreBasis",
    "ScoreRow",
    "Scores",
    "Topic",
    "check_event_time",
    "dead_letter",
    "decode",
    "encode",
    "enrolment_key",
    "key_of",
    "same_time_rank",
    "schema",
    "validate",
]
