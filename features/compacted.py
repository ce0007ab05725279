"""Old facts as order-free aggregates, so a student's state stops growing with their history.

A live student's document kept every login, page view and attempt, and every touch loaded,
recomputed and rewrote all of it: the cost of an event grew with the student's history. Facts
older than a *horizon* (a day boundary no feature will be asked about again: see
`streams.core.step`) are folded into the aggregates below, which hold exactly what the
features read about the past for any moment at or after the horizon:

    horizon:    int epoch seconds; every login, view and attempt before it is summarised here
    days:       {"<day>": [first ts, last ts]}      activity (logins, views, attempts) per day:
                                                     the latest activity, the active days of a
                                                     window and the status machine's gaps
    login_days: [day, ...]                           distinct login days, sorted (login gaps)
    logins:     int                                  logins before the horizon
    views:      {"<page>": [first ts, count]}
    attempts:   {"<activity_id>": [n, best, first ts, first result, first success, pass ts or
                                   None, successes, result sum, successful result sum]}
    hand_ins:   {"<activity_id>": {"<attempt_id>": [ts, ...]}}   a named attempt's hand-ins (its
                                   pending records), sorted: a later grade is dated by them (absent
                                   until the first)

Each aggregate is a commutative merge (counts add, firsts and lasts are minima and maxima, sets
unite), so a fact older than the horizon that arrives after it (a late record) merges into the
same value it would have had if it had come first: any arrival order, any compaction points,
one state. Webinar events (sessions pair connects with disconnects in order) and profile
versions stay raw: both are few per student. A named attempt's grades stay raw but for those no
feature reads again (features.state.compact).
"""
from __future__ import annotations

from bisect import bisect_left
from typing import Any, NotRequired, TypedDict

from features.eventtime import DAY

_DAY = int(DAY)


class Compacted(TypedDict):
    horizon: int
    days: dict[str, list[int]]
    login_days: list[int]
    logins: int
    views: dict[str, list[int]]
    attempts: dict[str, list[Any]]  # ints, pass ts None until passed
    hand_ins: NotRequired[dict[str, dict[str, list[int]]]]


def new_compacted(horizon: int) -> Compacted:
    return {"horizon": horizon, "days": {}, "login_days": [], "logins": 0, "views": {}, "attempts": {}}


def _activity(old: Compacted, ts: int) -> None:
    day = old["days"].setdefault(str(ts // _DAY), [ts, ts])
    day[0], day[1] = min(day[0], ts), max(day[1], ts)


def _insert_once(values: list[int], value: int) -> None:
    """Add `value` to the sorted set-like list `values` unless it is there."""
    at = bisect_left(values, value)
    if at == len(values) or values[at] != value:
        values.insert(at, value)


def add_login(old: Compacted, ts: int) -> None:
    _activity(old, ts)
    old["logins"] += 1
    _insert_once(old["login_days"], ts // _DAY)


def add_view(old: Compacted, page: str, ts: int) -> None:
    _activity(old, ts)
    first_count = old["views"].setdefault(page, [ts, 0])
    first_count[0], first_count[1] = min(first_count[0], ts), first_count[1] + 1


def add_attempt(old: Compacted, activity: str, ts: int, result: int, success: int) -> None:
    _activity(old, ts)
    score = max(result, 0)
    agg = old["attempts"].get(activity)
    if agg is None:
        old["attempts"][activity] = [1, result, ts, result, success, ts if success else None,
                                     success, score, score if success else 0]
        return
    n, best, first_ts, first_result, first_success, pass_ts, n_success, result_sum, success_sum = agg
    first = min((first_ts, first_result, first_success), (ts, result, success))
    if success:
        pass_ts = ts if pass_ts is None else min(pass_ts, ts)
    old["attempts"][activity] = [n + 1, max(best, result), *first, pass_ts, n_success + success,
                                 result_sum + score, success_sum + (score if success else 0)]


def add_hand_in(old: Compacted, activity: str, attempt_id: str, ts: int) -> None:
    """A named attempt handed in (read twice: once)."""
    _activity(old, ts)
    _insert_once(old.setdefault("hand_ins", {}).setdefault(activity, {}).setdefault(attempt_id, []), ts)


def hand_ins(old: Compacted | None, activity: str, attempt_id: str) -> list[int]:
    """A named attempt's hand-ins before the horizon, sorted."""
    return old.get("hand_ins", {}).get(activity, {}).get(attempt_id, []) if old else []


def latest(old: Compacted | None) -> int | None:
    """The latest activity before the horizon."""
    if not old or not old["days"]:
        return None
    return max(last for _, last in old["days"].values())


def day_bounds(old: Compacted | None) -> list[tuple[int, int]]:
    """(first, last) activity of each compacted day: between two days' activity the gaps are
    those of the raw facts, which is all the status machine reads from them."""
    if not old:
        return []
    return [(first, last) for first, last in old["days"].values()]
