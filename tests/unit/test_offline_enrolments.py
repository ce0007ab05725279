"""The offline tools see enrolments as the worker does: a student who retakes a course or takes two
at once is evaluated, exported and measured once per enrolment, each with its own label."""
from __future__ import annotations

import pandas as pd
import pytest

from online_models.evaluation.dataset import dataset_frame
from online_models.evaluation.history import History, load_history
from online_models.evaluation.students import load_students
from streams.lms.readers import load_export
from streams.lms.synthetic import Shapes, generate

pytestmark = pytest.mark.heavy


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("enrolments")
    generate(directory, students=80, seed=6, shapes=Shapes(flows=5, re_enrolled=0.3, second_course=0.2))
    return directory


def test_every_enrolment_is_a_student_of_the_evaluation_with_its_own_label(export_dir):
    truth = pd.read_csv(export_dir / "ground_truth.csv")
    assert truth.duplicated("user_id").sum() > 10  # several enrolments of one student
    students = load_students(export_dir, weeks=10)
    assert len(students) == len(truth) == len({s.id for s in students})
    by_enrolment = {(s.user_id, s.course_id, s.flow): s for s in students}
    compared = 0
    for row in truth.itertuples():
        student = by_enrolment[(row.user_id, row.course_id, int(row.flow_num))]
        assert student.label is not None
        if student.label.progress is not None:  # the export may say 'Нет данных'
            assert student.label.progress == row.final_progress
            compared += 1
    assert compared > len(truth) / 2


def test_the_daily_dataset_has_each_enrolments_own_days(export_dir):
    frame = dataset_frame(load_history(export_dir))
    truth = pd.read_csv(export_dir / "ground_truth.csv")
    enrolments = frame.groupby(["user_id", "course_id", "flow_num"])
    assert enrolments.ngroups == len(truth)
    labels = enrolments["m2_progress"].first()
    for row in truth.itertuples():
        label = labels[(row.user_id, row.course_id, int(row.flow_num))]
        assert label == row.final_progress or label == -1  # -1: the export's 'Нет данных'


@pytest.mark.parametrize("online_only", [False, True])
def test_a_history_read_part_by_part_is_the_whole(export_dir, online_only):
    """Parts are only a memory bound: the records, states and enrolments are the whole export's."""
    export = load_export(export_dir)
    whole, parts = History(export, online_only, part_students=10**9), History(export, online_only, part_students=20)
    [everything] = list(whole.parts())
    pieces = list(parts.parts())
    assert len(pieces) == -(-len(export.user_ids()) // 20) > 3

    def by_student(records):
        grouped = {}
        for kind, record in records:
            grouped.setdefault(record.get("user_id"), []).append((kind, record))
        return grouped

    students = by_student(everything.records)
    schedule = students.pop(None)
    for piece in pieces:
        mine = by_student(piece.records)
        assert mine.pop(None) == schedule  # every part has every course's schedule
        assert mine == {user: records for user, records in students.items() if user in mine}
    assert sum(len(by_student(p.records)) - 1 for p in pieces) == len(students)

    def seen(history):
        return [(e.user_id, e.key, e.state, e.schedule and e.schedule.activities) for e in history.enrolments()]

    assert seen(parts) == seen(whole)
    pd.testing.assert_frame_equal(dataset_frame(parts), dataset_frame(whole))
