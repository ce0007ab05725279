"""The OULAD importer on a hand-made sample (tests/fixtures/oulad_sample): module AAA,
presentation 2013J (day 0 = 2013-10-01, course 1, flow 2), a TMA due on day 10, a CMA due on
day 20, an exam with no date (the course is 30 days long, so day 30); student 11 passes,
student 22 withdraws on day 12."""
from __future__ import annotations

import csv
import gzip
import json
import shutil
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from features import FlowSchedules
from features.eventtime import parse_ts
from streams.cli import main
from streams.contract import TOPIC_SCHEMA, Topic
from streams.lms.events import export_to_events, seed_online_users
from streams.lms.oulad import course_id_of, default_anchor, flow_of, import_oulad
from streams.lms.oulad_tables import OuladFormatError, read_tables
from streams.lms.readers import load_export

SAMPLE = Path(__file__).parent.parent / "fixtures" / "oulad_sample"
FILES = ("users_age_timezone.csv", "authorization.csv", "schedule.csv", "activity_history_viewed.csv",
         "webinars_logs.csv", "exercise_results.csv", "users_logs.csv", "users.csv", "activities_guide.csv",
         "ground_truth.csv", "enrolment_events.csv")


def _rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def _of(path: Path, user: str, column: int = 0) -> list[list[str]]:
    return [row for row in _rows(path)[1:] if row[column] == user]


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("oulad_out")
    summary = import_oulad(SAMPLE, out)
    assert summary.left_out["studentAssessment: no score"] == 1  # student 22's unmarked CMA
    assert summary.presentations[0]["anchor"] == "2013-10-01"
    return out


def test_identity_and_anchor_rules():
    assert [course_id_of(m) for m in ("AAA", "BBB", "GGG")] == [1, 2, 7]
    assert 1000 <= course_id_of("XYZ") < 10_000
    assert [flow_of(p) for p in ("2013B", "2013J", "2014B", "2014J")] == [1, 2, 3, 4]
    assert default_anchor("2013B") == date(2013, 2, 1)
    assert default_anchor("2013J") == date(2013, 10, 1)
    with pytest.raises(OuladFormatError):
        flow_of("2013X")


@pytest.mark.heavy
def test_every_file_is_written_with_the_seed_headers(export):
    assert sorted(p.name for p in export.iterdir()) == sorted(FILES)
    assert _rows(export / "webinars_logs.csv") == [
        ["userId", "dateTime", "eventName", "webinarId", "формат подключения", "вводный вебинар", "module"]]
    assert _rows(export / "enrolment_events.csv")[0] == ["user_id", "course_id", "flow_num", "event", "created_at"]


def test_hand_checked_student_11(export):
    # One login per active day: the click days -2, 0, 9, 15, 29 and day 19 (CMA handed in, no
    # clicks); none on day 30 (the exam is sat in person). Session times come from the importer's
    # hash of (user, day); the login is a minute before the day's first view.
    assert _of(export / "authorization.csv", "11") == [
        ["11", "2013-09-29 12:46:12", "", ""],
        ["11", "2013-10-01 13:20:34", "", ""],
        ["11", "2013-10-10 12:46:33", "", ""],
        ["11", "2013-10-16 13:59:09", "", ""],
        ["11", "2013-10-20 12:40:19", "", ""],
        ["11", "2013-10-30 12:49:23", "", ""],
    ]
    # One view per (site, day): day 0's two rows for site 101 are one view; site 103 is a quiz
    # site, renamed so that the features do not take it for an exercise.
    assert _of(export / "activity_history_viewed.csv", "11") == [
        ["11", "2013-09-29 12:47:12", "активность", "101", "2", "0", "oucontent"],
        ["11", "2013-10-01 13:21:34", "активность", "101", "2", "0", "oucontent"],
        ["11", "2013-10-01 13:22:34", "активность", "103", "2", "0", "quiz_page"],
        ["11", "2013-10-10 12:47:33", "активность", "102", "2", "0", "resource"],
        ["11", "2013-10-16 14:00:09", "активность", "103", "2", "0", "quiz_page"],
        ["11", "2013-10-30 12:50:23", "активность", "105", "2", "0", "resource"],
    ]
    # Submissions after the day's views; success = score >= 40; the exam row too.
    assert _of(export / "exercise_results.csv", "11", column=2) == [
        ["2", "1752", "11", "2013-10-10 12:48:33", "75", "1"],
        ["2", "1753", "11", "2013-10-20 12:41:19", "38", "0"],
        ["2", "1754", "11", "2013-10-31 14:12:17", "72", "1"],
    ]
    # progress: 1 of the 2 TMA/CMA passed -> 50; attestation = exam score, dated by the exam row
    assert _of(export / "users.csv", "11", column=1) == [["", "11", "1", "2.00", "—", "50", "72",
                                                          "2013-10-31 14:12:17"]]
    assert _of(export / "users_age_timezone.csv", "11") == [["11", "+00:00", "45"]]
    assert _of(export / "users_logs.csv", "11") == [
        ["11", "01.09.2013 00:00", "tags-changed", "Были хештеги: , стали: #онлайн"]]
    assert _of(export / "ground_truth.csv", "11") == [["11", "1", "2.0", "50", "72", "1", "0", "", ""]]
    # the verdict (Pass) when the exam was sat; the readers put it on the outcome, published then
    assert _of(export / "enrolment_events.csv", "11") == [["11", "1", "2.00", "enrolled", "2013-09-01 00:00:00"],
                                                          ["11", "1", "2.00", "passed", "2013-10-31 14:12:17"]]
    assert _outcome_of(export, 11) == {"ts": "2013-10-31T14:12:17", "progress": 50, "attestation": 72,
                                       "result": "passed"}


def _outcome_of(export, user_id: int) -> dict:
    """The one outcome record replay publishes for the student (its time, progress, attestation, result)."""
    events, rejected = export_to_events(load_export(export))
    assert not rejected
    [record] = [r for t, r in events if t is Topic.OUTCOMES and r["user_id"] == user_id]
    return {k: record.get(k) for k in ("ts", "progress", "attestation", "result")}


def test_withdrawn_student_22(export):
    # the TMA (40: a pass) counts, the unmarked CMA is left out; no exam: 'Не сдана', no date
    assert _of(export / "users.csv", "22", column=1) == [["", "22", "1", "2.00", "—", "50", "Не сдана", ""]]
    assert _of(export / "exercise_results.csv", "22", column=2) == [
        ["2", "1752", "22", "2013-10-12 10:15:32", "40", "1"]]
    assert [row[1][:10] for row in _of(export / "authorization.csv", "22")] == [
        "2013-10-02", "2013-10-04", "2013-10-12"]
    assert _of(export / "enrolment_events.csv", "22") == [
        ["22", "1", "2.00", "enrolled", "2013-09-11 00:00:00"],
        ["22", "1", "2.00", "withdrawn", "2013-10-13 00:00:00"],
    ]
    assert _of(export / "ground_truth.csv", "22") == [["22", "1", "2.0", "50", "", "0", "1",
                                                       "2013-10-13 00:00:00", ""]]
    # the outcome comes when the student left, not when the module ends: the dropout label is the withdrawal
    assert _outcome_of(export, 22) == {"ts": "2013-10-13T00:00:00", "progress": 50, "attestation": None,
                                       "result": "withdrawn"}
    assert _of(export / "users_age_timezone.csv", "22") == [["22", "+00:00", "26"]]


def test_a_cma_recorded_after_its_due_day_is_dated_on_it(tmp_path):
    """OULAD dates CMAs by their recording, days after the cutoff: student 11's CMA (due day 20) recorded
    on day 26 is exported on day 20, its login too; student 22's TMA handed in a day late stays late."""
    raw = tmp_path / "raw"
    shutil.copytree(SAMPLE, raw)
    assessments = raw / "studentAssessment.csv"
    assessments.write_text(assessments.read_text(encoding="utf-8").replace("1753,11,19,", "1753,11,26,"),
                           encoding="utf-8")
    summary = import_oulad(raw, tmp_path / "out")
    assert summary.redated == {"studentAssessment: CMA recorded after its due day": 1}
    results = {(row[2], row[1]): row[3][:10] for row in _rows(tmp_path / "out" / "exercise_results.csv")[1:]}
    assert results[("11", "1753")] == "2013-10-21"  # day 20
    assert results[("22", "1752")] == "2013-10-12"  # day 11, the TMA was due on day 10
    logins = [row[1][:10] for row in _of(tmp_path / "out" / "authorization.csv", "11")]
    assert "2013-10-21" in logins and "2013-10-27" not in logins


@pytest.mark.heavy
def test_schedule_blocks_make_the_oulad_due_dates_the_seed_deadlines(export):
    schedule = [row[2:6] + row[8:] for row in _rows(export / "schedule.csv")[1:]]
    assert schedule == [
        ["10002001", "101", "oucontent", "0", "2013-10-01 00:00:00"],
        ["10002001", "103", "quiz_page", "0", "2013-10-01 00:00:00"],
        ["10002001", "104", "forumng", "0", "2013-10-01 00:00:00"],  # never clicked: day 0
        ["10002001", "1752", "exercise", "0", "2013-10-01 00:00:00"],
        ["10002001", "102", "resource", "0", "2013-10-08 00:00:00"],  # week_from 2
        ["10002002", "1753", "quiz", "0", "2013-10-12 00:00:00"],  # the day after the TMA's due day
        ["10002003", "105", "resource", "0", "2013-10-22 00:00:00"],  # week_from 4
        ["10002003", "1754", "exam", "1", "2013-10-22 00:00:00"],
    ]
    required = {row[10]: row[13] for row in _rows(export / "activities_guide.csv")[1:]}
    assert required == {"101": "1", "102": "0", "103": "1", "104": "0", "105": "0", "1752": "1", "1753": "0",
                        "1754": "1"}  # oucontent, quiz sites, weighted assessments, the exam
    events, rejected = export_to_events(load_export(export))
    assert not rejected
    course = FlowSchedules(r for t, r in events if t is Topic.SCHEDULE).get((1, 2))
    assert course.exercises == {1752, 1753}
    due = {a: course.due.get(course.activities[a].task_id) for a in (1752, 1753, 1754)}
    assert due == {1752: parse_ts("2013-10-12T00:00:00"), 1753: parse_ts("2013-10-22T00:00:00"), 1754: None}


@pytest.mark.heavy
def test_readers_and_events_accept_the_export(export):
    loaded = load_export(export)
    assert loaded.rejected == []
    assert len(loaded.users) == 2 and len(loaded.activity_history_viewed) == 9
    events, rejected = export_to_events(loaded)
    assert rejected == []
    kinds = [TOPIC_SCHEMA[topic] for topic, _ in events]
    assert kinds.count("authorization") == 9 and kinds.count("page_view") == 9
    assert kinds.count("exercise_result") == 4 and kinds.count("outcome") == 2
    assert seed_online_users(loaded) == {11, 22}  # the enrolment tag passes the seed's online filter
    outcomes = {r["user_id"]: r for t, r in events if t is Topic.OUTCOMES}
    assert (outcomes[11]["progress"], outcomes[11]["attestation"]) == (50, 72)
    assert (outcomes[22]["progress"], outcomes[22]["attestation"]) == (50, None)


@pytest.mark.heavy
def test_same_input_same_bytes_and_gzip_is_the_same_input(export, tmp_path):
    again = tmp_path / "again"
    import_oulad(SAMPLE, again)
    gz = tmp_path / "raw_gz"
    shutil.copytree(SAMPLE, gz)
    with (gz / "studentVle.csv").open("rb") as src, gzip.open(gz / "studentVle.csv.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    (gz / "studentVle.csv").unlink()
    from_gz = tmp_path / "from_gz"
    import_oulad(gz, from_gz)
    for name in FILES:
        assert (again / name).read_bytes() == (export / name).read_bytes(), name
        assert (from_gz / name).read_bytes() == (export / name).read_bytes(), name


#: the sample as a messier export could write it: a BOM, gzip, unknown columns, whitespace around
#: names and values, `?`, blanks and whitespace for missing values, a non-number in a number column
#: (-> missing; the file is read the slow way), rows without a module or presentation (dropped)
QUIRKY = {
    "assessments.csv": "\ufeff code_module ,code_presentation, id_assessment ,assessment_type,date,weight,notes\n"
                       "AAA,2013J,1752, TMA ,10.0,50.0,first\n"
                       "AAA,2013J,1753,CMA, 20 ,0.0,\n"
                       "AAA,2013J,1754,Exam,tbd,100.0,date to be set\n",
    "courses.csv.gz": "code_module,code_presentation,module_presentation_length\nAAA,2013J,30\n",
    "studentAssessment.csv": "\ufeffid_assessment,id_student,date_submitted,is_banked,score\n"
                             "1752,11,9,0,75.0\n1753,11,19,0, 38 \n1754,11,30,0,72\n"
                             "1752,22,11,0,40.0\n1753,22,12,0,?\n",
    "studentInfo.csv": "code_module,code_presentation,id_student,imd_band,age_band , final_result,shoe_size\n"
                       "AAA,2013J,11,20-30%,35-55, Pass ,42\n"
                       "AAA, 2013J ,22,?,0-35,Withdrawn,?\n",
    "studentRegistration.csv": "code_module,code_presentation,id_student,date_registration,date_unregistration\n"
                               "AAA,2013J,11, -30,  \nAAA,2013J,22,-20.0, 12\n,2013J,33,-10,\n",
    "studentVle.csv.gz": "\ufeffcode_module,code_presentation,id_student,id_site,date,sum_click\n"
                         "AAA,2013J,11,101,-2,3\nAAA,2013J,11,101,0,2\n AAA ,2013J,11,103,0,1\nAAA,2013J,11,101,0,1\n"
                         "AAA,2013J,11,102,9,4\nAAA,2013J,11,103,15,2\nAAA,2013J,11,105,29,1\nAAA,2013J,22,101,1,5\n"
                         "AAA,2013J,22,101,3,1\nAAA,2013J,22,102,3,2\n?,2013J,22,102,4,2\nAAA,,22,102,5,2\n",
    "vle.csv": "id_site,code_module,code_presentation,activity_type,week_from,week_to\n"
               "101,AAA,2013J,oucontent,?,?\n102,AAA,2013J,resource,2,2\n103,AAA,2013J, quiz,,\n"
               "104,AAA,2013J,forumng,n/a,\n105,AAA,2013J,resource,4.0,4\n",
}


def _quirky_raw(directory: Path) -> Path:
    directory.mkdir()
    for name, text in QUIRKY.items():
        opener = gzip.open if name.endswith(".gz") else open
        with opener(directory / name, "wt", encoding="utf-8", newline="") as handle:
            handle.write(text)
    return directory


def test_the_reader_cleans_a_messy_export_into_the_same_tables(tmp_path):
    tables, clean = read_tables(_quirky_raw(tmp_path / "raw")), read_tables(SAMPLE)
    for name, frame in tables.items():
        assert list(frame.columns) == list(clean[name].columns), name  # the columns read, unknown ones left
        expected = clean[name]
        if name == "studentVle":  # its keys come as categories
            frame, expected = (f.astype({"code_module": str, "code_presentation": str}) for f in (frame, expected))
        pd.testing.assert_frame_equal(frame, expected, obj=name)
    assert tables["assessments"]["date"].tolist()[:2] == [10.0, 20.0]  # " 20 " beside "tbd"
    assert tables["assessments"]["date"].isna().tolist() == [False, False, True]
    assert tables["studentAssessment"]["score"].isna().tolist() == [False, False, False, False, True]  # "?"
    assert tables["studentRegistration"]["date_unregistration"].isna().tolist() == [True, False]  # "  "
    assert tables["studentInfo"]["final_result"].tolist() == ["Pass", "Withdrawn"]
    assert tables["vle"]["week_from"].isna().tolist() == [True, False, True, True, False]  # "?", "n/a", ""
    assert len(tables["studentVle"]) == 10  # the rows without a module or presentation dropped


def test_a_messy_export_imports_to_the_same_bytes(tmp_path, export):
    out = tmp_path / "out"
    import_oulad(_quirky_raw(tmp_path / "raw"), out)
    for name in FILES:
        assert (out / name).read_bytes() == (export / name).read_bytes(), name


def _sample_twice(raw: Path, code: str, again: str, keep_first: bool = True) -> Path:
    """The sample's AAA 2013J beside a copy of it where `code` (the module's or the presentation's) is `again`,
    with its own assessment and site ids (OULAD's are unique per presentation); only the copy if not
    `keep_first`."""
    raw.mkdir()
    for source in SAMPLE.iterdir():
        lines = source.read_text(encoding="utf-8").splitlines()
        later = [line.replace(code, again) for line in lines[1:] if code in line]
        if source.name == "assessments.csv":
            later = [line.replace(",175", ",275") for line in later]
        if source.name == "vle.csv":
            later = [line.replace("10", "20", 1) for line in later]
        if source.name == "studentVle.csv":
            later = [line.replace(",10", ",20", 1) for line in later]
        extra = [line.replace("175", "275", 1) for line in lines[1:]] if source.name == "studentAssessment.csv" \
            else later
        (raw / source.name).write_text("\n".join([*(lines if keep_first else lines[:1]), *extra]) + "\n",
                                       encoding="utf-8")
    return raw


@pytest.mark.heavy
def test_a_student_on_two_presentations_gets_a_user_each(tmp_path):
    """The same two students on 2013J and 2014B: the later registration becomes id + 10**7."""
    raw = _sample_twice(tmp_path / "raw", "2013J", "2014B")
    out = tmp_path / "out"
    summary = import_oulad(raw, out)
    assert [(p["code_presentation"], p["flow_num"], p["anchor"]) for p in summary.presentations] == [
        ("2013J", 2, "2013-10-01"), ("2014B", 3, "2014-02-01")]
    users = [row[1:4] for row in _rows(out / "users.csv")[1:]]
    assert users == [["11", "1", "2.00"], ["22", "1", "2.00"], ["10000011", "1", "3.00"], ["10000022", "1", "3.00"]]
    loaded = load_export(out)
    assert loaded.rejected == []
    assert export_to_events(loaded)[1] == []
    views = loaded.activity_history_viewed
    assert sorted(views.loc[views["user_id"] == 10000011, "page_id"]) == [201, 201, 202, 203, 203, 205]
    with pytest.raises(OuladFormatError):
        import_oulad(raw, tmp_path / "refused", anchor=date(2013, 10, 1))  # two codes, one anchor


@pytest.mark.heavy
@pytest.mark.parametrize(("code", "again", "option"), [("2013J", "2014B", "--presentation"),
                                                       ("AAA,", "BBB,", "--module")])
def test_a_selection_imports_what_a_directory_of_it_alone_would(tmp_path, capsys, code, again, option):
    """`--module` / `--presentation` keep the named ones: the same bytes as a directory that held only them (its
    students keep their ids: no earlier registration is imported), and the rows left out counted per table."""
    both, alone = _sample_twice(tmp_path / "both", code, again), _sample_twice(tmp_path / "alone", code, again, False)
    import_oulad(alone, tmp_path / "expected")
    selected = again.rstrip(",")
    assert main(["import", "oulad", str(both), "--out", str(tmp_path / "out"), option, selected]) == 0
    summary = json.loads(capsys.readouterr().out)
    for name in FILES:
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "expected" / name).read_bytes(), name
    assert [(p["code_module"], p["code_presentation"]) for p in summary["presentations"]] == [
        ("BBB" if option == "--module" else "AAA", "2014B" if option == "--presentation" else "2013J")]
    assert summary["left_out"]["studentInfo: not selected"] == 2
    assert summary["left_out"]["studentAssessment: not selected"] == 5  # the first presentation's, by assessment
    assert main(["import", "oulad", str(both), "--out", str(tmp_path / "none"), "--presentation", "2015J"]) == 2
    assert "the directory holds AAA 2013J, " in capsys.readouterr().err  # what it could have named
    assert not (tmp_path / "none").exists()


@pytest.mark.heavy
def test_cli_import_oulad(tmp_path, capsys, export):
    out = tmp_path / "cli"
    assert main(["import", "oulad", str(SAMPLE), "--out", str(out), "--anchor", "2013-10-01"]) == 0
    assert '"users.csv": 2' in capsys.readouterr().out
    assert (out / "users.csv").read_bytes() == (export / "users.csv").read_bytes()
    main(["import", "oulad", str(SAMPLE), "--out", str(tmp_path / "shifted"), "--anchor", "2013-10-02"])
    assert _rows(tmp_path / "shifted" / "enrolment_events.csv")[1][4] == "2013-09-02 00:00:00"
