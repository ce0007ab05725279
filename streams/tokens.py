"""Tokens in HTTP `Authorization` headers, compared in constant time: one reading for the read API, the
console and the LMS's door (`scorer ingest`), which must not import the worker's web app to share it."""
from __future__ import annotations

import hmac

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
