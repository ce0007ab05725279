"""The Open edX adapter's mapping table, row by row (streams/ingest/openedx.py), on events with the
field names of the Open edX tracking-log reference."""
from __future__ import annotations

import json
from typing import Any

import pytest

from features import attempt_facts, fold, parse_ts
from helpers.mapped import accepted, refused
from streams.contract import Topic
from streams.ingest import openedx
from streams.ingest.mapping import IdMapping

COURSE = "course-v1:edX+DemoX+Demo_Course"
PROBLEM = "block-v1:edX+DemoX+Demo_Course+type@problem+block@389a51ad148a4a09bd9ae0f73482d2df"
VERTICAL = "block-v1:edX+DemoX+Demo_Course+type@vertical+block@vertical_98cf62510471"
SEQUENTIAL = "block-v1:edX+DemoX+Demo_Course+type@sequential+block@basic_questions"
MAPPING = IdMapping.from_dict({
    "pass_percent": 60,
    "users": {"openedx:user_id:7": 1006, "openedx:username:erin": 1005},
    "courses": {COURSE: 3},
    "pages": {VERTICAL: {"id": 3016, "page_type": "lesson", "module": 2},
              "7e9b434e6de3435ab99bd3fb25bde807": {"id": 8720, "activity_type": "video"}},
    "activities": {PROBLEM: 13278, SEQUENTIAL: {"id": 13279, "module": 2}},
}, time_zone="Europe/Moscow")
TS = "2024-01-10T17:30:34"  # 14:30:34Z in Moscow


def event(name: str, payload: Any = None, *, source: str = "server", user_id: Any = 7, username: str = "verified",
          **extra: Any) -> dict[str, Any]:
    context: dict[str, Any] = {"course_id": COURSE, "org_id": "edX", "path": "/event"}
    if user_id is not None:
        context["user_id"] = user_id
    return {"name": name, "context": context, "username": username, "session": "4ace79d87bef27db2a6b859f2df821a2",
            "ip": "172.18.0.1", "agent": "Mozilla/5.0", "host": "localhost:18000", "event": payload or {},
            "time": "2024-01-10T14:30:34.579062+00:00", "event_type": name, "event_source": source,
            "page": "x_module", **extra}


def records(e: Any) -> list[tuple[Topic, dict]]:
    mapped = accepted(openedx.map_event(e, MAPPING))
    assert all(r["event_id"].startswith("openedx:") and len(r["event_id"]) == 40 for _, r in mapped)
    return [(t, {k: v for k, v in r.items() if k != "event_id"}) for t, r in mapped]


def rejection(e: Any) -> tuple[str, str]:
    return refused(openedx.map_event(e, MAPPING))


@pytest.mark.parametrize(("name", "mode", "payment"), [
    ("edx.course.enrollment.activated", "audit", 0), ("edx.course.enrollment.activated", "verified", 1),
    ("edx.course.enrollment.activated", "honor", 0), ("edx.course.enrollment.mode_changed", "professional", 1),
    ("edx.course.enrollment.activated", "no-id-professional", 1), ("edx.course.enrollment.activated", "masters", 1),
])
def test_enrollment_is_a_student_profile(name, mode, payment):
    e = event(name, {"user_id": 7, "course_id": COURSE, "mode": mode})
    assert records(e) == [(Topic.STUDENTS, {"user_id": 1006, "ts": TS, "course_id": 3, "payment": payment})]


def test_enrollment_names_the_learner_not_who_enrolled_them():
    e = event("edx.course.enrollment.activated", {"user_id": 42, "course_id": COURSE, "mode": "audit"}, user_id=3)
    assert records(e)[0][1]["user_id"] == 42


def test_deactivation_is_the_withdrawn_outcome_of_the_learner_when_they_left():
    e = event("edx.course.enrollment.deactivated", {"user_id": 7, "course_id": COURSE, "mode": "audit"}, user_id=3)
    assert records(e) == [(Topic.OUTCOMES, {"user_id": 1006, "ts": TS, "course_id": 3, "module": 2, "progress": None,
                                            "attestation": None, "result": "withdrawn"})]
    replayed, later = json.loads(json.dumps(e)), {**e, "time": "2024-01-10T14:31:00+00:00"}
    ids = [openedx.map_event(x, MAPPING).records[0][1]["event_id"] for x in (e, replayed, later)]
    assert ids[0] == ids[1] != ids[2]  # a line replayed is one event; another time, another event


def test_a_deactivation_names_its_course_in_the_payload_or_the_context():
    e = event("edx.course.enrollment.deactivated", {"user_id": 7, "mode": "audit"})
    assert records(e)[0][1]["course_id"] == 3  # context.course_id
    e["context"].pop("course_id")
    assert rejection(e) == ("invalid", "missing_course")
    unknown = event("edx.course.enrollment.deactivated", {"user_id": 7, "course_id": "course-v1:Other+X+Y"})
    assert rejection(unknown) == ("unmapped", "unmapped_course")


@pytest.mark.parametrize(("grade", "max_grade", "success", "expected"), [
    (5, 5, "correct", (100, 1)), (4, 5, "incorrect", (80, 0)), (0, 5, "incorrect", (0, 0)),
    (1, 3, "correct", (33, 1)), (2, 0, "correct", (None, 1)), (None, None, "incorrect", (None, 0)),
])
def test_server_problem_check_is_an_exercise_result(grade, max_grade, success, expected):
    payload = {"problem_id": PROBLEM, "grade": grade, "max_grade": max_grade, "success": success, "attempts": 2,
               "answers": {}, "correct_map": {}, "state": {}, "submission": {}}
    assert records(event("problem_check", payload)) == [
        (Topic.EXERCISE_RESULTS, {"user_id": 1006, "ts": TS, "activity_id": 13278, "result": expected[0],
                                  "success": expected[1]})]


def test_problem_check_falls_back_to_the_module_usage_key():
    e = event("problem_check", {"grade": 1, "max_grade": 1, "success": "correct"})
    e["context"]["module"] = {"display_name": "Q", "usage_key": PROBLEM}
    assert records(e)[0][1]["activity_id"] == 13278


def test_browser_problem_check_is_ignored():
    e = event("problem_check", "input_389a51ad148a4a09bd9ae0f73482d2df_2_1=choice_0", source="browser")
    assert rejection(e) == ("ignored", "browser_problem_check")


@pytest.mark.parametrize("name", ["play_video", "load_video", "edx.video.played", "edx.video.loaded"])
@pytest.mark.parametrize("as_string", [False, True])
def test_video_events_are_activity_page_views(name, as_string):
    payload = {"id": "7e9b434e6de3435ab99bd3fb25bde807", "code": "CCxmtcICYNc", "currentTime": 0.04}
    e = event(name, json.dumps(payload) if as_string else payload, source="browser")
    assert records(e) == [(Topic.PAGE_VIEWS, {"user_id": 1006, "ts": TS, "page_type": "активность", "page_id": 8720,
                                              "activity_type": "video"})]


def test_an_opaque_unmapped_video_id_is_unmapped():
    e = event("play_video", {"id": "d5f7e0b2c3f54b6e"}, source="browser")
    assert rejection(e) == ("unmapped", "unmapped_page")


@pytest.mark.parametrize("name", ["edx.ui.lms.sequence.tab_selected", "edx.ui.lms.sequence.next_selected",
                                  "edx.ui.lms.sequence.previous_selected", "seq_goto", "seq_next", "seq_prev"])
def test_sequence_navigation_is_a_lesson_page_view(name):
    e = event(name, {"current_tab": 3, "id": VERTICAL, "tab_count": 4, "target_tab": 2, "old": 3, "new": 2},
              source="browser")
    assert records(e) == [(Topic.PAGE_VIEWS, {"user_id": 1006, "ts": TS, "page_type": "занятие", "page_id": 3016,
                                              "module": 2})]


@pytest.mark.parametrize("name", ["edx.ui.lms.outline.selected", "edx.ui.lms.jump_nav.selected"])
def test_outline_navigation_is_a_page_view_of_its_target(name):
    e = event(name, {"target_url": "https://courses.example.edu/courses/x/jump_to/block-v1:x+type@sequential+block@77",
                     "target_name": "Week 1"}, source="browser")
    assert records(e)[0][1]["page_id"] == 77


def test_page_close_on_courseware_is_a_page_view_elsewhere_ignored():
    page = f"https://courses.example.edu/courses/{COURSE}/courseware/week_1/lesson_42/"
    e = event("page_close", "", source="browser", user_id=None, username="erin", page=page)
    del e["name"]
    assert records(e) == [(Topic.PAGE_VIEWS, {"user_id": 1005, "ts": TS, "page_type": "занятие", "page_id": 42})]
    e["page"] = "https://courses.example.edu/dashboard"
    assert rejection(e) == ("ignored", "not_courseware")


@pytest.mark.parametrize(("earned", "possible", "expected"), [(4.0, 5.0, (80, 1)), (2.0, 5.0, (40, 0)),
                                                               (3.0, 5.0, (60, 1))])
def test_subsection_grades_are_exercise_results(earned, possible, expected):
    payload = {"user_id": "7", "course_id": COURSE, "block_id": SEQUENTIAL, "weighted_total_earned": earned,
               "weighted_total_possible": possible, "weighted_graded_earned": earned,
               "weighted_graded_possible": possible, "first_attempted": "2024-01-10 14:30:34+00:00"}
    e = event("edx.grades.subsection.grade_calculated", payload, user_id=3, username="staff")
    assert records(e) == [(Topic.EXERCISE_RESULTS, {"user_id": 1006, "ts": TS, "activity_id": 13279,
                                                    "result": expected[0], "success": expected[1], "module": 2,
                                                    "attempt_id": "openedx:subsection:13279"})]


def test_a_subsection_graded_again_is_one_attempt_first_attempted_when_its_first_problem_was():
    """Open edX emits a subsection's grade each time it calculates it: 2 of 5,
    then 4 of 5 a day later, were two attempts, one failed; now one, passed when the 4 came."""
    def grade(earned: float, time: str) -> dict[str, Any]:
        payload = {"user_id": "7", "course_id": COURSE, "block_id": SEQUENTIAL, "weighted_total_earned": earned,
                   "weighted_total_possible": 5.0, "first_attempted": "2024-01-10 14:00:00+00:00"}
        return {**event("edx.grades.subsection.grade_calculated", payload, user_id=3), "time": time}

    got = [r for e in (grade(2.0, "2024-01-10T14:30:34Z"), grade(4.0, "2024-01-11T09:00:00Z"))
           for r in openedx.map_event(e, MAPPING).records]
    assert [(r["ts"], r["graded_at"]) for _, r in got] == [("2024-01-10T17:00:00", "2024-01-10T17:30:34"),
                                                           ("2024-01-10T17:00:00", "2024-01-11T12:00:00")]
    state = fold([("exercise_result", record) for _, record in got])[1006]
    (fact,) = attempt_facts(state)["13279"]
    assert fact == [parse_ts("2024-01-10T17:00:00"), 80, 1, parse_ts("2024-01-10T17:00:00")]
    late = grade(4.0, "2024-01-11T09:00:00Z")
    late["event"]["first_attempted"] = "2024-01-12 00:00:00+00:00"  # after the grade: not believed
    (_, record), = records(late)
    assert record["ts"] == "2024-01-11T12:00:00" and "graded_at" not in record


@pytest.mark.parametrize(("first_attempted", "expected"), [
    ("None", ("ignored", "not_attempted")),  # Open edX's str(None): a score deleted, a track changed
    (None, ("ignored", "not_attempted")),
    ("the day before", ("invalid", "bad_attempt_time")),
])
def test_a_subsection_grade_nobody_attempted_is_no_attempt_and_an_unreadable_time_no_guess(first_attempted,
                                                                                          expected):
    payload = {"user_id": "7", "block_id": SEQUENTIAL, "weighted_total_earned": 0.0, "weighted_total_possible": 5.0,
               "first_attempted": first_attempted}
    assert rejection(event("edx.grades.subsection.grade_calculated", payload)) == expected
    del payload["first_attempted"]  # a release without the field: dated at the grade
    (_, record), = records(event("edx.grades.subsection.grade_calculated", payload))
    assert record["ts"] == TS and record["result"] == 0 and "graded_at" not in record


def test_a_subsection_out_of_nothing_is_ignored():
    payload = {"user_id": "7", "block_id": SEQUENTIAL, "weighted_total_earned": 0, "weighted_total_possible": 0}
    assert rejection(event("edx.grades.subsection.grade_calculated", payload)) == ("ignored", "no_possible_score")


@pytest.mark.parametrize(("name", "expected"), [
    ("edx.grades.course.grade_calculated", ("unsupported", "course_grade")),
    ("edx.grades.problem.submitted", ("ignored", "duplicate_of_problem_check")),
    ("edx.forum.thread.created", ("ignored", "unused_event")),
    ("pause_video", ("ignored", "unused_event")),
    ("/courses/course-v1:edX+DemoX+Demo_Course/courseware", ("ignored", "unused_event")),
])
def test_the_rest(name, expected):
    assert rejection(event(name, {"user_id": "7"})) == expected


def test_the_user_id_is_read_before_the_username_and_must_be_known():
    assert records(event("seq_goto", {"id": VERTICAL}, user_id=None, username="erin"))[0][1]["user_id"] == 1005
    assert rejection(event("seq_goto", {"id": VERTICAL}, user_id=None, username="mallory")) == (
        "unmapped", "unmapped_user")
    assert rejection(event("seq_goto", {"id": VERTICAL}, user_id=None, username="")) == ("invalid", "missing_user")
    assert records(event("seq_goto", {"id": VERTICAL}, user_id="123"))[0][1]["user_id"] == 123


def test_the_event_id_is_a_hash_of_the_whole_event():
    e = event("seq_goto", {"id": VERTICAL})
    first = openedx.map_event(e, MAPPING).records[0][1]["event_id"]
    assert openedx.map_event(json.loads(json.dumps(e)), MAPPING).records[0][1]["event_id"] == first
    e["time"] = "2024-01-10T14:30:35+00:00"
    assert openedx.map_event(e, MAPPING).records[0][1]["event_id"] != first


@pytest.mark.parametrize(("line", "reason"), [
    ('{"truncated', "malformed_json"), ("plain text", "malformed_json"), ("[1, 2]", "malformed_json"),
    ('{"name": "seq_goto", "time": "10/01/2024", "context": {"user_id": 7}, "event": {"id": "x/1"}}',
     "bad_timestamp"),
    ('{"context": {"user_id": 7}}', "missing_event_type"),
])
def test_unreadable_lines_are_invalid(line, reason):
    mapped = openedx.map_line(line, MAPPING, "9")
    assert mapped.rejection is not None and (mapped.rejection.kind, mapped.rejection.reason) == ("invalid", reason)
    assert mapped.rejection.ref == "9"


def test_a_syslog_prefix_is_skipped():
    line = '2024-01-10 14:40:00,112 INFO 1234 [tracking] logger.py:42 - ' + json.dumps(event("seq_goto",
                                                                                           {"id": VERTICAL}))
    assert openedx.map_line(line, MAPPING).records[0][0] is Topic.PAGE_VIEWS


def test_every_event_of_the_table_is_documented():
    doc = openedx.__doc__ or ""
    for name in [*openedx.ENROLLED, *openedx.VIDEO, *openedx.OUTLINE, "problem_check", "page_close",
                 "edx.grades.subsection.grade_calculated", "edx.course.enrollment.deactivated"]:
        assert name in doc, name
    for name in openedx.SEQUENCE:
        assert name.rsplit(".", 1)[-1] in doc, name
