"""The exported dataset holds the numbers the stream stores: a generated export runs through the
worker's pipeline (in-memory stores; published in event-time order as `scorer replay` does, the
consumer catching up chunk by chunk, so the watermark moves through the course), every score row
(students_current / score_history: features as of the watermark) and every finished week's
features (kept for the trainer) are captured, and the dataset code computes the same students
at the same moments from the export itself: every feature column is equal, exactly."""
from __future__ import annotations

import asyncio
import time

import pytest

from features import DEFAULT_THRESHOLDS, WEEK
from helpers.pipeline_cases import LATENESS, PARTITIONS
from online_models.evaluation.dataset import FEATURE_COLUMNS, SEED_COLUMNS, dataset_frame, day_ends, student_rows
from online_models.evaluation.history import load_history
from online_models.scoring import NoScoring
from storage.row_sink import MemoryRowSink
from storage.students import InMemoryStudentStore
from streams.contract import Topic, encode, key_of
from streams.contract.outputs import Alert, ScoreRow
from streams.core.step import StepConfig
from streams.kafka.consumer import InputRecord
from streams.kafka.partitioning import partition_of
from streams.lms.events import export_to_events
from streams.lms.readers import load_export
from streams.lms.synthetic import generate
from streams.pipeline import Pipeline, PipelineConfig

STUDENTS = 24
CONFIG = PipelineConfig(topic_prefix="t.", step=StepConfig(DEFAULT_THRESHOLDS, 6 * 3600.0), lateness=LATENESS,
                        live_clock=False, max_skew=600.0)


class RecordingSink(MemoryRowSink):
    """Every score row written, not only the newest per student."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[ScoreRow] = []

    async def write(self, scores: list[ScoreRow], transitions: list[Alert]) -> None:
        self.rows.extend(scores)
        await super().write(scores, transitions)


class RecordingScoring(NoScoring):
    """The finished weeks' features the step hands to the trainer."""

    def __init__(self) -> None:
        self.weeks: dict[tuple[int, int], dict[str, float]] = {}

    def keep_weeks(self, weeks: list[tuple[str, int, dict[str, float]]]) -> None:
        for learner, week, features in weeks:  # learner: "user:course:flow", one enrolment per student here
            self.weeks[(int(learner.split(":")[0]), week)] = features


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("lms")
    generate(directory, students=STUDENTS, seed=21)
    return directory


async def replay(pipeline: Pipeline, events: list[tuple[Topic, dict]], chunk: int = 60) -> None:
    """Publish in event-time order, `chunk` records at a time, each chunk consumed before the next
    is published: every topic-partition is read up to its log end after each batch, as a live
    consumer keeps up with replay."""
    produced = time.time()
    logs: dict[tuple[str, int], int] = {}
    order: list[InputRecord] = []
    for topic, record in events:
        key = key_of(topic, record)
        tp = (topic.physical(CONFIG.topic_prefix), partition_of(key, PARTITIONS))
        order.append(InputRecord(*tp, logs.get(tp, 0), key, encode(record), produced))
        logs[tp] = logs.get(tp, 0) + 1
    published = dict.fromkeys(logs, 0)
    counts = {name: PARTITIONS for name, _ in logs}
    for start in range(0, len(order), chunk):
        batch = order[start:start + chunk]
        for r in batch:
            published[(r.topic, r.partition)] = r.offset + 1
        await pipeline.process(batch, {tp: (n, n, None) for tp, n in published.items()}, counts)


@pytest.fixture(scope="module")
def stream(export_dir):
    events, _ = export_to_events(load_export(export_dir))
    sink, scoring = RecordingSink(), RecordingScoring()
    pipeline = Pipeline(CONFIG, InMemoryStudentStore(), _discard, scoring, sink)
    asyncio.run(replay(pipeline, events))
    return sink, scoring


async def _discard(topic: str, key: bytes, value: bytes) -> None:
    return None


def _enrolments(history):
    """(user id, (course, flow)) -> the enrolment; user id -> its enrolments."""
    found = list(history.enrolments())
    return {(e.user_id, e.key): e for e in found}, {e.user_id: e for e in found}


def test_score_rows_equal_the_dataset_at_the_same_moments(export_dir, stream) -> None:
    sink, _ = stream
    history = load_history(export_dir)
    enrolment_of, _ = _enrolments(history)
    assert len(sink.rows) > 20 * STUDENTS  # many moments per student ...
    weeks = set()
    for row in sink.rows:
        weeks.add(enrolment_of[(row.user_id, (row.course_id, row.flow_num))].schedule.week_of(row.updated_at))
    assert weeks >= set(range(1, 11))  # ... spread over the whole course
    lit = {name for row in sink.rows for name in FEATURE_COLUMNS if row.features[name]}
    assert lit == set(FEATURE_COLUMNS)  # so every column is compared on real values, not only zeros
    compared = 0
    for row in sink.rows:
        enrolment = enrolment_of[(row.user_id, (row.course_id, row.flow_num))]
        mine = student_rows(row.user_id, enrolment.state, enrolment.key, enrolment.schedule, [row.updated_at])
        for name in FEATURE_COLUMNS:
            assert mine[name][0] == row.features[name], (row.user_id, row.updated_at, name)
        compared += 1
    assert compared == len(sink.rows)


def test_the_trainers_weekly_features_equal_the_dataset(export_dir, stream) -> None:
    _, scoring = stream
    history = load_history(export_dir)
    _, only = _enrolments(history)
    assert len(scoring.weeks) >= 5 * STUDENTS
    for (user_id, week), features in scoring.weeks.items():
        e = only[user_id]
        mine = student_rows(user_id, e.state, e.key, e.schedule, [e.schedule.start + week * WEEK])
        assert {name: mine[name][0] for name in FEATURE_COLUMNS} == {name: features[name] for name in FEATURE_COLUMNS}


def test_the_daily_export_is_those_rows_at_day_ends(export_dir) -> None:
    history = load_history(export_dir)
    frame = dataset_frame(history)
    assert tuple(frame.columns) == SEED_COLUMNS
    _, only = _enrolments(history)
    for user_id in sorted(only)[:5]:
        e = only[user_id]
        mine = student_rows(user_id, e.state, e.key, e.schedule, day_ends(e.schedule))
        rows = frame[frame["user_id"] == user_id]
        for name in FEATURE_COLUMNS:
            assert rows[name].tolist() == mine[name], (user_id, name)
