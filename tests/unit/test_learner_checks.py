"""River's estimator checks (`river.checks`, what `check_estimator` runs) on our own learners.

The blends, per-week learners and window forests are the ones the model families build (the
default `forest` family, `blend` and `weekly_amf`), so what is checked is what is published. River
feeds them its bundled generic datasets (TrumpApproval for regressors; Phishing, and ImageSegments
for multi-class classifiers), which have no `course_week`: everything falls in week 0, which is how
the learners read a missing week.
"""
from __future__ import annotations

from typing import Any

import pytest
from river import base, checks

from online_models.families import FAMILIES
from online_models.priors import prior_dropout
from online_models.week_learners import Prior, PriorResidual

_progress_blend, _dropout_blend, _ = FAMILIES["blend"](0)
_per_week, _per_week_classifier, _ = FAMILIES["weekly_amf"](0)
_forest_progress, _forest_dropout, _ = FAMILIES["forest"](0)

ESTIMATORS: list[Any] = [
    Prior(prior_dropout),
    PriorResidual(),
    _per_week,
    _per_week_classifier,
    _progress_blend,
    _dropout_blend,
    _forest_progress,
    _forest_dropout,
]


def _cases() -> list[Any]:
    """One case per (estimator, check), as `checks.check_estimator` would run them: a dataset check
    appears once per dataset River feeds that kind of estimator."""
    cases = []
    for estimator in ESTIMATORS:
        seen: dict[str, int] = {}
        for check in checks.yield_checks(estimator):
            name = check.__name__
            seen[name] = seen.get(name, 0) + 1
            # check_estimator leaves out an estimator's `_unit_test_skips` (none of these has any)
            marks = [pytest.mark.skip(reason="in _unit_test_skips")] if name in estimator._unit_test_skips() else []
            case_id = f"{type(estimator).__name__}-{name}-{seen[name]}"
            cases.append(pytest.param(estimator, check, marks=marks, id=case_id))
    return cases


@pytest.mark.heavy
@pytest.mark.parametrize(("estimator", "check"), _cases())
def test_river_check(estimator: base.Estimator, check: Any) -> None:
    check(estimator.clone())


def test_each_learner_is_checked_as_what_it_is() -> None:
    """River picks checks and datasets by type: the regressors must get the regression data and the
    classifiers the classification checks, or the checks above would prove little."""
    regressors = [PriorResidual(), _per_week, _progress_blend, _forest_progress]
    classifiers = [Prior(prior_dropout), _per_week_classifier, _dropout_blend, _forest_dropout]
    for estimator in regressors:
        assert isinstance(estimator, base.Regressor) and not isinstance(estimator, base.Classifier)
    for estimator in classifiers:
        assert isinstance(estimator, base.Classifier) and not isinstance(estimator, base.Regressor)
        names = {check.__name__ for check in checks.yield_checks(estimator)}
        assert {"check_predict_proba_one", "check_classifier_tracks_seen_labels"} <= names
    for estimator in regressors + classifiers:
        names = {check.__name__ for check in checks.yield_checks(estimator)}
        assert {"check_learn_one", "check_predict_one_before_any_learn", "check_bounded_memory_growth"} <= names
