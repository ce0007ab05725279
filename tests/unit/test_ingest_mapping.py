"""The identifier mapping file (streams/ingest/mapping.py) and source times (streams/ingest/times.py)."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from features.eventtime import zone_named
from streams.ingest.base import Reject
from streams.ingest.mapping import IdMapping, MappingError, Target, trailing_integer, whole_integer
from streams.ingest.times import local_ts, parse_duration, parse_instant, unix_local_ts

FIXTURES = Path(__file__).parents[1] / "fixtures" / "lms_formats"


def test_the_fixture_mapping_file_loads_as_documented():
    mapping = IdMapping.load(FIXTURES / "mapping.yaml", "Europe/Moscow")
    assert mapping.zone_name == "Europe/Moscow" and mapping.pass_percent == 60
    assert mapping.lms_roots == frozenset({"https://lms.example.edu"})
    assert mapping.user(["mailto:Example.Learner@adlnet.gov"]) == 1001
    assert mapping.user(["account:https://lms.example.edu|dave"]) == 1004
    assert mapping.course(["course-v1:edX+DemoX+Demo_Course"]) == 3
    assert mapping.resolve("pages", ["https://lms.example.edu/lessons/intro"]) == Target(3015, "занятие", 2)
    assert mapping.resolve("pages", ["moodle:345"]) == Target(8719, "активность")
    assert mapping.resolve("activities", ["moodle:gradeitem:91"]) == Target(13281)
    assert mapping.verbs["https://lms.example.edu/verbs/watched"] == "page_view"


def test_json_and_an_empty_path(tmp_path):
    path = tmp_path / "mapping.json"
    path.write_text(json.dumps({"users": {"moodle:17": 5}, "numeric_fallback": False}))
    mapping = IdMapping.load(path)
    assert mapping.user(["moodle:17"]) == 5 and mapping.numeric_fallback == frozenset()
    assert IdMapping.load("") == IdMapping() and IdMapping.load(None).zone_name == "UTC"


def test_yaml_numeric_keys_are_identifiers(tmp_path):
    path = tmp_path / "mapping.yaml"
    path.write_text("pages:\n  345: 8719\n")
    assert IdMapping.load(path).resolve("pages", ["345"]).id == 8719


@pytest.mark.parametrize(("data", "message"), [
    ([], "must hold an object"),
    ({"user": {}}, "unknown entries"),
    ({"time_zone": "Europe/Moscow"}, "SCORER_SCHOOL_TIME_ZONE"),
    ({"users": {"a": 0}}, "from 1"), ({"users": {"a": True}}, "integer"), ({"users": {"a": 1.5}}, "integer"),
    ({"courses": {"a": -1}}, "from 0"), ({"pages": {"a": {"page_type": "lesson"}}}, "needs `id`"),
    ({"pages": {"a": {"id": 1, "page_type": "video"}}}, "lesson or activity"),
    ({"pages": {"a": {"id": 1, "colour": "red"}}}, "needs `id`"),
    ({"pages": {"a": {"id": 1, "module": 2**40}}}, "module"),
    ({"verbs": {"https://x/v": "teleported"}}, "not one of"),
    ({"numeric_fallback": ["pages", "lessons"]}, "unknown sections"), ({"pass_percent": 101}, "pass_percent"),
    ({"lms_roots": "https://lms"}, "lms_roots"), ({"pages": ["a"]}, "map identifiers"),
    ({"users": {"": 1}}, "non-empty"),
])
def test_a_wrong_mapping_names_the_entry(data, message):
    with pytest.raises(MappingError, match=message):
        IdMapping.from_dict(data)


def test_a_broken_file_names_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("users: [unclosed\n")
    with pytest.raises(MappingError, match=r"broken\.yaml"):
        IdMapping.load(path)


@pytest.mark.parametrize(("text", "number"), [
    ("https://lms.example.edu/activities/8719", 8719), ("https://lms.example.edu/activities/8719/", 8719),
    ("block-v1:edX+DemoX+Demo_Course+type@problem+block@13278", 13278), ("https://m.edu/mod/page/view.php?id=345", 345),
    ("lesson_42", 42), ("lesson-42", 42), ("12", 12), ("course-v1:SchoolX+PY101+2024", 2024),
    ("lesson42", None), ("d5f7e0b2c3f54b6e9", None), ("https://lms/activities/", None),
    ("https://lms/a/99999999999999999999", None),  # beyond a BIGINT
])
def test_trailing_integer(text, number):
    assert trailing_integer(text) == number


@pytest.mark.parametrize(("value", "number"), [(17, 17), ("17", 17), (" 17 ", 17), ("١٧", None), ("17a", None),
                                               (True, None), (-1, None), (2**63, None), (1.0, None)])
def test_whole_integer(value, number):
    assert whole_integer(value) == number


def test_the_numeric_fallback_per_section():
    everything = IdMapping()
    assert everything.resolve("pages", ["https://lms/p/5"], "https://lms/p/5").id == 5
    assert everything.user(["account:https://lms|72002"], "72002") == 72002
    with pytest.raises(Reject, match="unmapped_user"):
        everything.user(["account:https://lms|student-42"], "student-42")  # users: digits only
    with pytest.raises(Reject, match="unmapped_user"):
        everything.user(["moodle:0"], 0)  # user ids start at 1
    pages_only = IdMapping.from_dict({"numeric_fallback": ["pages"]})
    assert pages_only.resolve("pages", ["x/5"], "x/5").id == 5
    with pytest.raises(Reject) as refused:
        pages_only.resolve("activities", ["x/5"], "x/5")
    assert refused.value.reason == "unmapped_activity" and refused.value.kind == "unmapped"
    off = IdMapping.from_dict({"numeric_fallback": False})
    with pytest.raises(Reject, match="unmapped_webinar"):
        off.resolve("webinars", ["x/5"], "x/5")


def test_mapped_keys_come_before_the_fallback():
    mapping = IdMapping.from_dict({"pages": {"https://lms/p/5": 3015}})
    assert mapping.resolve("pages", ["https://lms/p/5"], "https://lms/p/5").id == 3015


def test_success_from_the_pass_mark():
    assert IdMapping().success_of(50) == 1 and IdMapping().success_of(49) == 0 and IdMapping().success_of(None) == 0
    assert IdMapping.from_dict({"pass_percent": None}).success_of(100) == 0


# -- times ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "expected"), [
    ("2024-01-10T06:00:00Z", datetime(2024, 1, 10, 6, tzinfo=UTC)),
    ("2024-01-10T06:00Z", datetime(2024, 1, 10, 6, tzinfo=UTC)),
    ("2024-01-10 06:00:00.5+00:00", datetime(2024, 1, 10, 6, 0, 0, 500000, tzinfo=UTC)),
    ("2024-01-10T09:00:00+03", datetime(2024, 1, 10, 6, tzinfo=UTC)),
    ("2024-01-10T09:00:00+0300", datetime(2024, 1, 10, 6, tzinfo=UTC)),
    ("2024-01-10T06:00:00", datetime(2024, 1, 10, 6, tzinfo=UTC)),
])
def test_parse_instant(text, expected):
    assert parse_instant(text) == expected


def test_local_time_in_zones_with_summer_time():
    berlin = zone_named("Europe/Berlin")
    assert local_ts(parse_instant("2024-01-10T12:00:00Z"), berlin) == "2024-01-10T13:00:00"
    assert local_ts(parse_instant("2024-07-10T12:00:00Z"), berlin) == "2024-07-10T14:00:00"
    assert local_ts(parse_instant("2024-07-10T12:00:00Z"), zone_named("+05:30")) == "2024-07-10T17:30:00"
    assert zone_named("UTC") is UTC and zone_named("-03:00") == timezone(-timedelta(hours=3))
    assert unix_local_ts(1704870000, zone_named("Europe/Moscow")) == "2024-01-10T10:00:00"


@pytest.mark.parametrize(("text", "seconds"), [("PT1H30M", 5400), ("PT1234S", 1234), ("PT0.5S", 0.5),
                                               ("P1DT2H", 93600), ("P1W", 604800)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["P", "PT", "1H", "PT-5S", "P999W", 90])
def test_a_bad_duration(text):
    with pytest.raises(Reject, match="bad_duration"):
        parse_duration(text)


def test_the_documented_example_loads_and_means_what_it_says():
    import yaml

    from streams.ingest import mapping as module

    doc = module.__doc__ or ""
    example = yaml.safe_load(doc.split("```yaml", 1)[1].split("```", 1)[0])
    mapping = IdMapping.from_dict(example)
    assert mapping.user(["openedx:user_id:42"]) == mapping.user(["openedx:username:erin"]) == 1005
    assert mapping.user(["account:https://lms.example.edu|dave"]) == 1004
    assert mapping.resolve("pages", ["moodle:345"]) == Target(8719, "активность")
    assert mapping.resolve("activities", ["moodle:gradeitem:91"]).id == 13278
    assert mapping.verbs == {"https://example.edu/verbs/watched": "page_view"}


def test_each_adapter_returns_records_and_rejections():
    from streams.ingest import moodle, openedx, xapi

    mapping = IdMapping()
    records, rejections = xapi.from_statements([{}, "x"], mapping)
    assert records == [] and [r.reason for r in rejections] == ["missing_actor", "not_an_object"]
    assert openedx.from_lines(["{}", "", "nope"], mapping)[1][1].reason == "malformed_json"
    assert openedx.from_events([{"name": "pause_video"}], mapping)[1][0].kind == "ignored"
    records, _ = moodle.from_rows([{"eventname": "\\core\\event\\user_loggedin", "userid": "5",
                                    "timecreated": "1704870000"}], mapping)
    assert records[0][1] == {"event_id": records[0][1]["event_id"], "user_id": 5, "ts": "2024-01-10T07:00:00"}
