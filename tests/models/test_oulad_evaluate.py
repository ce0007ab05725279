"""The OULAD importer on real data: module BBB, presentation 2013B (1,767 students, 403k daily
VLE rows), imported, read back and run through the time-ordered model evaluation."""
from __future__ import annotations

import math
import random
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from online_models.evaluation.evaluate import evaluate_students
from online_models.evaluation.students import load_students
from streams.lms.oulad import import_oulad
from streams.lms.readers import load_export

pytestmark = pytest.mark.heavy

BBB = Path("/work/shared/datasets/oulad-bbb-2013b")
ANCHOR = pd.Timestamp("2013-02-01")


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory) -> Path:
    if not (BBB / "studentInfo.csv").exists():
        pytest.skip(f"the OULAD BBB 2013B slice is not at {BBB}")
    out = tmp_path_factory.mktemp("oulad_bbb")
    summary = import_oulad(BBB, out)
    assert summary.seconds < 60
    return out


def test_counts_match_the_dataset(export_dir):
    users = pd.read_csv(export_dir / "users.csv")
    assert len(users) == 1767 == users["userID"].nunique()
    registrations = pd.read_csv(BBB / "studentRegistration.csv")
    enrolment = pd.read_csv(export_dir / "enrolment_events.csv")
    assert (enrolment["event"] == "withdrawn").sum() == registrations["date_unregistration"].notna().sum()
    truth = pd.read_csv(export_dir / "ground_truth.csv")
    info = pd.read_csv(BBB / "studentInfo.csv")
    assert truth["dropout"].sum() == (info["final_result"] == "Withdrawn").sum()
    assert truth["success"].sum() == info["final_result"].isin(["Pass", "Distinction"]).sum()


def test_every_click_day_is_a_login(export_dir):
    clicks = pd.read_csv(BBB / "studentVle.csv.gz", usecols=["id_student", "date"]).drop_duplicates()
    logins = pd.read_csv(export_dir / "authorization.csv", usecols=["user_id", "created_at"])
    days = (pd.to_datetime(logins["created_at"]).dt.normalize() - ANCHOR).dt.days
    logged = set(zip(logins["user_id"], days))
    assert len(logged) == len(logins)  # one login per student per day
    assert set(zip(clicks["id_student"], clicks["date"])) <= logged


def test_readers_reject_nothing(export_dir):
    export = load_export(export_dir)
    assert export.rejected == []
    assert len(export.users) == 1767


def test_evaluation_runs_on_bbb(export_dir):
    """The shipped model family on a random quarter of the module's students (the whole module takes
    `scorer evaluate` a few minutes). With one presentation the split is a random half of
    them (split_by_flow). BBB publishes no exam scores, so the school's success rule (attestation
    >= 50) holds for nobody and the success AUC is undefined (None); every other number must be defined."""
    students = load_students(export_dir, weeks=10)
    some = random.Random(0).sample(students, len(students) // 4)
    result = evaluate_students(some, weeks=10, workers=2)
    counts = result["students"]
    assert counts["total"] == len(some) and counts["train"] + counts["test"] == counts["labelled"] > 0
    assert [row["week"] for row in result["weeks"]] == list(range(1, 11))
    for row in result["weeks"]:
        assert row["n"] > 0
        for method in ("online", "online_warm", "forest"):
            metrics = row[method]
            assert metrics["mae"] is not None and 0 <= metrics["mae"] <= 100
            assert metrics["auc_dropout"] is not None and 0 <= metrics["auc_dropout"] <= 1
            success = metrics["auc_success"]
            assert success is None or (0 <= success <= 1 and not math.isnan(success))


async def test_critical_points_are_where_students_stop_not_the_course_end(export_dir):
    """The real module's students of even id (half of them: the whole module took a minute and a half)
    through the worker's pipeline (in memory, records in random chunks of its partitions): each
    transition into dozing or asleep is filed at the course week of the student's last activity.
    Every place lies within the schedule, and the worst week is a mid-course one: lifecycles end at
    the outcome or the course end, so students going quiet after finishing (passers included) make
    no critical points there."""
    from features import ASLEEP, DOZING, CourseSchedule
    from helpers.pipeline_cases import Sent, drive
    from online_models.scoring import NoScoring
    from storage.row_sink import MemoryRowSink
    from storage.students import InMemoryStudentStore
    from streams.contract import Topic
    from streams.pipeline import Pipeline
    from streams.runtime import pipeline_config
    from streams.settings import Settings
    from streams.tools.replay import load_records

    events, _ = load_records(export_dir)
    events = [(t, r) for t, r in events if r.get("user_id") is None or r["user_id"] % 2 == 0]
    schedule = CourseSchedule.from_records([r for t, r in events if t is Topic.SCHEDULE])
    sink, sent = MemoryRowSink(), Sent()
    pipeline = Pipeline(pipeline_config(Settings(topic_prefix="t.")), InMemoryStudentStore(), sent.send,
                        NoScoring(), sink)
    await drive(pipeline, "t.", events, random.Random(0), redeliver=False, largest_chunk=5000)
    quiet = [a for a in sink.transitions.values() if a.to_status in (DOZING, ASLEEP)]
    weeks = Counter(a.position.course_week for a in quiet)
    assert len(quiet) > 500 and None not in weeks
    assert max(weeks) <= schedule.weeks
    worst = weeks.most_common(1)[0][0]
    assert worst < schedule.weeks - 1, weeks.most_common(5)
    passers = set(pd.read_csv(export_dir / "ground_truth.csv").query("success == 1")["user_id"])
    finished = {(a.user_id, a.course_id): a.at for a in sink.transitions.values() if a.to_status == "finished"}
    assert all(a.at <= finished[(a.user_id, a.course_id)] for a in quiet if a.user_id in passers)
