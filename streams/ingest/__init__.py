"""LMS input in the formats schools already have, turned into the scorer's own contract records.

- Adapters, pure functions, one module per format, each with its mapping table in its
  docstring: `xapi` (xAPI 1.0.3 statements), `caliper` (IMS Caliper 1.1 and 1.2 events: Canvas
  Live Events, D2L Brightspace, Blackboard Learn), `openedx` (Open edX tracking-log events),
  `moodle` (Moodle `logstore_standard_log` rows). Each maps one input item to contract records
  (validated against streams/contract/schemas) or to a `Rejection` with a reason and a kind
  (`base`: invalid, unmapped, unsupported, ignored; all but ignored go to the dead-letter topic).
- `mapping`: the identifier mapping file (`SCORER_INGEST_MAPPING`): actors, courses, pages,
  activities and webinars -> the contract's integer ids, the school's time zone, and the
  numeric fallback for ids that are not listed.
- `times`: source instants -> the contract's naive school-local time.
- `service` + `server`: `scorer ingest`, an HTTP endpoint (xAPI statements, Caliper Envelopes and
  native records) that produces to the topics and acknowledges only what the broker acknowledged.
- `files`: export files of each format -> records in event-time order, for `scorer replay`.

A student leaving a course (Open edX enrollment deactivated, Moodle enrolment deleted, xAPI
unregistered, a Caliper or Canvas membership deleted or deactivated) becomes an outcome at that
moment with result `withdrawn` (`base.withdrawal`). What the contract cannot express yet (the
adapters reject these as `unsupported`, so they sit on the dead-letter topic until it can): a
retracted fact (xAPI voided); course-level grades (the outcome record needs a module, progress
and attestation). Work handed in without a score is a `pending` hand-in of a named attempt (the
student's activity, and the time of the work its later grade grades), never an attempt by itself;
one that names no attempt the adapters ignore (`not_graded`). A student profile is a whole
snapshot ("newest ts wins"), so an enrollment, which knows only the course, publishes a profile
without age, tags or flow.
"""
from streams.ingest.base import IGNORED, INVALID, UNMAPPED, UNSUPPORTED, Mapped, Record, Rejection
from streams.ingest.mapping import IdMapping, MappingError, Target

__all__ = ["IGNORED", "INVALID", "UNMAPPED", "UNSUPPORTED", "IdMapping", "Mapped", "MappingError", "Record",
           "Rejection", "Target"]
