"""The xAPI adapter's mapping table, row by row (streams/ingest/xapi.py), on statements shaped as
the ADL xAPI 1.0.3 specification's examples."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from features import attempt_facts, compute, fold, last_activity, parse_ts
from helpers.mapped import accepted, refused
from streams.contract import Topic
from streams.ingest import xapi
from streams.ingest.mapping import IdMapping

LMS = "https://lms.example.edu"
ADL = "http://adlnet.gov/expapi/verbs/"
TINCAN = "http://id.tincanapi.com/verb/"
AS = "http://activitystrea.ms/schema/1.0/"
SID = "fd41c918-b88b-4b20-a0a5-a4c32391aaa0"
MAPPING = IdMapping.from_dict({
    "lms_roots": [LMS], "pass_percent": 60,
    "users": {"mailto:example.learner@adlnet.gov": 1001, "account:https://lms.example.edu|dave": 1004,
              "sha1:ebd31e95054c018b10727ccffd2ef2ec3a016ee9": 1002, "openid:https://id.example.edu/carol": 1003},
    "courses": {f"{LMS}/courses/python": 3},
    "pages": {f"{LMS}/lessons/intro": {"id": 3015, "page_type": "lesson", "module": 2}},
    "activities": {f"{LMS}/quizzes/loops": {"id": 13278, "module": 2}},
    "webinars": {f"{LMS}/webinars/kickoff": 13378},
    "verbs": {"https://example.edu/verbs/watched": "page_view", ADL + "experienced": "page_view",
              ADL + "progressed": "ignore", "https://example.edu/verbs/dropped": "withdrawal"},
}, time_zone="Europe/Moscow")
LEARNER = {"objectType": "Agent", "name": "Example Learner", "mbox": "mailto:example.learner@adlnet.gov"}


def statement(verb: str, object_id: str | None = None, *, obj: dict[str, Any] | None = None,
              actor: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"id": SID, "actor": LEARNER if actor is None else actor,
            "verb": {"id": verb, "display": {"en-US": verb.rsplit("/", 1)[-1]}},
            "object": {"objectType": "Activity", "id": object_id} if obj is None else obj,
            "timestamp": "2024-01-10T06:00:00Z", **extra}


def records(s: Any, mapping: IdMapping = MAPPING, received_at: datetime | None = None) -> list[tuple[Topic, dict]]:
    return accepted(xapi.map_statement(s, mapping, received_at))


def rejection(s: Any, mapping: IdMapping = MAPPING) -> tuple[str, str]:
    return refused(xapi.map_statement(s, mapping))


BASE = {"event_id": SID, "user_id": 1001, "ts": "2024-01-10T09:00:00"}  # 06:00Z in Moscow (UTC+3)


# -- authorization ----------------------------------------------------------------------------------
@pytest.mark.parametrize("verb", [ADL + "logged-in", "https://w3id.org/xapi/adl/verbs/logged-in",
                                  "https://brindlewaye.com/xAPITerms/verbs/loggedin/"])
def test_logged_in_is_an_authorization(verb):
    assert records(statement(verb, f"{LMS}/anything")) == [(Topic.AUTHORIZATIONS, BASE)]


@pytest.mark.parametrize("verb", [ADL + "launched", ADL + "initialized", ADL + "experienced", TINCAN + "viewed"])
@pytest.mark.parametrize("root", [LMS, LMS + "/"])
def test_launching_the_lms_itself_is_an_authorization(verb, root):
    assert records(statement(verb, root)) == [(Topic.AUTHORIZATIONS, BASE)]
    configured_with_slash = IdMapping.from_dict({"lms_roots": [LMS + "/"], "users": {
        "mailto:example.learner@adlnet.gov": 1001}}, time_zone="Europe/Moscow")
    assert records(statement(verb, root), configured_with_slash)[0][0] is Topic.AUTHORIZATIONS


# -- page views -------------------------------------------------------------------------------------
@pytest.mark.parametrize("verb", [ADL + "launched", ADL + "initialized", ADL + "experienced", TINCAN + "viewed"])
def test_content_is_a_page_view_with_the_mapped_page(verb):
    s = statement(verb, obj={"id": f"{LMS}/lessons/intro",
                             "definition": {"type": "http://adlnet.gov/expapi/activities/lesson"}})
    assert records(s) == [(Topic.PAGE_VIEWS, {**BASE, "page_type": "занятие", "page_id": 3015, "module": 2,
                                              "activity_type": "lesson"})]


def test_unmapped_content_takes_its_trailing_integer_and_the_activity_type():
    s = statement(ADL + "experienced", obj={"id": f"{LMS}/videos/8720",
                                            "definition": {"type": "http://adlnet.gov/expapi/activities/media"}})
    assert records(s) == [(Topic.PAGE_VIEWS, {**BASE, "page_type": "активность", "page_id": 8720,
                                              "activity_type": "media"})]


def test_a_lesson_type_without_mapping_is_a_lesson_page():
    s = statement(ADL + "experienced", obj={"id": f"{LMS}/lessons/12",
                                            "definition": {"type": "http://adlnet.gov/expapi/activities/lesson"}})
    assert records(s)[0][1]["page_type"] == "занятие"


# -- exercise results -------------------------------------------------------------------------------
@pytest.mark.parametrize(("result", "verb", "expected"), [
    ({"score": {"scaled": 0.95}, "success": True}, "answered", (95, 1)),
    ({"score": {"raw": 7, "min": 0, "max": 10}}, "answered", (70, 1)),  # 70 >= pass_percent 60
    ({"score": {"raw": 5, "max": 10}}, "answered", (50, 0)),
    ({"score": {"raw": 15, "min": 10, "max": 20}}, "scored", (50, 0)),
    ({"score": {"raw": 42}}, "scored", (42, 0)),  # raw without max, within 0..100: a percentage
    ({"score": {"scaled": -0.5}}, "answered", (0, 0)),  # negative scaled: clamped to 0
    ({"score": {"scaled": 0.4}}, "passed", (40, 1)),  # passed: success whatever the score
    ({"score": {"scaled": 0.9}}, "failed", (90, 0)),
    ({"score": {"scaled": 0.9}, "success": False}, "passed", (90, 0)),  # result.success wins over the verb
    ({"completion": True, "success": False}, "completed", (None, 0)),  # no score: null, with its verdict
    ({}, "passed", (None, 1)),
    ({"score": {"scaled": 0.555}}, "answered", (56, 0)),  # rounded half up
])
def test_result_verbs_are_exercise_results(result, verb, expected):
    s = statement(ADL + verb, f"{LMS}/quizzes/loops", result=result)
    got = records(s)
    assert got == [(Topic.EXERCISE_RESULTS, {**BASE, "activity_id": 13278, "result": expected[0],
                                             "success": expected[1], "module": 2})]


HAND_IN = {"result": None, "success": 0, "attempt_id": "xapi:grade", "pending": True}
INSTRUCTOR = {"instructor": {"objectType": "Agent", "account": {"homePage": LMS, "name": "teacher"}}}


@pytest.mark.parametrize(("verb", "result"), [
    (ADL + "completed", {"completion": True}), (ADL + "answered", {}),
    (ADL + "scored", {"response": "for i in range(3)"}), (AS + "submit", {})])
def test_a_result_with_neither_score_nor_verdict_is_a_hand_in(verb, result):
    """cmi5 has `completed` as a statement of its own beside `passed` or `failed`, and Moodle's
    logstore_xapi sends an assignment handed in as `submit` (`completed` for Jisc): read as a skip, each
    made the unit two attempts, one failed; ignored, the student looked inactive until it was graded."""
    got = records(statement(verb, f"{LMS}/quizzes/loops", result=result))
    assert got == [(Topic.EXERCISE_RESULTS, {**BASE, "activity_id": 13278, "module": 2, **HAND_IN})]


def test_a_grade_given_by_an_instructor_is_the_students_grade_in_the_activity():
    s = statement(ADL + "scored", f"{LMS}/quizzes/loops", result={"score": {"raw": 45, "min": 0, "max": 50}},
                  context=INSTRUCTOR)
    assert records(s) == [(Topic.EXERCISE_RESULTS, {**BASE, "activity_id": 13278, "result": 90, "success": 1,
                                                    "module": 2, "attempt_id": "xapi:grade"})]
    assert "attempt_id" not in records({**s, "context": {"platform": "Moodle"}})[0][1]  # the learner's own attempt


def test_an_assignment_handed_in_and_graded_then_regraded_is_one_attempt_of_the_students_work():
    """logstore_xapi's assignment_submitted and assignment_graded: handed in on the 10th, graded 40 on the
    15th and regraded 75 on the 17th by the teacher (context.instructor). One attempt, handed in and passed
    on the 10th's work, and the student last active on the 10th: the grades are the teacher's doing."""
    def at(day: int, verb: str, sid: str, **extra: Any) -> dict[str, Any]:
        return {**statement(verb, f"{LMS}/quizzes/loops", **extra), "id": sid,
                "timestamp": f"2024-01-{day}T06:00:00Z"}
    statements = [at(10, AS + "submit", SID),
                  at(15, ADL + "scored", "1f0c7bd4-6f4e-4f43-a6a4-3c0a8a0b0c15", context=INSTRUCTOR,
                     result={"score": {"raw": 20, "max": 50}}),
                  at(17, ADL + "scored", "1f0c7bd4-6f4e-4f43-a6a4-3c0a8a0b0c17", context=INSTRUCTOR,
                     result={"score": {"raw": 37.5, "max": 50}})]
    got = [record for s in statements for _, record in records(s)]
    state = fold([("exercise_result", record) for record in got])[1001]
    (fact,), = attempt_facts(state).values()
    assert fact == [parse_ts("2024-01-10T09:00:00"), 75, 1, parse_ts("2024-01-10T09:00:00")]
    assert last_activity(state) == parse_ts("2024-01-10T09:00:00")
    features = compute(state, None, parse_ts("2024-01-20T00:00:00"))
    assert (features["sum_exercise_attempts_mean"], features["success_index"], features["mean_attempt_score"]) == (
        1.0, 1.0, 75.0)


def test_a_result_for_a_course_is_unsupported():
    by_type = statement(ADL + "completed", obj={"id": f"{LMS}/courses/other", "definition": {
        "type": "http://adlnet.gov/expapi/activities/course"}})
    assert rejection(by_type) == ("unsupported", "course_result")
    assert rejection(statement(ADL + "passed", f"{LMS}/courses/python")) == ("unsupported", "course_result")


@pytest.mark.parametrize("score", [{"scaled": 1.5}, {"raw": 11, "max": 10}, {"raw": 1, "min": 5, "max": 5},
                                   {"scaled": "0.5"}, {"raw": True}, "high"])
def test_an_impossible_score_is_invalid(score):
    assert rejection(statement(ADL + "answered", f"{LMS}/quizzes/loops", result={"score": score})) == (
        "invalid", "bad_score")


def test_a_raw_score_without_max_beyond_100_is_unsupported():
    s = statement(ADL + "scored", f"{LMS}/quizzes/loops", result={"score": {"raw": 250}})
    assert rejection(s) == ("unsupported", "unscorable_result")


# -- webinars ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("verb", [ADL + "joined", TINCAN + "joined", AS + "join", ADL + "attended",
                                  TINCAN + "attended"])
def test_joining_is_a_connection(verb):
    assert records(statement(verb, f"{LMS}/webinars/kickoff")) == [
        (Topic.WEBINAR_EVENTS, {**BASE, "event": "Подключение", "webinar_id": 13378})]


@pytest.mark.parametrize("verb", [ADL + "left", TINCAN + "left", AS + "leave"])
def test_leaving_is_a_disconnection(verb):
    assert records(statement(verb, f"{LMS}/webinars/13380")) == [
        (Topic.WEBINAR_EVENTS, {**BASE, "event": "Отключение", "webinar_id": 13380})]


def test_attended_with_a_duration_is_a_connection_and_a_disconnection():
    s = statement(ADL + "attended", f"{LMS}/webinars/kickoff", result={"duration": "PT1H30M"})
    assert records(s) == [
        (Topic.WEBINAR_EVENTS, {**BASE, "event": "Подключение", "webinar_id": 13378}),
        (Topic.WEBINAR_EVENTS, {**BASE, "event_id": f"{SID}/left", "ts": "2024-01-10T10:30:00",
                                "event": "Отключение", "webinar_id": 13378})]


# -- enrollment, withdrawal, voiding, the rest ------------------------------------------------------
def test_registered_for_a_course_is_a_student_profile():
    s = statement(ADL + "registered", obj={"id": f"{LMS}/courses/python",
                                           "definition": {"type": "http://adlnet.gov/expapi/activities/course"}})
    assert records(s) == [(Topic.STUDENTS, {**BASE, "course_id": 3})]


@pytest.mark.parametrize("verb", [TINCAN + "unregistered", "https://example.edu/verbs/dropped"])  # the mapping's
def test_unregistered_is_the_withdrawn_outcome_of_the_learner_when_they_left(verb):
    s = statement(verb, obj={"id": f"{LMS}/courses/python",
                             "definition": {"type": "http://adlnet.gov/expapi/activities/course"}},
                  timestamp="2024-01-23T10:00:00Z")
    assert records(s) == [(Topic.OUTCOMES, {**BASE, "ts": "2024-01-23T13:00:00", "course_id": 3, "module": 2,
                                            "progress": None, "attestation": None, "result": "withdrawn"})]


def test_a_withdrawal_from_no_known_course_is_rejected():
    assert rejection(statement(TINCAN + "unregistered", f"{LMS}/courses/unknown")) == ("unmapped", "unmapped_course")
    agent = {"objectType": "Agent", "mbox": "mailto:teacher@example.edu"}
    assert rejection(statement(TINCAN + "unregistered", obj=agent)) == ("unsupported", "object_not_activity")


def test_voiding_is_unsupported():
    s = statement(ADL + "voided", obj={"objectType": "StatementRef", "id": "e05aa883-acaf-40ad-bf54-02c8ce485fb0"})
    assert rejection(s) == ("unsupported", "voided_statement")
    assert rejection(statement(ADL + "voided", f"{LMS}/x")) == ("invalid", "bad_object")


@pytest.mark.parametrize("verb", [ADL + "commented", ADL + "attempted", ADL + "progressed", ADL + "terminated",
                                  "https://example.edu/verbs/unknown"])
def test_other_verbs_are_ignored(verb):
    assert rejection(statement(verb, f"{LMS}/lessons/intro")) == ("ignored", "unused_verb")


def test_the_mapping_adds_verbs():
    s = statement("https://example.edu/verbs/watched", f"{LMS}/videos/4242")
    assert records(s)[0][0] is Topic.PAGE_VIEWS


def test_a_group_or_a_non_activity_object_is_unsupported():
    group = {"objectType": "Group", "name": "Team", "mbox": "mailto:team@example.edu"}
    assert rejection(statement(ADL + "experienced", f"{LMS}/lessons/intro", actor=group)) == (
        "unsupported", "group_actor")
    agent = {"objectType": "Agent", "mbox": "mailto:other@example.edu"}
    assert rejection(statement(ADL + "experienced", obj=agent)) == ("unsupported", "object_not_activity")


# -- actors, ids and times --------------------------------------------------------------------------
@pytest.mark.parametrize(("actor", "user_id"), [
    ({"mbox": "mailto:Example.Learner@ADLnet.gov"}, 1001),  # mbox compared without case
    ({"mbox_sha1sum": "EBD31E95054C018B10727CCFFD2EF2EC3A016EE9"}, 1002),
    ({"openid": "https://id.example.edu/carol"}, 1003),
    ({"account": {"homePage": LMS, "name": "dave"}}, 1004),
    ({"account": {"homePage": LMS, "name": "72002"}}, 72002),  # numeric account name: the numeric fallback
])
def test_each_actor_identifier_maps(actor, user_id):
    assert records(statement(ADL + "logged-in", LMS, actor=actor))[0][1]["user_id"] == user_id


@pytest.mark.parametrize("actor", [{"mbox": "mailto:stranger@example.com"}, {"account": {"homePage": LMS,
                                                                                          "name": "student-42"}}])
def test_an_unknown_actor_is_unmapped_never_guessed(actor):
    assert rejection(statement(ADL + "logged-in", LMS, actor=actor)) == ("unmapped", "unmapped_user")


@pytest.mark.parametrize("actor", [{}, {"mbox": "alice@example.edu"}, {"mbox": "mailto:a@b", "openid": "https://x"},
                                   {"mbox_sha1sum": "xyz"}, {"account": {"homePage": LMS}}, "alice",
                                   {"objectType": "Person", "mbox": "mailto:a@b"}])
def test_a_malformed_actor_is_invalid(actor):
    assert rejection(statement(ADL + "logged-in", LMS, actor=actor)) == ("invalid", "bad_actor")


@pytest.mark.parametrize(("timestamp", "local"), [
    ("2024-01-10T06:00:00Z", "2024-01-10T09:00:00"),
    ("2024-01-10T06:00:00.123456789Z", "2024-01-10T09:00:00"),
    ("2024-01-10T09:00:00+03:00", "2024-01-10T09:00:00"),
    ("2024-01-10T01:00:00-0500", "2024-01-10T09:00:00"),
    ("2024-01-10T06:00:00", "2024-01-10T09:00:00"),  # no offset: UTC
    ("2024-01-10T22:30:00Z", "2024-01-11T01:30:00"),  # the next day in the school
])
def test_timestamps_become_school_local_time(timestamp, local):
    s = statement(ADL + "logged-in", LMS)
    s["timestamp"] = timestamp
    assert records(s)[0][1]["ts"] == local


def test_without_timestamp_stored_then_the_arrival_time_dates_it():
    s = statement(ADL + "logged-in", LMS)
    del s["timestamp"]
    assert rejection(s) == ("invalid", "missing_timestamp")
    arrived = datetime(2024, 2, 1, 12, 0, tzinfo=UTC)
    assert records(s, received_at=arrived)[0][1]["ts"] == "2024-02-01T15:00:00"
    s["stored"] = "2024-01-31T12:00:00Z"
    assert records(s, received_at=arrived)[0][1]["ts"] == "2024-01-31T15:00:00"


@pytest.mark.parametrize("timestamp", ["yesterday", "2024-13-01T00:00:00Z", "2024-01-10", 1704870000,
                                       "2024-01-10T25:00:00Z", "2024-01-10T06:00:00+24:00"])
def test_an_unreadable_timestamp_is_invalid(timestamp):
    s = statement(ADL + "logged-in", LMS)
    s["timestamp"] = timestamp
    assert rejection(s) == ("invalid", "bad_timestamp")


def test_a_time_the_contract_refuses_is_invalid():
    s = statement(ADL + "logged-in", LMS)
    s["timestamp"] = "1999-12-31T00:00:00Z"
    assert rejection(s) == ("invalid", "event_time_out_of_range")


def test_the_statement_id_is_the_event_id_or_a_uuid_of_the_content():
    s = statement(ADL + "logged-in", LMS)
    s["id"] = SID.upper()
    assert records(s)[0][1]["event_id"] == SID
    del s["id"]
    first, again = xapi.map_statement(s, MAPPING), xapi.map_statement(dict(s), MAPPING)
    assert first.ref == again.ref and first.ref != SID and len(first.ref) == 36
    s["id"] = "not-a-uuid"
    assert rejection(s) == ("invalid", "bad_statement_id")


@pytest.mark.parametrize(("change", "reason"), [
    ({"verb": None}, "missing_verb"), ({"object": None}, "missing_object"), ({"actor": None}, "missing_actor"),
    ({"verb": {"display": {"en-US": "x"}}}, "bad_verb"), ({"verb": {"id": "answered"}}, "bad_verb"),
    ({"object": {"id": "lesson 1"}}, "bad_object"), ({"version": "2.0.0"}, "unsupported_version"),
    ({"result": {"success": "yes"}}, "bad_result"), ({"result": {"duration": "90 minutes"}}, "bad_duration"),
    ({"verb": {"id": ADL + "scored"}, "result": {"score": {"scaled": 0.5}}, "context": "teacher"}, "bad_context"),
])
def test_malformed_statements_are_invalid(change, reason):
    s = {**statement(ADL + "experienced", f"{LMS}/lessons/intro"), **change}
    assert rejection(s) == ("invalid", reason)


def test_every_verb_of_the_table_is_documented():
    doc = xapi.__doc__ or ""
    for verb in xapi.VERBS:
        assert verb.rsplit("/", 2)[-1] in doc or verb.rstrip("/").rsplit("/", 1)[-1] in doc, verb
