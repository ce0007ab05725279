"""Export files of each format (the fixtures, written from the formats' public references) ->
records in event-time order, as `scorer replay FILE --format ...` publishes them."""
from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import pytest

from features.eventtime import parse_ts
from streams.contract import Topic, validate
from streams.ingest.files import load_file, map_caliper_text, map_file, map_xapi_text
from streams.ingest.mapping import IdMapping

FIXTURES = Path(__file__).parents[1] / "fixtures" / "lms_formats"
MAPPING = IdMapping.load(FIXTURES / "mapping.yaml", "Europe/Moscow")
FILES = {"xapi": FIXTURES / "xapi_statements.jsonl", "openedx": FIXTURES / "openedx_tracking.log",
         "moodle": FIXTURES / "moodle_logstore.csv", "caliper": FIXTURES / "caliper_events.jsonl"}


def outcome(fmt: str) -> tuple[Counter[str], Counter[tuple[str, str]]]:
    records, rejections = load_file(FILES[fmt], fmt, MAPPING)
    for topic, record in records:
        validate(topic, record)
    times = [parse_ts(r["ts"]) for _, r in records]
    assert times == sorted(times)
    assert len({r["event_id"] for _, r in records}) == len(records)  # every record its own event id
    return Counter(t.value for t, _ in records), Counter((r.kind, r.reason) for r in rejections)


def test_the_xapi_fixture():
    topics, rejected = outcome("xapi")
    assert topics == {"lms.authorizations": 2, "lms.page_views": 2, "lms.exercise_results": 2,
                      "lms.webinar_events": 4, "lms.students": 1}
    assert rejected == {("ignored", "unused_verb"): 2, ("unmapped", "unmapped_user"): 1,
                        ("unsupported", "voided_statement"): 1, ("invalid", "bad_actor"): 1,
                        ("invalid", "malformed_json"): 1}


def test_the_openedx_fixture():
    topics, rejected = outcome("openedx")
    assert topics == {"lms.students": 1, "lms.page_views": 3, "lms.exercise_results": 2, "lms.outcomes": 1}
    assert rejected == {("ignored", "browser_problem_check"): 1, ("ignored", "duplicate_of_problem_check"): 1,
                        ("ignored", "unused_event"): 2, ("ignored", "not_courseware"): 1,
                        ("unmapped", "unmapped_page"): 1,
                        ("invalid", "bad_timestamp"): 1, ("invalid", "malformed_json"): 1}


def test_the_moodle_fixture():
    topics, rejected = outcome("moodle")
    # the quiz attempt without its grade is a hand-in, the user_graded row after it the grade
    assert topics == {"lms.students": 1, "lms.authorizations": 2, "lms.page_views": 2, "lms.exercise_results": 2,
                      "lms.webinar_events": 2, "lms.outcomes": 1}
    assert rejected == {("ignored", "unused_event"): 1, ("invalid", "missing_user"): 1,
                        ("invalid", "bad_timestamp"): 1}


def test_the_caliper_fixture():
    """Canvas Live Events (Caliper 1.1) and the IMS 1.2 examples, as envelopes and bare events."""
    topics, rejected = outcome("caliper")
    assert topics == {"lms.students": 1, "lms.authorizations": 2, "lms.page_views": 2, "lms.exercise_results": 3,
                      "lms.outcomes": 1}
    assert rejected == {("ignored", "not_a_person"): 1, ("ignored", "unused_event"): 2, ("ignored", "not_a_course"): 1,
                        ("ignored", "entity_describe"): 1, ("ignored", "duplicate_event"): 1,
                        ("unmapped", "unmapped_user"): 1, ("invalid", "unsupported_version"): 1,
                        ("invalid", "bad_actor"): 1, ("invalid", "malformed_json"): 1,
                        ("ignored", "not_graded"): 1}  # an item completed without a score or an Attempt
    records, _ = load_file(FILES["caliper"], "caliper", MAPPING)
    results = [r for t, r in records if t is Topic.EXERCISE_RESULTS]
    (hand_in,) = [r for r in results if r.get("pending")]  # Canvas's quiz_submitted
    assert hand_in["attempt_id"] == "urn:instructure:canvas:submission:11210000013995723" and hand_in["result"] is None
    graded = [r for r in results if not r.get("pending")]
    assert [(r["user_id"], r["activity_id"], r["result"], r["success"], r["ts"], r.get("graded_at"))
            for r in graded] == [
        (1008, 13283, 80, 1, "2024-01-11T12:00:00", None),  # Canvas grade_change: 8 of 10, pass_percent 60
        # the IMS autograder: 10 of the assessment's 25 (the Score's maxScore is 0), dated at the Attempt's end
        (1009, 13284, 40, 0, "2024-01-11T13:55:12", "2024-01-11T13:57:06")]
    assert [r["attempt_id"] for r in graded] == [
        "urn:instructure:canvas:submission:21070000000011086",
        "https://example.edu/terms/201601/courses/7/sections/1/assess/1/users/554433/attempts/1"]


@pytest.mark.parametrize(("fmt", "event_id", "user_id", "ts"), [
    ("moodle", "moodle:5010", 1007, "2024-01-23T13:00:00"),  # timecreated 1706004000
    ("caliper", "urn:uuid:7205050c-95ed-4c5f-9ecf-2998c7d3a02c", 1008, "2024-01-23T13:00:00"),  # 10:00Z
    ("openedx", "openedx:6a8e54fbb012e905731af9d7591e5786", 1006, "2024-01-20T15:07:46"),  # 12:07:46Z
])
def test_the_fixtures_withdrawal_is_its_last_record_a_withdrawn_outcome(fmt, event_id, user_id, ts):
    records, _ = load_file(FILES[fmt], fmt, MAPPING)
    assert [t for t, _ in records].count(Topic.OUTCOMES) == 1
    assert records[-1] == (Topic.OUTCOMES, {"event_id": event_id, "user_id": user_id, "ts": ts, "course_id": 3,
                                            "module": 2, "progress": None, "attestation": None,
                                            "result": "withdrawn"})


def test_at_the_same_time_the_profile_precedes_activity_and_the_withdrawal_follows_it(tmp_path):
    rows = ("id,eventname,userid,relateduserid,courseid,contextinstanceid,timecreated\n"
            "3,\\core\\event\\user_enrolment_deleted,2,17,12,,1704870000\n"
            "2,\\core\\event\\user_loggedin,17,,,,1704870000\n"
            "1,\\core\\event\\user_enrolment_created,2,17,12,,1704870000\n")
    path = tmp_path / "log.csv"
    path.write_text(rows)
    records, _ = load_file(path, "moodle", MAPPING)
    assert [t for t, _ in records] == [Topic.STUDENTS, Topic.AUTHORIZATIONS, Topic.OUTCOMES]


def test_xapi_exports_as_an_array_a_statement_result_or_gzip(tmp_path):
    statements = [json.loads(line) for line in FILES["xapi"].read_text().splitlines() if line.startswith("{")]
    lines = map_xapi_text(FILES["xapi"].read_text(), MAPPING)
    as_array = map_xapi_text(json.dumps(statements), MAPPING)
    as_result = map_xapi_text(json.dumps({"statements": statements, "more": ""}), MAPPING)
    assert [m.records for m in as_array] == [m.records for m in as_result] == [m.records for m in lines[:-1]]
    packed = tmp_path / "statements.jsonl.gz"
    packed.write_bytes(gzip.compress(FILES["xapi"].read_bytes()))
    assert [m.records for m in map_file(packed, "xapi", MAPPING)] == [m.records for m in lines]


def test_a_statement_repeated_in_a_file_counts_once():
    statement = FILES["xapi"].read_text().splitlines()[1]
    changed = statement.replace("09:15:00", "09:16:00")
    mapped = map_xapi_text("\n".join([statement, statement, changed]), MAPPING)
    assert [m.records != [] for m in mapped] == [True, False, False]
    assert [(m.rejection.kind, m.rejection.reason) for m in mapped[1:]] == [
        ("ignored", "duplicate_statement"), ("invalid", "conflicting_statement_id")]


def test_caliper_exports_as_an_array_an_envelope_or_gzip(tmp_path):
    lines = [json.loads(line) for line in FILES["caliper"].read_text().splitlines() if line.endswith("}")]
    events = [e for item in lines for e in (item["data"] if "data" in item else [item])]
    read = [m.records for m in map_caliper_text(FILES["caliper"].read_text(), MAPPING) if m.records]
    as_array = map_caliper_text(json.dumps(lines), MAPPING)
    one_envelope = map_caliper_text(json.dumps({"sensor": "http://oxana.instructure.com/", "dataVersion":
                                                "http://purl.imsglobal.org/ctx/caliper/v1p1", "data": events,
                                                "sendTime": "2024-01-24T00:00:00.000Z"}), MAPPING)
    assert [m.records for m in as_array if m.records] == read
    by_id = {r["event_id"]: r for rs in read for _, r in rs}
    assert {r["event_id"]: r for m in one_envelope for _, r in m.records} == by_id and len(by_id) == 9
    packed = tmp_path / "caliper.jsonl.gz"
    packed.write_bytes(gzip.compress(FILES["caliper"].read_bytes()))
    assert [m.records for m in map_file(packed, "caliper", MAPPING) if m.records] == read


def test_a_caliper_event_repeated_in_a_file_counts_once():
    event = json.loads(FILES["caliper"].read_text().splitlines()[1])["data"][0]
    changed = {**event, "eventTime": "2024-01-10T06:01:00.000Z"}
    mapped = map_caliper_text("\n".join(json.dumps(e) for e in [event, event, changed]), MAPPING)
    assert [m.records != [] for m in mapped] == [True, False, False]
    assert [(m.rejection.kind, m.rejection.reason) for m in mapped[1:]] == [
        ("ignored", "duplicate_event"), ("invalid", "conflicting_event_id")]


def test_an_unknown_format():
    with pytest.raises(ValueError, match="unknown format"):
        map_file(FILES["xapi"], "scorm", MAPPING)
