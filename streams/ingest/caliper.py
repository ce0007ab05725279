"""IMS Caliper Analytics 1.1 and 1.2 events (Canvas Live Events, D2L Brightspace, Blackboard Learn) -> contract records.

Field names are the Caliper specification's (1.2, https://www.imsglobal.org/spec/caliper/v1p2,
and the IMS caliper-spec fixtures) and, for Canvas, its Live Events documentation (canvas-lms
doc/api/data_services: Canvas emits Caliper 1.1). Sensors send events inside an Envelope
`{sensor, sendTime, dataVersion, data: [...]}` (`envelope` reads one); `data` may also hold
entity "describes", which are ignored. An entity is an object with `id` and `type`, or only its
id (a "thinned" IRI string).

One event becomes at most one record, whose `event_id` is the event's `id` as `urn:uuid:<uuid>`
in lower case (Caliper requires a UUID URN; Blackboard writes the bare UUID), whose `ts` is
`eventTime` in the school's local time, and whose `user_id` is the student's mapped id
(streams.ingest.mapping): the Person's `id` IRI, then `mailto:` + each EmailAddress among its
`otherIdentifiers` (the keys xAPI's mbox uses); the numeric fallback takes the last segment of
the IRI when it is all digits (`https://lms/users/554433`, `urn:instructure:canvas:user:2107...`).
The student is the actor unless the table names another Person.

Mapping table (event type and action -> record: fields):

- SessionEvent LoggedIn -> authorization (any object).
- NavigationEvent NavigatedTo, ViewEvent Viewed, the object being **the LMS itself** (the event's
  `edApp`, or one of the mapping's `lms_roots`, a trailing slash aside) -> authorization.
- the same on any other object, and MediaEvent Started (a video or audio started)
    -> page_view: page_id = pages[object.id]; page_type = the mapping's, else `занятие` for Page,
       WebPage and Chapter objects, else `активность`; activity_type = the mapping's, else the
       object's type (for Canvas's generic `Entity`, its `asset_type` extension, e.g. `attachment`).
- AssessmentEvent Submitted, AssessmentItemEvent Completed, with a Score the event `generated`
    -> exercise_result: activity_id = activities[the Assessment or AssessmentItem: the object, or
       the object's `assignable` when the object is an Attempt, as Canvas sends quiz_submitted];
       result = the Score's (below); success = result >= pass_percent; attempt_id = the Attempt
       (the object when it is one, else the Attempt the event generated, else the Score's `attempt`).
    Without a Score: a hand-in, whose grade comes as a GradeEvent (Canvas sends quiz_submitted and
    grade_change for every quiz) -> exercise_result `pending` (result null, success 0) of its
    Attempt: the student's activity, never an attempt by itself, and when the Attempt's grade
    comes, the time of the work it grades. Naming no Attempt -> rejected `ignored` / `not_graded`
    (nothing to join its grade to; read as a skip it counted each quiz twice, once failed).
- AssessmentItemEvent Skipped -> exercise_result as above with result null: the contract's skip.
- GradeEvent Graded (the actor is the grader, a Person or an autograder)
    -> exercise_result of the graded Attempt's `assignee` (the object's, else the Score's
       attempt's): activity_id = activities[the Attempt's `assignable`]; result = the generated
       Score's scoreGiven / maxScore x 100 (a maxScore of 0 or none: the assignable's maxScore, as
       Blackboard sends it), clamped to 0..100 (a score above the maximum is extra credit, as
       Canvas sends it: 100) and rounded half up; success = result >= the mapping's pass_percent;
       attempt_id = the Attempt's id (a SHA-256 when over 128 characters), so a regrade (Canvas
       sends grade_change again, Blackboard a GradeEvent for each feedback update) replaces the
       grade instead of adding an attempt; ts = when the Attempt was handed in: its `endedAtTime`,
       else its `startedAtTime` (Blackboard's), unless that is after the grade; graded_at = eventTime
       when later. No scoreGiven (Blackboard's GradeEvent of a submission) -> a hand-in as above,
       dated when the Attempt was. A scoreGiven with no positive maximum anywhere -> rejected `unsupported` /
       `unscorable_result`; an assignable listed in the mapping's `courses` -> `unsupported` /
       `course_result` (no module outcome can be built from it).
- an event whose object is a course **Membership** (its organization a CourseOffering or a
  CourseSection, or only its IRI) of a Learner (a role Learner or Learner#..., or no roles
  stated): student = `member`; course_id = courses[the section's `subOrganizationOf`, else the
  organization]:
    - Created, Activated, Modified -> student (a profile holding only the course), unless its status is Inactive;
    - Deleted, Deactivated, or status Inactive -> outcome (the student left the course, at
      eventTime): module 2 (streams.contract.OUTCOME_MODULE: the event names none); progress and
      attestation null; result `withdrawn`;
    - another organization (a Canvas group) -> `ignored` / `not_a_course`; other roles ->
      `ignored` / `not_a_learner`; another action -> `ignored` / `unused_event`.
- Canvas's enrollment events (enrollment_created, enrollment_updated: an Event Created or Modified
  whose object is an Entity with a `com.instructure.canvas` extension of `type` StudentEnrollment),
  the same way: student = the extension's `user_id`; course_id = courses[`course_id`, else
  `course_section_id`]; workflow_state deleted, inactive or rejected -> the withdrawn outcome;
  completed -> `ignored` / `enrolment_completed` (the course ended, no withdrawal); otherwise
  (active, invited, creation_pending) -> student; a workflow_state that is not text -> `invalid` /
  `bad_workflow_state`. Teacher, TA, observer and test-student
  enrollments -> `ignored` / `not_a_learner`.
- where the actor is the student but is not a Person (an application, as Canvas's own file
  access; an organization) -> `ignored` / `not_a_person`.
- every other event (AssessmentEvent Started, AssignableEvent, whose grade comes as a GradeEvent,
  ForumEvent, MessageEvent, ThreadEvent, AnnotationEvent, MediaEvent other than Started, ToolUseEvent,
  SessionEvent LoggedOut, ...) -> `ignored` / `unused_event`; an entity describe -> `ignored` /
  `entity_describe`.

Invalid events (rejected `invalid`, HTTP 400): not an object; no `id`, or one that is not a UUID;
a Caliper `@context` other than 1.1 or 1.2 (an Envelope's `dataVersion` likewise, HTTP 422); no
`type` or `action`; no actor or object, or one that is neither an IRI nor an entity with an IRI
`id` (a Person without an id); no `eventTime`, or an unreadable one (a graded Attempt's `endedAtTime`
or `startedAtTime` too); a score that is not a number or is negative; a graded Attempt that names no
assignee or no assignable; a membership without member or organization; a record the contract
refuses (e.g. a time before 2000).
"""
from __future__ import annotations

import re
from typing import Any, NamedTuple

from streams.contract import Topic
from streams.ingest.base import (
    IGNORED,
    UNSUPPORTED,
    UUID,
    Mapped,
    Record,
    Reject,
    Rejection,
    attempt_id,
    checked,
    identified,
    iri,
    not_graded,
    number,
    whole_percent,
    with_optional,
    withdrawal,
)
from streams.ingest.mapping import ACTIVITY_PAGE, LESSON, IdMapping, trailing_integer
from streams.ingest.times import attempt_handed_in, local_ts, parse_instant

SOURCE = "caliper"
#: The Caliper versions read: their JSON-LD context IRIs are http://purl.imsglobal.org/ctx/caliper/<version>.
VERSIONS = ("v1p1", "v1p2")
CONTEXTS = tuple(f"http://purl.imsglobal.org/ctx/caliper/{version}" for version in VERSIONS)
_CALIPER_CONTEXT = re.compile(r"https?://purl\.imsglobal\.org/ctx/caliper/([^/]+)(?:/.*)?", re.DOTALL)
#: (event type, action) -> what the event becomes (see the table above); memberships go by their object.
EVENTS: dict[tuple[str, str], str] = {
    ("SessionEvent", "LoggedIn"): "authorization",
    ("NavigationEvent", "NavigatedTo"): "page_view",
    ("ViewEvent", "Viewed"): "page_view",
    ("MediaEvent", "Started"): "page_view",
    ("AssessmentEvent", "Submitted"): "exercise_result",
    ("AssessmentItemEvent", "Completed"): "exercise_result",
    ("AssessmentItemEvent", "Skipped"): "exercise_result",
    ("GradeEvent", "Graded"): "grade",
}
LESSON_TYPES = frozenset({"Page", "WebPage", "Chapter"})
COURSE_TYPES = frozenset({"CourseOffering", "CourseSection"})
ENROLLING, LEAVING = frozenset({"Created", "Activated", "Modified"}), frozenset({"Deleted", "Deactivated"})
CANVAS = "com.instructure.canvas"
CANVAS_LEFT = frozenset({"deleted", "inactive", "rejected"})


class Entity(NamedTuple):
    id: str
    type: str | None  # None: given as its IRI only
    fields: dict[str, Any]


def event_id(event: Any) -> str:
    """The event's id as `urn:uuid:<uuid>` (lower case); Reject when it has none or it is no UUID."""
    if not isinstance(event, dict):
        raise Reject("not_an_object", f"a Caliper event is a JSON object, got {type(event).__name__}")
    given = event.get("id")
    if given is None:
        raise Reject("missing_id", "a Caliper event needs an id (urn:uuid:<uuid>)")
    text = given[9:] if isinstance(given, str) and given[:9].lower() == "urn:uuid:" else given
    if not isinstance(text, str) or not UUID.fullmatch(text):
        raise Reject("bad_event_id", f"id must be a UUID URN, got {str(given)[:60]!r}")
    return f"urn:uuid:{text.lower()}"


def map_event(event: Any, mapping: IdMapping) -> Mapped:
    """One event (or entity describe) -> its records, or a rejection (never raises)."""
    if _is_describe(event):
        return Mapped(None, event, rejection=Rejection(
            "entity_describe", f"a {str(event['type'])[:60]} describe, not an event", event, IGNORED, SOURCE))
    return identified(SOURCE, event, event_id, lambda eid: _records(event, eid, mapping))


# -- the envelope ---------------------------------------------------------------------------------
def is_envelope(value: Any) -> bool:
    """An Envelope rather than an event: it has `data`, and no actor or action."""
    return isinstance(value, dict) and "data" in value and "action" not in value and "actor" not in value


def version_of(context: object) -> str:
    """The version of a Caliper context IRI (`v1p2`), else Reject `unsupported_version`."""
    match = _CALIPER_CONTEXT.fullmatch(context.strip()) if isinstance(context, str) else None
    if match is None or match.group(1) not in VERSIONS:
        raise Reject("unsupported_version", f"Caliper context {str(context)[:80]!r}; understood: {', '.join(CONTEXTS)}")
    return match.group(1)


def envelope(value: Any) -> list[Any]:
    """The `data` of a Caliper Envelope; Reject `not_an_envelope` (events sent bare), `bad_envelope`
    (sensor, sendTime, dataVersion or data missing or of the wrong form) or `unsupported_version`."""
    if not is_envelope(value):
        raise Reject("not_an_envelope", "Caliper data is sent in an Envelope {sensor, sendTime, dataVersion, data}")
    wrong = [name for name in ("sensor", "sendTime", "dataVersion")
             if not isinstance(value.get(name), str) or not value[name].strip()]
    if not isinstance(value.get("data"), list) or not value["data"]:
        wrong.append("data (a non-empty array)")
    if "sendTime" not in wrong:
        try:
            parse_instant(value["sendTime"])
        except Reject:
            wrong.append("sendTime (an ISO 8601 time)")
    if wrong:
        raise Reject("bad_envelope", f"the Envelope's {', '.join(wrong)} is missing or malformed")
    version_of(value["dataVersion"])
    return list(value["data"])


def map_envelope(value: Any, mapping: IdMapping, ref: str | None = None) -> list[Mapped]:
    """Every item of an Envelope, mapped; a malformed Envelope is one rejection (`ref`: where it was)."""
    try:
        items = envelope(value)
    except Reject as rejected:
        return [Mapped(ref, value, rejection=Rejection(rejected.reason, rejected.detail, value, rejected.kind, SOURCE,
                                                       ref))]
    return [map_event(item, mapping) for item in items]


# -- the parts of an event ------------------------------------------------------------------------
def _is_describe(value: Any) -> bool:
    kind = value.get("type") if isinstance(value, dict) else None
    return isinstance(kind, str) and not kind.endswith("Event") and "action" not in value and "actor" not in value


def _check_context(context: object) -> None:
    """Every Caliper context the event names is 1.1 or 1.2 (others, e.g. extension vocabularies, pass)."""
    for entry in context if isinstance(context, list) else [context]:
        if isinstance(entry, str) and _CALIPER_CONTEXT.fullmatch(entry.strip()):
            version_of(entry)


def _term(event: dict[str, Any], name: str) -> str:
    value = event.get(name)
    if value is None:
        raise Reject(f"missing_{name}", f"a Caliper event needs {name}")
    if not isinstance(value, str) or not value or len(value) > 200:
        raise Reject(f"bad_{name}", f"{name} must be a Caliper term, got {str(value)[:60]!r}")
    return value


def _entity(value: object, what: str) -> Entity:
    """An entity given whole or as its IRI; Reject `missing_<what>` or `bad_<what>`."""
    if value is None:
        raise Reject(f"missing_{what}", f"no {what}")
    if isinstance(value, str):
        return Entity(iri(value, what), None, {})
    if not isinstance(value, dict):
        raise Reject(f"bad_{what}", f"{what} must be an entity or its IRI")
    kind = value.get("type")
    if kind is not None and not isinstance(kind, str):
        raise Reject(f"bad_{what}", f"{what}.type must be a string")
    if value.get("id") is None:
        raise Reject(f"bad_{what}", f"{what} ({kind or 'an entity'}) has no id")
    return Entity(iri(value["id"], what), kind, value)


def _person(person: Entity, what: str, mapping: IdMapping) -> int:
    """The mapped id of a Person; another kind of agent is no student (Reject `not_a_person`, ignored)."""
    if person.type is not None and person.type != "Person":
        raise Reject("not_a_person", f"{what} is a {person.type[:60]}, not a student", IGNORED)
    others = person.fields.get("otherIdentifiers")
    emails = [f"mailto:{other['identifier']}" for other in (others if isinstance(others, list) else [])
              if isinstance(other, dict) and other.get("identifierType") == "EmailAddress"
              and isinstance(other.get("identifier"), str) and "@" in other["identifier"]]
    return mapping.user([person.id, *emails], trailing_integer(person.id))


def _canvas(fields: dict[str, Any]) -> dict[str, Any]:
    """An entity's Canvas extension (`extensions["com.instructure.canvas"]`), else {}."""
    extensions = fields.get("extensions")
    found = extensions.get(CANVAS) if isinstance(extensions, dict) else None
    return found if isinstance(found, dict) else {}


def _is_lms(page: Entity, ed_app: object, mapping: IdMapping) -> bool:
    app = ed_app.get("id") if isinstance(ed_app, dict) else ed_app
    return mapping.is_lms_root(page.id) or (isinstance(app, str) and app.rstrip("/") == page.id.rstrip("/"))


def _generated_score(event: dict[str, Any]) -> dict[str, Any]:
    generated = event.get("generated")
    return generated if isinstance(generated, dict) and generated.get("type") == "Score" else {}


def _of_attempt(attempt: Entity, score: dict[str, Any], name: str) -> object:
    """The `assignee` or `assignable` of an Attempt (else of the Score's attempt); Reject `missing_<name>`."""
    value = attempt.fields.get(name)
    if value is None and isinstance(score.get("attempt"), dict):
        value = score["attempt"].get(name)
    if value is None:
        raise Reject(f"missing_{name}", f"the Attempt names no {name}")
    return value


def _percent(score: dict[str, Any], assignable: Entity) -> int | None:
    """The Score as 0..100 (see the table), None without a scoreGiven."""
    given = number(score.get("scoreGiven"), "Score.scoreGiven")
    top = number(score.get("maxScore"), "Score.maxScore")
    if not top:
        top = number(assignable.fields.get("maxScore"), f"{assignable.type or 'assignable'}.maxScore") or top
    if (given is not None and given < 0) or (top is not None and top < 0):
        raise Reject("bad_score", f"a score of {given} out of {top}: neither may be negative")
    if given is None:
        return None
    if given == 0:
        return 0
    if not top:
        raise Reject("unscorable_result", f"a scoreGiven of {given:g} without a maximum cannot be read as 0..100",
                     UNSUPPORTED)
    return whole_percent(given / top * 100)


# -- an event ------------------------------------------------------------------------------------
def _records(event: dict[str, Any], eid: str, mapping: IdMapping) -> list[Record]:
    _check_context(event.get("@context"))
    event_type, action = _term(event, "type"), _term(event, "action")
    actor, obj = _entity(event.get("actor"), "actor"), _entity(event.get("object"), "object")
    if event.get("eventTime") is None:
        raise Reject("missing_event_time", "a Caliper event needs eventTime")
    ts = local_ts(parse_instant(event["eventTime"]), mapping.time_zone)
    if obj.type == "Membership" or str(_canvas(obj.fields).get("type", "")).endswith("Enrollment"):
        if action not in ENROLLING | LEAVING:
            raise Reject("unused_event", f"{action[:60]} of a membership is not used by the scorer", IGNORED)
        return _membership(obj, action, eid, ts, mapping)
    kind = EVENTS.get((event_type, action))
    if kind is None:
        raise Reject("unused_event", f"{event_type[:60]} {action[:60]} is not used by the scorer", IGNORED)
    if kind in {"authorization", "page_view"}:
        base = {"event_id": eid, "user_id": _person(actor, "actor", mapping), "ts": ts}
        if kind == "authorization" or _is_lms(obj, event.get("edApp"), mapping):
            return [checked(Topic.AUTHORIZATIONS, base)]
        page = mapping.resolve("pages", [obj.id], obj.id)
        page_type = page.page_type or (LESSON if obj.type in LESSON_TYPES else ACTIVITY_PAGE)
        shown_type = obj.type if obj.type != "Entity" else _canvas(obj.fields).get("asset_type")
        return [checked(Topic.PAGE_VIEWS, with_optional(
            {**base, "page_type": page_type, "page_id": page.id}, module=page.module,
            activity_type=page.activity_type or (shown_type[:50] if isinstance(shown_type, str) else None)))]
    score = _generated_score(event)
    if kind == "grade":
        if obj.type is not None and obj.type != "Attempt":
            raise Reject("bad_object", f"a GradeEvent grades an Attempt, not a {obj.type[:60]}")
        student = _entity(_of_attempt(obj, score, "assignee"), "assignee")
        assessed = _entity(_of_attempt(obj, score, "assignable"), "assignable")
    else:
        student = actor
        assessed = _entity(_of_attempt(obj, score, "assignable"), "assignable") if obj.type == "Attempt" else obj
    percent = _percent(score, assessed)
    attempt = _attempt(event, obj, score)
    pending = percent is None and action != "Skipped"  # a hand-in: its grade comes as an event of its own
    if pending and attempt is None:
        raise not_graded(f"{event_type[:60]} {action[:60]}")
    handed_in = ts if kind != "grade" or attempt is None else _handed_in(attempt, event["eventTime"], ts, mapping)
    base = {"event_id": eid, "user_id": _person(student, "assignee" if kind == "grade" else "actor", mapping),
            "ts": handed_in}
    if mapping.is_course(assessed.id):
        raise Reject("course_result", "a grade for a whole course: the contract's outcome needs a module, "
                     "progress and attestation", UNSUPPORTED)
    activity = mapping.resolve("activities", [assessed.id], assessed.id)
    return [checked(Topic.EXERCISE_RESULTS, with_optional(
        {**base, "activity_id": activity.id, "result": percent, "success": mapping.success_of(percent)},
        module=activity.module, attempt_id=None if attempt is None else attempt_id(attempt.id),
        graded_at=ts if handed_in != ts and not pending else None, pending=pending or None))]


def _attempt(event: dict[str, Any], obj: Entity, score: dict[str, Any]) -> Entity | None:
    """The Attempt a result is of: the object (a GradeEvent's; Canvas's quiz_submitted), else the
    Attempt the event generated (Caliper 1.2's AssessmentEvent), else the Score's; None if none is named."""
    if obj.type == "Attempt":
        return obj
    generated = event.get("generated")
    for candidate in (generated if isinstance(generated, dict) and generated.get("type") == "Attempt" else None,
                      score.get("attempt")):
        if candidate is not None:
            return _entity(candidate, "attempt")
    return None


def _handed_in(attempt: Entity, event_time: str, ts: str, mapping: IdMapping) -> str:
    """When the student handed in the graded Attempt: its `endedAtTime`, else its `startedAtTime`
    (Blackboard's), as the school's local time; the grade's own time when it names neither or a later one."""
    for name in ("endedAtTime", "startedAtTime"):
        if (given := attempt.fields.get(name)) is not None:
            return local_ts(attempt_handed_in(given, parse_instant(event_time), f"Attempt.{name}"), mapping.time_zone)
    return ts


def _membership(obj: Entity, action: str, eid: str, ts: str, mapping: IdMapping) -> list[Record]:
    """A course membership (Caliper's, or Canvas's enrollment entity) starting or ending."""
    canvas = _canvas(obj.fields)
    if obj.type == "Membership":
        roles = obj.fields.get("roles")
        if roles is not None and not (isinstance(roles, list) and any(_is_learner(role) for role in roles)):
            raise Reject("not_a_learner", f"a membership with roles {str(roles)[:100]}", IGNORED)
        organization = _entity(obj.fields.get("organization"), "organization")
        if organization.type is not None and organization.type not in COURSE_TYPES:
            raise Reject("not_a_course", f"a membership of a {organization.type[:60]}, not of a course", IGNORED)
        parent = organization.fields.get("subOrganizationOf")
        keys = [organization.id]
        if organization.type == "CourseSection" and parent is not None:
            keys.insert(0, _entity(parent, "organization").id)
        member = _entity(obj.fields.get("member"), "member")
        leaving = action in LEAVING or obj.fields.get("status") == "Inactive"
    else:
        if canvas.get("type") != "StudentEnrollment":
            raise Reject("not_a_learner", f"a Canvas {str(canvas.get('type'))[:60]}", IGNORED)
        state = canvas.get("workflow_state")
        if state is not None and not isinstance(state, str):
            raise Reject("bad_workflow_state", f"a Canvas workflow_state of {type(state).__name__}, not text")
        if state == "completed":
            raise Reject("enrolment_completed", "the enrolment was concluded with its course", IGNORED)
        keys = [key for key in (canvas.get("course_id"), canvas.get("course_section_id")) if isinstance(key, str)
                and key]
        if not keys:
            raise Reject("missing_organization", "a Canvas enrollment without course_id")
        member = _entity(canvas.get("user_id"), "member")
        leaving = action in LEAVING or state in CANVAS_LEFT
    base = {"event_id": eid, "user_id": _person(member, "member", mapping), "ts": ts}
    course_id = mapping.course(keys, keys[0])
    if leaving:
        return [withdrawal(base, course_id)]
    return [checked(Topic.STUDENTS, {**base, "course_id": course_id})]


def _is_learner(role: object) -> bool:
    """A Learner role, as a Caliper term (`Learner`, `Learner#NonCreditLearner`) or its LIS IRI."""
    if not isinstance(role, str):
        return False
    return (role == "Learner" or role.startswith("Learner#") or role.endswith("/membership#Learner")
            or "/membership/Learner#" in role)

