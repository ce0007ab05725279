"""`scorer uplift`'s arithmetic: Newcombe's interval against the published values, and the
per-kind return rates of notified vs held-out enrolments on hand-made transitions."""
from __future__ import annotations

import json

import pytest

from features import DAY
from online_models.intervals import newcombe
from online_models.uplift import TransitionRecord, format_table, report, uplift


@pytest.mark.parametrize(("k1", "n1", "k0", "n0", "low", "high"), [
    (56, 70, 48, 80, 0.0524, 0.3339),  # Newcombe (1998), Stat Med 17:873, table II, method 10
    (9, 10, 3, 10, 0.1705, 0.8090),
    (6, 7, 2, 7, 0.0582, 0.8062),
    (5, 56, 0, 29, -0.0381, 0.1926),
])
def test_newcombe_interval_matches_the_published_values(k1, n1, k0, n0, low, high) -> None:
    assert newcombe(k1, n1, k0, n0) == (pytest.approx(low, abs=1e-4), pytest.approx(high, abs=1e-4))


def _t(user: int, to_status: str, day: float, held_out: bool = False, kind: str = "status_change",
       enrolment: str = "3:1", from_status: str = "active") -> TransitionRecord:
    return TransitionRecord(user, enrolment, kind, from_status, to_status, day * DAY, held_out)


def _kinds(records: list[TransitionRecord], **kwargs) -> dict:
    return {k.kind: k for k in uplift(records, **kwargs)}


def test_came_back_means_a_return_to_active_within_the_window_after_the_first_alert() -> None:
    records = [
        _t(1, "dozing", 10), _t(1, "active", 13, from_status="dozing"),  # back after 3 days
        _t(1, "dozing", 30), _t(1, "asleep", 43, from_status="dozing"),  # a second dozing: not counted
        _t(2, "dozing", 10), _t(2, "active", 18, from_status="dozing"),  # back after 8 days: too late
        _t(3, "dozing", 10), _t(3, "finished", 12, from_status="dozing"),  # the course ended: not back
        _t(4, "dozing", 10, True), _t(4, "active", 11, True, from_status="dozing"),
        _t(5, "dozing", 10, True),
        _t(6, "dozing", 99),  # its window reaches past the data: unknown
        _t(7, "active", 20, kind="at_risk"),  # stayed active
        _t(8, "active", 20, True, kind="at_risk"), _t(8, "dozing", 25, True),  # went quiet
        _t(9, "active", 100, enrolment="4:1", from_status="dozing"),  # the data run to day 100
    ]
    kinds = _kinds(records)
    dozing = kinds["dozing"]
    assert (dozing.notified.n, dozing.notified.met) == (3, 1)
    assert (dozing.held_out.n, dozing.held_out.met) == (3, 1)  # users 4, 5 and 8 (never back)
    assert dozing.unknown == 1
    assert dozing.difference == pytest.approx(0.0)
    asleep = kinds["asleep"]  # user 1's asleep at day 43: nothing after it within 7 days
    assert (asleep.notified.n, asleep.notified.met, asleep.held_out.n) == (1, 0, 0)
    assert asleep.interval is None and asleep.verdict.startswith("not measurable")
    at_risk = kinds["at_risk"]
    assert (at_risk.notified.n, at_risk.notified.met, at_risk.held_out.n, at_risk.held_out.met) == (1, 1, 1, 0)
    assert _kinds(records, days=9)["dozing"].notified.met == 2  # user 2 counts with a wider window


def test_a_verdict_only_when_the_interval_excludes_zero() -> None:
    def group(first_user: int, n: int, back: int, held: bool) -> list[TransitionRecord]:
        out = []
        for user in range(first_user, first_user + n):
            out.append(_t(user, "dozing", 10, held))
            if user - first_user < back:
                out.append(_t(user, "active", 12, held, from_status="dozing"))
        return out

    strong = group(1, 100, 60, False) + group(1000, 100, 30, True) + [_t(9999, "active", 30, enrolment="0:0")]
    dozing = _kinds(strong)["dozing"]
    assert dozing.interval is not None and dozing.interval[0] > 0 and dozing.verdict == "notifications help"
    weak = group(1, 20, 10, False) + group(1000, 20, 8, True) + [_t(9999, "active", 30, enrolment="0:0")]
    assert _kinds(weak)["dozing"].verdict == "no effect shown"
    reverse = group(1, 100, 20, False) + group(1000, 100, 50, True) + [_t(9999, "active", 30, enrolment="0:0")]
    assert _kinds(reverse)["dozing"].verdict == "notifications hurt"

    result = report(strong, days=7, source="test")
    assert json.loads(json.dumps(result))["kinds"]["dozing"]["notified"] == {
        "n": 100, "met": 60, "rate": 0.6, "ci95": [pytest.approx(0.5020, abs=1e-4), pytest.approx(0.6906, abs=1e-4)]}
    assert result["held_out_share"] == pytest.approx(100 / 201, abs=1e-4)
    table = format_table(result)
    assert "60/100 60.0%" in table and "+30.0 pp" in table and "notifications help" in table
    assert format_table(report([], source="status_transitions")) == "no alerts recorded yet (status_transitions)"
