"""xAPI 1.0.3 statements (ADL) -> contract records.

One statement becomes at most one record (two for `attended` with a duration), whose
`event_id` is the statement's `id` (a statement without one gets a UUID 5 of its content, so a
resent copy is recognised), whose `ts` is the statement's `timestamp` (else `stored`, else the
time it was received) in the school's local time, and whose `user_id` is the actor's mapped id
(streams.ingest.mapping: mbox, mbox_sha1sum, openid, or account homePage|name).

Mapping table (verb IRI -> record: fields). ADL = http://adlnet.gov/expapi/verbs/,
TINCAN = http://id.tincanapi.com/verb/, AS = http://activitystrea.ms/schema/1.0/.

- ADL logged-in, https://w3id.org/xapi/adl/verbs/logged-in, https://brindlewaye.com/xAPITerms/verbs/loggedin/
    -> authorization (any object).
- ADL launched, ADL initialized, ADL experienced, TINCAN viewed, the object **being the LMS itself**
  (its id is one of the mapping's `lms_roots`, a trailing slash aside)
    -> authorization.
- the same verbs on any other Activity
    -> page_view: page_id = pages[object.id]; page_type = the mapping's, else `занятие` for activity
       type http://adlnet.gov/expapi/activities/lesson, else `активность`; activity_type = the
       mapping's, else the last segment of object.definition.type; module = the mapping's.
- ADL answered, ADL passed, ADL failed, ADL completed, ADL scored, AS submit
    -> exercise_result: activity_id = activities[object.id]; result = result.score.scaled x 100,
       else (raw - min) / (max - min) x 100 (min 0 when absent), else raw when it lies in 0..100,
       else null (no score); clamped to 0..100 and rounded; success = result.success, else 1 for
       passed and 0 for failed, else result >= the mapping's pass_percent. Graded by someone else
       (`context.instructor` given: Moodle's logstore_xapi sends an assignment's grade as `scored`
       with the student as actor and the grader as instructor), attempt_id = `xapi:grade`, the
       student's grade in the activity: a regrade replaces it, and it is dated at the latest
       hand-in before it. With neither a score nor a verdict (result.success, passed,
       failed): a hand-in, exercise_result `pending` (result null, success 0, attempt_id
       `xapi:grade`): the student's activity, never an attempt by itself, and the work a teacher's
       later grade grades (logstore_xapi sends an assignment handed in as `submit`, or `completed`
       for Jisc). cmi5 has `completed` as a statement of its own beside `passed` or `failed`: read
       as a skip, it counted the unit twice, once failed; as a hand-in it is activity only.
- ADL attended, TINCAN attended
    -> webinar_event `Подключение` at timestamp, and `Отключение` at timestamp + result.duration
       when a duration is given (event_id `<id>/left`): webinar_id = webinars[object.id].
- ADL joined, TINCAN joined, AS join -> webinar_event `Подключение`: webinar_id = webinars[object.id].
- ADL left, TINCAN left, AS leave -> webinar_event `Отключение`: webinar_id = webinars[object.id].
- ADL registered -> student (a profile holding only the course): course_id = courses[object.id].
- TINCAN unregistered
    -> outcome (the student left the course then): course_id = courses[object.id]; module 2
       (streams.contract.OUTCOME_MODULE: the statement names none); progress and attestation null; result
       `withdrawn`.
- ADL voided -> rejected `unsupported` / `voided_statement`: published records cannot be retracted.
- a result verb on a course (activity type http://adlnet.gov/expapi/activities/course, or an id
  in the mapping's `courses`) -> rejected `unsupported` / `course_result`: no module outcome can
  be built from it.
- the mapping's `verbs` entries -> what they name (they take precedence over this table).
- any other verb -> rejected `ignored` / `unused_verb` (counted, not dead-lettered).

Invalid statements (rejected `invalid`, HTTP 400): not an object; an `id` that is not a UUID;
no actor, or an Agent without exactly one identifier (mbox `mailto:` IRI, 40-hex mbox_sha1sum,
openid IRI, account with homePage and name); a verb without an IRI id; no object, or an Activity
without an IRI id; an unreadable timestamp or duration; a score outside its bounds (scaled in
-1..1, min < max, raw within them); a `version` other than 1.0.x; a record the contract refuses
(e.g. a time before 2000). A Group actor or an object that is not an Activity is `unsupported`.
"""
from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from streams.contract import Topic
from streams.ingest.base import (
    IGNORED,
    INVALID,
    UNSUPPORTED,
    UUID,
    Mapped,
    Record,
    Reject,
    Rejection,
    checked,
    digest,
    hand_in,
    identified,
    iri,
    number,
    split,
    whole_percent,
    with_optional,
    withdrawal,
)
from streams.ingest.mapping import ACTIVITY_PAGE, LESSON, IdMapping
from streams.ingest.times import local_ts, parse_duration, parse_instant

SOURCE = "xapi"
ADL = "http://adlnet.gov/expapi/verbs/"
TINCAN = "http://id.tincanapi.com/verb/"
ACTIVITY_STREAMS = "http://activitystrea.ms/schema/1.0/"
LESSON_TYPE = "http://adlnet.gov/expapi/activities/lesson"
COURSE_TYPE = "http://adlnet.gov/expapi/activities/course"
VOIDED = ADL + "voided"
CONNECT, DISCONNECT = "Подключение", "Отключение"

#: Verb IRI -> what the statement becomes (see the table above).
VERBS: dict[str, str] = {
    ADL + "logged-in": "authorization",
    "https://w3id.org/xapi/adl/verbs/logged-in": "authorization",
    "https://brindlewaye.com/xAPITerms/verbs/loggedin/": "authorization",
    ADL + "launched": "page_view",
    ADL + "initialized": "page_view",
    ADL + "experienced": "page_view",
    TINCAN + "viewed": "page_view",
    ADL + "answered": "exercise_result",
    ADL + "passed": "exercise_result",
    ADL + "failed": "exercise_result",
    ADL + "completed": "exercise_result",
    ADL + "scored": "exercise_result",
    ACTIVITY_STREAMS + "submit": "exercise_result",
    ADL + "attended": "webinar_connect",
    TINCAN + "attended": "webinar_connect",
    ADL + "joined": "webinar_connect",
    TINCAN + "joined": "webinar_connect",
    ACTIVITY_STREAMS + "join": "webinar_connect",
    ADL + "left": "webinar_disconnect",
    TINCAN + "left": "webinar_disconnect",
    ACTIVITY_STREAMS + "leave": "webinar_disconnect",
    ADL + "registered": "enrollment",
    TINCAN + "unregistered": "withdrawal",
}
_ATTENDED = {ADL + "attended", TINCAN + "attended"}
#: The attempt_id of a student's grade in an activity as someone else gives it, and of the hand-ins
#: it grades: one attempt, whose latest grade counts, handed in when the student handed it in.
GRADE_BOOK = "xapi:grade"
_SHA1 = re.compile(r"[0-9a-fA-F]{40}")
_VERSION = re.compile(r"1\.0(\.\d+)?")
#: Statement ids made up for statements that carry none: UUID 5 of their content in this namespace.
ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://edu-scorer.example/ingest/xapi")


def statement_id(statement: Any) -> str:
    """The statement's id (lower case), or a UUID 5 of its content when it has none; Reject when
    the id it carries is not a UUID."""
    if not isinstance(statement, dict):
        raise Reject("not_an_object", f"a statement is a JSON object, got {type(statement).__name__}")
    given = statement.get("id")
    if given is None:
        return str(uuid.uuid5(ID_NAMESPACE, digest(statement)))
    if not isinstance(given, str) or not UUID.fullmatch(given):
        raise Reject("bad_statement_id", f"id must be a UUID, got {str(given)[:60]!r}")
    return given.lower()


def map_statement(statement: Any, mapping: IdMapping, received_at: datetime | None = None) -> Mapped:
    """One statement -> its records, or a rejection (never raises). `received_at` dates a
    statement that carries neither timestamp nor stored (the HTTP endpoint passes the arrival time)."""
    return identified(SOURCE, statement, statement_id, lambda sid: _records(statement, sid, mapping, received_at))


def map_statements(statements: Iterable[Any], mapping: IdMapping,
                   received_at: datetime | None = None) -> list[Mapped]:
    return [map_statement(s, mapping, received_at) for s in statements]


def from_statements(statements: Iterable[Any], mapping: IdMapping,
                    received_at: datetime | None = None) -> tuple[list[Record], list[Rejection]]:
    """Statements -> (records, rejections)."""
    return split(map_statements(statements, mapping, received_at))


# -- the parts of a statement ---------------------------------------------------------------------
def _actor(actor: object) -> tuple[list[str], object]:
    """The mapping keys of an Agent, and what the numeric fallback may read (an account name)."""
    if not isinstance(actor, dict):
        raise Reject("bad_actor", "actor must be an Agent object")
    kind = actor.get("objectType", "Agent")
    if kind == "Group":
        raise Reject("group_actor", "a Group is not a student", UNSUPPORTED)
    if kind != "Agent":
        raise Reject("bad_actor", f"actor.objectType must be Agent or Group, got {str(kind)[:40]!r}")
    present = [name for name in ("mbox", "mbox_sha1sum", "openid", "account") if name in actor]
    if len(present) != 1:
        raise Reject("bad_actor", f"an Agent has exactly one of mbox, mbox_sha1sum, openid, account; got {present}")
    name = present[0]
    value = actor[name]
    if name == "mbox":
        if not isinstance(value, str) or not value.lower().startswith("mailto:") or "@" not in value:
            raise Reject("bad_actor", "actor.mbox must be a mailto: IRI")
        return [value.lower()], None
    if name == "mbox_sha1sum":
        if not isinstance(value, str) or not _SHA1.fullmatch(value):
            raise Reject("bad_actor", "actor.mbox_sha1sum must be 40 hex digits")
        return [f"sha1:{value.lower()}"], None
    if name == "openid":
        return [f"openid:{iri(value, 'actor')}"], None
    if not isinstance(value, dict) or not isinstance(value.get("name"), str) or not value["name"]:
        raise Reject("bad_actor", "actor.account needs homePage and name")
    home = iri(value.get("homePage"), "actor")
    return [f"account:{home}|{value['name']}"], value["name"]


def _percent(result: dict[str, Any]) -> int | None:
    """result.score as 0..100 (see the table), None without a score."""
    score = result.get("score")
    if score is None:
        return None
    if not isinstance(score, dict):
        raise Reject("bad_score", "result.score must be an object")
    scaled, raw = number(score.get("scaled"), "result.score.scaled"), number(score.get("raw"), "result.score.raw")
    low, high = number(score.get("min"), "result.score.min"), number(score.get("max"), "result.score.max")
    if scaled is not None and not -1 <= scaled <= 1:
        raise Reject("bad_score", f"result.score.scaled must be within -1..1, got {scaled}")
    if low is not None and high is not None and not low < high:
        raise Reject("bad_score", "result.score.min must be below max")
    if raw is not None and ((low is not None and raw < low) or (high is not None and raw > high)):
        raise Reject("bad_score", "result.score.raw must lie within min..max")
    if scaled is not None:
        percent = scaled * 100
    elif raw is not None and high is not None:
        floor = low if low is not None else 0.0
        if high <= floor:
            raise Reject("bad_score", "result.score.max must be above min (0 when absent)")
        percent = (raw - floor) / (high - floor) * 100
    elif raw is not None and 0 <= raw <= 100:
        percent = raw
    elif raw is not None:
        raise Reject("unscorable_result", f"a raw score of {raw} without max cannot be read as 0..100", UNSUPPORTED)
    else:
        return None
    return whole_percent(percent)


def _moment(statement: dict[str, Any], received_at: datetime | None) -> datetime:
    for name in ("timestamp", "stored"):
        if statement.get(name) is not None:
            return parse_instant(statement[name])
    if received_at is None:
        raise Reject("missing_timestamp", "the statement has neither timestamp nor stored")
    return received_at


def _result(statement: dict[str, Any]) -> dict[str, Any]:
    result = statement.get("result")
    if result is None:
        return {}
    if not isinstance(result, dict):
        raise Reject("bad_result", "result must be an object")
    if "success" in result and not isinstance(result["success"], bool):
        raise Reject("bad_result", "result.success must be true or false")
    return result


def _names_an_instructor(statement: dict[str, Any]) -> bool:
    """context.instructor given: on a result, a grade someone else gave the actor's work."""
    context = statement.get("context")
    if context is None:
        return False
    if not isinstance(context, dict):
        raise Reject("bad_context", "context must be an object")
    return context.get("instructor") is not None


def _type_name(type_iri: str | None) -> str | None:
    if not type_iri:
        return None
    name = type_iri.rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1]
    return name[:50] or None


# -- a statement ---------------------------------------------------------------------------------
def _records(statement: dict[str, Any], sid: str, mapping: IdMapping, received_at: datetime | None) -> list[Record]:
    version = statement.get("version")
    if version is not None and (not isinstance(version, str) or not _VERSION.fullmatch(version)):
        raise Reject("unsupported_version", f"xAPI version {str(version)[:20]!r}; 1.0.x is understood")
    for required in ("actor", "verb", "object"):
        if statement.get(required) is None:
            raise Reject(f"missing_{required}", f"a statement needs {required}")
    verb = statement["verb"]
    if not isinstance(verb, dict):
        raise Reject("bad_verb", "verb must be an object")
    verb_id = iri(verb.get("id"), "verb")
    obj = statement["object"]
    if not isinstance(obj, dict):
        raise Reject("bad_object", "object must be an object")
    object_type = obj.get("objectType", "Activity")
    if not isinstance(object_type, str) or object_type not in {"Activity", "Agent", "Group", "StatementRef",
                                                               "SubStatement"}:
        raise Reject("bad_object", f"object.objectType {str(object_type)[:40]!r} is not an xAPI object type")
    keys, fallback = _actor(statement["actor"])
    moment = _moment(statement, received_at)
    result = _result(statement)
    graded_by_someone_else = _names_an_instructor(statement)
    duration = parse_duration(result["duration"]) if result.get("duration") is not None else None
    definition = obj.get("definition")
    type_iri = definition.get("type") if isinstance(definition, dict) else None
    if type_iri is not None:
        type_iri = iri(type_iri, "object")
    object_id = iri(obj.get("id"), "object") if object_type == "Activity" else None
    if object_type == "StatementRef" and not (isinstance(obj.get("id"), str) and UUID.fullmatch(obj["id"])):
        raise Reject("bad_object", "a StatementRef's id must be a UUID")
    if verb_id == VOIDED:
        if object_type != "StatementRef":
            raise Reject("bad_object", "a voiding statement's object must be a StatementRef")
        raise Reject("voided_statement", "a voiding statement; published records cannot be retracted", UNSUPPORTED)
    kind = mapping.verbs.get(verb_id) or VERBS.get(verb_id)
    if kind is None or kind == "ignore":
        raise Reject("unused_verb", f"verb {verb_id[:200]} is not used by the scorer", IGNORED)
    user_id = mapping.user(keys, fallback)
    ts = local_ts(moment, mapping.time_zone)
    base = {"event_id": sid, "user_id": user_id, "ts": ts}
    if kind == "authorization":
        return [checked(Topic.AUTHORIZATIONS, base)]
    if object_type != "Activity" or object_id is None:
        raise Reject("object_not_activity", f"verb {verb_id[:200]} on a {object_type}", UNSUPPORTED)
    if kind == "page_view":
        if mapping.is_lms_root(object_id):
            return [checked(Topic.AUTHORIZATIONS, base)]
        page = mapping.resolve("pages", [object_id], object_id)
        page_type = page.page_type or (LESSON if type_iri == LESSON_TYPE else ACTIVITY_PAGE)
        return [checked(Topic.PAGE_VIEWS, with_optional({**base, "page_type": page_type, "page_id": page.id},
                                                        module=page.module,
                                                        activity_type=page.activity_type or _type_name(type_iri)))]
    if kind == "exercise_result":
        if type_iri == COURSE_TYPE or mapping.is_course(object_id):
            raise Reject("course_result", "a result for a whole course: the contract's outcome needs a module, "
                         "progress and attestation", UNSUPPORTED)
        percent = _percent(result)
        activity = mapping.resolve("activities", [object_id], object_id)
        if percent is None and "success" not in result and verb_id not in {ADL + "passed", ADL + "failed"}:
            return [hand_in(base, activity.id, GRADE_BOOK, activity.module)]
        if "success" in result:
            success = int(result["success"])
        elif verb_id == ADL + "passed":
            success = 1
        elif verb_id == ADL + "failed":
            success = 0
        else:
            success = mapping.success_of(percent)
        return [checked(Topic.EXERCISE_RESULTS, with_optional(
            {**base, "activity_id": activity.id, "result": percent, "success": success}, module=activity.module,
            attempt_id=GRADE_BOOK if graded_by_someone_else else None))]
    if kind in {"webinar_connect", "webinar_disconnect"}:
        webinar = mapping.resolve("webinars", [object_id], object_id)
        event = CONNECT if kind == "webinar_connect" else DISCONNECT
        records = [checked(Topic.WEBINAR_EVENTS, with_optional({**base, "event": event, "webinar_id": webinar.id},
                                                               module=webinar.module))]
        if verb_id in _ATTENDED and duration is not None:
            left = local_ts(moment + timedelta(seconds=duration), mapping.time_zone)
            records.append(checked(Topic.WEBINAR_EVENTS, with_optional(
                {**base, "event_id": f"{sid}/left", "ts": left, "event": DISCONNECT, "webinar_id": webinar.id},
                module=webinar.module)))
        return records
    if kind in {"enrollment", "withdrawal"}:
        course_id = mapping.course([object_id], object_id)
        if kind == "withdrawal":
            return [withdrawal(base, course_id)]
        return [checked(Topic.STUDENTS, {**base, "course_id": course_id})]
    raise Reject("unused_verb", f"verb kind {kind}", INVALID)  # unreachable: VERB_KINDS is closed
