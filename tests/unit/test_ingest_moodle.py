r"""The Moodle adapter's mapping table, row by row (streams/ingest/moodle.py), on
`logstore_standard_log` rows with Moodle's event class names (\core\event\user_loggedin, ...)."""
from __future__ import annotations

from typing import Any

import pytest

from features import attempt_facts, compute, fold, last_activity, parse_ts
from helpers.mapped import accepted, refused
from streams.contract import Topic
from streams.ingest import moodle
from streams.ingest.mapping import IdMapping

MAPPING = IdMapping.from_dict({
    "pass_percent": 60,
    "users": {"moodle:17": 1007}, "courses": {"moodle:12": 3},
    "pages": {"moodle:345": {"id": 8719, "page_type": "activity", "module": 2}},
    "activities": {"moodle:346": 13280, "moodle:gradeitem:91": {"id": 13281, "module": 2}},
    "webinars": {"moodle:400": 13379},
}, time_zone="Europe/Moscow")
TS = "2024-01-10T10:00:00"  # 1704870000 = 2024-01-10T07:00:00Z
BASE = {"event_id": "moodle:5002", "user_id": 1007, "ts": TS}


def row(eventname: str, **columns: Any) -> dict[str, Any]:
    component = eventname.strip("\\").split("\\")[0]
    return {"id": "5002", "eventname": eventname, "component": component, "action": "", "target": "",
            "objecttable": "", "objectid": "1", "crud": "r", "edulevel": "2", "contextid": "300",
            "contextlevel": "70", "contextinstanceid": "345", "userid": "17", "courseid": "12", "relateduserid": "",
            "anonymous": "0", "other": "", "timecreated": "1704870000", "origin": "web", "ip": "10.0.0.17",
            "realuserid": "", **columns}


def records(r: Any) -> list[tuple[Topic, dict]]:
    return accepted(moodle.map_row(r, MAPPING))


def rejection(r: Any) -> tuple[str, str]:
    return refused(moodle.map_row(r, MAPPING))


def test_logged_in_is_an_authorization():
    assert records(row("\\core\\event\\user_loggedin", contextinstanceid="0", courseid="0")) == [
        (Topic.AUTHORIZATIONS, BASE)]


@pytest.mark.parametrize(("module", "cmid", "expected"), [
    ("page", "345", {"page_type": "активность", "page_id": 8719, "activity_type": "page", "module": 2}),  # mapped
    ("page", "500", {"page_type": "занятие", "page_id": 500, "activity_type": "page"}),
    ("book", "501", {"page_type": "занятие", "page_id": 501, "activity_type": "book"}),
    ("lesson", "502", {"page_type": "занятие", "page_id": 502, "activity_type": "lesson"}),
    ("quiz", "503", {"page_type": "активность", "page_id": 503, "activity_type": "quiz"}),
    ("resource", "504", {"page_type": "активность", "page_id": 504, "activity_type": "resource"}),
])
def test_course_module_viewed_is_a_page_view(module, cmid, expected):
    r = row(f"\\mod_{module}\\event\\course_module_viewed", contextinstanceid=cmid)
    assert records(r) == [(Topic.PAGE_VIEWS, {**BASE, **expected})]


@pytest.mark.parametrize(("columns", "expected"), [
    ({"grade": "75"}, (75, 1)), ({"grade": "59.5"}, (60, 1)), ({"grade": "40", "success": "1"}, (40, 1)),
    ({"finalgrade": "8", "grademax": "10"}, (80, 1)), ({"grade": "70", "gradepass": "80"}, (70, 0)),
    ({"success": "0"}, (None, 0)),
])
def test_a_graded_quiz_attempt_submitted_is_an_exercise_result_of_that_attempt(columns, expected):
    r = row("\\mod_quiz\\event\\attempt_submitted", contextinstanceid="346", relateduserid="17", userid="2",
            objectid="88", other='{"submitterid":2,"quizid":21}', **columns)
    assert records(r) == [(Topic.EXERCISE_RESULTS, {**BASE, "activity_id": 13280, "result": expected[0],
                                                    "success": expected[1], "attempt_id": "moodle:attempt:88"})]


HAND_IN = {"result": None, "success": 0, "attempt_id": "moodle:grade", "pending": True}


def test_a_quiz_attempt_submitted_without_a_grade_is_a_hand_in_its_user_graded_grades():
    r = row("\\mod_quiz\\event\\attempt_submitted", contextinstanceid="346", relateduserid="17", userid="2",
            other='{"submitterid":2,"quizid":21}')
    assert records(r) == [(Topic.EXERCISE_RESULTS, {**BASE, "activity_id": 13280, **HAND_IN})]


def test_an_assignment_handed_in_and_graded_days_later_is_one_attempt_passed_when_handed_in():
    """Handed in on the 10th (by the student, then again by a teacher for them on the 12th), graded on
    the 15th: one attempt, handed in and passed on the 12th's work; the grade is not the student's doing."""
    mapping = IdMapping.from_dict({"users": {"moodle:17": 1007}, "pass_percent": 60,
                                   "activities": {"moodle:346": 13280, "moodle:gradeitem:91": 13280}},
                                  time_zone="Europe/Moscow")
    submitted = "\\mod_assign\\event\\assessable_submitted"
    rows = [row(submitted, contextinstanceid="346", userid="17", other='{"submission_editable":false}'),
            row(submitted, id="5003", contextinstanceid="346", userid="2", relateduserid="17",
                timecreated=str(1704870000 + 2 * 86_400)),
            row("\\core\\event\\user_graded", id="5004", userid="2", relateduserid="17",
                timecreated=str(1704870000 + 5 * 86_400), other='{"itemid":91,"finalgrade":75}')]
    got = [r for each in rows for r in moodle.map_row(each, mapping).records]
    assert [(r["user_id"], r["activity_id"], r["attempt_id"], r.get("pending", False)) for _, r in got] == [
        (1007, 13280, "moodle:grade", True), (1007, 13280, "moodle:grade", True),
        (1007, 13280, "moodle:grade", False)]
    state = fold([("exercise_result", record) for _, record in got])[1007]
    (fact, again), = attempt_facts(state).values()
    assert fact == [parse_ts(TS), 75, 1, parse_ts("2024-01-12T10:00:00")] and again[:2] == [fact[3], -2]
    assert last_activity(state) == parse_ts("2024-01-12T10:00:00")
    assert compute(state, None, parse_ts("2024-01-14T00:00:00"))["sum_exercise_attempts_mean"] == 0.0  # not graded yet


def test_a_quiz_attempt_without_relateduserid_is_the_actors():
    r = row("\\mod_quiz\\event\\attempt_submitted", contextinstanceid="346", objectid="", grade="50")
    assert records(r)[0][1]["user_id"] == 1007 and "attempt_id" not in records(r)[0][1]


@pytest.mark.parametrize(("other", "columns", "expected"), [
    ('{"itemid":91,"overridden":false,"finalgrade":85}', {}, (85, 1)),  # out of 100: Moodle's default maximum
    ('{"itemid":91,"overridden":false,"finalgrade":8.5}', {"grademax": "10"}, (85, 1)),
    ('{"itemid":91,"overridden":false,"finalgrade":4}', {"grademax": "10"}, (40, 0)),
    ('a:3:{s:6:"itemid";i:91;s:10:"overridden";b:0;s:10:"finalgrade";d:72.5;}', {}, (73, 1)),  # PHP-serialized
    ('{"itemid":91,"finalgrade":null}', {"grade": "55"}, (55, 0)),
])
def test_user_graded_is_an_exercise_result_of_the_graded_student(other, columns, expected):
    r = row("\\core\\event\\user_graded", contextlevel="50", contextinstanceid="12", userid="2",
            relateduserid="17", other=other, **columns)
    assert records(r) == [(Topic.EXERCISE_RESULTS, {**BASE, "activity_id": 13281, "result": expected[0],
                                                    "success": expected[1], "module": 2,
                                                    "attempt_id": "moodle:grade"})]


def test_a_grade_item_graded_again_is_one_attempt_with_its_latest_grade():
    """Moodle sends user_graded again when a grade changes (a teacher's edit or override): once an
    attempt each, now the student's one grade in the item."""
    graded = "\\core\\event\\user_graded"
    rows = [row(graded, id=str(5002 + n), userid="2", relateduserid="17", timecreated=str(1704870000 + n * 86_400),
                other=f'{{"itemid":91,"finalgrade":{grade}}}') for n, grade in enumerate((40, 55, 90))]
    rows.insert(0, row("\\mod_quiz\\event\\attempt_submitted", contextinstanceid="346", relateduserid="17"))
    got = [r for each in rows for r in moodle.map_row(each, MAPPING).records]
    state = fold([("exercise_result", record) for _, record in got])[1007]
    features = compute(state, None, parse_ts("2024-01-20T00:00:00"))
    assert (features["sum_exercise_attempts_mean"], features["success_index"], features["mean_attempt_score"]) == (
        1.0, 1.0, 90.0)
    assert last_activity(state) == parse_ts(TS)  # handed in at its first grade; the later ones are not activity


def test_user_graded_edge_cases():
    graded = "\\core\\event\\user_graded"
    assert rejection(row(graded, relateduserid="17", other='{"itemid":91,"finalgrade":null}')) == (
        "ignored", "grade_cleared")
    assert rejection(row(graded, relateduserid="", other='{"itemid":91,"finalgrade":5}')) == (
        "invalid", "missing_relateduserid")
    assert rejection(row(graded, relateduserid="17", other='{"finalgrade":5}')) == ("invalid", "missing_itemid")
    assert rejection(row(graded, relateduserid="17", other='{"itemid":91,"finalgrade":150}')) == (
        "invalid", "bad_grade")


@pytest.mark.parametrize(("name", "event"), [("meeting_joined", "Подключение"), ("meeting_left", "Отключение")])
def test_bigbluebutton_meetings_are_webinar_events(name, event):
    r = row(f"\\mod_bigbluebuttonbn\\event\\{name}", contextinstanceid="400")
    assert records(r) == [(Topic.WEBINAR_EVENTS, {**BASE, "event": event, "webinar_id": 13379,
                                                  "conn_format": "онлайн"})]


def test_enrolment_is_a_student_profile():
    created = row("\\core\\event\\user_enrolment_created", userid="2", relateduserid="17", contextlevel="50")
    assert records(created) == [(Topic.STUDENTS, {**BASE, "course_id": 3})]


def test_enrolment_deleted_is_the_withdrawn_outcome_of_the_student_when_they_left():
    deleted = row("\\core\\event\\user_enrolment_deleted", userid="2", relateduserid="17", contextlevel="50",
                  timecreated="1706004000")  # 2024-01-23T10:00:00Z; userid 2 is the teacher who unenrolled them
    assert records(deleted) == [(Topic.OUTCOMES, {
        "event_id": "moodle:5002", "user_id": 1007, "ts": "2024-01-23T13:00:00", "course_id": 3, "module": 2,
        "progress": None, "attestation": None, "result": "withdrawn"})]


@pytest.mark.parametrize(("columns", "expected"), [
    ({"courseid": ""}, ("invalid", "missing_courseid")),
    ({"relateduserid": ""}, ("invalid", "missing_relateduserid")),  # userid is whoever removed the enrolment
])
def test_a_withdrawal_without_its_course_or_student_is_rejected(columns, expected):
    deleted = row("\\core\\event\\user_enrolment_deleted", userid="2", relateduserid="17")
    assert rejection({**deleted, **columns}) == expected


def test_a_withdrawal_from_an_unmapped_course_waits_for_the_mapping():
    strict = IdMapping.from_dict({"numeric_fallback": ["users"]})
    mapped = moodle.map_row(row("\\core\\event\\user_enrolment_deleted", relateduserid="17"), strict)
    assert mapped.rejection is not None and (mapped.rejection.kind, mapped.rejection.reason) == (
        "unmapped", "unmapped_course")


@pytest.mark.parametrize("name", ["\\mod_forum\\event\\post_created", "\\core\\event\\user_loggedout",
                                  "\\core\\event\\course_viewed", "\\mod_quiz\\event\\attempt_started"])
def test_other_events_are_ignored(name):
    assert rejection(row(name)) == ("ignored", "unused_event")


@pytest.mark.parametrize("name", ["\\\\core\\\\event\\\\user_loggedin", "core\\event\\user_loggedin",
                                  " \\core\\event\\user_loggedin "])
def test_event_names_as_sql_exports_write_them(name):
    assert records(row(name))[0][0] is Topic.AUTHORIZATIONS


@pytest.mark.parametrize(("columns", "reason"), [
    ({"userid": "0"}, "missing_user"), ({"userid": "NULL"}, "missing_user"), ({"userid": "abc"}, "bad_userid"),
    ({"timecreated": "yesterday"}, "bad_timestamp"), ({"timecreated": "1704870000000"}, "bad_timestamp"),
    ({"timecreated": ""}, "bad_timestamp"), ({"eventname": ""}, "missing_eventname"),
    ({"timecreated": "900000000"}, "event_time_out_of_range"),  # 1998
])
def test_unreadable_rows_are_invalid(columns, reason):
    assert rejection({**row("\\core\\event\\user_loggedin"), **columns}) == ("invalid", reason)


def test_the_event_id_is_the_log_row_id_else_a_hash():
    assert records(row("\\core\\event\\user_loggedin"))[0][1]["event_id"] == "moodle:5002"
    without = records(row("\\core\\event\\user_loggedin", id=""))[0][1]["event_id"]
    assert without.startswith("moodle:") and len(without) == 39


def test_csv_with_semicolons_and_a_bom():
    text = "\ufeffid;eventname;userid;timecreated\n1;\\core\\event\\user_loggedin;17;1704870000\n"
    mapped = moodle.map_rows(moodle.read_csv(text), MAPPING)
    assert mapped[0].records[0][1] == {"event_id": "moodle:1", "user_id": 1007, "ts": TS}


def test_every_event_of_the_table_is_documented():
    doc = moodle.__doc__ or ""
    for name in [*moodle._HANDLED, "course_module_viewed"]:
        assert name.rsplit("\\", 1)[-1] in doc, name
