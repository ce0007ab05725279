"""The Caliper adapter's mapping table, row by row (streams/ingest/caliper.py), on events shaped as the
IMS Caliper 1.2 specification's fixtures and Canvas's Caliper 1.1 Live Events (its data services
documentation), and the Envelope as the specification defines it."""
from __future__ import annotations

import copy
from typing import Any

import pytest

from features import compute, fold, last_activity, parse_ts
from helpers.mapped import accepted, refused
from streams.contract import Topic
from streams.ingest import caliper
from streams.ingest.base import Reject
from streams.ingest.mapping import IdMapping

V11, V12 = "http://purl.imsglobal.org/ctx/caliper/v1p1", "http://purl.imsglobal.org/ctx/caliper/v1p2"
EDU = "https://example.edu"
SECTION = f"{EDU}/terms/201601/courses/7/sections/1"
ASSESSMENT = f"{SECTION}/assess/1"
CANVAS_USER = "urn:instructure:canvas:user:21070000000020064"
CANVAS_COURSE = "urn:instructure:canvas:course:21070000000000565"
EID = "urn:uuid:fcd495d0-3740-4298-9bec-1154571dc211"
MAPPING = IdMapping.from_dict({
    "lms_roots": ["https://lms.example.edu"], "pass_percent": 60,
    "users": {f"{EDU}/users/554433": 1001, CANVAS_USER: 1008, "mailto:jane@example.edu": 1002},
    "courses": {f"{EDU}/terms/201601/courses/7": 3, CANVAS_COURSE: 4, f"{EDU}/courses/whole": 5},
    "pages": {f"{SECTION}/pages/2": {"id": 3015, "page_type": "lesson", "module": 2}},
    "activities": {ASSESSMENT: {"id": 13278, "module": 2}},
}, time_zone="Europe/Moscow")
LEARNER = {"id": f"{EDU}/users/554433", "type": "Person"}
BASE = {"event_id": EID, "user_id": 1001, "ts": "2024-01-10T09:00:00"}  # 06:00Z in Moscow (UTC+3)
ATTEMPT = f"{ASSESSMENT}/users/554433/attempts/1"


def event(kind: str, action: str, obj: Any, *, actor: Any = None, **extra: Any) -> dict[str, Any]:
    return {"@context": V12, "id": EID, "type": kind, "actor": LEARNER if actor is None else actor, "action": action,
            "object": obj, "eventTime": "2024-01-10T06:00:00.000Z", "edApp": EDU, **extra}


def records(e: Any, mapping: IdMapping = MAPPING) -> list[tuple[Topic, dict]]:
    return accepted(caliper.map_event(e, mapping))


def rejection(e: Any, mapping: IdMapping = MAPPING) -> tuple[str, str]:
    return refused(caliper.map_event(e, mapping), "caliper")


# -- authorization ----------------------------------------------------------------------------------
def test_logged_in_is_an_authorization():
    app = {"id": EDU, "type": "SoftwareApplication", "version": "v2"}
    assert records(event("SessionEvent", "LoggedIn", app)) == [(Topic.AUTHORIZATIONS, BASE)]
    thinned = event("SessionEvent", "LoggedIn", EDU, actor=f"{EDU}/users/554433")  # entities as their IRIs
    assert records(thinned) == [(Topic.AUTHORIZATIONS, BASE)]


@pytest.mark.parametrize(("kind", "action"), [("NavigationEvent", "NavigatedTo"), ("ViewEvent", "Viewed")])
@pytest.mark.parametrize(("page", "ed_app"), [
    (EDU, EDU), (EDU + "/", {"id": EDU, "type": "SoftwareApplication"}),  # the event's own edApp, a slash aside
    ("https://lms.example.edu/", None),  # one of the mapping's lms_roots
])
def test_visiting_the_lms_itself_is_an_authorization(kind, action, page, ed_app):
    e = event(kind, action, {"id": page, "type": "SoftwareApplication"}, edApp=ed_app)
    assert records(e) == [(Topic.AUTHORIZATIONS, BASE)]


# -- page views -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "action"), [("NavigationEvent", "NavigatedTo"), ("ViewEvent", "Viewed")])
def test_a_page_is_a_page_view_with_the_mapped_page(kind, action):
    page = {"id": f"{SECTION}/pages/2", "type": "WebPage", "name": "Learning Analytics Specifications"}
    assert records(event(kind, action, page, referrer={"id": f"{SECTION}/pages/1", "type": "WebPage"})) == [
        (Topic.PAGE_VIEWS, {**BASE, "page_type": "занятие", "page_id": 3015, "module": 2, "activity_type": "WebPage"})]


@pytest.mark.parametrize(("obj", "page_type", "activity_type"), [
    ({"id": f"{EDU}/etexts/201", "type": "Document"}, "активность", "Document"),
    ({"id": f"{EDU}/etexts/chapters/201", "type": "Chapter"}, "занятие", "Chapter"),
    (f"{EDU}/etexts/201", "активность", None),  # thinned: no type known
    ({"id": "urn:instructure:canvas:attachment:201", "type": "Entity",  # Canvas's generic entity: its asset_type
      "extensions": {"com.instructure.canvas": {"asset_type": "attachment", "asset_name": "My Attachment.html"}}},
     "активность", "attachment"),
])
def test_unmapped_content_takes_its_trailing_integer_and_its_type(obj, page_type, activity_type):
    got = records(event("NavigationEvent", "NavigatedTo", obj))
    expected = {**BASE, "page_type": page_type, "page_id": 201}
    if activity_type is not None:
        expected["activity_type"] = activity_type
    assert got == [(Topic.PAGE_VIEWS, expected)]


def test_a_started_video_is_a_page_view():
    video = {"id": f"{EDU}/videos/1225", "type": "VideoObject", "duration": "PT1H12M27S"}
    assert records(event("MediaEvent", "Started", video)) == [
        (Topic.PAGE_VIEWS, {**BASE, "page_type": "активность", "page_id": 1225, "activity_type": "VideoObject"})]


# -- exercise results -------------------------------------------------------------------------------
HAND_IN = {"result": None, "success": 0, "pending": True}


def test_a_submission_without_a_score_is_a_hand_in_of_its_attempt_and_no_result():
    quiz = {"id": ASSESSMENT, "type": "Assessment", "name": "Quiz One", "maxScore": 25.0}
    attempt = {"id": f"{ASSESSMENT}/users/554433/attempts/1", "type": "Attempt", "assignee": LEARNER["id"],
               "assignable": ASSESSMENT, "count": 1, "duration": "PT10M30S"}
    assert records(event("AssessmentEvent", "Submitted", quiz, generated=attempt)) == [
        (Topic.EXERCISE_RESULTS, {**BASE, "activity_id": 13278, "module": 2, "attempt_id": ATTEMPT, **HAND_IN})]
    canvas = {"id": "urn:instructure:canvas:submission:11210000013995723", "type": "Attempt",  # quiz_submitted
              "assignee": {"id": CANVAS_USER, "type": "Person"},
              "assignable": {"id": "urn:instructure:canvas:quiz:11210000002223333", "type": "Assessment"}}
    (_, record), = records(event("AssessmentEvent", "Submitted", canvas, actor={"id": CANVAS_USER, "type": "Person"}))
    assert record["pending"] and record["attempt_id"] == canvas["id"] and record["user_id"] == 1008
    assert rejection(event("AssessmentEvent", "Submitted", quiz)) == ("ignored", "not_graded")  # no Attempt to join


def test_a_submission_with_a_score_is_the_result_of_its_attempt():
    quiz = {"id": ASSESSMENT, "type": "Assessment"}
    score = {"id": f"{ASSESSMENT}/scores/1", "type": "Score", "scoreGiven": 20, "maxScore": 25,
             "attempt": f"{ASSESSMENT}/users/554433/attempts/1"}
    assert records(event("AssessmentEvent", "Submitted", quiz, generated=score)) == [
        (Topic.EXERCISE_RESULTS, {**BASE, "activity_id": 13278, "result": 80, "success": 1, "module": 2,
                                  "attempt_id": f"{ASSESSMENT}/users/554433/attempts/1"})]
    canvas = {"id": "urn:instructure:canvas:submission:1", "type": "Attempt", "assignable": ASSESSMENT}
    got = records(event("AssessmentEvent", "Submitted", canvas, generated={**score, "attempt": None}))
    assert got[0][1]["attempt_id"] == "urn:instructure:canvas:submission:1"  # the object is the Attempt


def test_a_completed_item_waits_for_its_score_and_a_skipped_one_is_the_contracts_skip():
    item = {"id": f"{ASSESSMENT}/items/3", "type": "AssessmentItem", "isPartOf": {"id": ASSESSMENT,
                                                                                  "type": "Assessment"}}
    assert rejection(event("AssessmentItemEvent", "Completed", item)) == ("ignored", "not_graded")
    assert records(event("AssessmentItemEvent", "Skipped", item)) == [
        (Topic.EXERCISE_RESULTS, {**BASE, "activity_id": 3, "result": None, "success": 0})]


def graded(score: dict[str, Any] | None, *, assignable: Any = None, **attempt: Any) -> dict[str, Any]:
    """A GradeEvent as the specification's fixture: an autograder grades the learner's Attempt."""
    obj = {"id": f"{ASSESSMENT}/users/554433/attempts/1", "type": "Attempt", "assignee": LEARNER,
           "assignable": {"id": ASSESSMENT, "type": "Assessment"} if assignable is None else assignable, "count": 1,
           **attempt}
    generated = None if score is None else {"id": f"{obj['id']}/scores/1", "type": "Score", "attempt": obj["id"],
                                            "scoredBy": f"{EDU}/autograder", **score}
    return event("GradeEvent", "Graded", obj, actor={"id": f"{EDU}/autograder", "type": "SoftwareApplication"},
                 generated=generated)


@pytest.mark.parametrize(("score", "assignable_max", "expected"), [
    ({"scoreGiven": 10.0, "maxScore": 15.0}, None, (67, 1)),  # the specification's Score: 10 of 15
    ({"scoreGiven": 8, "maxScore": 10}, None, (80, 1)),
    ({"scoreGiven": 5, "maxScore": 10}, None, (50, 0)),  # below pass_percent 60
    ({"scoreGiven": 5.55, "maxScore": 10}, None, (56, 0)),  # rounded half up
    ({"scoreGiven": 5, "maxScore": 1}, None, (100, 1)),  # Canvas's grade_change example: extra credit
    ({"scoreGiven": 39.45205, "maxScore": 0}, 160, (25, 0)),  # Blackboard: the maximum is the assignable's
    ({"scoreGiven": 12}, 24, (50, 0)),
    ({"scoreGiven": 0}, None, (0, 0)),
])
def test_a_graded_attempt_is_the_assignees_exercise_result(score, assignable_max, expected):
    assignable = {"id": ASSESSMENT, "type": "Assessment", **({"maxScore": assignable_max} if assignable_max else {})}
    assert records(graded(score, assignable=assignable)) == [
        (Topic.EXERCISE_RESULTS, {**BASE, "activity_id": 13278, "result": expected[0], "success": expected[1],
                                  "module": 2, "attempt_id": ATTEMPT})]


def test_a_grade_without_a_score_is_a_hand_in_and_a_thinned_attempt_is_named_by_its_iri():
    hand_in = [(Topic.EXERCISE_RESULTS, {**BASE, "activity_id": 13278, "module": 2, "attempt_id": ATTEMPT, **HAND_IN})]
    assert records(graded({"maxScore": 0.0})) == hand_in  # the specification's fixture
    assert records(graded(None)) == hand_in  # Blackboard's GradeEvent of a submission
    (_, dated), = records(graded(None, startedAtTime="2024-01-09T12:57:55.941Z"))
    assert dated["ts"] == "2024-01-09T15:57:55" and "graded_at" not in dated  # when the Attempt was
    e = graded({"scoreGiven": 3, "maxScore": 4})
    e["generated"]["attempt"] = {"id": e["object"]["id"], "type": "Attempt", "assignee": LEARNER,
                                 "assignable": ASSESSMENT}
    e["object"] = e["object"]["id"]  # only the Score's attempt says whose and what
    assert records(e) == [(Topic.EXERCISE_RESULTS, {**BASE, "activity_id": 13278, "result": 75, "success": 1,
                                                    "module": 2, "attempt_id": ATTEMPT})]


@pytest.mark.parametrize(("times", "ts", "graded_at"), [
    ({"endedAtTime": "2024-01-08T20:15:00Z"}, "2024-01-08T23:15:00", "2024-01-10T09:00:00"),  # graded two days on
    ({"startedAtTime": "2024-01-09T12:57:55.941Z"}, "2024-01-09T15:57:55", "2024-01-10T09:00:00"),  # Blackboard's
    ({"startedAtTime": "2024-01-01T00:00:00Z", "endedAtTime": "2024-01-09T00:00:00Z"}, "2024-01-09T03:00:00",
     "2024-01-10T09:00:00"),
    ({"endedAtTime": "2024-01-10T06:00:00Z"}, "2024-01-10T09:00:00", None),  # graded as it was handed in
    ({"endedAtTime": "2024-01-11T00:00:00Z"}, "2024-01-10T09:00:00", None),  # after its grade: the grade's time
])
def test_a_grade_is_dated_when_its_attempt_was_handed_in(times, ts, graded_at):
    (_, record), = records(graded({"scoreGiven": 8, "maxScore": 10}, **times))
    assert (record["ts"], record.get("graded_at")) == (ts, graded_at)


def test_an_unreadable_hand_in_time_is_invalid_and_a_long_attempt_iri_is_shortened():
    assert rejection(graded({"scoreGiven": 8, "maxScore": 10}, endedAtTime="yesterday")) == (
        "invalid", "bad_attempt_time")
    e = graded({"scoreGiven": 8, "maxScore": 10})
    e["object"]["id"] = f"{ASSESSMENT}/attempts/{'x' * 300}"
    (_, record), = records(e)
    assert record["attempt_id"].startswith("sha256:") and len(record["attempt_id"]) == 71


def test_a_canvas_quiz_submitted_graded_and_regraded_is_one_attempt_with_its_last_grade():
    """Canvas sends quiz_submitted (no score) and grade_change for every quiz, and grade_change again
    when a teacher regrades: once a skip and two results, now a hand-in and one attempt."""
    canvas_attempt = {"id": "urn:instructure:canvas:submission:7", "type": "Attempt",
                      "assignee": {"id": CANVAS_USER, "type": "Person"}, "assignable": ASSESSMENT}
    submitted = event("AssessmentEvent", "Submitted", canvas_attempt, actor={"id": CANVAS_USER, "type": "Person"})
    grade = graded({"scoreGiven": 4, "maxScore": 10}, **{k: v for k, v in canvas_attempt.items() if k != "type"})
    regrade = copy.deepcopy(grade)
    regrade["id"], regrade["eventTime"] = "urn:uuid:0b8f1d5c-0000-4000-8000-000000000001", "2024-01-15T06:00:00Z"
    regrade["generated"]["scoreGiven"] = 9
    got = [r for e in (submitted, grade, regrade) for r in caliper.map_event(e, MAPPING).records]
    state = fold([(topic.value[len("lms."):-1], record) for topic, record in got])[1008]
    features = compute(state, None, parse_ts("2024-01-16T00:00:00"))
    assert (features["sum_exercise_attempts_mean"], features["success_index"], features["mean_attempt_score"]) == (
        1.0, 1.0, 90.0)
    assert last_activity(state) == parse_ts("2024-01-10T09:00:00")  # the regrade is not the student's doing




def test_the_grader_is_not_the_student():
    canvas = graded({"scoreGiven": 8, "maxScore": 10}, assignee={"id": CANVAS_USER, "type": "Person"})
    canvas["actor"] = {"id": "urn:instructure:canvas:user:21070000000000987", "type": "Person"}  # the teacher
    assert records(canvas)[0][1]["user_id"] == 1008


@pytest.mark.parametrize(("score", "reason"), [
    ({"scoreGiven": -1, "maxScore": 10}, "bad_score"), ({"scoreGiven": 1, "maxScore": -10}, "bad_score"),
    ({"scoreGiven": "8", "maxScore": 10}, "bad_score"), ({"scoreGiven": True}, "bad_score"),
    ({"scoreGiven": 8, "maxScore": float("nan")}, "bad_score"),
])
def test_an_impossible_score_is_invalid(score, reason):
    assert rejection(graded(score)) == ("invalid", reason)


def test_a_score_with_no_maximum_anywhere_is_unsupported():
    assert rejection(graded({"scoreGiven": 7})) == ("unsupported", "unscorable_result")
    assert rejection(graded({"scoreGiven": 7, "maxScore": 0})) == ("unsupported", "unscorable_result")


def test_a_graded_attempt_must_say_whose_and_of_what():
    no_assignee = graded({"scoreGiven": 1, "maxScore": 2})
    del no_assignee["object"]["assignee"]
    assert rejection(no_assignee) == ("invalid", "missing_assignee")
    no_assignable = graded({"scoreGiven": 1, "maxScore": 2})
    del no_assignable["object"]["assignable"]
    assert rejection(no_assignable) == ("invalid", "missing_assignable")
    not_an_attempt = graded(None)
    not_an_attempt["object"] = {"id": ASSESSMENT, "type": "Assessment"}
    assert rejection(not_an_attempt) == ("invalid", "bad_object")
    anonymous = graded({"scoreGiven": 1, "maxScore": 2}, assignee={"type": "Person"})
    assert rejection(anonymous) == ("invalid", "bad_assignee")


def test_a_grade_for_a_whole_course_is_unsupported():
    e = graded({"scoreGiven": 1, "maxScore": 2}, assignable={"id": f"{EDU}/courses/whole", "type": "CourseOffering"})
    assert rejection(e) == ("unsupported", "course_result")


# -- enrolments -------------------------------------------------------------------------------------
def membership(action: str, *, roles: Any = ("Learner",), status: str | None = "Active",
               organization: Any = None) -> dict[str, Any]:
    obj = {"id": f"{SECTION}/rosters/1", "type": "Membership", "member": LEARNER,
           "organization": organization or {"id": SECTION, "type": "CourseSection",
                                            "subOrganizationOf": {"id": f"{EDU}/terms/201601/courses/7",
                                                                  "type": "CourseOffering"}}}
    if roles is not None:
        obj["roles"] = list(roles)
    if status is not None:
        obj["status"] = status
    return event("Event", action, obj, actor={"id": f"{EDU}/users/112233", "type": "Person"})  # an administrator


WITHDRAWN = {"module": 2, "progress": None, "attestation": None, "result": "withdrawn"}


@pytest.mark.parametrize("action", ["Created", "Activated", "Modified"])
def test_a_learners_course_membership_opens_the_enrolment(action):
    assert records(membership(action)) == [(Topic.STUDENTS, {**BASE, "course_id": 3})]  # the section's course


@pytest.mark.parametrize(("action", "status"), [("Deleted", "Active"), ("Deactivated", None),
                                                ("Modified", "Inactive")])
def test_a_learners_membership_ending_is_the_withdrawn_outcome(action, status):
    assert records(membership(action, status=status)) == [(Topic.OUTCOMES, {**BASE, "course_id": 3, **WITHDRAWN})]


@pytest.mark.parametrize(("roles", "organization", "expected"), [
    (None, {"id": f"{EDU}/terms/201601/courses/7", "type": "CourseOffering"}, 3),  # no roles stated: a member
    (["Learner#NonCreditLearner"], f"{EDU}/courses/41", 41),  # an organization given as its IRI
    (["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"], {"id": SECTION, "type": "CourseSection"}, 1),
])
def test_roles_and_organizations_of_a_course_membership(roles, organization, expected):
    assert records(membership("Created", roles=roles, organization=organization))[0][1]["course_id"] == expected


@pytest.mark.parametrize(("change", "reason"), [
    ({"roles": ["Instructor"]}, "not_a_learner"), ({"roles": ["Mentor#Advisor", "Manager#Observer"]}, "not_a_learner"),
    ({"organization": {"id": "urn:instructure:canvas:group:21070000000000051", "type": "Group"}}, "not_a_course"),
])
def test_other_memberships_are_ignored(change, reason):
    e = membership("Created")
    e["object"].update(change)
    assert rejection(e) == ("ignored", reason)
    assert rejection(membership("Archived")) == ("ignored", "unused_event")


def test_a_membership_without_member_or_organization_is_invalid():
    for missing in ("member", "organization"):
        e = membership("Created")
        del e["object"][missing]
        assert rejection(e) == ("invalid", f"missing_{missing}")


def canvas_enrollment(action: str, state: str, kind: str = "StudentEnrollment") -> dict[str, Any]:
    """Canvas's enrollment_created / enrollment_updated (Caliper 1.1), as its documentation shows them."""
    obj = {"id": "urn:instructure:canvas:enrollment:21070000000046825", "type": "Entity", "extensions": {
        "com.instructure.canvas": {"course_id": CANVAS_COURSE,
                                   "course_section_id": f"{CANVAS_COURSE}:section:21070000000004811",
                                   "type": kind, "user_id": CANVAS_USER, "user_name": "Isaac Newton",
                                   "workflow_state": state, "entity_id": "21070000000046825"}}}
    e = event("Event", action, obj, actor={"id": "urn:instructure:canvas:user:21070000000000001", "type": "Person"})
    return {**e, "@context": V11, "group": {"id": f"{CANVAS_COURSE}:section:21070000000004811",
                                            "type": "CourseSection"}}


@pytest.mark.parametrize(("action", "state"), [("Created", "invited"), ("Created", "active"),
                                               ("Modified", "creation_pending")])
def test_a_canvas_student_enrollment_opens_the_enrolment(action, state):
    assert records(canvas_enrollment(action, state)) == [
        (Topic.STUDENTS, {**BASE, "user_id": 1008, "course_id": 4})]


@pytest.mark.parametrize("state", ["deleted", "inactive", "rejected"])
def test_a_canvas_enrollment_deleted_or_deactivated_is_the_withdrawn_outcome(state):
    assert records(canvas_enrollment("Modified", state)) == [
        (Topic.OUTCOMES, {**BASE, "user_id": 1008, "course_id": 4, **WITHDRAWN})]


@pytest.mark.parametrize(("kind", "state", "reason"), [
    ("StudentEnrollment", "completed", "enrolment_completed"), ("TeacherEnrollment", "active", "not_a_learner"),
    ("ObserverEnrollment", "active", "not_a_learner"), ("StudentViewEnrollment", "active", "not_a_learner"),
])
def test_other_canvas_enrollments_are_ignored(kind, state, reason):
    assert rejection(canvas_enrollment("Created", state, kind)) == ("ignored", reason)


@pytest.mark.parametrize("state", [[], {}, 3])
def test_a_canvas_workflow_state_that_is_no_text_is_invalid(state):
    """Found by the hostile-input test: a list there raised inside the adapter (an internal error)."""
    assert rejection(canvas_enrollment("Modified", state)) == ("invalid", "bad_workflow_state")


def test_an_enrolment_in_no_known_course_is_unmapped():
    e = membership("Created", organization={"id": f"{EDU}/courses/unknown", "type": "CourseOffering"})
    assert rejection(e) == ("unmapped", "unmapped_course")


# -- what the scorer does not use --------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "action"), [
    ("ForumEvent", "Subscribed"), ("MessageEvent", "Posted"), ("ThreadEvent", "MarkedAsRead"),
    ("AnnotationEvent", "Highlighted"), ("MediaEvent", "Paused"), ("MediaEvent", "JumpedTo"),
    ("AssignableEvent", "Submitted"), ("AssessmentEvent", "Started"), ("SessionEvent", "LoggedOut"),
    ("ToolUseEvent", "Used"), ("NavigationEvent", "Viewed"),
])
def test_other_events_are_ignored(kind, action):
    assert rejection(event(kind, action, {"id": f"{SECTION}/forums/1", "type": "Forum"})) == (
        "ignored", "unused_event")


def test_an_application_as_the_actor_is_no_student():
    e = event("NavigationEvent", "NavigatedTo", {"id": "urn:instructure:canvas:attachment:144", "type": "Entity"},
              actor={"id": "http://oxana.instructure.com/", "type": "SoftwareApplication"})
    assert rejection(e) == ("ignored", "not_a_person")


def test_an_entity_describe_is_ignored():
    person = {"@context": V12, "id": f"{EDU}/users/554433", "type": "Person", "dateCreated": "2016-08-01T06:00:00Z"}
    assert rejection(person) == ("ignored", "entity_describe")


# -- actors, ids and times --------------------------------------------------------------------------
@pytest.mark.parametrize(("actor", "user_id"), [
    ({"id": f"{EDU}/users/554433", "type": "Person"}, 1001),
    (CANVAS_USER, 1008),
    ({"id": f"{EDU}/users/jane", "type": "Person", "otherIdentifiers": [  # 1.2's SystemIdentifier: xAPI's mbox key
        {"type": "SystemIdentifier", "identifier": "Jane@Example.edu", "identifierType": "EmailAddress"}]}, 1002),
    ({"id": "https://lms.example.edu/users/72002", "type": "Person"}, 72002),  # the numeric fallback: its last segment
    ("urn:instructure:canvas:user:21070000000000048", 21070000000000048),
])
def test_each_person_identifier_maps(actor, user_id):
    assert records(event("SessionEvent", "LoggedIn", EDU, actor=actor))[0][1]["user_id"] == user_id


@pytest.mark.parametrize("actor", [f"{EDU}/users/jane", "mailto:stranger@example.com",
                                   "https://caliper-mapping.cloudbb.blackboard.com/v1/sites/1/users/0e9625cdef42"])
def test_an_unknown_person_is_unmapped_never_guessed(actor):
    assert rejection(event("SessionEvent", "LoggedIn", EDU, actor=actor)) == ("unmapped", "unmapped_user")
    strict = IdMapping.from_dict({"numeric_fallback": ["pages"]})
    assert rejection(event("SessionEvent", "LoggedIn", EDU, actor=f"{EDU}/users/72002"), strict) == (
        "unmapped", "unmapped_user")


NEW_YORK = IdMapping.from_dict({"users": {f"{EDU}/users/554433": 1001}}, "America/New_York")


@pytest.mark.parametrize(("time", "moscow", "new_york"), [
    ("2024-01-10T06:00:00.000Z", "2024-01-10T09:00:00", "2024-01-10T01:00:00"),  # Caliper's form: UTC, milliseconds
    ("2024-01-10T06:00:00.999Z", "2024-01-10T09:00:00", "2024-01-10T01:00:00"),  # to the second, not rounded up
    ("2024-01-10T09:00:00+03:00", "2024-01-10T09:00:00", "2024-01-10T01:00:00"),
    ("2024-01-10T06:00:00", "2024-01-10T09:00:00", "2024-01-10T01:00:00"),  # no offset: UTC
    ("2024-01-10T22:30:00.000Z", "2024-01-11T01:30:00", "2024-01-10T17:30:00"),  # the next day in Moscow
    ("2024-07-10T22:30:00.000Z", "2024-07-11T01:30:00", "2024-07-10T18:30:00"),  # New York on summer time
])
def test_event_time_becomes_the_schools_local_time(time, moscow, new_york):
    e = {**event("SessionEvent", "LoggedIn", EDU), "eventTime": time}
    assert [records(e, mapping)[0][1]["ts"] for mapping in (MAPPING, NEW_YORK)] == [moscow, new_york]


@pytest.mark.parametrize("time", ["yesterday", "2024-13-01T00:00:00Z", "2024-01-10", 1704870000])
def test_an_unreadable_event_time_is_invalid(time):
    e = event("SessionEvent", "LoggedIn", EDU)
    e["eventTime"] = time
    assert rejection(e) == ("invalid", "bad_timestamp")


def test_a_time_the_contract_refuses_is_invalid():
    e = event("SessionEvent", "LoggedIn", EDU)
    e["eventTime"] = "1999-12-31T00:00:00.000Z"
    assert rejection(e) == ("invalid", "event_time_out_of_range")


@pytest.mark.parametrize(("given", "event_id"), [
    (EID, EID), (EID.upper().replace("URN:UUID:", "urn:uuid:"), EID), ("URN:UUID:" + EID[9:], EID),
    (EID[9:], EID),  # Blackboard sends the bare UUID
])
def test_the_event_id_is_its_uuid_urn(given, event_id):
    e = event("SessionEvent", "LoggedIn", EDU)
    e["id"] = given
    assert records(e)[0][1]["event_id"] == event_id == caliper.event_id(e)


@pytest.mark.parametrize(("change", "reason"), [
    ({"id": None}, "missing_id"), ({"id": "https://example.edu/events/1"}, "bad_event_id"), ({"id": 7}, "bad_event_id"),
    ({"@context": "http://purl.imsglobal.org/ctx/caliper/v1/Context"}, "unsupported_version"),
    ({"@context": [{"query": "http://schema.org/query"}, "http://purl.imsglobal.org/ctx/caliper/v2p0"]},
     "unsupported_version"),
    ({"type": None}, "missing_type"), ({"action": None}, "missing_action"), ({"action": ["LoggedIn"]}, "bad_action"),
    ({"actor": None}, "missing_actor"), ({"actor": {"type": "Person", "name": "Jane"}}, "bad_actor"),
    ({"actor": 554433}, "bad_actor"), ({"actor": "jane"}, "bad_actor"),
    ({"object": None}, "missing_object"), ({"object": {"type": "SoftwareApplication"}}, "bad_object"),
    ({"eventTime": None}, "missing_event_time"),
])
def test_malformed_events_are_invalid(change, reason):
    e = {**event("SessionEvent", "LoggedIn", {"id": EDU, "type": "SoftwareApplication"}), **change}
    e = {k: v for k, v in e.items() if v is not None}
    assert rejection(e) == ("invalid", reason)
    assert rejection("not an event") == ("invalid", "not_an_object")


@pytest.mark.parametrize("context", [
    V11, V12, [{"query": "http://schema.org/query"}, V12],  # extension terms beside the Caliper context
    "http://purl.imsglobal.org/ctx/caliper/v1p1/ToolLaunchProfile-extension", None,
])
def test_caliper_1_1_and_1_2_contexts_are_read(context):
    e = event("SessionEvent", "LoggedIn", EDU)
    e["@context"] = context
    assert records(e) == [(Topic.AUTHORIZATIONS, BASE)]


# -- the envelope -----------------------------------------------------------------------------------
ENVELOPE = {"sensor": f"{EDU}/sensors/1", "sendTime": "2024-01-10T06:00:01.000Z", "dataVersion": V12,
            "data": [event("SessionEvent", "LoggedIn", EDU)]}


def test_an_envelope_holds_the_events():
    assert caliper.envelope(ENVELOPE) == ENVELOPE["data"]
    assert caliper.envelope({**ENVELOPE, "dataVersion": V11}) == ENVELOPE["data"]
    mapped = caliper.map_envelope(ENVELOPE, MAPPING)
    assert [m.records for m in mapped] == [[(Topic.AUTHORIZATIONS, BASE)]]


@pytest.mark.parametrize(("change", "reason"), [
    ({"sensor": None}, "bad_envelope"), ({"sensor": ""}, "bad_envelope"), ({"sendTime": "soon"}, "bad_envelope"),
    ({"dataVersion": None}, "bad_envelope"), ({"data": []}, "bad_envelope"), ({"data": {"id": EID}}, "bad_envelope"),
    ({"dataVersion": "http://purl.imsglobal.org/ctx/caliper/v1/Context"}, "unsupported_version"),
    ({"dataVersion": "1.2"}, "unsupported_version"),
])
def test_a_malformed_envelope_is_refused_whole(change, reason):
    value = {k: v for k, v in {**ENVELOPE, **change}.items() if v is not None}
    with pytest.raises(Reject) as refused:
        caliper.envelope(value)
    assert refused.value.reason == reason
    (mapped,) = caliper.map_envelope(value, MAPPING, "envelope 1")
    assert mapped.rejection is not None and (mapped.rejection.kind, mapped.rejection.reason) == ("invalid", reason)


def test_events_sent_without_an_envelope_are_refused():
    for bare in (ENVELOPE["data"][0], ENVELOPE["data"], "text"):
        with pytest.raises(Reject) as refused:
            caliper.envelope(copy.deepcopy(bare))
        assert refused.value.reason == "not_an_envelope"


def test_every_event_of_the_table_is_documented():
    doc = caliper.__doc__ or ""
    for kind, action in caliper.EVENTS:
        assert f"{kind} {action}" in doc, (kind, action)
