"""The pipeline on in-memory stores: any split into batches, any interleaving of topics and any
redelivery gives the pure fold's state and the reference transitions, each alert once."""
from __future__ import annotations

import random
import time
from collections import Counter
from typing import Any

import pytest

from features import DAY, DEFAULT_THRESHOLDS, DOZING
from helpers.pipeline_cases import ENROLMENT, LATENESS, Sent, assert_equals_fold_and_reference, drive, history
from helpers.results import expected_alert_ids
from online_models.scoring import NoScoring
from storage.row_sink import MemoryRowSink
from storage.students import InMemoryStudentStore
from streams.core.step import StepConfig
from streams.pipeline import Pipeline, PipelineConfig

CONFIG = PipelineConfig(topic_prefix="t.", step=StepConfig(DEFAULT_THRESHOLDS, 3600.0), lateness=LATENESS,
                        live_clock=False, max_skew=600.0)


def _pipeline() -> tuple[Pipeline, InMemoryStudentStore, MemoryRowSink, Sent]:
    store, sink, sent = InMemoryStudentStore(), MemoryRowSink(), Sent()
    return Pipeline(CONFIG, store, sent.send, NoScoring(), sink), store, sink, sent


@pytest.mark.parametrize("seed", range(6))
async def test_stream_equals_pure_fold_and_reference_alerts(seed: int) -> None:
    rng = random.Random(seed)
    events = history(rng, students=12)
    pipeline, store, sink, sent = _pipeline()
    await drive(pipeline, "t.", events, rng, redeliver=True, bad=3)
    await assert_equals_fold_and_reference(store, sent, events, bad=3)
    # the Postgres side saw every alert as a transition, and one current row per student
    assert set(sink.transitions) == {a["alert_id"] for a in sent.on("scorer.alerts")}
    assert len(sink.current) == 12


async def test_score_rows_follow_the_newest_status() -> None:
    rng = random.Random(11)
    events = history(rng, students=5)
    pipeline, store, sink, sent = _pipeline()
    await drive(pipeline, "t.", events, rng, redeliver=False)
    counts = await store.status_counts()
    for (user_id, enrolment), row in sink.current.items():
        doc = (await store.load([user_id]))[user_id][1]
        assert enrolment == ENROLMENT
        assert doc is not None and doc["enrolments"][enrolment]["machine"]["status"] == row.status
        assert row.days_inactive is not None and row.days_inactive >= 0
    assert sum(counts.values()) == 5
    assert any(a["to_status"] == DOZING for a in sent.on("scorer.alerts"))


async def test_the_student_whose_outcome_completes_a_flow_wakes_the_others_of_it() -> None:
    """Students 1 and 2 are the flow; 1's outcome arrives, then 2's, the last. Student 1 has no record
    after its outcome, yet its outcome reaches the trainer once the watermark passes 2's (the flow's
    completion), not 28 days after the end: the flow index made it due."""
    from features import WEEK, format_ts
    from streams.contract import Topic, encode
    from streams.kafka.consumer import InputRecord
    from streams.runtime import pipeline_config
    from streams.settings import Settings

    start = 1_701_424_800.0
    rows = [{"course_id": 3, "ts": "2023-11-01T00:00:00", "type": "активность", "task_id": 100 + w,
             "activity_id": 10 + w, "activity_type": "exercise", "is_attestation": 0, "required": 1,
             "date_shown": format_ts(start + w * WEEK), "module": 2, "task_position": 1} for w in range(4)]
    end = start + 3 * WEEK

    def profile(user: int) -> dict[str, Any]:
        return {"user_id": user, "ts": format_ts(start), "course_id": 3, "flow_num": 1, "online": True}

    def outcome(user: int, at: float) -> dict[str, Any]:
        return {"user_id": user, "ts": format_ts(at), "course_id": 3, "module": 2, "progress": 30, "attestation": None}

    def login(user: int, at: float) -> dict[str, Any]:
        return {"user_id": user, "ts": format_ts(at)}

    batches = [
        [(Topic.SCHEDULE, r) for r in rows] + [(Topic.STUDENTS, profile(u)) for u in (1, 2)]
        + [(Topic.AUTHORIZATIONS, login(u, start + DAY)) for u in (1, 2, 3)],
        [(Topic.OUTCOMES, outcome(1, end + 2 * DAY)), (Topic.AUTHORIZATIONS, login(2, end + 2 * DAY))],
        [(Topic.OUTCOMES, outcome(2, end + 5 * DAY))],
        [(Topic.AUTHORIZATIONS, login(3, end + 6 * DAY))],  # student 3, of no flow, moves the watermark on
    ]
    settings = Settings(topic_prefix="t.")
    scoring = LabelLog()
    pipeline = Pipeline(pipeline_config(settings), InMemoryStudentStore(), Sent().send, scoring, MemoryRowSink())
    logs: dict[tuple[str, int], int] = {}  # (topic, partition) -> last offset

    async def process(records: list[InputRecord]) -> None:
        await pipeline.process(records, {tp: (last + 1, last + 1, None) for tp, last in logs.items()},
                               {name: 1 for name, _ in logs})

    for batch in batches:  # every record on partition 0, each batch read whole
        records = []
        for topic, record in batch:
            name = topic.physical("t.")
            offset = logs[name, 0] = logs.get((name, 0), -1) + 1
            key = str(record["course_id" if topic is Topic.SCHEDULE else "user_id"]).encode()
            records.append(InputRecord(name, 0, offset, key, encode(record), time.time()))
        await process(records)
        if batch[0][0] is Topic.OUTCOMES:
            assert scoring.handed == []  # held: the flow is not complete, or the watermark not past it
    await process([])
    assert sorted(learner for learner, _ in scoring.handed) == ["1:3:1", "2:3:1"]


#: Real exports' shapes: flows that start after earlier ones ended, a 24-week course, students
#: who retake their course in a later flow or take two courses at once.
REAL_SHAPES = {"flows": 5, "long_course_weeks": 24, "re_enrolled": 0.25, "second_course": 0.15}


@pytest.mark.heavy
@pytest.mark.parametrize(("seed", "shapes"), [(0, {}), (1, {}), (2, REAL_SHAPES)])
async def test_a_generated_export_in_any_read_order_gives_the_reference_alerts(tmp_path, seed: int,
                                                                                shapes: dict[str, Any]) -> None:
    """Schedules, profiles, outcomes and activity of a generated export, their topic-partitions read
    in random order and chunks with redeliveries (an outcome may be read before its student's
    profile): the alerts are exactly the reference's, lifecycle ends included, for every
    enrolment of students who have more than one."""
    from streams.lms.synthetic import Shapes, generate
    from streams.runtime import pipeline_config
    from streams.settings import Settings
    from streams.tools.replay import load_records

    generate(tmp_path, students=30, seed=seed, shapes=Shapes(**shapes))
    events, _ = load_records(tmp_path)
    _drop_the_last_outcome_of_a_flow(events)
    settings = Settings(topic_prefix="t.")
    store, sink, sent, scoring = InMemoryStudentStore(), MemoryRowSink(), Sent(), LabelLog()
    pipeline = Pipeline(pipeline_config(settings), store, sent.send, scoring, sink)
    waited_before = _outcomes_waited()
    await drive(pipeline, "t.", events, random.Random(seed), redeliver=True)
    held, released = (after - before for after, before in zip(_outcomes_waited(), waited_before))
    alerts = {a["alert_id"] for a in sent.on("scorer.alerts")}
    expected = expected_alert_ids(events, settings)
    assert alerts == expected and any(a["to_status"] == "finished" for a in sent.on("scorer.alerts"))
    if shapes:  # several enrolments of one student each got their own lifecycle to its end
        finished = Counter(a["user_id"] for a in sent.on("scorer.alerts") if a["to_status"] == "finished")
        assert max(finished.values()) >= 2
    await assert_compacted_facts_give_the_folds_features(store, events, settings)
    waiting = await assert_labels_wait_for_their_flow(store, events, settings, scoring.handed)
    assert held - released == waiting and released > 0  # what scorer_outcomes_*_total say
    # the incomplete flow's outcomes wait (in the longer courses of REAL_SHAPES it ended long before)
    assert waiting > 0 or shapes


def _drop_the_last_outcome_of_a_flow(events: list) -> None:
    """Of the flows of three or more students, the latest outcome goes: that flow never completes, and
    the others' outcomes of it wait the whole learn_after (they are still waiting if it ended less than
    that before the export's end)."""
    from streams.contract.topics import Topic

    flows: dict[tuple[int, int], set[Any]] = {}  # (student, course) -> the flows they enrolled in
    for topic, record in events:
        if topic is Topic.STUDENTS:
            flows.setdefault((record["user_id"], record["course_id"]), set()).add(record.get("flow_num"))
    size = Counter((course, flow) for (_, course), of in flows.items() for flow in of)
    last = max((record["ts"], i) for i, (topic, record) in enumerate(events) if topic is Topic.OUTCOMES
               and len(of := flows.get((record["user_id"], record["course_id"]), set())) == 1
               and size[record["course_id"], next(iter(of))] >= 3)
    del events[last[1]]


def _outcomes_waited() -> tuple[float, float]:
    from streams.metrics import REGISTRY

    held, released = (REGISTRY.get_sample_value(f"scorer_outcomes_{kind}_total", {"topic": "lms.outcomes"}) or 0.0
                      for kind in ("held", "released"))
    return held, released


class LabelLog(NoScoring):
    """Records the labels the pipeline hands to the trainer: (learner, the outcome's time)."""

    def __init__(self) -> None:
        self.handed: list[tuple[str, float]] = []

    async def label(self, learner: str, outcome: dict[str, Any], days_inactive: float) -> None:
        from features import parse_ts

        self.handed.append((learner, parse_ts(outcome["ts"])))


async def assert_labels_wait_for_their_flow(store: InMemoryStudentStore, events: list, settings: Any,
                                            handed: list[tuple[str, float]]) -> int:
    """Every outcome was handed to the trainer once, or still waits in its enrolment, exactly as its
    release (`label_release`, with the flow's whole schedule and, once every enrolment of the flow
    has an outcome, its last) is at or before the final watermark or after it; the students whose
    release came without a record of theirs were woken by the due index (or by the flow index, at
    their flow's completion). Returns how many wait."""
    from features import FlowSchedules, parse_ts
    from streams.contract.topics import Topic
    from streams.core.step import label_release
    from streams.runtime import pipeline_config

    schedules = FlowSchedules(record for topic, record in events if topic is Topic.SCHEDULE)
    mark = max(parse_ts(r["ts"]) for t, r in events if t is not Topic.SCHEDULE) - settings.allowed_lateness_seconds
    learn_after = pipeline_config(settings).step.learn_after
    docs = await store.load({record["user_id"] for _, record in events if "user_id" in record})
    outcomes_of: dict[tuple[int, int | None], list[float | None]] = {}
    for _, doc in docs.values():
        for enrolment in (doc or {"enrolments": {}})["enrolments"].values():
            outcomes_of.setdefault((enrolment["course_id"], enrolment["flow"]), []).append(enrolment["outcome_ts"])
    done = {flow: max(times) for flow, times in outcomes_of.items() if None not in times}  # type: ignore[type-var]
    assert 0 < len(done) < len(outcomes_of)  # flows completed; the one missing an outcome did not

    def release(learner: str, at: float, flow_index: bool = True) -> float:
        _, course, flow = learner.split(":")
        key = (int(course), None if flow == "-" else int(flow))
        return label_release(at, schedules.get(key), learn_after, done.get(key) if flow_index else None)

    held = [(f"{user}:{key}", at) for user, (_, doc) in docs.items() if doc is not None
            for key, enrolment in doc["enrolments"].items() for _, _, at in enrolment.get("held_labels", [])]
    outcomes = sum(topic is Topic.OUTCOMES for topic, _ in events)
    assert len(handed) + len(held) == outcomes and len(set(handed)) == len(handed)
    assert handed
    assert all(release(learner, at) <= mark for learner, at in handed)
    assert all(release(learner, at) > mark for learner, at in held)
    assert any(release(learner, at, flow_index=False) > mark for learner, at in handed)  # learned at completion
    return len(held)


async def assert_compacted_facts_give_the_folds_features(store: InMemoryStudentStore, events: list,
                                                         settings: Any) -> None:
    """The stored documents were compacted as the watermark moved on, and every enrolment's
    features as of the final watermark are exactly those of the pure fold of all its records."""
    from features import FlowSchedules, compute, fold, parse_ts
    from streams.contract.topics import TOPIC_SCHEMA, Topic

    schedules = FlowSchedules(record for topic, record in events if topic is Topic.SCHEDULE)
    states = fold((TOPIC_SCHEMA[t], r) for t, r in events if t is not Topic.SCHEDULE)
    mark = max(parse_ts(r["ts"]) for t, r in events if t is not Topic.SCHEDULE) - settings.allowed_lateness_seconds
    loaded = await store.load(states)
    docs = {user: doc for user, (_, doc) in loaded.items() if doc is not None}
    assert sum("compacted" in doc["facts"] for doc in docs.values()) > len(docs) / 2
    for user, doc in docs.items():
        if "compacted" in doc["facts"]:  # event ids are kept only for the facts still raw
            assert all(int(day) * DAY >= doc["facts"]["compacted"]["horizon"] for day in doc["seen"])
        for enrolment in doc["enrolments"].values():
            plan = schedules.get((enrolment["course_id"], enrolment["flow"]))
            assert compute(doc["facts"], plan, mark) == compute(states[user], plan, mark), user
