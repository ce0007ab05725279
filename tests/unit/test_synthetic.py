"""The synthetic LMS: raw seed formats, readable by the readers, deterministic, and behaving the
way the seed's hypotheses say students behave."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from streams.contract import Topic
from streams.lms.events import export_to_events
from streams.lms.readers import SPECS, load_export
from streams.lms.synthetic import Shapes, generate
from streams.lms.synthetic.course import GRADED

STUDENTS = 400
DAY = pd.Timedelta(days=1)


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("lms")
    generate(directory, students=STUDENTS, seed=3)
    return directory


@pytest.fixture(scope="module")
def export(export_dir):
    return load_export(export_dir)


@pytest.fixture(scope="module")
def truth(export_dir):
    return pd.read_csv(export_dir / "ground_truth.csv", keep_default_na=False)


@pytest.fixture(scope="module")
def flow_dates(export):
    """Each student's flow start (first date_shown) and module end (last date_shown + 7 days)."""
    dates = export.schedule.groupby(["course_id", "flows"])["date_shown"].agg(["min", "max"])
    users = export.users.set_index("user_id")
    key = pd.MultiIndex.from_arrays([users["course_id"], users["flow_num"].round().astype("Int64")])
    return pd.DataFrame({"start": dates["min"].reindex(key).to_numpy(),
                         "end": dates["max"].reindex(key).to_numpy() + np.timedelta64(7, "D")}, index=users.index)


@pytest.fixture(scope="module")
def activity(export, flow_dates):
    """Every activity row (login, view, result, webinar) within the student's module, in time order."""
    parts = [export.authorization[["user_id", "created_at"]], export.activity_history_viewed[["user_id", "created_at"]],
             export.exercise_results[["user_id", "created_at"]],
             export.webinars_logs[["user_id", "datetime"]].rename(columns={"datetime": "created_at"})]
    rows = pd.concat(parts, ignore_index=True).astype({"user_id": "int64"})
    dates = flow_dates.reindex(rows["user_id"]).set_axis(rows.index)
    rows = rows[rows["created_at"].between(dates["start"], dates["end"])]
    return rows.sort_values(["user_id", "created_at"], kind="stable")


@pytest.mark.heavy
def test_files_keep_the_raw_seed_formats(export_dir):
    for file, spec in SPECS.items():
        header = (export_dir / file).read_text(encoding="utf-8").split("\n", 1)[0]
        assert header.split(",") == [c.raw for c in spec.columns], file
    text = {file: (export_dir / file).read_text(encoding="utf-8") for file in SPECS}
    assert ",Пропуск,0\n" in text["exercise_results.csv"]
    assert ",Не сдана," in text["users.csv"] and ",—," in text["users.csv"] and ",1.00," in text["users.csv"]
    assert ",Нет данных," in text["users.csv"]
    second_row = text["webinars_logs.csv"].split("\n")[1]
    assert pd.Series([second_row.split(",")[1]]).str.fullmatch(r"\d{2}\.\d{2}\.\d{4} \d{2}:\d{2}").all()
    assert "Были хештеги: , стали: #entry-email #онлайн" in text["users_logs.csv"]
    assert "Установлен хештег" in text["users_logs.csv"]


@pytest.mark.heavy
def test_readers_take_everything(export):
    assert export.rejected == []
    assert len(export.users) == STUDENTS
    assert set(export.schedule["course_id"]) == {3, 49, 71, 77}
    assert export.schedule.groupby("course_id")["flows"].nunique().min() >= 2
    kinds = set(export.activities_guide["activity_type"])
    assert {"slide", "CodeExercise", "exercise", "interactive", "question", "webinar"} <= kinds
    assert export.activities_guide["obyaz_priznak"].sum() > 0 and export.activities_guide["att_priznak"].sum() > 0


@pytest.mark.heavy
def test_flows_start_weeks_apart_and_lessons_open_weekly(export):
    plan = export.schedule[export.schedule["course_id"] == 3]
    starts = plan.groupby("flows")["date_shown"].min().sort_values()
    assert starts.iloc[0] == pd.Timestamp("2023-12-01 11:00")
    assert (starts.diff().dropna() >= pd.Timedelta(weeks=1)).all()
    weekly = plan[plan["flows"] == 1]["date_shown"].drop_duplicates().sort_values().diff().dropna()
    assert (weekly == pd.Timedelta(weeks=1)).all() and len(weekly) >= 9


@pytest.mark.heavy
def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
    for name, seed in (("a", 9), ("b", 9), ("c", 10)):
        generate(tmp_path / name, students=40, seed=seed, bad_rows=3)
    files = [*SPECS, "ground_truth.csv"]
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files)
    assert (tmp_path / "a" / "users.csv").read_bytes() != (tmp_path / "c" / "users.csv").read_bytes()


@pytest.mark.heavy
def test_ground_truth_is_consistent(export, truth):
    attestation = pd.to_numeric(truth["attestation"], errors="coerce")
    success = (attestation >= 50) & (truth["final_progress"] >= 50)
    assert (truth["success"] == success.astype(int)).all()
    assert not ((truth["success"] == 1) & (truth["dropout"] == 1)).any()
    assert ((truth["dropout"] == 1) == (truth["dropout_ts"] != "")).all()
    assert truth["final_progress"].between(0, 100).all()
    assert 0.15 < truth["success"].mean() < 0.7 and 0.15 < truth["dropout"].mean() < 0.7
    users = export.users.set_index("user_id").loc[truth["user_id"]]
    known = users["m2_progress"].notna().to_numpy()
    assert (users["m2_progress"].to_numpy()[known] == truth["final_progress"].to_numpy()[known]).all()
    assert (users["m2_attestation"].isna().to_numpy() == attestation.isna().to_numpy()).all()
    # 'Нет данных' only for students who never tried an exercise
    assert set(users.index[~known]).isdisjoint(set(export.exercise_results["user_id"]))


@pytest.mark.heavy
def test_progress_is_what_the_student_actually_passed(export, truth):
    guide = export.activities_guide
    graded = guide[guide["activity_type"].isin(GRADED)]
    per_course = graded.groupby("course_id").size()
    results = export.exercise_results
    passed = results[results["success"] == 1].drop_duplicates(["user_id", "activity_id"]).groupby("user_id").size()
    course = truth.set_index("user_id")["course_id"]
    expected = (100 * passed.reindex(course.index).fillna(0) / course.map(per_course)).round().astype(int)
    assert (expected.to_numpy() == truth.set_index("user_id")["final_progress"].to_numpy()).all()


def test_dropouts_do_less_late_in_the_course(activity, truth, flow_dates):
    late = activity[activity["created_at"] >= activity["user_id"].map(flow_dates["end"]) - 21 * DAY]
    per_user = late.groupby("user_id").size().reindex(truth["user_id"]).fillna(0).to_numpy()
    dropout = truth["dropout"].to_numpy() == 1
    assert per_user[dropout].mean() < 0.5 * per_user[~dropout].mean()


@pytest.mark.heavy
def test_early_failure_raises_dropout(export, truth, flow_dates):
    results = export.exercise_results
    early = results[results["created_at"] < results["user_id"].map(flow_dates["start"]) + 21 * DAY]
    fail_share = (early["success"] == 0).groupby(early["user_id"]).mean()
    frame = truth.set_index("user_id").join(fail_share.rename("fail_share"), how="inner")
    struggling = frame["fail_share"] > frame["fail_share"].median()
    assert frame.loc[struggling, "dropout"].mean() > frame.loc[~struggling, "dropout"].mean() + 0.1


def test_irregular_students_drop_out_more(truth):
    """The planted regularity effect: `cadence` (drawn independently of motivation) spaces the
    sessions out, and a week without a session may end it for good."""
    irregular = truth["cadence"] < truth["cadence"].median()
    assert truth.loc[irregular, "dropout"].mean() > truth.loc[~irregular, "dropout"].mean() + 0.08
    assert abs(truth["cadence"].corr(truth["motivation"])) < 0.15


def test_students_doze_off_and_fall_asleep(activity):
    gaps = activity.groupby("user_id")["created_at"].diff() / DAY
    longest = gaps.groupby(activity["user_id"]).max()
    assert (longest.between(7, 19.99)).sum() >= 10  # dozing, then active again
    assert (longest >= 20).sum() >= 5  # asleep 20+ days, and came back


@pytest.mark.heavy
def test_format_tags(export):
    logs = export.users_logs
    assert logs["comment"].str.contains("стали:.*#онлайн").sum() > logs["comment"].str.contains("стали:.*#офлайн").sum()
    comments = logs["comment"]
    switches = comments.str.contains(r"#офлайн.*стали:.*#онлайн") | comments.str.contains(r"#онлайн.*стали:.*#офлайн")
    assert switches.sum() >= 3
    assert logs["comment"].str.contains("#M1-оплачен").any()
    web = export.webinars_logs
    assert set(web["conn_format"]) == {"онлайн", "офлайн"} and set(web["webinar_vvod"]) == {0, 1}
    pairs = web.groupby(["user_id", "webinar_id"])["event_name"].value_counts().unstack(fill_value=0)
    assert (pairs["Подключение"] == pairs["Отключение"]).all()


@pytest.mark.heavy
def test_bad_rows_reach_the_dead_letter_path(tmp_path):
    generate(tmp_path, students=40, seed=4, bad_rows=9)
    export = load_export(tmp_path)
    _, rejected = export_to_events(export)
    everything = [*export.rejected, *rejected]
    assert len(everything) == 9
    assert all(r.reason and r.raw for r in everything)
    assert {r.reason.split(":")[0] for r in everything} >= {"bad_int", "bad_ts", "field_count", "schema_violation"}


@pytest.mark.heavy
def test_two_thousand_students_generate(tmp_path):
    summary = generate(tmp_path, students=2000, seed=1)
    assert summary.rows["users.csv"] == 2000 and summary.as_dict()["students"] == 2000


@pytest.mark.heavy
def test_real_shapes_more_flows_a_long_course_retakes_and_two_courses(tmp_path):
    """Shapes real exports have: 6 flows, a 30-week course, retakes in a later flow of the same
    course, students on two courses; every row is read and becomes a record, each enrolment a
    profile of its own, each with its own outcome."""
    shapes = Shapes(flows=6, long_course_weeks=30, re_enrolled=0.2, second_course=0.1)
    generate(tmp_path, students=200, seed=4, shapes=shapes)
    export = load_export(tmp_path)
    assert export.rejected == []
    weeks = export.schedule[export.schedule["type"] == "занятие"].groupby(["course_id", "flows"]).size()
    assert set(weeks.index.get_level_values("flows")) == set(range(1, 7))
    assert sorted(set(weeks)) == [10, 30]
    users = export.users.assign(flow=export.users["flow_num"].round().astype(int))
    per_user = users.groupby("user_id")
    assert (per_user.size() == 2).sum() > 20
    retakes = users[per_user["course_id"].transform("nunique").eq(1) & per_user["flow"].transform("size").gt(1)]
    assert not retakes.empty and (retakes.groupby("user_id")["flow"].nunique() == 2).all()
    assert (per_user["course_id"].nunique() == 2).sum() > 5
    events, rejected = export_to_events(export)
    assert rejected == []
    profiles = {(r["user_id"], r["course_id"], r["flow_num"]) for t, r in events if t is Topic.STUDENTS}
    outcomes = [(r["user_id"], r["course_id"], r["flow_num"]) for t, r in events if t is Topic.OUTCOMES]
    assert len(profiles) == len(users) == len(outcomes) == len(set(outcomes))
    assert set(outcomes) == profiles
    truth = pd.read_csv(tmp_path / "ground_truth.csv")
    assert len(truth) == len(users)
