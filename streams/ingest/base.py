"""What every adapter returns: contract records, or a rejection that says why.

An adapter maps one input item (an xAPI statement, a Caliper event, an Open edX tracking-log
event, a Moodle log row) to zero or more contract records, each validated against its topic's JSON Schema,
or to one `Rejection`. A rejection's `kind` says what becomes of it:

| kind          | meaning                                                        | dead-lettered | HTTP |
|---------------|----------------------------------------------------------------|---------------|------|
| `invalid`     | the input breaks its own format or the contract (bad JSON,     | yes           | 400  |
|               | missing actor, bad timestamp, a record the schema refuses)     |               |      |
| `unmapped`    | well formed, but an identifier has no mapping and no numeric   | yes           | 200  |
|               | fallback applies: fix the mapping file and replay it           |               |      |
| `unsupported` | a fact the contract cannot carry yet (a voided statement, a    | yes           | 200  |
|               | course-level grade)                                            |               |      |
| `ignored`     | an event the scorer has no use for (forum posts, video pauses) | no (counted)  | 200  |

`reason` is a short stable label (a metric label value); `detail` is for people.

A student leaving a course (Moodle enrolment deleted, Open edX enrollment deactivated, xAPI
unregistered, a Caliper membership deleted or deactivated) is no rejection: each adapter maps it
to the outcome `withdrawal` builds.

The helpers below are what more than one adapter reads the same way: IRIs, UUIDs, scores and
the boundary of one input item.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from streams.contract import OUTCOME_MODULE, InvalidEvent, Topic, dead_letter, encode, validate

log = logging.getLogger(__name__)

INVALID, UNMAPPED, UNSUPPORTED, IGNORED = "invalid", "unmapped", "unsupported", "ignored"
KINDS = (INVALID, UNMAPPED, UNSUPPORTED, IGNORED)
#: An IRI as xAPI and Caliper identify things by (a scheme, a colon, no white space), and its longest accepted form.
_IRI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S+")
MAX_IRI = 2048
#: A UUID in its canonical text form (any case).
UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

#: A contract record and its topic.
Record = tuple[Topic, dict[str, Any]]


class Reject(Exception):
    """Raised inside an adapter; the item boundary turns it into a Rejection."""

    def __init__(self, reason: str, detail: str, kind: str = INVALID) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.kind = kind


def raw_bytes(raw: Any) -> bytes:
    """The original input as bytes for the dead-letter topic (text as is, JSON values as JSON)."""
    if isinstance(raw, bytes):
        return raw
    if isinstance(raw, str):
        return raw.encode("utf-8", "backslashreplace")
    try:
        return orjson.dumps(raw)
    except (TypeError, orjson.JSONEncodeError):  # a huge integer, a lone surrogate, a non-JSON object
        return json.dumps(raw, ensure_ascii=True, default=repr).encode("ascii")


def digest(raw: Any) -> str:
    """A stable content hash (sorted keys): equal inputs give equal digests."""
    try:
        text = orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        try:
            text = json.dumps(raw, ensure_ascii=True, sort_keys=True, default=repr).encode("ascii")
        except (TypeError, ValueError, RecursionError):
            text = repr(raw).encode("utf-8", "backslashreplace")
    return hashlib.sha1(text).hexdigest()


@dataclass(frozen=True)
class Rejection:
    """An input item that did not become records, with why."""

    reason: str
    detail: str
    raw: Any
    kind: str = INVALID
    source: str = ""  # "xapi", "caliper", "openedx", "moodle", or the physical topic of a native record
    ref: str | None = None  # statement id, event id or line number, when known

    @property
    def dead_lettered(self) -> bool:
        return self.kind != IGNORED

    def dead_letter(self) -> dict[str, Any]:
        """The contract's dead-letter record (raw value capped, with its size and hash)."""
        letter = dead_letter(self.source or "ingest", InvalidEvent(self.reason, self.detail),
                             value=raw_bytes(self.raw), key=None)
        letter["kind"] = self.kind
        if self.ref is not None:
            letter["ref"] = self.ref[:128]
        return letter


@dataclass
class Mapped:
    """What one input item became: records, or a rejection (never both)."""

    ref: str | None
    raw: Any
    records: list[Record] = field(default_factory=list)
    rejection: Rejection | None = None


def iri(value: object, what: str) -> str:
    """`value` when it is an IRI, else Reject `bad_<what>`."""
    if not isinstance(value, str) or len(value) > MAX_IRI or not _IRI.fullmatch(value):
        raise Reject(f"bad_{what}", f"{what} needs an IRI, got {str(value)[:80]!r}")
    return value


def number(value: object, label: str) -> float | None:
    """A finite JSON number as a float (None stays None), else Reject `bad_score` naming `label`."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise Reject("bad_score", f"{label} must be a number")
    return float(value)


def whole_percent(percent: float) -> int:
    """A percentage clamped to 0..100 and rounded half up: the contract's `result`. A ratio's binary
    fuzz is dropped first, so 5.55 of 10 (55.49999...) rounds to 56 as its reader would."""
    return math.floor(round(min(100.0, max(0.0, percent)), 9) + 0.5)


#: The contract's longest attempt_id; a longer LMS id is shortened to its SHA-256.
MAX_ATTEMPT_ID = 128


def attempt_id(lms_id: str) -> str:
    """The contract's attempt_id for an LMS's id of an attempt (any length)."""
    if len(lms_id) <= MAX_ATTEMPT_ID:
        return lms_id
    return "sha256:" + hashlib.sha256(lms_id.encode("utf-8", "surrogatepass")).hexdigest()


def not_graded(what: str) -> Reject:
    """A hand-in without a score that names no attempt: nothing its grade could join (one that names
    its attempt is a `pending` hand-in). Read as a skip, it was counted twice, as a failed attempt
    and again when its grade came, which halved the student's success index."""
    return Reject("not_graded", f"{what} without a score: its grade comes as an event of its own", IGNORED)


def with_optional(record: dict[str, Any], **optional: Any) -> dict[str, Any]:
    """`record` with those of `optional` that are not None (the contract's optional fields)."""
    record.update({k: v for k, v in optional.items() if v is not None})
    return record


def checked(topic: Topic, record: dict[str, Any]) -> Record:
    """A record the contract accepts and orjson can write, else Reject (kind invalid)."""
    try:
        validate(topic, record)
        encode(record)
    except InvalidEvent as error:
        raise Reject(error.reason, error.detail) from None
    except (TypeError, orjson.JSONEncodeError) as error:
        raise Reject("unencodable", str(error)[:200]) from None
    return topic, record


def withdrawal(base: dict[str, Any], course_id: int) -> Record:
    """A student who left a course: the contract's outcome at the moment they left, with the LMS's
    verdict `withdrawn` (the dropout label at withdrawal time); the LMS states no progress or
    attestation when someone leaves, so both are null (unknown)."""
    return checked(Topic.OUTCOMES, {**base, "course_id": course_id, "module": OUTCOME_MODULE, "progress": None,
                                    "attestation": None, "result": "withdrawn"})


def hand_in(base: dict[str, Any], activity_id: int, attempt: str, module: int | None) -> Record:
    """Work handed in without a score: the contract's `pending` exercise result of a named attempt (the
    student's activity, and the time of the work the attempt's later grade grades)."""
    return checked(Topic.EXERCISE_RESULTS, with_optional(
        {**base, "activity_id": activity_id, "result": None, "success": 0, "attempt_id": attempt, "pending": True},
        module=module))


def guarded(source: str, raw: Any, ref: str | None, build: Callable[[], list[Record]]) -> Mapped:
    """Run one item's mapping; whatever it raises becomes a Rejection, so no input can stop a batch.
    An unexpected exception is a bug: it is logged and rejected as `internal_error` (the property
    tests assert that none occurs)."""
    try:
        return Mapped(ref, raw, build())
    except Reject as rejected:
        return Mapped(ref, raw, rejection=Rejection(rejected.reason, rejected.detail[:1000], raw, rejected.kind,
                                                    source, ref))
    except RecursionError:
        return Mapped(ref, raw, rejection=Rejection("too_deep", "nesting too deep", raw, INVALID, source, ref))
    except Exception as error:  # the boundary of one input item: a bug must not stop the batch
        log.exception("mapping a %s item failed", source)
        return Mapped(ref, raw, rejection=Rejection("internal_error", f"{type(error).__name__}: {error}"[:1000], raw,
                                                    INVALID, source, ref))


def identified(source: str, raw: Any, identify: Callable[[Any], str], build: Callable[[str], list[Record]]) -> Mapped:
    """`guarded`, for items that carry their own id (an xAPI statement, a Caliper event): the id
    `identify` reads is the item's ref; an item whose id cannot be read is rejected without one."""
    try:
        ref = identify(raw)
    except Reject as rejected:
        return Mapped(None, raw, rejection=Rejection(rejected.reason, rejected.detail, raw, rejected.kind, source))
    return guarded(source, raw, ref, lambda: build(ref))


def split(items: Iterable[Mapped]) -> tuple[list[Record], list[Rejection]]:
    """All records (in input order) and all rejections of a batch."""
    records: list[Record] = []
    rejections: list[Rejection] = []
    for item in items:
        records.extend(item.records)
        if item.rejection is not None:
            rejections.append(item.rejection)
    return records, rejections
