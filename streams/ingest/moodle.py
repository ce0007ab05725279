r"""Moodle standard log rows (`logstore_standard_log`: a CSV export of the table, or dicts) -> contract records.

Columns read: `id`, `eventname`, `objectid`, `contextinstanceid` (the course module id, cmid), `userid`,
`relateduserid`, `courseid`, `other` (JSON, or PHP-serialized as older Moodle versions store it)
and `timecreated` (Unix seconds); optional columns a school may add to its export: `grade`
(0..100), `finalgrade` and `grademax` (a raw grade and its maximum), `gradepass` (0..100) and
`success` (0/1). Empty cells, `NULL` and `\N` are absent values. Each record's `event_id` is
`moodle:<id>` (the log row's id), or `moodle:` + a SHA-1 of the row when the export has no id.
Identifiers: users `moodle:<userid>`, courses `moodle:<courseid>`, course modules `moodle:<cmid>`
in pages, activities and webinars, grade items `moodle:gradeitem:<itemid>` in activities; the
numeric fallback takes the Moodle id itself.

Mapping table (eventname -> record: fields):

- \core\event\user_loggedin -> authorization: user = userid.
- \mod_<module>\event\course_module_viewed
    -> page_view: user = userid; page_id = pages[cmid]; page_type = the mapping's, else `занятие`
       for mod_page, mod_book and mod_lesson, else `активность`; activity_type = the mapping's,
       else `<module>` (quiz, resource, ...).
- \mod_quiz\event\attempt_submitted, where the export adds the attempt's `grade` (or
  `finalgrade` and `grademax`, or `success`)
    -> exercise_result: user = relateduserid (the attempt's owner), else userid; activity_id =
       activities[cmid]; result = `grade`, else `finalgrade` / `grademax` x 100, else null;
       success = `success`, else result >= `gradepass`, else result >= the mapping's pass_percent
       (0 when result is null); attempt_id = `moodle:attempt:<objectid>` (the quiz attempt's id)
       when the export has objectid.
  Without them (the event carries no grade, which comes as user_graded), and
  \mod_assign\event\assessable_submitted (an assignment handed in)
    -> exercise_result `pending` (a hand-in: result null, success 0): user = relateduserid (the
       student, when someone handed in for them), else userid; activity_id = activities[cmid];
       attempt_id = `moodle:grade`. The student's activity, never an attempt by itself; map the
       activity's grade item to the same activity id, and its grade (below) is dated at the latest
       hand-in before it. Read as a skip, each quiz counted as a failed attempt as well.
- \core\event\user_graded
    -> exercise_result: user = relateduserid (the graded student; userid is the grader);
       activity_id = activities[moodle:gradeitem:<other.itemid>]; result = `grade`, else
       finalgrade (the column, else other.finalgrade) / grademax (the column, else 100, Moodle's
       default maximum) x 100; success as above; attempt_id = `moodle:grade`: the student's
       grade in the item, which Moodle sends again whenever its value changes (grade_item's
       update_raw_grade and update_final_grade: a quiz attempt that changes it, a teacher's edit),
       so it stays one attempt with the latest grade, handed in at its first hand-in or grade
       (features.state.attempt_facts). A cleared grade (finalgrade null) -> rejected `ignored` /
       `grade_cleared`. Map a quiz's grade item only where its attempt_submitted rows carry no
       grades, or each graded quiz counts twice.
- \mod_bigbluebuttonbn\event\meeting_joined
    -> webinar_event `Подключение`, conn_format `онлайн`: webinar_id = webinars[cmid].
- \mod_bigbluebuttonbn\event\meeting_left
    -> webinar_event `Отключение`, conn_format `онлайн`: webinar_id = webinars[cmid].
- \core\event\user_enrolment_created
    -> student (a profile holding only the course): user = relateduserid; course_id = courses[courseid].
- \core\event\user_enrolment_deleted
    -> outcome (the student left the course, at timecreated): user = relateduserid; course_id =
       courses[courseid]; module 2 (streams.contract.OUTCOME_MODULE: the event names none); progress and
       attestation null; result `withdrawn`.
- any other event -> rejected `ignored` / `unused_event`.

A row without a readable eventname, time or user is rejected `invalid`. Backslashes doubled by
an SQL export (`\\core\\event\\...`) are read as single ones.
"""
from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from streams.contract import Topic
from streams.ingest.base import (
    IGNORED,
    Mapped,
    Record,
    Reject,
    Rejection,
    checked,
    digest,
    guarded,
    hand_in,
    split,
    with_optional,
    withdrawal,
)
from streams.ingest.mapping import ACTIVITY_PAGE, LESSON, IdMapping, whole_integer
from streams.ingest.times import unix_local_ts

SOURCE = "moodle"
CONNECT, DISCONNECT = "Подключение", "Отключение"
LESSON_MODULES = frozenset({"page", "book", "lesson"})
_VIEWED = re.compile(r"\\mod_([a-z][a-z0-9_]*)\\event\\course_module_viewed")
_PHP_NUMBER = re.compile(r's:\d+:"([A-Za-z_]+)";(?:i|d):(-?[0-9.eE+-]+);')
_PHP_NULL = re.compile(r's:\d+:"([A-Za-z_]+)";N;')
_ABSENT = {"", "NULL", "null", "\\N"}
MAX_CELL = 64 * 1024


def _cell(row: Mapping[str, Any], name: str) -> Any:
    value = row.get(name)
    if isinstance(value, str):
        value = value.strip()
        if value in _ABSENT:
            return None
        if len(value) > MAX_CELL:
            raise Reject("too_large", f"column {name} holds {len(value)} characters")
    return value


def _int(row: Mapping[str, Any], name: str) -> int | None:
    value = _cell(row, name)
    if value is None:
        return None
    number = whole_integer(value)
    if number is None:
        raise Reject(f"bad_{name}", f"{name} must be a whole number, got {str(value)[:40]!r}")
    return number


def _float(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise Reject(f"bad_{name}", f"{name} must be a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise Reject(f"bad_{name}", f"{name} must be a number, got {str(value)[:40]!r}") from None
    if number != number or abs(number) == float("inf"):
        raise Reject(f"bad_{name}", f"{name} must be a finite number")
    return number


def _other(row: Mapping[str, Any]) -> dict[str, Any]:
    """The `other` column: JSON, or PHP-serialized (numbers and nulls are read), else {}."""
    text = _cell(row, "other")
    if isinstance(text, dict):
        return text
    if not isinstance(text, str):
        return {}
    if text.startswith("{"):
        try:
            loaded = json.loads(text)
        except (ValueError, RecursionError):
            return {}
        return loaded if isinstance(loaded, dict) else {}
    if text.startswith("a:"):
        values: dict[str, Any] = {key: None for key in _PHP_NULL.findall(text)}
        values.update({key: number for key, number in _PHP_NUMBER.findall(text)})
        return values
    return {}


def event_name(row: Mapping[str, Any]) -> str:
    """The row's event class name with single backslashes and the leading one."""
    name = _cell(row, "eventname")
    if not isinstance(name, str) or not name:
        raise Reject("missing_eventname", "the row has no eventname")
    name = re.sub(r"\\+", lambda _: "\\", name)
    return name if name.startswith("\\") else "\\" + name


def map_row(row: Any, mapping: IdMapping, ref: str | None = None) -> Mapped:
    """One log row -> its records, or a rejection (never raises)."""
    return guarded(SOURCE, row, ref, lambda: _records(row, mapping))


def map_rows(rows: Iterable[Any], mapping: IdMapping) -> list[Mapped]:
    """Rows with their 1-based data row number as ref (the header is row 0)."""
    return [map_row(row, mapping, str(number)) for number, row in enumerate(rows, 1)]


def from_rows(rows: Iterable[Any], mapping: IdMapping) -> tuple[list[Record], list[Rejection]]:
    """Log rows -> (records, rejections)."""
    return split(map_rows(rows, mapping))


def read_csv(text: str) -> Iterator[dict[str, Any]]:
    """Rows of a CSV export (delimiter `,`, `;` or tab, found from the header line)."""
    first = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first.count)
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    if reader.fieldnames is not None:
        reader.fieldnames = [name.strip().lstrip("\ufeff").lower() for name in reader.fieldnames]
    yield from reader


def _percent(row: Mapping[str, Any], other: Mapping[str, Any], default_max: float | None) -> int | None:
    grade = _float(_cell(row, "grade"), "grade")
    if grade is None:
        final = _float(_cell(row, "finalgrade"), "finalgrade")
        if final is None:
            final = _float(other.get("finalgrade"), "finalgrade")
        top = _float(_cell(row, "grademax"), "grademax") or default_max
        if final is None or top is None:
            return None
        if top <= 0:
            raise Reject("bad_grademax", "grademax must be above 0")
        grade = final / top * 100
    if not 0 <= grade <= 100:
        raise Reject("bad_grade", f"a grade of {grade:g}% is outside 0..100")
    return int(grade + 0.5)


def _success(row: Mapping[str, Any], percent: int | None, mapping: IdMapping) -> int:
    stated = _cell(row, "success")
    if stated is not None:
        if str(stated) not in {"0", "1"}:
            raise Reject("bad_success", f"success must be 0 or 1, got {str(stated)[:10]!r}")
        return int(str(stated))
    gradepass = _float(_cell(row, "gradepass"), "gradepass")
    if gradepass is not None and percent is not None:
        return int(percent >= gradepass)
    return mapping.success_of(percent)


def _records(row: Any, mapping: IdMapping) -> list[Record]:
    if not isinstance(row, Mapping):
        raise Reject("not_a_row", f"a log row is a mapping of columns, got {type(row).__name__}")
    name = event_name(row)
    viewed = _VIEWED.fullmatch(name)
    if viewed is None and name not in _HANDLED:
        raise Reject("unused_event", f"{name[:100]} is not used by the scorer", IGNORED)
    other = _other(row)
    if name == _GRADED and "finalgrade" in other and other["finalgrade"] is None and _cell(row, "grade") is None:
        raise Reject("grade_cleared", "a grade was removed", IGNORED)
    row_id = _int(row, "id")
    event_id = f"moodle:{row_id}" if row_id is not None else f"moodle:{digest(dict(row))[:32]}"
    ts = unix_local_ts(_cell(row, "timecreated"), mapping.time_zone)
    if name in _ABOUT_RELATED:  # the student is relateduserid; userid is who acted (a teacher, the system)
        user_number = _int(row, "relateduserid")
        if user_number is None and name not in _HAND_INS:
            raise Reject("missing_relateduserid", f"{name} names its student in relateduserid")
        user_number = user_number or _int(row, "userid")
    else:
        user_number = _int(row, "userid")
    if not user_number:
        raise Reject("missing_user", "no userid (0 is nobody)")
    base = {"event_id": event_id, "user_id": mapping.user([f"moodle:{user_number}"], user_number), "ts": ts}

    if name == _LOGGED_IN:
        return [checked(Topic.AUTHORIZATIONS, base)]
    if name in _ENROLMENT:
        course = _required(row, "courseid")
        course_id = mapping.course([f"moodle:{course}"], course)
        if name == _ENROLMENT_DELETED:
            return [withdrawal(base, course_id)]
        return [checked(Topic.STUDENTS, {**base, "course_id": course_id})]
    if name == _GRADED:
        item = whole_integer(other.get("itemid"))
        if item is None:
            raise Reject("missing_itemid", "user_graded without other.itemid")
        activity = mapping.resolve("activities", [f"moodle:gradeitem:{item}"], item)
        percent = _percent(row, other, 100.0)
        return [checked(Topic.EXERCISE_RESULTS, with_optional(
            {**base, "activity_id": activity.id, "result": percent, "success": _success(row, percent, mapping),
             "attempt_id": GRADE_BOOK}, module=activity.module))]
    cmid = _required(row, "contextinstanceid")
    if viewed is not None:
        module_name = viewed.group(1)
        page = mapping.resolve("pages", [f"moodle:{cmid}"], cmid)
        page_type = page.page_type or (LESSON if module_name in LESSON_MODULES else ACTIVITY_PAGE)
        activity_type = page.activity_type or module_name[:50]
        return [checked(Topic.PAGE_VIEWS, with_optional(
            {**base, "page_type": page_type, "page_id": page.id, "activity_type": activity_type}, module=page.module))]
    if name in _HAND_INS:
        activity = mapping.resolve("activities", [f"moodle:{cmid}"], cmid)
        percent = None if name == _SUBMITTED else _percent(row, {}, None)
        if percent is None and (name == _SUBMITTED or _cell(row, "success") is None):
            return [hand_in(base, activity.id, GRADE_BOOK, activity.module)]
        attempt = _int(row, "objectid")
        return [checked(Topic.EXERCISE_RESULTS, with_optional(
            {**base, "activity_id": activity.id, "result": percent, "success": _success(row, percent, mapping)},
            attempt_id=None if attempt is None else f"moodle:attempt:{attempt}", module=activity.module))]
    webinar = mapping.resolve("webinars", [f"moodle:{cmid}"], cmid)  # a BigBlueButton meeting (_MEETINGS)
    return [checked(Topic.WEBINAR_EVENTS, with_optional(
        {**base, "event": _MEETINGS[name], "webinar_id": webinar.id, "conn_format": "онлайн"},
        module=webinar.module))]


def _required(row: Mapping[str, Any], name: str) -> int:
    number = _int(row, name)
    if number is None:
        raise Reject(f"missing_{name}", f"the row has no {name}")
    return number


#: The attempt_id of a student's grade in an activity: Moodle keeps it in one grade item, whose
#: grade it sends again whenever the value changes (a quiz attempt that changes it, a teacher's
#: edit), and a hand-in (a quiz attempt without its grade, an assignment submitted) is the work the
#: grade after it grades.
GRADE_BOOK = "moodle:grade"
_LOGGED_IN = "\\core\\event\\user_loggedin"
_ATTEMPT_SUBMITTED = "\\mod_quiz\\event\\attempt_submitted"
_SUBMITTED = "\\mod_assign\\event\\assessable_submitted"
_HAND_INS = frozenset({_ATTEMPT_SUBMITTED, _SUBMITTED})
_GRADED = "\\core\\event\\user_graded"
_ENROLMENT_CREATED = "\\core\\event\\user_enrolment_created"
_ENROLMENT_DELETED = "\\core\\event\\user_enrolment_deleted"
_MEETINGS = {"\\mod_bigbluebuttonbn\\event\\meeting_joined": CONNECT,
             "\\mod_bigbluebuttonbn\\event\\meeting_left": DISCONNECT}
_ENROLMENT = frozenset({_ENROLMENT_CREATED, _ENROLMENT_DELETED})
_ABOUT_RELATED = frozenset({*_HAND_INS, _GRADED, *_ENROLMENT})
_HANDLED = frozenset({_LOGGED_IN, *_ABOUT_RELATED, *_MEETINGS})
