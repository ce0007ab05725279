"""Tokens in HTTP `Authorization` headers, compared in constant time: one reading for the read API, the
console and the LMS's door (`scorer ingest`), which must not import the worker's web app to share it.

Each door also takes a *previous* token while one is being replaced (SCORER_API_TOKEN_PREVIOUS,
SCORER_INGEST_TOKEN_PREVIOUS): the clients move to the new token one by one, none is refused meanwhile,
and a counter of the requests still presenting the old one says when it can be dropped.

The read API and the console also take *people's own* tokens (SCORER_API_TOKENS_FILE: a curator, an analyst),
so one who leaves is removed alone, without giving everyone else a new token, and a console login is
logged with the name; a person's line may name the only courses whose students they read (a curator of two
courses sees those two)."""
from __future__ import annotations

import hmac
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

#: How long a request that presented a wrong token waits for its answer, at every door that takes a token: a
#: client guessing one at a time gets at most one guess a second per connection; a client with a stale token
#: waits a second to hear it.
WRONG_TOKEN_DELAY_SECONDS = 1.0
#: No configured token may be shorter: a script could guess it through a login form.
MIN_TOKEN_CHARS = 16
#: Who the record of students' data reads names for the shared tokens (a person's token names the person).
SHARED_READER = "shared token"
PREVIOUS_READER = "shared token (previous)"
#: How a people's file line names the only courses one reads.
COURSES = "courses="


def authorization(header: str | None) -> tuple[str, str] | None:
    """(scheme in lower case, credentials) of an `Authorization` header, else None."""
    if not header:
        return None
    scheme, _, credentials = header.strip().partition(" ")
    credentials = credentials.strip()
    return (scheme.lower(), credentials) if credentials else None


def bearer_credentials(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (scheme case-insensitive), else None."""
    found = authorization(header)
    return found[1] if found is not None and found[0] == "bearer" else None


def token_matches(given: str, expected: str) -> bool:
    """Constant-time comparison, as bytes: compare_digest refuses non-ASCII str, and a header
    may hold anything (surrogatepass encodes every str, lone surrogates included)."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


@dataclass(frozen=True)
class Reader:
    """Who reads students' data, as the record of reads names them, and the courses whose students they may read
    (None: every course; the shared tokens' holders read every course)."""

    name: str
    courses: frozenset[int] | None = None

    def may_read(self, course_id: int | None) -> bool:
        """May they read an enrolment of this course (None: an enrolment of no known course, which only a reader
        of every course reads)?"""
        return self.courses is None or course_id in self.courses


@dataclass(frozen=True)
class Person:
    """A line of SCORER_API_TOKENS_FILE: a name, their own token, and the courses they read (None: all)."""

    name: str
    token: str
    courses: frozenset[int] | None = None

    @property
    def reader(self) -> Reader:
        return Reader(self.name, self.courses)


class Presented(Enum):
    """Which of a door's configured tokens a request presented."""

    CURRENT = "current"
    PREVIOUS = "previous"
    PERSON = "person"
    WRONG = "wrong"


@dataclass(frozen=True)
class DoorTokens:
    """A door's token, while it is being replaced the previous one, and people's own tokens. With neither a
    current token nor people the door refuses everyone: the previous one alone opens nothing."""

    current: str
    previous: str = ""
    people: tuple[Person, ...] = ()

    @property
    def configured(self) -> bool:
        return bool(self.current or self.people)

    def presented(self, given: str) -> Presented:
        """Which token `given` is."""
        return self.match(given)[0]

    def match(self, given: str) -> tuple[Presented, Reader | None]:
        """Which token `given` is, and who presented it (None for a wrong one). Every comparison always runs,
        so the answer's time does not tell which token was close."""
        is_current = token_matches(given, self.current) and bool(self.current)
        is_previous = bool(self.current) and bool(self.previous) and token_matches(given, self.previous)
        people = [person for person in self.people if token_matches(given, person.token)]
        if is_current:
            return Presented.CURRENT, Reader(SHARED_READER)
        if people:
            return Presented.PERSON, people[0].reader
        return (Presented.PREVIOUS, Reader(PREVIOUS_READER)) if is_previous else (Presented.WRONG, None)

    def accepted(self) -> tuple[tuple[str, Reader], ...]:
        """(token, who presents it) of each token a request may present now, the current one first."""
        shared = [(self.current, SHARED_READER), (self.previous, PREVIOUS_READER)] if self.current else []
        return tuple((token, Reader(name)) for token, name in shared if token) + tuple(
            (person.token, person.reader) for person in self.people)


def read_people(path: str) -> tuple[Person, ...]:
    """Each line `<name> <token>` of the file at `path`, or `<name> <token> courses=<id>,<id>...` for one who reads
    those courses' students only (the name may hold spaces; `#` starts a comment line); "" reads as none.
    ValueError names the line of anything else, never a token."""
    if not path:
        return ()
    people: list[Person] = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        words = line.split()
        courses = _courses(words.pop(), number) if words[-1].startswith(COURSES) else None
        parts = " ".join(words).rsplit(None, 1)
        if len(parts) != 2 or not parts[0].strip():
            raise ValueError(f"line {number}: expected `<name> <token>` (and, for some courses only, "
                             f"`{COURSES}<id>,<id>`)")
        name, token = parts[0].strip(), parts[1]
        if len(token) < MIN_TOKEN_CHARS:
            raise ValueError(f"line {number} ({name}): a token of {len(token)} characters; at least "
                             f"{MIN_TOKEN_CHARS}")
        if any(name == known.name or token == known.token for known in people):
            raise ValueError(f"line {number} ({name}): a name or a token given twice")
        people.append(Person(name, token, courses))
    return tuple(people)


def _courses(field: str, number: int) -> frozenset[int]:
    """The course ids of a `courses=77,78` field: positive integers, at least one."""
    ids = field.removeprefix(COURSES).split(",")
    if not all(part.isascii() and part.isdigit() and int(part) > 0 for part in ids):
        raise ValueError(f"line {number}: `{COURSES}` takes course ids, positive integers separated by commas")
    return frozenset(int(part) for part in ids)
