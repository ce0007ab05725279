"""A history replayed up to a moment (`scorer replay --until`, the demo's mid-course stop), without a broker."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from features.eventtime import parse_ts
from streams.contract import Topic
from streams.lms.events import Event
from streams.lms.synthetic import generate
from streams.tools.demo import alerts_by_kind, format_alerts, middle_of_newest_flow
from streams.tools.replay import load_records, up_to


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lms")
    generate(out, students=60, seed=3)
    return out


@pytest.fixture(scope="module")
def events(export: Path) -> list[Event]:
    return load_records(export)[0]


def test_the_demo_stops_half_way_through_the_flow_that_starts_last(export: Path, events: list[Event]) -> None:
    schedule = pd.read_csv(export / "schedule.csv", parse_dates=["dateShown"])
    flows = schedule.groupby(["course_id", "flows"])["dateShown"].agg(["min", "max"])
    newest = flows.loc[flows["min"].idxmax()]
    middle = newest["min"] + (newest["max"] - newest["min"]) / 2
    assert middle_of_newest_flow(events) == parse_ts(middle.isoformat())


def test_at_the_demos_stop_some_outcomes_have_arrived_and_some_have_not(events: list[Event]) -> None:
    """The moment the demo shows: older flows' outcomes to learn from, the newest flow still running."""
    until = middle_of_newest_flow(events)
    assert until is not None
    outcomes = [parse_ts(record["ts"]) for topic, record in events if topic is Topic.OUTCOMES]
    assert any(ts <= until for ts in outcomes) and any(ts > until for ts in outcomes)


def test_up_to_keeps_the_whole_schedule_and_every_record_by_then(events: list[Event]) -> None:
    until = middle_of_newest_flow(events)
    assert until is not None
    position = {record["event_id"]: i for i, (_, record) in enumerate(events)}
    kept = up_to(events, until)
    kept_positions = [position[record["event_id"]] for _, record in kept]
    later = [events[i] for i in sorted(set(range(len(events))) - set(kept_positions))]
    assert kept_positions == sorted(kept_positions)  # in event-time order, as published
    assert [t for t, _ in kept].count(Topic.SCHEDULE) == [t for t, _ in events].count(Topic.SCHEDULE)
    assert max(parse_ts(r["ts"]) for t, r in kept if t is not Topic.SCHEDULE) <= until
    assert later and min(parse_ts(r["ts"]) for _, r in later) > until
    assert up_to(events, None) is events


def test_a_grade_given_after_the_stop_is_held_back_though_its_work_was_handed_in_before() -> None:
    grade = {"user_id": 1, "ts": "2024-02-01T10:00:00", "activity_id": 5, "result": 80, "success": 1,
             "attempt_id": "a1", "graded_at": "2024-02-12T09:00:00"}
    hand_in = {**grade, "result": None, "success": 0, "pending": True}
    del hand_in["graded_at"]
    events: list[Event] = [(Topic.EXERCISE_RESULTS, hand_in), (Topic.EXERCISE_RESULTS, grade)]
    assert up_to(events, parse_ts("2024-02-10T00:00:00")) == events[:1]
    assert up_to(events, parse_ts("2024-02-12T09:00:00")) == events


def test_the_cli_reads_until_on_the_exports_clock_and_the_demo_can_replay_everything() -> None:
    from streams.cli import build_parser

    replay = build_parser().parse_args(["replay", "lms", "--until", "2024-02-10T00:00:00"])
    assert replay.until == parse_ts("2024-02-10T00:00:00")
    assert build_parser().parse_args(["replay", "lms"]).until is None
    assert build_parser().parse_args(["demo", "--whole-history"]).whole_history
    assert not build_parser().parse_args(["demo"]).whole_history


def test_the_demo_counts_early_warnings_apart_from_status_changes() -> None:
    """An early warning is the only alert that stays where it was; the demo reports it apart, since its count
    follows the model version that scored the student and the status changes' does not."""
    found = [("scorer_alerts_total", {"from_status": "active", "to_status": "dozing"}, 3.0),
             ("scorer_alerts_total", {"from_status": "new", "to_status": "dozing"}, 2.0),
             ("scorer_alerts_total", {"from_status": "active", "to_status": "active"}, 4.0),
             ("scorer_alerts_created", {"from_status": "active", "to_status": "active"}, 1.7e9),
             ("scorer_students", {"status": "dozing"}, 9.0)]
    counts = alerts_by_kind(found)
    assert counts == {"to dozing": 5, "at_risk": 4}
    assert format_alerts(counts) == "at_risk 4, to dozing 5"
    assert format_alerts({}) == "none"
