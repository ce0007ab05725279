"""An export as contract records: valid, in event-time order, with stable ids, and nothing lost."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from features import parse_ts
from streams.contract import Topic, validate
from streams.lms.events import export_to_events
from streams.lms.readers import load_export
from streams.lms.synthetic import generate

pytestmark = pytest.mark.heavy

SEED = Path(__file__).parents[1] / "fixtures" / "seed_sample"
RANK = {Topic.SCHEDULE: 0, Topic.STUDENTS: 1, Topic.OUTCOMES: 3}


def _by_topic(events, topic):
    return [record for t, record in events if t is topic]


def _assert_ordered(events):
    keys = [(parse_ts(r["ts"]), RANK.get(t, 2)) for t, r in events]
    assert keys == sorted(keys)


@pytest.fixture()
def seed_copy(tmp_path):
    directory = tmp_path / "export"
    shutil.copytree(SEED, directory)
    return directory


def _append(path: Path, *lines: str) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    directory = tmp_path_factory.mktemp("synthetic")
    generate(directory, students=30, seed=5)
    return directory


def test_seed_sample_records(seed_copy):
    events, rejected = export_to_events(load_export(seed_copy))
    for topic, record in events:
        validate(topic, record)
    _assert_ordered(events)
    webinar = _by_topic(events, Topic.WEBINAR_EVENTS)
    assert [(w["ts"], w["event"], w["conn_format"], w["intro"], w["module"]) for w in webinar] == [
        ("2023-12-23T12:10:00", "Подключение", "офлайн", 1, 2), ("2023-12-23T12:15:00", "Отключение", "офлайн", 1, 2)]
    assert [r["result"] for r in _by_topic(events, Topic.EXERCISE_RESULTS)] == [100, 100]
    auth = _by_topic(events, Topic.AUTHORIZATIONS)[0]
    assert (auth["user_id"], auth["ts"], auth["window_size"]) == (7722, "2022-12-07T17:43:14", "1872x932")
    # the schedule is published at the export's earliest moment, with the guide's task details
    schedule = _by_topic(events, Topic.SCHEDULE)
    assert {s["ts"] for s in schedule} == {"2022-12-07T17:43:14"}
    assert events[0][0] is Topic.SCHEDULE
    assert [(s["activity_id"], s["required"], s["module"], s["theme_id"]) for s in schedule] == [
        (8719, 0, 2, 13), (8720, 0, 2, 13)]
    # user 2614's tag change names a student users.csv does not have
    assert [(r.file, r.line, r.reason.split(":")[0]) for r in rejected] == [("users_logs.csv", 3, "unknown_user")]


def test_students_first_appear_then_change_tags(seed_copy):
    events, _ = export_to_events(load_export(seed_copy))
    students = [r for r in _by_topic(events, Topic.STUDENTS) if r["user_id"] == 2566]
    assert [(s["ts"], s["tags"], s["online"]) for s in students] == [
        ("2023-11-14T15:07:00", ["#entry-email", "#офлайн"], False),
        ("2023-11-14T15:07:00", ["#entry-email", "#онлайн"], True)]
    assert all((s["unti_id"], s["age"], s["time_zone"], s["flow_num"], s["tg_bot"], s["payment"]) ==
               (1118021, 16, "+03:00", 1.0, 0, 0) for s in students)
    first_982 = next(r for r in _by_topic(events, Topic.STUDENTS) if r["user_id"] == 982)
    assert first_982["ts"] == "2024-01-24T19:14:11"  # their first page view


def test_outcomes_arrive_when_the_module_ends(seed_copy):
    _append(seed_copy / "users.csv", "1200000,4000,3,1.00,1,80,75,2023-12-20 10:00:00")
    events, _ = export_to_events(load_export(seed_copy))
    outcomes = {r["user_id"]: r for r in _by_topic(events, Topic.OUTCOMES)}
    assert outcomes[982]["ts"] == "2023-12-12T11:00:00"  # last date_shown + 7 days
    assert (outcomes[982]["progress"], outcomes[982]["attestation"], outcomes[982]["module"]) == (13, None, 2)
    assert outcomes[4000]["ts"] == "2023-12-20T10:00:00" == outcomes[4000]["attestation_date"]
    assert outcomes[4000]["attestation"] == 75


def test_the_lms_verdict_rides_on_the_outcome_and_a_withdrawal_publishes_it_when_the_student_left(seed_copy):
    """enrolment_events.csv (our extension): a withdrawal moves the outcome to its time; passed keeps the
    outcome's own time; an unknown event or enrolment is rejected with its reason, never dropped silently."""
    _append(seed_copy / "users.csv", "1200000,4000,3,1.00,1,80,75,2023-12-20 10:00:00")
    (seed_copy / "enrolment_events.csv").write_text(
        "user_id,course_id,flow_num,event,created_at\n"
        "982,3,1.00,enrolled,2023-10-01 00:00:00\n"
        "982,3,1.00,withdrawn,2023-11-02 00:00:00\n"
        "4000,3,1.00,passed,\n"
        "4000,3,1.00,graduated,2023-12-20 10:00:00\n"
        "5555,3,1.00,failed,2023-12-20 10:00:00\n", encoding="utf-8")
    events, rejected = export_to_events(load_export(seed_copy))
    outcomes = {r["user_id"]: r for r in _by_topic(events, Topic.OUTCOMES)}
    assert (outcomes[982]["ts"], outcomes[982]["result"]) == ("2023-11-02T00:00:00", "withdrawn")
    assert (outcomes[4000]["ts"], outcomes[4000]["result"]) == ("2023-12-20T10:00:00", "passed")
    assert "result" not in outcomes[2566]  # no verdict: the record is what it was before the extension
    _assert_ordered(events)
    assert sorted((r.file, r.reason.split(":")[0]) for r in rejected if r.file == "enrolment_events.csv") == [
        ("enrolment_events.csv", "unknown_enrolment"), ("enrolment_events.csv", "unsupported_event")]


def test_a_retake_is_an_enrolment_of_its_own_with_its_own_outcome(seed_copy):
    """Student 982 takes course 3 again in flow 2 (opening on 2024-01-09): a second profile when
    that flow starts, and an outcome naming its flow."""
    _append(seed_copy / "schedule.csv", "3,активность,81,8719,slide,0,{},2,2024-01-09 11:00:00")
    _append(seed_copy / "users.csv", "1051004,982,3,2.00,—,70,80,2024-01-20 10:00:00")
    events, rejected = export_to_events(load_export(seed_copy))
    assert [r for r in rejected if r.file == "users.csv"] == []
    profiles = [(r["flow_num"], r["ts"]) for r in _by_topic(events, Topic.STUDENTS) if r["user_id"] == 982]
    assert (2, "2024-01-09T11:00:00") in profiles
    assert {flow for flow, _ in profiles} == {1, 2}
    outcomes = {r["flow_num"]: (r["ts"], r["attestation"]) for r in _by_topic(events, Topic.OUTCOMES)
                if r["user_id"] == 982}
    assert outcomes == {1: ("2023-12-12T11:00:00", None), 2: ("2024-01-20T10:00:00", 80)}


def test_event_ids_are_stable_and_distinguish_repeated_rows(seed_copy):
    _append(seed_copy / "authorization.csv", "7722,2022-12-07 19:51:34,Mozilla/5.0 (Window,1872x918")
    first, _ = export_to_events(load_export(seed_copy))
    second, _ = export_to_events(load_export(seed_copy))
    assert [r["event_id"] for _, r in first] == [r["event_id"] for _, r in second]
    ids = [r["event_id"] for _, r in first]
    assert len(ids) == len(set(ids))


def test_rows_that_break_the_contract_are_rejected_with_reasons(seed_copy):
    _append(seed_copy / "webinars_logs.csv", "74952,23.12.2023 12:20,Переподключение,13378,офлайн,1,2")
    _append(seed_copy / "exercise_results.csv", "2,13278,72002,2023-12-01 10:00:00,150,1",
            "2,13278,72002,2023-12-01 11:00:00,Пропуск,0")
    _append(seed_copy / "users_logs.csv", "982,01.12.2023 10:00,password-changed,",
            "982,02.12.2023 10:00,tags-changed,что-то")
    _append(seed_copy / "users.csv", "1,982,3,1.00,—,1,1,")
    events, rejected = export_to_events(load_export(seed_copy))
    reasons = {(r.file, r.line): r.reason.split(":")[0] for r in rejected}
    assert reasons == {("webinars_logs.csv", 4): "schema_violation", ("exercise_results.csv", 4): "schema_violation",
                       ("users_logs.csv", 3): "unknown_user", ("users_logs.csv", 4): "unsupported_event",
                       ("users_logs.csv", 5): "unparsed_comment", ("users.csv", 4): "duplicate_enrolment"}
    assert '"Переподключение"' in next(r.raw for r in rejected if r.file == "webinars_logs.csv")
    skipped = [r for r in _by_topic(events, Topic.EXERCISE_RESULTS) if r["ts"] == "2023-12-01T11:00:00"]
    assert [(r["result"], r["success"]) for r in skipped] == [(None, 0)]


def test_online_only_keeps_the_customer_filter_students(seed_copy):
    _append(seed_copy / "users.csv", "1200000,4000,3,1.00,1,80,75,")
    _append(seed_copy / "users_logs.csv", '4000,01.12.2023 10:00,tags-changed,"Были хештеги: , стали: #онлайн"')
    events, _ = export_to_events(load_export(seed_copy), online_only=True)
    assert {r["user_id"] for t, r in events if t is not Topic.SCHEDULE} == {4000}
    assert len(_by_topic(events, Topic.SCHEDULE)) == 2


def test_synthetic_export_becomes_valid_ordered_records(synthetic):
    events, rejected = export_to_events(load_export(synthetic))
    assert rejected == []
    for topic, record in events:
        validate(topic, record)
    _assert_ordered(events)
    topics = {t for t, _ in events}
    assert topics == {Topic.SCHEDULE, Topic.STUDENTS, Topic.AUTHORIZATIONS, Topic.PAGE_VIEWS, Topic.EXERCISE_RESULTS,
                      Topic.WEBINAR_EVENTS, Topic.OUTCOMES}
    assert len({r["event_id"] for _, r in events}) == len(events)
    assert len(_by_topic(events, Topic.OUTCOMES)) == 30
    assert any(r["result"] is None for r in _by_topic(events, Topic.EXERCISE_RESULTS))
