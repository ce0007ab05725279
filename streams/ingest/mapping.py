"""The identifier mapping: how xAPI, Caliper, Open edX and Moodle identifiers become the contract's integer ids.

The contract keys everything by integers (user_id, course_id, page_id, activity_id, webinar_id);
the sources name things by e-mail addresses, account names, IRIs and opaque keys. A mapping
file (YAML or JSON; its path is `SCORER_INGEST_MAPPING`, empty: the defaults below) says which
is which. Example, every key optional:

```yaml
numeric_fallback: true     # unmapped ids -> their trailing integer (true, false, or a list of sections)
pass_percent: 50           # a score at least this is a success when the source states no pass/fail
                           # (null: never inferred, success 0)
lms_roots: [https://lms.example.edu]   # xAPI / Caliper objects that are the LMS itself: launching,
                                       # viewing or navigating to it is a login
verbs:                     # xAPI verbs added or overridden (IRI -> authorization, page_view,
  https://example.edu/verbs/watched: page_view   # exercise_result, webinar_connect, webinar_disconnect,
                                                 # enrollment, withdrawal, ignore)
users:
  mailto:alice@example.edu: 1001                  # xAPI actor.mbox (case-insensitive)
  sha1:ebd31e95054c018b10727ccffd2ef2ec3a016ee9: 1002   # xAPI actor.mbox_sha1sum
  openid:https://id.example.edu/carol: 1003       # xAPI actor.openid
  account:https://lms.example.edu|dave: 1004      # xAPI actor.account: homePage|name
  https://lms.example.edu/users/554433: 1004      # Caliper Person id (an IRI, as is)
  urn:instructure:canvas:user:21070000000020064: 1007   # ... as Canvas writes it
  openedx:username:erin: 1005                     # Open edX username
  openedx:user_id:42: 1005                        # Open edX context.user_id / event.user_id
  moodle:17: 1006                                 # Moodle userid / relateduserid
courses:
  https://lms.example.edu/courses/python: 7       # xAPI course activity IRI; Caliper CourseOffering or
                                                  # CourseSection id (Canvas: urn:instructure:canvas:course:<id>)
  course-v1:SchoolX+PY101+2024_T1: 7              # Open edX course key
  moodle:12: 7                                    # Moodle courseid
pages:                                            # viewed pages: an id, or an object
  https://lms.example.edu/lessons/intro: {id: 3015, page_type: lesson, module: 2}
  block-v1:SchoolX+PY101+2024_T1+type@sequential+block@intro: 3015
  moodle:345: {id: 8719, page_type: activity}     # Moodle course module id (contextinstanceid)
activities:                                       # graded exercises (exercise_result.activity_id)
  https://lms.example.edu/quizzes/loops: 13278
  block-v1:SchoolX+PY101+2024_T1+type@problem+block@loops: 13278
  moodle:346: 13278                               # quiz course module id
  moodle:gradeitem:91: 13278                      # Moodle grade item id (user_graded)
webinars:
  https://lms.example.edu/webinars/kickoff: 13378
  moodle:400: 13378                               # BigBlueButton course module id
```

Resolution, for each identifier: the keys above in order; then, if `numeric_fallback` is on for
the section, the **trailing integer** of the identifier: its last segment when that is all
ASCII digits (segments end at / : @ + # = ? & . , ; _ -), e.g. `https://lms/activities/8719` ->
8719, `...+type@problem+block@13278` -> 13278, `page.php?id=345` -> 345, a Moodle or Open edX
numeric id -> itself. Users are stricter: only an identifier that is entirely digits (an
account name `72002`, an Open edX or Moodle user id, the last segment of a Caliper Person IRI
such as `https://lms/users/554433` or `urn:instructure:canvas:user:21070000000020064`) falls
back; an e-mail address never does.
Otherwise the item is rejected as `unmapped_<section>` (kind `unmapped`: dead-lettered, so it can
be put back with `scorer redrive` once the mapping knows the identifier).

`page_type` is `lesson` (the seed's 'занятие', page_id = task id) or `activity` ('активность',
page_id = activity id); without it each adapter documents its default. `module` and
`activity_type` are copied into the records that carry them.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from pathlib import Path
from typing import Any

import yaml

from features.eventtime import zone_named
from streams.ingest.base import UNMAPPED, Reject
from streams.unusable import UnusableInput

SECTIONS = ("users", "courses", "pages", "activities", "webinars")
_SINGULAR = {"users": "user", "courses": "course", "pages": "page", "activities": "activity", "webinars": "webinar"}
LESSON, ACTIVITY_PAGE = "занятие", "активность"
PAGE_TYPES = {"lesson": LESSON, "activity": ACTIVITY_PAGE, LESSON: LESSON, ACTIVITY_PAGE: ACTIVITY_PAGE}
#: What an xAPI verb can be mapped to (see streams.ingest.xapi): enrollment is a student profile of
#: the object's course, withdrawal the outcome `withdrawn` of leaving it.
VERB_KINDS = ("authorization", "page_view", "exercise_result", "webinar_connect", "webinar_disconnect",
              "enrollment", "withdrawal", "ignore")
MAX_ID = 2**63 - 1
MAX_MODULE = 2**31 - 1
_TOP_LEVEL = {"numeric_fallback", "pass_percent", "lms_roots", "verbs", *SECTIONS}
_TARGET_FIELDS = {"id", "page_type", "module", "activity_type"}
_TRAILING = re.compile(r"(?:^|[/:@+#=?&.,;_-])([0-9]{1,19})/?$")
_WHOLE = re.compile(r"[0-9]{1,19}")


class MappingError(UnusableInput):
    """The mapping file is wrong; the message names the entry."""


@dataclass(frozen=True)
class Target:
    """What an identifier maps to: the contract id and what the record may carry with it."""

    id: int
    page_type: str | None = None
    module: int | None = None
    activity_type: str | None = None


def trailing_integer(text: str) -> int | None:
    """The identifier's last segment when it is all ASCII digits (and fits a BIGINT), else None."""
    match = _TRAILING.search(text.strip())
    if match is None:
        return None
    value = int(match.group(1))
    return value if value <= MAX_ID else None


def whole_integer(value: object) -> int | None:
    """An integer id written as an int or as ASCII digits only, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value <= MAX_ID else None
    if isinstance(value, str) and _WHOLE.fullmatch(value.strip()):
        number = int(value.strip())
        return number if number <= MAX_ID else None
    return None


def _key(section: str, key: str) -> str:
    """Keys compare exactly, except users' e-mail addresses and SHA-1 sums (case-insensitive)."""
    if section == "users" and (key[:7].lower() == "mailto:" or key[:5].lower() == "sha1:"):
        return key.lower()
    return key


@dataclass(frozen=True)
class IdMapping:
    time_zone: tzinfo = UTC
    zone_name: str = "UTC"
    numeric_fallback: frozenset[str] = frozenset(SECTIONS)
    pass_percent: float | None = 50.0
    lms_roots: frozenset[str] = frozenset()  # without a trailing slash
    verbs: Mapping[str, str] = field(default_factory=dict)
    users: Mapping[str, int] = field(default_factory=dict)
    courses: Mapping[str, int] = field(default_factory=dict)
    pages: Mapping[str, Target] = field(default_factory=dict)
    activities: Mapping[str, Target] = field(default_factory=dict)
    webinars: Mapping[str, Target] = field(default_factory=dict)

    # -- lookups --------------------------------------------------------------------------------
    def resolve(self, section: str, keys: Iterable[str], fallback: object = None) -> Target:
        """The first mapped key; else the numeric fallback of `fallback` (users: a whole integer,
        others: the trailing integer); else Reject `unmapped_<section>`."""
        table: Mapping[str, Any] = getattr(self, section)
        tried = []
        for key in keys:
            found = table.get(_key(section, key))
            if found is not None:
                return found if isinstance(found, Target) else Target(found)
            tried.append(key)
        if section in self.numeric_fallback and fallback is not None:
            if section == "users":
                number = whole_integer(fallback)
                if number is not None and number >= 1:
                    return Target(number)
            else:
                number = whole_integer(fallback)
                if number is None and isinstance(fallback, str):
                    number = trailing_integer(fallback)
                if number is not None:
                    return Target(number)
        shown = ", ".join(repr(t[:200]) for t in tried) or repr(str(fallback)[:200])
        raise Reject(f"unmapped_{_SINGULAR[section]}", f"no {_SINGULAR[section]} id for {shown}", UNMAPPED)

    def user(self, keys: Iterable[str], fallback: object = None) -> int:
        return self.resolve("users", keys, fallback).id

    def course(self, keys: Iterable[str], fallback: object = None) -> int:
        return self.resolve("courses", keys, fallback).id

    def is_course(self, key: str) -> bool:
        return key in self.courses

    def is_lms_root(self, key: str) -> bool:
        """Whether an object id is the LMS itself (one of `lms_roots`, a trailing slash aside)."""
        return key.rstrip("/") in self.lms_roots

    def success_of(self, percent: int | None) -> int:
        """Success when the source states none: the score against `pass_percent`."""
        if percent is None or self.pass_percent is None:
            return 0
        return int(percent >= self.pass_percent)

    # -- loading --------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: object, time_zone: str = "UTC") -> IdMapping:
        """The mapping file's content; `time_zone` is the school's (the setting SCORER_SCHOOL_TIME_ZONE,
        which the worker reads too: one zone for both)."""
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise MappingError("the mapping file must hold an object (a YAML mapping or a JSON object)")
        if "time_zone" in data:
            raise MappingError("time_zone is the setting SCORER_SCHOOL_TIME_ZONE (the worker reads it too), "
                               "not a mapping entry")
        unknown = set(data) - _TOP_LEVEL
        if unknown:
            raise MappingError(f"unknown entries {sorted(map(str, unknown))}; known: {sorted(_TOP_LEVEL)}")
        zone_name = time_zone
        try:
            zone = zone_named(zone_name)
        except ValueError as error:
            raise MappingError(f"time_zone: {error}") from None
        return cls(
            time_zone=zone, zone_name=zone_name, numeric_fallback=_fallback(data.get("numeric_fallback", True)),
            pass_percent=_pass_percent(data.get("pass_percent", 50.0)),
            lms_roots=frozenset(root.rstrip("/") for root in _strings(data.get("lms_roots") or [], "lms_roots")),
            verbs=_verbs(data.get("verbs") or {}),
            users=_ids(data.get("users") or {}, "users", minimum=1),
            courses=_ids(data.get("courses") or {}, "courses", minimum=0),
            pages=_targets(data.get("pages") or {}, "pages"),
            activities=_targets(data.get("activities") or {}, "activities"),
            webinars=_targets(data.get("webinars") or {}, "webinars"),
        )

    @classmethod
    def load(cls, path: str | Path | None, time_zone: str = "UTC") -> IdMapping:
        """The mapping file at `path`, the one SCORER_INGEST_MAPPING names (.json: JSON; otherwise YAML, which
        also reads JSON); an empty path: the defaults. Every MappingError names the setting and the file."""
        if not path:
            return cls.from_dict({}, time_zone)
        where = f"SCORER_INGEST_MAPPING {path}"
        try:
            text = Path(path).read_text("utf-8")
        except OSError as error:  # missing, a directory, not readable
            raise MappingError(f"{where}: {error.strerror}") from None
        try:
            data = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError) as error:
            raise MappingError(f"{where}: {error}") from None
        try:
            return cls.from_dict(data, time_zone)
        except MappingError as error:
            raise MappingError(f"{where}: {error}") from None


def _fallback(value: object) -> frozenset[str]:
    if isinstance(value, bool):
        return frozenset(SECTIONS) if value else frozenset()
    names = _strings(value, "numeric_fallback")
    wrong = set(names) - set(SECTIONS)
    if wrong:
        raise MappingError(f"numeric_fallback: unknown sections {sorted(wrong)}; known: {list(SECTIONS)}")
    return frozenset(names)


def _pass_percent(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
        raise MappingError("pass_percent must be a number from 0 to 100, or null")
    return float(value)


def _strings(value: object, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise MappingError(f"{where} must be a list of non-empty strings")
    return list(value)


def _verbs(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        raise MappingError("verbs must map verb IRIs to kinds")
    out = {}
    for iri, kind in value.items():
        if not isinstance(iri, str) or kind not in VERB_KINDS:
            raise MappingError(f"verbs[{iri!r}]: {kind!r} is not one of {list(VERB_KINDS)}")
        out[iri] = kind
    return out


def _id(value: object, where: str, minimum: int, maximum: int = MAX_ID) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise MappingError(f"{where} must be an integer from {minimum} to {maximum}, got {value!r}")
    return value


def _section(value: object, section: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MappingError(f"{section} must map identifiers to ids")
    out = {}
    for key, entry in value.items():
        if isinstance(key, int) and not isinstance(key, bool):
            key = str(key)  # YAML reads `17: 1001` as a number
        if not isinstance(key, str) or not key:
            raise MappingError(f"{section}: every identifier must be a non-empty string, got {key!r}")
        out[key] = entry
    return out


def _ids(value: object, section: str, minimum: int) -> dict[str, int]:
    return {_key(section, key): _id(v, f"{section}[{key!r}]", minimum) for key, v in _section(value, section).items()}


def _targets(value: object, section: str) -> dict[str, Target]:
    out = {}
    for key, entry in _section(value, section).items():
        where = f"{section}[{key!r}]"
        if isinstance(entry, dict):
            unknown = set(entry) - _TARGET_FIELDS
            if unknown or "id" not in entry:
                raise MappingError(f"{where} needs `id` and may have {sorted(_TARGET_FIELDS - {'id'})}, "
                                   f"got {sorted(map(str, entry))}")
            page_type = entry.get("page_type")
            if page_type is not None and page_type not in PAGE_TYPES:
                raise MappingError(f"{where}.page_type must be lesson or activity, got {page_type!r}")
            module = entry.get("module")
            activity_type = entry.get("activity_type")
            if activity_type is not None and (not isinstance(activity_type, str) or len(activity_type) > 50):
                raise MappingError(f"{where}.activity_type must be a string of at most 50 characters")
            out[key] = Target(_id(entry["id"], f"{where}.id", 0),
                              PAGE_TYPES[page_type] if page_type is not None else None,
                              None if module is None else _id(module, f"{where}.module", 0, MAX_MODULE),
                              activity_type)
        else:
            out[key] = Target(_id(entry, where, 0))
    return out
