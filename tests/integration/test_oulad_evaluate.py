"""The OULAD importer on real data: module BBB, presentation 2013B (1,767 students, 403k daily
VLE rows), imported, read back and run through the time-ordered model evaluation."""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from online_models.evaluation.evaluate import evaluate
from streams.lms.oulad import import_oulad
from streams.lms.readers import load_export

pytestmark = pytest.mark.slow

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
    """With one presentation the split is a random half of the students (split_by_flow).
    BBB publishes no exam scores, so the school's success rule (attestation >= 50) holds for
    nobody and the success AUC is undefined (None); every other number must be defined."""
    result = evaluate(export_dir, weeks=10, family="blend")
    assert [row["week"] for row in result["weeks"]] == list(range(1, 11))
    for row in result["weeks"]:
        assert row["n"] > 0
        for method in ("online", "online_warm", "forest"):
            metrics = row[method]
            assert metrics["mae"] is not None and 0 <= metrics["mae"] <= 100
            assert metrics["auc_dropout"] is not None and 0 <= metrics["auc_dropout"] <= 1
            success = metrics["auc_success"]
            assert success is None or (0 <= success <= 1 and not math.isnan(success))
