"""`scorer oulad-deal`: one presentation's students dealt at random into several presentations of its
module, as raw OULAD tables that `scorer import oulad` reads as several flows of one course."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from streams.cli import main
from streams.lms.oulad import import_oulad
from streams.lms.oulad_deal import PRESENTATIONS, TABLES, deal

SAMPLE = Path(__file__).parent.parent / "fixtures" / "oulad_sample"  # module AAA 2013J: students 11 and 22
STUDENT_TABLES = ("studentInfo", "studentRegistration", "studentVle", "studentAssessment")
COPIES = 30


def _table(directory: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(directory / f"{name}.csv", dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    """The sample's two students, each copied COPIES times under new ids (100.., 200..)."""
    directory = tmp_path_factory.mktemp("raw")
    for name in TABLES:
        table = _table(SAMPLE, name)
        if "id_student" in table:
            copies = []
            for n in range(COPIES):
                copy = table.copy()
                copy["id_student"] = (copy["id_student"].astype(int) * 10 + n).astype(str)
                copies.append(copy)
            table = pd.concat(copies)
        table.to_csv(directory / f"{name}.csv", index=False)
    return directory


def test_each_student_goes_whole_to_one_presentation_and_the_module_to_every_one(raw, tmp_path) -> None:
    dealt = deal(raw, tmp_path, presentations=3, seed=1)
    names = list(PRESENTATIONS[:3])
    assert dealt.module == "AAA" and sum(dealt.students.values()) == 2 * COPIES and min(dealt.students.values()) > 0
    home: dict[str, str] = {}
    for name in ("studentInfo", "studentRegistration", "studentVle"):
        before, after = _table(raw, name), _table(tmp_path, name)
        assert len(after) == len(before) and set(after["code_presentation"]) <= set(names)
        for student, presentations in after.groupby("id_student")["code_presentation"]:
            [presentation] = set(presentations)
            assert home.setdefault(student, presentation) == presentation
    assert {p: sum(v == p for v in home.values()) for p in names} == dealt.students
    for name, column in (("vle", "id_site"), ("assessments", "id_assessment")):
        before, after = _table(raw, name), _table(tmp_path, name)
        assert len(after) == 3 * len(before) and after[column].is_unique  # a copy each, with its own ids
        step = 10 ** len(str(before[column].astype(int).max()))
        for k, presentation in enumerate(names):  # in the original order, moved up k powers of ten
            ids = after.loc[after["code_presentation"] == presentation, column].astype(int)
            assert list(ids) == list(before[column].astype(int) + k * step)
    sites = _table(tmp_path, "vle").set_index("id_site")["code_presentation"]
    views = _table(tmp_path, "studentVle")
    assert (views["id_site"].map(sites) == views["code_presentation"]).all()  # each view of its own copy
    assessments = _table(tmp_path, "assessments").set_index("id_assessment")["code_presentation"]
    submitted = _table(tmp_path, "studentAssessment")
    assert len(submitted) == len(_table(raw, "studentAssessment"))
    assert (submitted["id_assessment"].map(assessments) == submitted["id_student"].map(home)).all()


def test_the_same_seed_deals_the_same_and_another_differently(raw, tmp_path) -> None:
    deal(raw, tmp_path / "a", 3, seed=1)
    deal(raw, tmp_path / "b", 3, seed=1)
    deal(raw, tmp_path / "c", 3, seed=2)
    info = [(tmp_path / d / "studentInfo.csv").read_bytes() for d in "abc"]
    assert info[0] == info[1] != info[2]


def test_the_importer_reads_the_deal_as_several_flows_of_one_course(raw, tmp_path) -> None:
    deal(raw, tmp_path / "raw", 4, seed=0)
    summary = import_oulad(tmp_path / "raw", tmp_path / "lms")
    assert [p["code_presentation"] for p in summary.presentations] == list(PRESENTATIONS[:4])
    users = _table(tmp_path / "lms", "users")
    assert users["course_id"].nunique() == 1 and users["flow_num"].nunique() == 4


def test_it_refuses_several_presentations_or_a_single_one(raw, tmp_path, capsys) -> None:
    deal(raw, tmp_path / "dealt", 2)
    with pytest.raises(ValueError, match="one module-presentation"):
        deal(tmp_path / "dealt", tmp_path / "again", 2)
    assert main(["oulad-deal", str(raw), "--out", str(tmp_path / "one"), "--presentations", "1"]) == 2
    assert "2..6" in capsys.readouterr().err
    assert main(["oulad-deal", str(raw), "--out", str(tmp_path / "cli"), "--seed", "3"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["module"] == "AAA" and sum(printed["students"].values()) == 2 * COPIES
