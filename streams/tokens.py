"""Tokens in HTTP `Authorization` headers, compared in constant time: one reading for the read API, the
console and the LMS's door (`scorer ingest`), which must not import the worker's web app to share it.

Each door also takes a *previous* token while one is being replaced (SCORER_API_TOKEN_PREVIOUS,
SCORER_INGEST_TOKEN_PREVIOUS): the clients move to the new token one by one, none is refused meanwhile,
and a counter of the requests still presenting the old one says when it can be dropped.

The read API and the console also take *people's own* tokens (SCORER_API_TOKENS_FILE: a curator, an analyst),
so one who leaves is removed alone, without giving everyone else a new token, and a console login is
logged with the name."""
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


class Presented(Enum):
    """Which of a door's configured tokens a request presented."""

    CURRENT = "current"
    PREVIOUS = "previous"
    PERSON = "person"
    WRONG = "wrong"


@dataclass(frozen=True)
class DoorTokens:
    """A door's token, while it is being replaced the previous one, and people's own tokens (name, token).
    With neither a current token nor people the door refuses everyone: the previous one alone opens nothing."""

    current: str
    previous: str = ""
    people: tuple[tuple[str, str], ...] = ()

    @property
    def configured(self) -> bool:
        return bool(self.current or self.people)

    def presented(self, given: str) -> Presented:
        """Which token `given` is."""
        return self.match(given)[0]

    def match(self, given: str) -> tuple[Presented, str]:
        """Which token `given` is, and for a person's, their name (else ""). Every comparison always runs, so
        the answer's time does not tell which token was close."""
        is_current = token_matches(given, self.current) and bool(self.current)
        is_previous = bool(self.current) and bool(self.previous) and token_matches(given, self.previous)
        names = [name for name, token in self.people if token_matches(given, token)]
        if is_current:
            return Presented.CURRENT, ""
        if names:
            return Presented.PERSON, names[0]
        return (Presented.PREVIOUS, "") if is_previous else (Presented.WRONG, "")

    def accepted(self) -> tuple[tuple[str, str], ...]:
        """(token, reader) of each token a request may present now, the current one first: the reader is who
        the record of students' data reads names (`reader`)."""
        shared = [(self.current, SHARED_READER), (self.previous, PREVIOUS_READER)] if self.current else []
        return tuple((token, reader) for token, reader in shared if token) + tuple(
            (token, name) for name, token in self.people)


def reader(which: Presented, person: str) -> str:
    """Who presented an accepted token, as the record of students' data reads names them: a person by their name,
    the shared tokens by which."""
    return {Presented.CURRENT: SHARED_READER, Presented.PREVIOUS: PREVIOUS_READER, Presented.PERSON: person}[which]


def read_people(path: str) -> tuple[tuple[str, str], ...]:
    """(name, token) of each line `<name> <token>` of the file at `path` (the name may hold spaces; `#` starts a
    comment line); "" reads as none. ValueError names the line of anything else, never a token."""
    if not path:
        return ()
    people: list[tuple[str, str]] = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.rsplit(None, 1)
        if len(parts) != 2 or not parts[0].strip():
            raise ValueError(f"line {number}: expected `<name> <token>`")
        name, token = parts[0].strip(), parts[1]
        if len(token) < MIN_TOKEN_CHARS:
            raise ValueError(f"line {number} ({name}): a token of {len(token)} characters; at least "
                             f"{MIN_TOKEN_CHARS}")
        if any(name == known for known, _ in people) or any(token == known for _, known in people):
            raise ValueError(f"line {number} ({name}): a name or a token given twice")
        people.append((name, token))
    return tuple(people)
