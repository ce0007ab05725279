"""Tokens in HTTP `Authorization` headers, compared in constant time: one reading for the read API, the
console and the LMS's door (`scorer ingest`), which must not import the worker's web app to share it.

Each door also takes a *previous* token while one is being replaced (SCORER_API_TOKEN_PREVIOUS,
SCORER_INGEST_TOKEN_PREVIOUS): the clients move to the new token one by one, none is refused meanwhile,
and a counter of the requests still presenting the old one says when it can be dropped."""
from __future__ import annotations

import hmac
from dataclasses import dataclass
from enum import Enum

#: How long a request that presented a wrong token waits for its answer, at every door that takes a token: a
#: client guessing one at a time gets at most one guess a second per connection; a client with a stale token
#: waits a second to hear it.
WRONG_TOKEN_DELAY_SECONDS = 1.0


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
    WRONG = "wrong"


@dataclass(frozen=True)
class DoorTokens:
    """A door's token and, while it is being replaced, the previous one. Without a current token the door
    refuses everyone: the previous one alone opens nothing."""

    current: str
    previous: str = ""

    def presented(self, given: str) -> Presented:
        """Which token `given` is. Both comparisons always run, so the answer's time does not tell which
        token was close."""
        is_current = token_matches(given, self.current)
        is_previous = bool(self.previous) and token_matches(given, self.previous)
        if not self.current:
            return Presented.WRONG
        if is_current:
            return Presented.CURRENT
        return Presented.PREVIOUS if is_previous else Presented.WRONG

    def accepted(self) -> tuple[str, ...]:
        """The tokens a request may present now, the current one first."""
        return tuple(token for token in (self.current, self.previous) if token) if self.current else ()
