"""Who may see the console: the read API's token, sent as a bearer header or, from a browser
(which cannot send a header on a link), as a session cookie the login form sets.

The cookie never holds the token: it holds an expiry and an HMAC of it keyed by the token, so a
leaked cookie dies at its expiry and changing SCORER_API_TOKEN ends every session (but those of the token
kept in SCORER_API_TOKEN_PREVIOUS, while it is kept there: a rotation logs nobody out). HttpOnly
keeps it from scripts; SameSite=Strict keeps other sites from riding on it (no CSRF on the
logout form).
"""
from __future__ import annotations

import hashlib
import hmac

from streams.tokens import DoorTokens, Reader, token_matches
from streams.web import Admitted, Refusal, check_bearer

COOKIE = "scorer_console"
SESSION_SECONDS = 12 * 3600
PATH = "/console"


def _mac(token: str, expires: int) -> str:
    key = token.encode("utf-8", "surrogatepass")
    return hmac.new(key, f"edu-scorer console session {expires}".encode(), hashlib.sha256).hexdigest()


def session_value(token: str, now: float) -> str:
    """A cookie value valid for SESSION_SECONDS from `now`."""
    expires = int(now) + SESSION_SECONDS
    return f"{expires}.{_mac(token, expires)}"


def session_reader(value: str | None, tokens: DoorTokens, now: float) -> Reader | None:
    """Who holds the session, if the cookie was made with one of the tokens accepted now and has not expired (the
    reader that token names: `DoorTokens.accepted`); else None. Every comparison runs (constant time)."""
    if not value:
        return None
    expires_text, _, mac = value.partition(".")
    if not expires_text.isascii() or not expires_text.isdigit() or len(expires_text) > 12:
        return None
    expires = int(expires_text)
    made_by = [reader for token, reader in tokens.accepted() if token_matches(mac, _mac(token, expires))]
    return made_by[0] if made_by and now < expires else None


def over_https(tls: bool, forwarded_proto: str | None) -> bool:
    """Did the browser reach the console over HTTPS: the worker's own TLS, or a proxy that ended TLS and says so
    (`X-Forwarded-Proto: https`)? Trusting the header is safe here: it only marks the cookie `Secure`, and a
    client that forges it only keeps its own browser from sending the cookie over plain HTTP."""
    return tls or (forwarded_proto or "").split(",")[0].strip().lower() == "https"


def set_cookie(value: str, secure: bool) -> str:
    """The Set-Cookie header of a new session; `secure` (`over_https`): the browser never sends it over plain
    HTTP."""
    return f"{COOKIE}={value}; Path={PATH}; Max-Age={SESSION_SECONDS}; {_attributes(secure)}"


def clear_cookie(secure: bool) -> str:
    return f"{COOKIE}=; Path={PATH}; Max-Age=0; {_attributes(secure)}"


def _attributes(secure: bool) -> str:
    return "HttpOnly; SameSite=Strict; Secure" if secure else "HttpOnly; SameSite=Strict"


def authorize(authorization: str | None, cookie: str | None, tokens: DoorTokens, now: float) -> Refusal | Admitted:
    """Admitted (and who) if the request may see the console: a valid session cookie, or the bearer header
    the read API takes; an empty configured token refuses everyone."""
    holder = session_reader(cookie, tokens, now)
    if holder is not None:
        return Admitted(holder)
    if authorization is None and tokens.configured:
        return Refusal(401, "log in first")
    return check_bearer(authorization, tokens, "console")
