"""Learning does not depend on the order outcomes arrive in. Real outcomes come sorted by result
(passers at their exam, everyone else when the flow ends), so each flow's labels end with a block
of failures. The same students, with the same set of label times in each flow handed out in
adversarial orders, must give the per-week quality that the same labels in an order unrelated to
the result give, measured in strict time order on the (student, week) predictions every order
makes, on the default three flows per course: a flow's own early labels are all a late week
learns from. It runs the default family (window forests, which refit on a whole window); the
incremental blend, for which the test was written, lost .055 of week-10 dropout AUC with failures
first before it relearned the other class after each label (docs/models.md: Label order)."""
from __future__ import annotations

import copy
import random
from pathlib import Path

import pytest
from sklearn.metrics import roc_auc_score

from online_models.evaluation.online_replay import run_replays
from online_models.evaluation.students import Student, load_students
from online_models.families import DEFAULT_FAMILY
from streams.lms.synthetic import Shapes, generate

pytestmark = pytest.mark.heavy

ORDERS = ("shuffled", "natural", "passers_first", "failures_first")
STUDENTS, FLOWS = 400, 3


def _reordered(students: list[Student], order: str) -> list[Student]:
    """Each flow's label times, sorted, given to its students in `order`."""
    out = copy.deepcopy(students)
    flows: dict[tuple[int, int | None], list[Student]] = {}
    for s in out:
        if s.label is not None:
            flows.setdefault((s.course_id, s.flow), []).append(s)
    rng = random.Random(0)
    for group in flows.values():
        times = sorted(s.label_ts for s in group if s.label_ts is not None)
        if order == "shuffled":
            rng.shuffle(group)
        elif order == "passers_first":
            group.sort(key=lambda s: (s.label.dropout, -(s.label.progress or 0)))
        elif order == "failures_first":
            group.sort(key=lambda s: (not s.label.dropout, s.label.progress or 0))
        else:
            continue
        for s, t in zip(group, times):
            s.label_ts = t
    return out


@pytest.fixture(scope="module")
def quality(tmp_path_factory) -> dict[str, dict[int, tuple[float, float]]]:
    """order -> week -> (progress MAE, dropout AUC) on the predictions common to all orders."""
    directory = Path(tmp_path_factory.mktemp("order"))
    generate(directory, students=STUDENTS, seed=5, shapes=Shapes(flows=FLOWS))
    students = load_students(directory, weeks=10)
    # side by side in two processes: the same runs as one after the other (tests/models/test_evaluate.py)
    runs = run_replays({order: (_reordered(students, order), frozenset()) for order in ORDERS}, DEFAULT_FAMILY, 0,
                       workers=2)
    common = set.intersection(*(set(run.predictions) for run in runs.values()))
    label = {s.id: s.label for s in students if s.label is not None}
    out: dict[str, dict[int, tuple[float, float]]] = {}
    for order, run in runs.items():
        out[order] = {}
        for week in range(1, 11):
            keys = sorted(k for k in common if k[1] == week)
            errors = [abs(run.predictions[k][0] - label[k[0]].progress) for k in keys
                      if label[k[0]].progress is not None]
            auc = roc_auc_score([label[k[0]].dropout for k in keys], [run.predictions[k][1] for k in keys])
            out[order][week] = (sum(errors) / len(errors), float(auc))
    return out


def test_every_order_learns_something(quality) -> None:
    """Otherwise the orders would agree because nothing is learned."""
    for weeks in quality.values():
        assert weeks[10][1] > weeks[1][1] + 0.15 and weeks[10][0] < weeks[1][0] / 3


@pytest.mark.parametrize("order", ORDERS[1:])
def test_quality_per_week_is_the_same_in_any_label_order(quality, order: str) -> None:
    for week in range(1, 11):
        (mae, auc), (fair_mae, fair_auc) = quality[order][week], quality["shuffled"][week]
        assert abs(auc - fair_auc) <= 0.035, (week, auc, fair_auc)
        assert abs(mae - fair_mae) <= 1.5, (week, mae, fair_mae)

