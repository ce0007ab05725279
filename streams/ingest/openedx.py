"""Open edX tracking-log events (one JSON object per line) -> contract records.

Field names are the Open edX event reference's ("Events in the Tracking Logs"): the event's
name is `name` (newer logs) or `event_type`; `event_source` is server, browser or mobile; `time`
is ISO 8601 UTC; `context.user_id`, `username`, `context.course_id`; the payload `event` is an
object, or a JSON string in browser events. Open edX events carry no id: each record's
`event_id` is `openedx:` + a SHA-1 of the whole event (sorted keys), so a line replayed twice is
recognised as one. The student is `context.user_id` (mapping key `openedx:user_id:<id>`, numeric
fallback: the id itself), else `username` (`openedx:username:<name>`); events about a learner
that someone else may trigger (enrollment, grades) read the payload's `event.user_id` first.

Mapping table (event name -> record: fields):

- edx.course.enrollment.activated, edx.course.enrollment.mode_changed
    -> student: course_id = courses[event.course_id, else context.course_id]; payment = 1 for the
       paid modes (verified, professional, no-id-professional, credit, masters,
       executive-education), else 0.
- edx.course.enrollment.deactivated
    -> outcome (the student left the course, at `time`): course_id = courses[event.course_id, else
       context.course_id]; module 2 (streams.contract.OUTCOME_MODULE: the event names none); progress and
       attestation null; result `withdrawn`.
- problem_check from the server
    -> exercise_result: activity_id = activities[event.problem_id, else context.module.usage_key];
       result = event.grade / event.max_grade x 100 (null when max_grade is 0 or absent);
       success = 1 when event.success is `correct`, else 0.
- problem_check from the browser -> rejected `ignored` / `browser_problem_check` (no grade; the
  server's event carries the attempt).
- play_video, load_video, edx.video.played, edx.video.loaded
    -> page_view: page_id = pages[event.id, else context.module.usage_key]; page_type = the
       mapping's, else `активность`; activity_type = the mapping's, else `video`.
- edx.ui.lms.sequence.tab_selected, .next_selected, .previous_selected, seq_goto, seq_next, seq_prev
    -> page_view: page_id = pages[event.id]; page_type = the mapping's, else `занятие`.
- edx.ui.lms.outline.selected, edx.ui.lms.jump_nav.selected
    -> page_view: page_id = pages[event.target_url]; page_type = the mapping's, else `занятие`.
- page_close on a courseware page (`/courseware`, `/course/`, `/xblock/` or `block-v1:` in `page`)
    -> page_view: page_id = pages[page]; page_type = the mapping's, else `занятие`.
  page_close elsewhere (the dashboard, ...) -> rejected `ignored` / `not_courseware`.
- edx.grades.subsection.grade_calculated
    -> exercise_result: activity_id = activities[event.block_id]; result = weighted_total_earned /
       weighted_total_possible x 100; success = result >= pass_percent; attempt_id =
       `openedx:subsection:<activity_id>`: Open edX emits this event each time it calculates the
       subsection's grade, each the student's grade in it so far, so they are one attempt with the
       latest grade (each was an attempt of its own before); ts =
       event.first_attempted (not after the grade; without the field, the grade's time), graded_at =
       `time`. A subsection out of 0 points -> rejected `ignored` / `no_possible_score`; one never
       attempted (`first_attempted` `None`) -> `ignored` / `not_attempted`; an unreadable
       `first_attempted` -> `invalid` / `bad_attempt_time`, as Caliper's Attempt times.
- edx.grades.course.grade_calculated -> rejected `unsupported` / `course_grade` (a course grade is
  no module outcome).
- edx.grades.problem.submitted -> rejected `ignored` / `duplicate_of_problem_check`.
- implicit server events (`event_type` is a URL path) and every other event -> rejected
  `ignored` / `unused_event`.

Open edX writes no login event to the tracking log, so no authorization record comes from it.
A line that is not a JSON object (after an optional syslog prefix up to the first `{`), or an
event used above without a readable time or user, is rejected `invalid`.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import orjson

from streams.contract import Topic
from streams.ingest.base import (
    IGNORED,
    UNSUPPORTED,
    Mapped,
    Record,
    Reject,
    Rejection,
    attempt_id,
    checked,
    digest,
    split,
    whole_percent,
    with_optional,
    withdrawal,
)
from streams.ingest.base import guarded as _guarded
from streams.ingest.mapping import ACTIVITY_PAGE, LESSON, IdMapping, Target, whole_integer
from streams.ingest.times import attempt_handed_in, local_ts, parse_instant

SOURCE = "openedx"
PAID_MODES = frozenset({"verified", "professional", "no-id-professional", "credit", "masters", "executive-education"})
ENROLLED = frozenset({"edx.course.enrollment.activated", "edx.course.enrollment.mode_changed"})
DEACTIVATED = "edx.course.enrollment.deactivated"
VIDEO = frozenset({"play_video", "load_video", "edx.video.played", "edx.video.loaded"})
SEQUENCE = frozenset({"edx.ui.lms.sequence.tab_selected", "edx.ui.lms.sequence.next_selected",
                      "edx.ui.lms.sequence.previous_selected", "seq_goto", "seq_next", "seq_prev"})
OUTLINE = frozenset({"edx.ui.lms.outline.selected", "edx.ui.lms.jump_nav.selected"})
_COURSEWARE_MARKS = ("/courseware", "/course/", "/xblock/", "block-v1:")
MAX_LINE_BYTES = 256 * 1024


def parse_line(line: str | bytes) -> Any:
    """A tracking-log line -> its JSON value (a syslog prefix before the first `{` is skipped);
    Reject `malformed_json`."""
    text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
    if len(text) > MAX_LINE_BYTES:
        raise Reject("too_large", f"a line of {len(text)} characters; the limit is {MAX_LINE_BYTES}")
    start = text.find("{")
    if start < 0:
        raise Reject("malformed_json", "no JSON object on the line")
    try:
        return orjson.loads(text[start:].strip())
    except orjson.JSONDecodeError as error:
        raise Reject("malformed_json", str(error)[:200]) from None


def map_event(event: Any, mapping: IdMapping, ref: str | None = None) -> Mapped:
    """One decoded tracking-log event -> its records, or a rejection (never raises)."""
    return _guarded(SOURCE, event, ref, lambda: _records(event, mapping))


def map_line(line: str | bytes, mapping: IdMapping, ref: str | None = None) -> Mapped:
    """One tracking-log line -> its records, or a rejection (never raises)."""
    try:
        event = parse_line(line)
    except Reject as rejected:
        return Mapped(ref, line, rejection=Rejection(rejected.reason, rejected.detail, line, rejected.kind,
                                                     SOURCE, ref))
    return map_event(event, mapping, ref)


def map_lines(lines: Iterable[str | bytes], mapping: IdMapping) -> list[Mapped]:
    """Every non-blank line (ref: its 1-based line number)."""
    return [map_line(line, mapping, str(number)) for number, line in enumerate(lines, 1) if line.strip()]


def from_events(events: Iterable[Any], mapping: IdMapping) -> tuple[list[Record], list[Rejection]]:
    """Decoded events -> (records, rejections)."""
    return split(map_event(event, mapping, str(number)) for number, event in enumerate(events, 1))


def from_lines(lines: Iterable[str | bytes], mapping: IdMapping) -> tuple[list[Record], list[Rejection]]:
    """Tracking-log lines -> (records, rejections)."""
    return split(map_lines(lines, mapping))


# -- helpers -------------------------------------------------------------------------------------
def _payload(event: dict[str, Any]) -> dict[str, Any]:
    """`event`: an object, or a JSON string holding one (browser events); anything else: {}."""
    payload = event.get("event")
    if isinstance(payload, str) and payload.lstrip().startswith("{"):
        try:
            payload = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return {}
    return payload if isinstance(payload, dict) else {}


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _user(event: dict[str, Any], payload: dict[str, Any], mapping: IdMapping, learner_first: bool) -> int:
    context = _dict(event.get("context"))
    ids = [payload.get("user_id"), context.get("user_id")] if learner_first else [context.get("user_id")]
    for candidate in ids:
        number = whole_integer(candidate)
        if number is not None:
            return mapping.user([f"openedx:user_id:{number}"], number)
    username = _text(event.get("username"))
    if username is not None:
        return mapping.user([f"openedx:username:{username}"])
    raise Reject("missing_user", "neither context.user_id nor username")


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if number == number and abs(number) != float("inf") else None


def _ratio(earned: object, possible: object) -> int | None:
    got, out_of = _number(earned), _number(possible)
    if got is None or out_of is None or out_of <= 0:
        return None
    return whole_percent(got / out_of * 100)


def _page(mapping: IdMapping, keys: list[object], default_type: str, activity_type: str | None = None,
          section: str = "pages") -> tuple[Target, str]:
    texts = [k for k in keys if isinstance(k, str) and k]
    if not texts:
        raise Reject("missing_block", "the event names no page or block")
    target = mapping.resolve(section, texts, texts[0])
    return target, target.page_type or default_type


# -- an event ------------------------------------------------------------------------------------
def _first_attempted(payload: dict[str, Any], graded: datetime) -> datetime:
    """When the student first tried the subsection: its grade's `first_attempted` (Open edX writes
    `str()` of it: `2024-01-10 14:30:34+00:00`, or `None`), else the grade's own time. Open edX keeps
    the first one; `None` is a grade of a subsection the student never attempted (in the edx-platform
    code read, persisted only for a deleted score or a changed enrolment track): no attempt, so
    ignored `not_attempted`."""
    if "first_attempted" not in payload:
        return graded
    value = payload["first_attempted"]
    if value is None or value == "None":
        raise Reject("not_attempted", "a subsection grade the student never attempted", IGNORED)
    return attempt_handed_in(value, graded, "first_attempted")


def _records(event: Any, mapping: IdMapping) -> list[Record]:
    if not isinstance(event, dict):
        raise Reject("not_an_object", f"a tracking-log event is a JSON object, got {type(event).__name__}")
    name = _text(event.get("name")) or _text(event.get("event_type"))
    if name is None:
        raise Reject("missing_event_type", "neither name nor event_type")
    if name.startswith("/"):
        raise Reject("unused_event", "an implicit (URL) server event", IGNORED)
    source = event.get("event_source")
    payload = _payload(event)
    context = _dict(event.get("context"))
    module = _dict(context.get("module"))

    def base(learner_first: bool = False) -> dict[str, Any]:
        moment = parse_instant(event.get("time"))
        return {"event_id": f"openedx:{digest(event)[:32]}", "user_id": _user(event, payload, mapping, learner_first),
                "ts": local_ts(moment, mapping.time_zone)}

    if name in ENROLLED or name == DEACTIVATED:
        record = base(learner_first=True)
        course_key = _text(payload.get("course_id")) or _text(context.get("course_id"))
        if course_key is None:
            raise Reject("missing_course", f"{name} without course_id")
        course_id = mapping.course([course_key], course_key)
        if name == DEACTIVATED:
            return [withdrawal(record, course_id)]
        mode = payload.get("mode")
        return [checked(Topic.STUDENTS, {**record, "course_id": course_id,
                                         "payment": int(isinstance(mode, str) and mode in PAID_MODES)})]
    if name == "problem_check":
        if source != "server":
            raise Reject("browser_problem_check", "the browser's problem_check has no grade", IGNORED)
        record = base()
        target, _ = _page(mapping, [payload.get("problem_id"), module.get("usage_key")], "", section="activities")
        return [checked(Topic.EXERCISE_RESULTS, with_optional(
            {**record, "activity_id": target.id, "result": _ratio(payload.get("grade"), payload.get("max_grade")),
             "success": int(payload.get("success") == "correct")}, module=target.module))]
    if name in VIDEO:
        record = base()
        target, page_type = _page(mapping, [payload.get("id"), module.get("usage_key")], ACTIVITY_PAGE)
        return [checked(Topic.PAGE_VIEWS, with_optional({**record, "page_type": page_type, "page_id": target.id},
                                                        module=target.module,
                                                        activity_type=target.activity_type or "video"))]
    if name in SEQUENCE or name in OUTLINE or name == "page_close":
        if name in SEQUENCE:
            keys: list[object] = [payload.get("id")]
        elif name in OUTLINE:
            keys = [payload.get("target_url")]
        else:
            page = _text(event.get("page"))
            if page is None or not any(mark in page for mark in _COURSEWARE_MARKS):
                raise Reject("not_courseware", "page_close outside the courseware", IGNORED)
            keys = [page]
        record = base()
        target, page_type = _page(mapping, keys, LESSON)
        return [checked(Topic.PAGE_VIEWS, with_optional({**record, "page_type": page_type, "page_id": target.id},
                                                        module=target.module, activity_type=target.activity_type))]
    if name == "edx.grades.subsection.grade_calculated":
        percent = _ratio(payload.get("weighted_total_earned"), payload.get("weighted_total_possible"))
        if percent is None:
            raise Reject("no_possible_score", "a subsection grade out of nothing", IGNORED)
        record = base(learner_first=True)
        target, _ = _page(mapping, [payload.get("block_id")], "", section="activities")
        handed_in = local_ts(_first_attempted(payload, parse_instant(event.get("time"))), mapping.time_zone)
        return [checked(Topic.EXERCISE_RESULTS, with_optional(
            {**record, "ts": handed_in, "activity_id": target.id, "result": percent,
             "success": mapping.success_of(percent), "attempt_id": attempt_id(f"openedx:subsection:{target.id}")},
            module=target.module, graded_at=record["ts"] if handed_in != record["ts"] else None))]
    if name == "edx.grades.course.grade_calculated":
        raise Reject("course_grade", "a course grade: the contract's outcome needs a module", UNSUPPORTED)
    if name == "edx.grades.problem.submitted":
        raise Reject("duplicate_of_problem_check", "problem_check (server) carries the same attempt", IGNORED)
    raise Reject("unused_event", f"{name[:100]} is not used by the scorer", IGNORED)
