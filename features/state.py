"""A student's facts as a small JSON document that any arrival order folds to the same value.

Layout (`FeatureState`; times are int epoch seconds; every list is kept sorted, so a list is a
multiset and insertion order cannot show through):

    logins:   [ts, ...]
    views:    {"t<task_id>"|"a<activity_id>": [ts, ...]}   page views per page
    attempts: {"<activity_id>": [[ts, result, success]]}   exercise attempts; result -1 = skipped
    graded:   {"<activity_id>": {"<attempt_id>": [[graded_at, ts, result, success]]}}
                                                           attempts the LMS names, which it may
                                                           grade again: every distinct grade,
                                                           and each hand-in still to be graded
                                                           (result -2, graded_at = ts; absent
                                                           until the first). Compacted apart
                                                           (`_settle`): a regrade may still come
    webinars: {"<webinar_id>": [[ts, event, online]]}      event 1 connect / 0 disconnect;
                                                           online 1 / 0 offline / -1 unknown
    profiles: {"<ts>": [course_id, age, tg_bot, payment, online, flow_num, time_zone, unti_id]}
                                                           profile versions; time_zone is the
                                                           contract's text ('+03:00'). Documents
                                                           written before time_zone/unti_id were
                                                           kept hold 6-item lists: the missing
                                                           trailing items read as unknown (None)
    outcomes: {"<module>": [ts, course_id, progress, attestation, attestation_ts, result]}   late labels
    compacted: logins, views, attempts and named attempts' hand-ins older than its horizon, as
               aggregates (absent until the first `compact`; see features.compacted)

Every fact keeps its time so features can be taken as of any moment (any moment at or after
the compaction horizon, once a state is compacted; a named attempt's grades as of when they were
given). Profile versions are
kept per ts (a snapshot uses the newest one not after it); the outcome is a label, so only
its newest version per module is kept. Same-ts conflicts are settled by the larger
canonical JSON, which is an order-free rule.
"""
from __future__ import annotations

import json
from bisect import bisect_left, bisect_right, insort
from operator import itemgetter
from typing import Any, NotRequired, TypedDict

from features import compacted as old_facts
from features.compacted import Compacted
from features.eventtime import DAY, parse_ts
from features.schedule import page_key

SKIPPED = -1
#: A named attempt's hand-in that no grade came with (exercise_result `pending`): the student's
#: activity, and the time of the work its later grade grades; never an attempt by itself.
PENDING = -2
UNKNOWN = -1
_CONNECT = "Подключение"
_TS = itemgetter(0)
_FORMAT = {"онлайн": 1, "офлайн": 0}


class FeatureState(TypedDict):
    """A student's facts (see the module docstring for each list's layout)."""

    logins: list[int]
    views: dict[str, list[int]]
    attempts: dict[str, list[list[int]]]
    webinars: dict[str, list[list[int]]]
    profiles: dict[str, list[Any]]
    outcomes: dict[str, list[Any]]
    graded: NotRequired[dict[str, dict[str, list[list[int]]]]]
    compacted: NotRequired[Compacted]


def new_state() -> FeatureState:
    return {"logins": [], "views": {}, "attempts": {}, "webinars": {}, "profiles": {}, "outcomes": {}}


def _secs(text: str) -> int:
    return int(parse_ts(text) // 1)


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _keep_larger(table: dict[str, list[Any]], key: str, value: list[Any]) -> None:
    current = table.get(key)
    if current is None or _canon(value) > _canon(current):
        table[key] = value


def _before_horizon(state: FeatureState, ts: int) -> Compacted | None:
    """The aggregates a fact this old merges into (a late record), else None (it stays raw)."""
    old = state.get("compacted")
    return old if old is not None and ts < old["horizon"] else None


def _authorization(state: FeatureState, r: dict[str, Any]) -> None:
    ts = _secs(r["ts"])
    if (old := _before_horizon(state, ts)) is not None:
        old_facts.add_login(old, ts)
    else:
        insort(state["logins"], ts)


def _page_view(state: FeatureState, r: dict[str, Any]) -> None:
    ts, page = _secs(r["ts"]), page_key(r["page_type"], r["page_id"])
    if (old := _before_horizon(state, ts)) is not None:
        old_facts.add_view(old, page, ts)
    else:
        insort(state["views"].setdefault(page, []), ts)


def _exercise_result(state: FeatureState, r: dict[str, Any]) -> None:
    ts, activity = _secs(r["ts"]), str(r["activity_id"])
    result = SKIPPED if r["result"] is None else int(r["result"])
    if (attempt_id := r.get("attempt_id")) is not None:
        if r.get("pending") is True:
            version = [ts, ts, PENDING, 0]
        else:
            graded_at = _secs(r["graded_at"]) if r.get("graded_at") is not None else ts
            version = [graded_at, ts, result, int(r["success"])]
        old = _before_horizon(state, version[0])
        if old is not None and version[2] == PENDING:
            old_facts.add_hand_in(old, activity, attempt_id, ts)
            return
        versions = state.setdefault("graded", {}).setdefault(activity, {}).setdefault(attempt_id, [])
        if version not in versions:  # the same grade read twice is one grade
            insort(versions, version)
        if old is not None:
            _settle(state, old, activity, attempt_id)
    elif (old := _before_horizon(state, ts)) is not None:
        old_facts.add_attempt(old, activity, ts, result, int(r["success"]))
    else:
        insort(state["attempts"].setdefault(activity, []), [ts, result, int(r["success"])])


def attempt_facts(state: FeatureState, as_of: float | None = None) -> dict[str, list[list[Any]]]:
    """Every activity's attempts as sorted [ts, result, success] lists: the anonymous ones, and each
    named attempt as the grades and hand-ins known by `as_of` (graded_at; None: all) have it, as
    [ts, result, success, passed at]: handed in at their earliest ts (a teacher's regrade is not the
    student's activity), with the latest grade (ties: the larger), passed since the first of the
    passing grades that run to it (a grade item failed, then passed, passed when the pass came),
    each grade dated at the latest hand-in before it (the work it grades), if one is known. A
    hand-in with no grade yet, and each hand-in after the first, is [ts, PENDING, 0, None]: the
    student's activity, no attempt. The stored lists themselves when no attempt is named."""
    if not names_attempts(state):
        return state["attempts"]
    graded = state.get("graded", {})
    old = state.get("compacted")
    compacted = old.get("hand_ins", {}) if old else {}
    merged: dict[str, list[list[Any]]] = dict(state["attempts"])
    for activity in sorted(graded.keys() | compacted.keys()):
        attempts, handed = graded.get(activity, {}), compacted.get(activity, {})
        standing = []
        for attempt_id in sorted(attempts.keys() | handed.keys()):
            versions = attempts.get(attempt_id, [])
            known = versions if as_of is None else versions[:bisect_right(versions, as_of, key=_TS)]
            if known or attempt_id in handed:
                standing += _standing(known, handed.get(attempt_id, []))
        if standing:
            merged[activity] = sorted([*merged.get(activity, ()), *standing])
    return merged


def names_attempts(state: FeatureState) -> bool:
    """Does the LMS name some attempt of the student's (so attempt_facts merges)?"""
    old = state.get("compacted")
    return "graded" in state or bool(old and old.get("hand_ins"))


def handed_in_at(state: FeatureState, activity: str, attempt_id: str) -> int | None:
    """When a named attempt was first handed in: its earliest record's time, if one is known."""
    times = [version[1] for version in state.get("graded", {}).get(activity, {}).get(attempt_id, [])]
    times += old_facts.hand_ins(state.get("compacted"), activity, attempt_id)[:1]
    return min(times) if times else None


def _standing(known: list[list[int]], before: list[int]) -> list[list[Any]]:
    """A named attempt's facts from its known versions and its hand-ins before the compaction
    horizon (attempt_facts): [ts, result, success, passed at], and each later hand-in as [ts,
    PENDING, 0, None] (the work handed in again is activity too; those before the horizon are
    in the aggregates' days)."""
    raw = sorted({version[1] for version in known if version[2] == PENDING})
    handed_in = min([version[1] for version in known] + before[:1])
    hand_ins = before + raw  # every one before the horizon is earlier than a raw one
    again: list[list[Any]] = [[ts, PENDING, 0, None] for ts in raw if ts != handed_in]
    grades = sorted((version for version in known if version[2] != PENDING), key=_grade_order)
    if not grades:
        return [[handed_in, PENDING, 0, None], *again]
    _, _, result, success = grades[-1]
    passed_at = None
    for _, ts, _, succeeded in reversed(grades):
        if not succeeded:
            break
        earlier = bisect_right(hand_ins, ts)
        passed_at = hand_ins[earlier - 1] if earlier else ts
    return [[handed_in, result, success, passed_at], *again]


def _settle(state: FeatureState, old: Compacted, activity: str, attempt_id: str) -> None:
    """Compact a named attempt below the horizon: its hand-ins go to the aggregates, and of the
    grades given before the horizon only those a feature may still read stay: the one handed in
    first, and the last failing one and every later one (the result is the latest grade, the
    passing run starts after the last fail). A later record cannot revive a dropped grade, so
    any arrival order and any compaction points give one state."""
    horizon, attempts = old["horizon"], state["graded"][activity]
    kept = []
    for version in attempts[attempt_id]:
        if version[2] == PENDING and version[0] < horizon:
            old_facts.add_hand_in(old, activity, attempt_id, version[1])
        else:
            kept.append(version)
    before = [version for version in kept if version[0] < horizon]
    fails = [_grade_order(version) for version in before if not version[3]]
    if fails:
        last_fail, first = max(fails), min(before, key=lambda version: (version[1], version))
        kept = [v for v in kept if v[0] >= horizon or _grade_order(v) >= last_fail or v is first]
    if kept:
        attempts[attempt_id] = kept
        return
    del attempts[attempt_id]
    if not attempts:
        del state["graded"][activity]
        if not state["graded"]:
            del state["graded"]


def _grade_order(version: list[int]) -> tuple[int, int, int]:
    """Which of two grades of an attempt is the later: by graded_at, ties by the larger."""
    graded_at, _, result, success = version
    return graded_at, result, success


def _webinar_event(state: FeatureState, r: dict[str, Any]) -> None:
    fact = [_secs(r["ts"]), int(r["event"] == _CONNECT), _FORMAT.get(r.get("conn_format") or "", UNKNOWN)]
    insort(state["webinars"].setdefault(str(r["webinar_id"]), []), fact)


def _student(state: FeatureState, r: dict[str, Any]) -> None:
    online = r.get("online")
    version = [
        r["course_id"], r.get("age"), r.get("tg_bot"), r.get("payment"),
        None if online is None else int(online), r.get("flow_num"), r.get("time_zone"), r.get("unti_id"),
    ]
    _keep_larger(state["profiles"], str(_secs(r["ts"])), version)


def _outcome(state: FeatureState, r: dict[str, Any]) -> None:
    when = r.get("attestation_date")
    label = [_secs(r["ts"]), r.get("course_id"), r["progress"], r["attestation"], None if when is None else _secs(when),
             r.get("result")]
    current = state["outcomes"].get(str(r["module"]))
    if current is None or (label[0], _canon(label)) > (current[0], _canon(current)):
        state["outcomes"][str(r["module"])] = label


_APPLY = {
    "authorization": _authorization,
    "page_view": _page_view,
    "exercise_result": _exercise_result,
    "webinar_event": _webinar_event,
    "student": _student,
    "outcome": _outcome,
}


def apply(state: FeatureState, kind: str, record: dict[str, Any]) -> None:
    """Add one record's fact in place: O(log n) search plus a short list insert."""
    try:
        handler = _APPLY[kind]
    except KeyError:
        raise ValueError(f"not a student record kind: {kind!r}") from None
    handler(state, record)


def compact(state: FeatureState, horizon: float) -> None:
    """Fold the logins, views and attempts before `horizon` (floored to a day) into the state's
    aggregates, and named attempts' hand-ins and spent grades (`_settle`). The horizon never moves
    back; features stay exact as of any moment after it."""
    new = int(horizon // DAY) * int(DAY)
    old = state.get("compacted")
    if old is not None and new <= old["horizon"]:
        return
    if old is None:
        old = state["compacted"] = old_facts.new_compacted(new)
    old["horizon"] = new
    cut = bisect_left(state["logins"], new)
    for ts in state["logins"][:cut]:
        old_facts.add_login(old, ts)
    del state["logins"][:cut]
    for page, times in list(state["views"].items()):
        cut = bisect_left(times, new)
        for ts in times[:cut]:
            old_facts.add_view(old, page, ts)
        del times[:cut]
        if not times:
            del state["views"][page]
    for activity, facts in list(state["attempts"].items()):
        cut = bisect_left(facts, new, key=_TS)
        for ts, result, success in facts[:cut]:
            old_facts.add_attempt(old, activity, ts, result, success)
        del facts[:cut]
        if not facts:
            del state["attempts"][activity]
    for activity, attempts in list(state.get("graded", {}).items()):
        for attempt_id in list(attempts):
            _settle(state, old, activity, attempt_id)


def active_days(state: FeatureState) -> set[int]:
    """The days (epoch seconds // DAY, event time) with a login, page view, attempt or webinar event."""
    day = int(DAY)
    old = state.get("compacted")
    days = {int(key) for key in old["days"]} if old is not None else set()
    days.update(ts // day for ts in state["logins"])
    days.update(ts // day for times in state["views"].values() for ts in times)
    days.update(fact[0] // day for table in (attempt_facts(state), state["webinars"]) for facts in table.values()
                for fact in facts)
    return days


def last_activity(state: FeatureState) -> float | None:
    """Latest time of a login, page view, exercise attempt or webinar event, if any."""
    ends = [state["logins"][-1]] if state["logins"] else []
    if (old := old_facts.latest(state.get("compacted"))) is not None:
        ends.append(old)
    ends += [views[-1] for views in state["views"].values()]
    ends += [facts[-1][0] for table in (attempt_facts(state), state["webinars"]) for facts in table.values()]
    return float(max(ends)) if ends else None


_PROFILE_FIELDS = 8


def profile(state: FeatureState, as_of: float) -> dict[str, Any] | None:
    """The newest profile version with ts <= as_of (None before the first one). A version
    stored before a field was kept (a shorter list) reads that field as None (unknown)."""
    known = [int(ts) for ts in state["profiles"] if int(ts) <= as_of]
    if not known:
        return None
    version = state["profiles"][str(max(known))]
    course_id, age, tg_bot, payment, online, flow_num, time_zone, unti_id = (
        [*version, *[None] * _PROFILE_FIELDS])[:_PROFILE_FIELDS]
    return {"course_id": course_id, "age": age, "tg_bot": tg_bot, "payment": payment,
            "online": None if online is None else bool(online), "flow_num": flow_num,
            "time_zone": time_zone, "unti_id": unti_id}


def outcome(state: FeatureState, module: int | None = None) -> dict[str, Any] | None:
    """The newest outcome (label) of a module, or of the highest module when none is named."""
    if not state["outcomes"]:
        return None
    key = str(module) if module is not None else max(state["outcomes"], key=int)
    if key not in state["outcomes"]:
        return None
    # no result: stored before outcomes carried one
    ts, course_id, progress, attestation, attestation_ts, *result = state["outcomes"][key]
    return {"module": int(key), "ts": float(ts), "course_id": course_id, "progress": progress,
            "attestation": attestation,
            "attestation_ts": None if attestation_ts is None else float(attestation_ts),
            "result": result[0] if result else None}


def canonical(state: FeatureState) -> str:
    """Canonical JSON: equal states give equal strings."""
    return _canon(state)
